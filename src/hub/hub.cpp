#include "bitnet/hub.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bitnet/error.h"
#include "bitnet/log.h"
#include "cache.h"
#include "download.h"
#include "http.h"

namespace bitnet::hub {

namespace {

namespace fs = std::filesystem;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// huggingface_hub's _is_true.
bool env_true(const char* name) {
  std::string v = lower(env(name));
  return v == "1" || v == "on" || v == "yes" || v == "true";
}

std::string home_dir() {
  std::string home = env("HOME");
  if (home.empty()) {
    if (const passwd* pw = getpwuid(getuid())) home = pw->pw_dir;
  }
  return home;
}

std::string expand_user(const std::string& path) {
  if (path == "~" || path.rfind("~/", 0) == 0) return home_dir() + path.substr(1);
  return path;
}

bool is_commit_hash(const std::string& s) {
  return s.size() == 40 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// A relative path that stays inside the directory it is joined to.
bool is_safe_relative_path(const std::string& p) {
  if (p.empty() || p[0] == '/' || p.find('\\') != std::string::npos || p.find('\0') != std::string::npos) return false;
  std::stringstream parts(p);
  std::string part;
  while (std::getline(parts, part, '/'))
    if (part.empty() || part == "." || part == "..") return false;
  return p.back() != '/';
}

// huggingface_hub's _normalize_etag: etag.lstrip("W/").strip('"').
std::string normalize_etag(const std::string& etag) {
  size_t start = etag.find_first_not_of("W/");
  if (start == std::string::npos) return "";
  std::string s = etag.substr(start);
  size_t a = s.find_first_not_of('"'), b = s.find_last_not_of('"');
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

bool is_gguf(const std::string& file) { return lower(file).size() > 5 && lower(file).ends_with(".gguf"); }

std::string basename(const std::string& file) {
  size_t slash = file.rfind('/');
  return slash == std::string::npos ? file : file.substr(slash + 1);
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "none" : out;
}

std::vector<std::string> containing(const std::vector<std::string>& files, const std::string& needle) {
  std::vector<std::string> out;
  for (const std::string& f : files)
    if (lower(basename(f)).find(lower(needle)) != std::string::npos) out.push_back(f);
  return out;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A name beside `path` that no other process or thread uses at the same time.
fs::path temporary_name(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  fs::path tmp = path;
  tmp += ".tmp" + std::to_string(getpid()) + "." + std::to_string(counter++);
  return tmp;
}

// Replaces `path` with `content` atomically (readers never see a partial file).
void write_file_atomically(const fs::path& path, const std::string& content) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  fs::path tmp = temporary_name(path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out.flush()) throw Error("cannot write '" + tmp.string() + "'");
  }
  fs::rename(tmp, path, ec);
  if (ec) throw Error("cannot write '" + path.string() + "': " + ec.message());
}

// snapshots/{commit}/{file} -> ../../blobs/{etag} (one more "../" per directory in `file`).
void link_snapshot(const RepoCache& cache, const std::string& commit, const std::string& file, const std::string& etag) {
  fs::path link = cache.snapshot(commit) / file;
  std::string target = "../../";
  for (char c : file)
    if (c == '/') target += "../";
  target += "blobs/" + etag;
  std::error_code ec;
  if (fs::is_symlink(link, ec) && fs::read_symlink(link, ec) == target) return;
  fs::create_directories(link.parent_path(), ec);
  if (ec) throw Error("cannot create '" + link.parent_path().string() + "': " + ec.message());
  fs::path tmp = temporary_name(link);
  fs::create_symlink(target, tmp, ec);
  if (!ec) fs::rename(tmp, link, ec);
  if (ec) throw Error("cannot create the link '" + link.string() + "': " + ec.message());
}

// The files of a cached snapshot whose link resolves, as repository paths.
std::vector<std::string> cached_files(const fs::path& snapshot) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(snapshot, ec), end; !ec && it != end; it.increment(ec))
    if (fs::is_regular_file(it->path(), ec)) out.push_back(it->path().lexically_relative(snapshot).generic_string());
  std::sort(out.begin(), out.end());
  return out;
}

// What to fetch from a repository with these files: one file, or all of them (a snapshot).
struct Choice {
  std::vector<std::string> files;
  bool snapshot = false;
};

Choice choose(const std::vector<std::string>& files, const ModelRef& ref, const PullOptions& options) {
  if (!options.file.empty()) {
    if (std::find(files.begin(), files.end(), options.file) == files.end())
      throw Error("no file '" + options.file + "' in " + ref.repo + " (files: " + join(files) + ")");
    return {{options.file}, false};
  }
  bool any_gguf = std::any_of(files.begin(), files.end(), is_gguf);
  if (!any_gguf && ref.tag.empty() && options.allow_snapshot) return {files, true};
  if (!any_gguf)
    throw Error(ref.repo + " has no GGUF file (files: " + join(files) + "); download it with `bitnet pull " + ref.repo +
                "` and convert it with `bitnet convert`");
  return {{select_gguf(files, ref.tag, ref.repo)}, false};
}

std::string result_path(const RepoCache& cache, const std::string& commit, const Choice& choice) {
  fs::path dir = cache.snapshot(commit);
  return (choice.snapshot ? dir : dir / choice.files[0]).string();
}

// The revision as the cache knows it: a commit hash, else the commit refs/{revision} holds.
std::string pull_from_cache(const ModelRef& ref, const PullOptions& options, const RepoCache& cache,
                            const std::string& why) {
  std::string commit = is_commit_hash(options.revision) ? options.revision : read_file(cache.ref(options.revision));
  std::vector<std::string> files = commit.empty() ? std::vector<std::string>() : cached_files(cache.snapshot(commit));
  if (files.empty())
    throw Error(why + " and " + ref.repo + " (revision " + options.revision + ") is not in the cache " +
                cache.cache_dir.string());
  Choice choice = choose(files, ref, options);
  return result_path(cache, commit, choice);
}

struct Api {
  const Settings& settings;
  std::vector<std::string> auth() const {
    if (settings.token.empty()) return {};
    return {"Authorization: Bearer " + settings.token};
  }
  [[noreturn]] void fail(const std::string& repo, const std::string& what, const HttpResponse& r) const {
    // The Hub answers 401 RepositoryNotFound for a repository it does not show (absent or private).
    if (r.header("x-error-code") == "RepositoryNotFound")
      throw Error("model " + repo + " not found on " + settings.endpoint +
                  " (if it is private, set HF_TOKEN to an access token that may read it)");
    if (r.status == 401 || r.status == 403) throw Error(access_denied_message(repo, r.status, !settings.token.empty()));
    std::string detail;
    try {
      auto j = nlohmann::json::parse(r.body);
      if (j.is_object() && j.contains("error") && j["error"].is_string()) detail = ": " + j["error"].get<std::string>();
    } catch (const nlohmann::json::exception&) {
    }
    throw Error("HTTP " + std::to_string(r.status) + " for " + what + " from " + settings.endpoint + detail);
  }
};

}  // namespace

Settings Settings::from_environment() {
  Settings s;
  s.endpoint = env("HF_ENDPOINT");
  if (s.endpoint.empty()) s.endpoint = "https://huggingface.co";
  while (!s.endpoint.empty() && s.endpoint.back() == '/') s.endpoint.pop_back();

  std::string hf_home = env("HF_HOME");
  if (hf_home.empty()) {
    std::string xdg = env("XDG_CACHE_HOME");
    hf_home = (xdg.empty() ? home_dir() + "/.cache" : xdg) + "/huggingface";
  }
  hf_home = expand_user(hf_home);
  s.cache_dir = env("HF_HUB_CACHE");
  if (s.cache_dir.empty()) s.cache_dir = env("HUGGINGFACE_HUB_CACHE");  // the older name
  s.cache_dir = s.cache_dir.empty() ? hf_home + "/hub" : expand_user(s.cache_dir);

  s.token = env("HF_TOKEN");
  if (s.token.empty()) s.token = env("HUGGING_FACE_HUB_TOKEN");
  if (s.token.empty()) {
    std::string path = env("HF_TOKEN_PATH");
    s.token = read_file(path.empty() ? hf_home + "/token" : expand_user(path));
  }
  // As huggingface_hub cleans it: no line breaks, no surrounding blanks.
  s.token.erase(std::remove(s.token.begin(), s.token.end(), '\r'), s.token.end());
  s.token.erase(std::remove(s.token.begin(), s.token.end(), '\n'), s.token.end());
  size_t a = s.token.find_first_not_of(" \t"), b = s.token.find_last_not_of(" \t");
  s.token = a == std::string::npos ? "" : s.token.substr(a, b - a + 1);

  s.offline = env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE");
  return s;
}

ModelRef parse_model_ref(const std::string& text) {
  ModelRef ref;
  size_t colon = text.find(':');
  ref.repo = text.substr(0, colon);
  if (colon != std::string::npos) {
    ref.tag = text.substr(colon + 1);
    if (ref.tag.empty()) throw Error("empty tag in '" + text + "' (expected ORG/NAME[:TAG])");
  }
  // huggingface_hub's repo id rules: [namespace/]name of word characters, '-' and '.', starting and
  // ending with a letter or digit, no "--" or "..", at most 96 characters.
  auto valid_part = [](const std::string& p) {
    if (p.empty() || p.find("--") != std::string::npos || p.find("..") != std::string::npos) return false;
    for (char c : p)
      if (!std::isalnum((unsigned char)c) && c != '_' && c != '-' && c != '.') return false;
    auto word = [](char c) { return std::isalnum((unsigned char)c) || c == '_'; };
    return word(p.front()) && word(p.back());
  };
  size_t slash = ref.repo.find('/');
  bool ok = slash != std::string::npos && ref.repo.size() <= 96 && valid_part(ref.repo.substr(0, slash)) &&
            valid_part(ref.repo.substr(slash + 1));
  if (!ok) throw Error("'" + text + "' is not a Hugging Face model name (expected ORG/NAME[:TAG])");
  return ref;
}

std::string repo_folder_name(const std::string& repo) {
  std::string out = "models";
  std::stringstream parts(repo);
  std::string part;
  while (std::getline(parts, part, '/')) out += "--" + part;
  return out;
}

std::string select_gguf(const std::vector<std::string>& files, const std::string& tag, const std::string& repo) {
  std::vector<std::string> ggufs;
  std::copy_if(files.begin(), files.end(), std::back_inserter(ggufs), is_gguf);
  if (ggufs.empty()) throw Error(repo + " has no GGUF file (files: " + join(files) + ")");
  if (!tag.empty()) {
    std::vector<std::string> hits = containing(ggufs, tag);
    if (hits.size() == 1) return hits[0];
    if (hits.empty()) throw Error("no GGUF file of " + repo + " matches '" + tag + "' (files: " + join(ggufs) + ")");
    throw Error("'" + tag + "' matches several GGUF files of " + repo + ": " + join(hits) + "; give a longer tag");
  }
  if (ggufs.size() == 1) return ggufs[0];
  for (const char* preferred : {"i2_s", "tq2_0", "tq1_0"}) {
    std::vector<std::string> hits = containing(ggufs, preferred);
    if (hits.size() == 1) return hits[0];
    if (hits.size() > 1)
      throw Error(repo + " has several " + lower(preferred) + " GGUF files: " + join(hits) + "; choose one with " + repo + ":TAG");
  }
  throw Error(repo + " has several GGUF files: " + join(ggufs) + "; choose one with " + repo + ":TAG");
}

std::string pull(const ModelRef& ref, const PullOptions& options, const Settings& settings) {
  if (!is_safe_relative_path(options.revision)) throw Error("invalid revision '" + options.revision + "'");
  if (!options.file.empty() && !is_safe_relative_path(options.file))
    throw Error("invalid file name '" + options.file + "'");
  const RepoCache cache(settings.cache_dir, ref.repo);
  if (settings.offline) return pull_from_cache(ref, options, cache, "HF_HUB_OFFLINE is set");

  // The commit and the file list of the revision.
  const Api api{settings};
  HttpRequest info;
  info.url = settings.endpoint + "/api/models/" + ref.repo + "/revision/" + url_quote(options.revision, "");
  info.headers = api.auth();
  HttpResponse r;
  TransportError error;
  if (!http_perform(info, r, error) || r.status >= 500) {
    std::string why = "cannot reach " + settings.endpoint + " (" + (r.status >= 500 ? "HTTP " + std::to_string(r.status) : error.message) + ")";
    std::string path = pull_from_cache(ref, options, cache, why);
    log_printf(LogLevel::Warn, "pull: warning: %s; using the cached copy\n", why.c_str());
    return path;
  }
  if (r.status == 404) {
    std::string code = r.header("x-error-code");
    if (code == "RevisionNotFound") throw Error("revision '" + options.revision + "' not found in " + ref.repo);
    throw Error("model " + ref.repo + " not found on " + settings.endpoint);
  }
  if (r.status != 200) api.fail(ref.repo, ref.repo, r);
  std::string commit;
  std::vector<std::string> files;
  try {
    auto j = nlohmann::json::parse(r.body);
    commit = j.at("sha").get<std::string>();
    for (const auto& s : j.at("siblings")) files.push_back(s.at("rfilename").get<std::string>());
  } catch (const nlohmann::json::exception& e) {
    throw Error("unexpected answer from " + info.url + ": " + e.what());
  }
  if (!is_commit_hash(commit)) throw Error("unexpected answer from " + info.url + ": 'sha' is not a commit hash");
  for (const std::string& f : files)
    if (!is_safe_relative_path(f)) throw Error("unexpected answer from " + info.url + ": unsafe file name '" + f + "'");

  Choice choice = choose(files, ref, options);
  for (const std::string& file : choice.files) {
    std::error_code ec;
    if (fs::exists(cache.snapshot(commit) / file, ec)) continue;  // a commit's files never change
    // The file's etag, size and location; relative redirects (renamed repositories) are followed,
    // an absolute one is the CDN location to download from.
    HttpRequest head;
    head.method = "HEAD";
    head.url = settings.endpoint + "/" + ref.repo + "/resolve/" + commit + "/" + url_quote(file, "/");
    head.headers = api.auth();
    head.headers.push_back("Accept-Encoding: identity");
    HttpResponse h;
    for (int redirects = 0;; ++redirects) {
      if (!http_perform(head, h, error)) throw Error("cannot reach " + settings.endpoint + ": " + error.message);
      std::string location = h.header("location");
      if (h.status / 100 != 3 || location.empty() || location[0] != '/' || redirects == 10) break;
      head.url = url_origin(head.url) + location;
    }
    if (h.status / 100 != 2 && h.status / 100 != 3) api.fail(ref.repo, file + " of " + ref.repo, h);
    RemoteBlob blob;
    blob.label = file;
    blob.repo = ref.repo;
    std::string linked = h.header("x-linked-etag");
    blob.etag = normalize_etag(linked.empty() ? h.header("etag") : linked);
    std::string size = h.header("x-linked-size");
    if (size.empty() && h.status / 100 == 2) size = h.header("content-length");
    std::string location = h.header("location");
    blob.url = location.empty() ? head.url : location;
    // A signed CDN URL must not get the token (huggingface_hub drops it for another host too).
    if (url_origin(blob.url) == url_origin(head.url)) blob.headers = api.auth();
    if (blob.etag.empty() || !is_safe_relative_path(blob.etag) || blob.etag.find('/') != std::string::npos)
      throw Error("no usable ETag for " + file + " from " + settings.endpoint);
    char* end = nullptr;
    blob.size = std::strtoull(size.c_str(), &end, 10);
    if (size.empty() || *end) throw Error("no size (X-Linked-Size or Content-Length) for " + file + " from " + settings.endpoint);
    download_blob(blob, cache, options.progress);
    link_snapshot(cache, commit, file, blob.etag);
  }
  if (options.revision != commit && read_file(cache.ref(options.revision)) != commit)
    write_file_atomically(cache.ref(options.revision), commit);
  return result_path(cache, commit, choice);
}

}  // namespace bitnet::hub
