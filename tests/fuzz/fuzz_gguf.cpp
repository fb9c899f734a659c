// libFuzzer target for the GGUF reader: any input must open or throw bitnet::Error, never crash,
// hang or read out of bounds. Not built by CMake. Build and run from the repository root with:
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
//     -Iinclude -Isrc tests/fuzz/fuzz_gguf.cpp src/gguf/*.cpp src/formats/type_traits.cpp \
//     -o /tmp/fuzz_gguf
//   mkdir -p /tmp/gguf-corpus && /tmp/fuzz_gguf -max_len=4096 -max_total_time=300 /tmp/gguf-corpus
//
// Seed the corpus with small GGUF files (the test binaries leave some under test-scratch/).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "bitnet/gguf.h"

namespace {

// File::open takes a path; an in-memory file keeps the fuzzer off the disk.
int memory_file() {
  static const int fd = memfd_create("fuzz_gguf", 0);
  return fd;
}

// Reads everything a successfully opened file exposes, so sanitizers see any bad pointer.
void exercise(const bitnet::gguf::File& f) {
  volatile unsigned sink = 0;
  for (const auto& t : f.tensors())
    for (uint64_t i = 0; i < t.nbytes; ++i) sink = sink + t.data[i];
  for (const auto& [key, value] : f.metadata()) {
    try { sink = sink + f.get_uint(key); } catch (const bitnet::Error&) {}
    try { sink = sink + static_cast<unsigned>(f.get_float(key) != 0); } catch (const bitnet::Error&) {}
    try { sink = sink + f.get_string(key).size(); } catch (const bitnet::Error&) {}
    try { sink = sink + f.get_strings(key).size(); } catch (const bitnet::Error&) {}
    try { sink = sink + f.get_floats(key).size(); } catch (const bitnet::Error&) {}
    try { sink = sink + f.get_ints(key).size(); } catch (const bitnet::Error&) {}
    try { sink = sink + f.get_bool(key, false); } catch (const bitnet::Error&) {}
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = memory_file();
  if (fd < 0 || ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) {
    std::perror("fuzz_gguf: memfd");
    std::abort();
  }
  try {
    auto f = bitnet::gguf::File::open("/proc/self/fd/" + std::to_string(fd));
    exercise(*f);
  } catch (const bitnet::Error&) {
  }
  return 0;
}
