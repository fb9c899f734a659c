// The stand-in Hub as a program, for tests/cli/pull.sh:
//   bitnet-stand-in-hub ORG/NAME=DIR[,token=T][,rate=BYTES_PER_S][,cut=BYTES][,corrupt] ...
// serves each DIR's files as that repository (commit: a hash of the files), prints its endpoint
// (for HF_ENDPOINT) on stdout and runs until it is killed.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "hub/sha256.h"
#include "hub_stand_in.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s ORG/NAME=DIR[,token=T][,rate=BYTES_PER_S][,cut=BYTES][,corrupt] ...\n", argv[0]);
    return 2;
  }
  bitnet::testing::StandInHub hub;
  for (int i = 1; i < argc; ++i) {
    std::string spec = argv[i];
    size_t eq = spec.find('=');
    if (eq == std::string::npos) {
      std::fprintf(stderr, "bad repository spec '%s'\n", argv[i]);
      return 2;
    }
    bitnet::testing::StandInRepo repo;
    repo.id = spec.substr(0, eq);
    std::stringstream parts(spec.substr(eq + 1));
    std::string dir, part;
    std::getline(parts, dir, ',');
    while (std::getline(parts, part, ',')) {
      if (part.rfind("token=", 0) == 0) repo.token = part.substr(6);
      else if (part.rfind("rate=", 0) == 0) repo.bytes_per_second = std::stoul(part.substr(5));
      else if (part.rfind("cut=", 0) == 0) repo.cut_after = std::stoul(part.substr(4));
      else if (part == "corrupt") repo.corrupt = true;
      else {
        std::fprintf(stderr, "bad option '%s'\n", part.c_str());
        return 2;
      }
    }
    bitnet::hub::Sha256 commit;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      std::string content((std::istreambuf_iterator<char>(in)), {});
      std::string name = fs::relative(entry.path(), dir).generic_string();
      commit.update(name.data(), name.size());
      commit.update(content.data(), content.size());
      repo.files[name] = std::move(content);
    }
    repo.commit = commit.hex_digest().substr(0, 40);
    hub.add(std::move(repo));
  }
  std::printf("%s\n", hub.endpoint().c_str());
  std::fflush(stdout);
  for (;;) pause();
}
