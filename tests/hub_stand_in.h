// A stand-in for the Hugging Face Hub on 127.0.0.1 for the tests: the model-info API, the resolve
// endpoint with huggingface_hub's headers (X-Repo-Commit, X-Linked-Etag, X-Linked-Size, ETag) and,
// for LFS files (*.gguf, *.safetensors, *.bin), a redirect to a second server, the "CDN", which
// supports Range and rejects requests carrying a token (as signed S3 URLs do). Repositories can be
// gated, serve corrupted bytes, cut every connection after some bytes, or send slowly.
// Thread-safety: all members may be called while the servers run; they stop in the destructor.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace bitnet::testing {

struct StandInRepo {
  std::string id;      // org/name
  std::string commit;  // 40 hex digits; "main" resolves to it
  std::map<std::string, std::string> files;  // repository path -> content
  std::string token;          // non-empty: a gated repository that only this token may download
  bool corrupt = false;       // the CDN flips a byte of every LFS file
  size_t cut_after = 0;       // > 0: the CDN closes each connection after this many bytes
  size_t bytes_per_second = 0;  // > 0: the CDN sends at this rate
  bool down = false;          // the Hub answers 503 for this repository
};

class StandInHub {
 public:
  StandInHub();  // starts both servers on free ports
  ~StandInHub();
  StandInHub(const StandInHub&) = delete;
  StandInHub& operator=(const StandInHub&) = delete;

  void add(StandInRepo repo);
  std::string endpoint() const;  // http://127.0.0.1:PORT, for HF_ENDPOINT

  struct Request {
    std::string server;  // "hub" or "cdn"
    std::string method, path, range, authorization;
  };
  std::vector<Request> requests() const;
  void clear_requests();

  static bool is_lfs(const std::string& file);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bitnet::testing
