// Downloading one blob into the cache: {etag}.incomplete, resumed with Range, size and sha256
// checked, then renamed to blobs/{etag}.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cache.h"

namespace bitnet::hub {

struct RemoteBlob {
  std::string url;                   // where the content is (the CDN location after the Hub's redirect)
  std::vector<std::string> headers;  // request headers (Authorization only for the Hub's own host)
  std::string etag;                  // normalised; a 64-hex etag is the content's sha256
  uint64_t size = 0;
  std::string label;                 // the file name, for progress and messages
  std::string repo;
};

// Makes blobs/{etag} exist with the remote content. Retries a dropped connection a few times,
// resuming where it stopped; a later call resumes from the .incomplete file too. Throws
// bitnet::Error on HTTP errors, a size or sha256 mismatch (the partial file is then removed) or
// when retries are exhausted (the partial file is kept for the next attempt).
void download_blob(const RemoteBlob& blob, const RepoCache& cache, bool progress);

// The message for a 401/403 answer: the repository is gated or private; names HF_TOKEN.
std::string access_denied_message(const std::string& repo, long status, bool sent_token);

}  // namespace bitnet::hub
