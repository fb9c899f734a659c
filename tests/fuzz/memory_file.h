// For fuzz targets whose reader takes a path: the input written to an in-memory file (memfd), so
// the fuzzer stays off the disk. One file per process, rewritten for every input.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace bitnet_fuzz {

inline std::string memory_file(const uint8_t* data, size_t size) {
  static const int fd = memfd_create("bitnet_fuzz", 0);
  if (fd < 0 || ftruncate(fd, 0) != 0 ||
      (size && pwrite(fd, data, size, 0) != static_cast<ssize_t>(size))) {
    std::perror("fuzz: memfd");
    std::abort();
  }
  return "/proc/self/fd/" + std::to_string(fd);
}

}  // namespace bitnet_fuzz
