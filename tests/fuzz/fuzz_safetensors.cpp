// libFuzzer target for the converter's safetensors reader: any input must open or throw
// bitnet::Error; an opened file's tensors lie inside it (every byte is read) and its float tensors
// convert.
#include <cstdint>
#include <vector>

#include "bitnet/error.h"
#include "convert/safetensors.h"
#include "memory_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto f = bitnet::SafetensorsFile::open(bitnet_fuzz::memory_file(data, size));
    volatile unsigned sink = 0;
    for (const bitnet::StTensor& t : f->tensors()) {
      if (f->find(t.name) != &t) __builtin_trap();
      for (uint64_t i = 0; i < t.nbytes; ++i) sink = sink + t.data[i];
      if (t.is_float()) {
        for (float v : bitnet::read_floats(t)) sink = sink + (v == 0);
        if (t.shape.size() == 2 && t.shape[0] > 0) {
          std::vector<float> row(static_cast<size_t>(t.shape[1]));
          bitnet::read_float_row(t, t.shape[0] - 1, row.data());
        }
      }
    }
  } catch (const bitnet::Error&) {
  }
  return 0;
}
