// Models from the Hugging Face Hub: resolves "org/name[:tag]" to a file, downloads it into the cache
// that huggingface_hub uses (so files fetched by huggingface-cli are reused and vice versa) and
// returns its local path. The protocol and the cache layout are huggingface_hub's:
//   GET  {endpoint}/api/models/{repo}/revision/{rev}      -> "sha" (commit) and "siblings" (files)
//   HEAD {endpoint}/{repo}/resolve/{commit}/{file}        -> X-Linked-Etag / ETag, X-Linked-Size,
//                                                            X-Repo-Commit, Location (CDN)
//   {cache}/models--{org}--{name}/blobs/{etag}            the content ({etag}.incomplete while
//                                                         downloading; resumed with Range)
//   {cache}/models--{org}--{name}/snapshots/{commit}/{file} -> ../../blobs/{etag} (relative link)
//   {cache}/models--{org}--{name}/refs/{revision}         the commit the revision named
// For LFS files the etag is the content's sha256, checked before the blob is moved into place.
// Thread-safety: the functions share no state; concurrent pulls of one file are serialised by a
// lock file in {cache}/.locks, as huggingface_hub does.
#pragma once
#include <string>
#include <vector>

namespace bitnet::hub {

// Where and how to reach the Hub, from huggingface_hub's environment variables.
struct Settings {
  std::string endpoint;   // HF_ENDPOINT without a trailing '/' (default https://huggingface.co)
  std::string cache_dir;  // HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
  std::string token;      // HF_TOKEN, else the token file ($HF_TOKEN_PATH, else $HF_HOME/token)
  bool offline = false;   // HF_HUB_OFFLINE=1: the cache only, no connection at all

  static Settings from_environment();
};

// "org/name" or "org/name:tag" as typed after `pull` or -hf.
struct ModelRef {
  std::string repo;
  std::string tag;  // empty: the default choice (see select_gguf)
};
ModelRef parse_model_ref(const std::string& text);  // throws bitnet::Error on a malformed name

// The GGUF file among `files` (repository paths) that `tag` selects: the one whose name contains
// the tag (case-insensitively); without a tag the only GGUF, else the one named I2_S, TQ2_0, TQ1_0
// in that order. Throws bitnet::Error listing the files when none or several match.
std::string select_gguf(const std::vector<std::string>& files, const std::string& tag,
                        const std::string& repo);

struct PullOptions {
  std::string revision = "main";  // branch, tag or commit
  std::string file;               // an exact repository path instead of the tag's choice
  // A repository without GGUF files (and no tag or file given): download all of its files and
  // return the snapshot directory (for `bitnet convert`). Otherwise such a repository is an error.
  bool allow_snapshot = false;
  bool progress = true;  // progress on stderr: a bar on a terminal, a line per 10% otherwise
};

// Resolves `ref`, downloads what the cache lacks and returns the local path of the file (or of
// the snapshot directory, see allow_snapshot). When the Hub cannot be reached the cached snapshot
// of the revision is used, with a warning. Throws bitnet::Error with a one-line message.
std::string pull(const ModelRef& ref, const PullOptions& options, const Settings& settings);

// huggingface_hub's folder name for a model repository: "models--org--name".
std::string repo_folder_name(const std::string& repo);

}  // namespace bitnet::hub
