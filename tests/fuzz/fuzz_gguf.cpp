// libFuzzer target for the GGUF reader: any input must open or throw bitnet::Error, never crash,
// hang or read out of bounds. Built with the other fuzz_* targets (clang only): `make fuzz`, or
//
//   CXX=clang++ cmake -S . -B build-fuzz -DBITNET_FUZZ=ON && cmake --build build-fuzz -j2
//   build-fuzz/fuzz_gguf -max_total_time=300 /tmp/corpus tests/fuzz/corpus/fuzz_gguf
//
// (new inputs go to the first corpus directory; the committed seeds stay as they are).
#include <cstdint>

#include "bitnet/error.h"
#include "bitnet/gguf.h"
#include "memory_file.h"

namespace {

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
  try {
    auto f = bitnet::gguf::File::open(bitnet_fuzz::memory_file(data, size));
    exercise(*f);
  } catch (const bitnet::Error&) {
  }
  return 0;
}
