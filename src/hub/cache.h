// The paths of one model repository in huggingface_hub's cache (see include/bitnet/hub.h).
#pragma once
#include <filesystem>
#include <string>

#include "bitnet/hub.h"

namespace bitnet::hub {

struct RepoCache {
  std::filesystem::path cache_dir;  // the hub cache root
  std::string folder;               // models--org--name

  RepoCache(const std::string& cache, const std::string& repo) : cache_dir(cache), folder(repo_folder_name(repo)) {}
  std::filesystem::path root() const { return cache_dir / folder; }
  std::filesystem::path blob(const std::string& etag) const { return root() / "blobs" / etag; }
  std::filesystem::path snapshot(const std::string& commit) const { return root() / "snapshots" / commit; }
  std::filesystem::path ref(const std::string& revision) const { return root() / "refs" / revision; }
  std::filesystem::path lock(const std::string& etag) const {
    return cache_dir / ".locks" / folder / (etag + ".lock");
  }
};

}  // namespace bitnet::hub
