// Ternary tensors as values in {-1, 0, +1} plus a scale: I2_S (bitnet.cpp) and TQ1_0 / TQ2_0
// (upstream ggml), read and written in their on-disk layouts.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "bitnet/error.h"
#include "bitnet/formats.h"
#include "formats/byte_order.h"
#include "formats/ternary_blocks.h"

namespace bitnet {

namespace {

constexpr int kI2sBlock = 128;  // values per 32-byte group

std::string where(const std::string& tensor_name, uint64_t r) {
  return "tensor '" + tensor_name + "' row " + std::to_string(r);
}

// I2_S: the tensor's values, flattened row after row, in 128-value groups of 32 bytes; value j of
// a group sits in byte j % 32 at bit 6 - 2 * (j / 32). Rows need not be whole groups (bitnet.cpp
// packs the flattened tensor), only the tensor.
float read_i2s_row(const uint8_t* data, uint64_t ne0, uint64_t ne1, uint64_t r, int8_t* out,
                   const std::string& tensor_name) {
  if ((ne0 * ne1) % kI2sBlock != 0)
    throw Error("tensor '" + tensor_name + "': I2_S tensor of " + std::to_string(ne0 * ne1) +
                " values is not a multiple of 128");
  auto value = [](int code) { return code == 3 ? 0 : (int8_t)(code - 1); };  // code 3 is unused: read as 0
  if (ne0 % kI2sBlock == 0) {
    const uint8_t* row = data + r * (ne0 / 4);
    for (uint64_t g = 0; g < ne0 / kI2sBlock; ++g) {
      const uint8_t* bytes = row + 32 * g;
      for (int j = 0; j < kI2sBlock; ++j) out[g * kI2sBlock + j] = value((bytes[j % 32] >> (6 - 2 * (j / 32))) & 3);
    }
  } else {
    for (uint64_t j = 0, i = r * ne0; j < ne0; ++j, ++i) {
      const uint64_t g = i / kI2sBlock, p = i % kI2sBlock;
      out[j] = value((data[32 * g + p % 32] >> (6 - 2 * (p / 32))) & 3);
    }
  }
  return detail::load_le_f32(data + ne0 * ne1 / 4);
}

// TQ1_0 / TQ2_0: one f16 scale per 256-value block; we keep one per row, so all blocks that hold
// a non-zero value must agree (an all-zero block's scale is irrelevant and ignored).
float read_tq_row(TensorType t, const uint8_t* data, uint64_t ne0, uint64_t r, int8_t* out,
                  const std::string& tensor_name) {
  const int block_bytes = detail::tq_block_bytes(t);
  const uint64_t row_bytes = row_nbytes(t, ne0);
  const uint8_t* row = data + r * row_bytes;
  bool have_scale = false;
  uint16_t scale_bits = 0;
  for (uint64_t b = 0; b < ne0 / detail::kTernaryBlock; ++b) {
    const uint8_t* block = row + b * block_bytes;
    uint8_t codes[detail::kTernaryBlock];
    detail::tq_decode_codes(t, block, codes);
    // Converted and checked in one branch-free (vectorisable) pass; errors are located afterwards.
    uint8_t max_code = 0, all_zero = 1;
    for (int i = 0; i < detail::kTernaryBlock; ++i) {
      out[b * detail::kTernaryBlock + i] = (int8_t)(codes[i] - 1);
      max_code = std::max(max_code, codes[i]);
      all_zero &= (uint8_t)(codes[i] == 1);
    }
    if (max_code > 2) {
      const int i = (int)(std::find_if(codes, codes + detail::kTernaryBlock, [](uint8_t c) { return c > 2; }) - codes);
      throw Error(where(tensor_name, r) + ": TQ2_0 code 3 at value " + std::to_string(b * detail::kTernaryBlock + i) +
                  " is not a ternary value");
    }
    const uint16_t bits = detail::tq_block_scale_bits(t, block);
    if (all_zero) continue;
    if (!std::isfinite(fp16_to_fp32(bits)))
      throw Error(where(tensor_name, r) + ": block " + std::to_string(b) + " has a non-finite scale");
    if (!have_scale) {
      have_scale = true;
      scale_bits = bits;
    } else if (fp16_to_fp32(bits) != fp16_to_fp32(scale_bits)) {
      throw Error(where(tensor_name, r) + ": " + type_name(t) + " block " + std::to_string(b) + " scale " +
                  std::to_string(fp16_to_fp32(bits)) + " differs from the row's scale " +
                  std::to_string(fp16_to_fp32(scale_bits)) + " (one scale per row is supported)");
    }
  }
  // An all-zero row: its scale multiplies only zeros; report the first block's.
  if (!have_scale) scale_bits = detail::tq_block_scale_bits(t, row);
  return fp16_to_fp32(scale_bits);
}

void require_ternary(const int8_t* values, int64_t n, const char* what) {
  for (int64_t i = 0; i < n; ++i)
    if (values[i] < -1 || values[i] > 1)
      throw Error(std::string(what) + ": value " + std::to_string(values[i]) + " at index " + std::to_string(i) +
                  " is not ternary (-1, 0 or +1)");
}

}  // namespace

float read_ternary_row(TensorType t, const uint8_t* tensor_data, uint64_t ne0, uint64_t ne1, uint64_t r,
                       int8_t* out, const std::string& tensor_name) {
  if (r >= ne1)
    throw Error("tensor '" + tensor_name + "': row " + std::to_string(r) + " out of range (" +
                std::to_string(ne1) + " rows)");
  switch (t) {
    case TensorType::I2_S:
      return read_i2s_row(tensor_data, ne0, ne1, r, out, tensor_name);
    case TensorType::TQ1_0:
    case TensorType::TQ2_0:
      if (ne0 % detail::kTernaryBlock != 0)
        throw Error("tensor '" + tensor_name + "': " + type_name(t) + " row length " + std::to_string(ne0) +
                    " is not a multiple of 256");
      return read_tq_row(t, tensor_data, ne0, r, out, tensor_name);
    default:
      throw Error("tensor '" + tensor_name + "': type " + type_name(t) + " is not a readable ternary type");
  }
}

void write_ternary_row(TensorType t, const int8_t* values, int64_t ne0, float scale, void* row) {
  if (t != TensorType::TQ1_0 && t != TensorType::TQ2_0)
    throw Error(std::string("write_ternary_row: type ") + type_name(t) +
                " is not TQ1_0 or TQ2_0 (I2_S is written with encode_i2s)");
  if (ne0 < 0 || ne0 % detail::kTernaryBlock != 0)
    throw Error(std::string("write_ternary_row: ") + type_name(t) + " row length " + std::to_string(ne0) +
                " is not a multiple of 256");
  require_ternary(values, ne0, "write_ternary_row");
  const int block_bytes = detail::tq_block_bytes(t);
  const uint16_t d_bits = fp32_to_fp16(scale);
  auto* out = static_cast<uint8_t*>(row);
  for (int64_t b = 0; b < ne0 / detail::kTernaryBlock; ++b) {
    uint8_t codes[detail::kTernaryBlock];
    for (int i = 0; i < detail::kTernaryBlock; ++i) codes[i] = (uint8_t)(values[b * detail::kTernaryBlock + i] + 1);
    detail::tq_encode_block(t, codes, d_bits, out + b * block_bytes);
  }
}

void encode_i2s(const int8_t* values, int64_t n, uint8_t* out) {
  if (n < 0 || n % kI2sBlock != 0)
    throw Error("encode_i2s: " + std::to_string(n) + " values is not a multiple of 128");
  require_ternary(values, n, "encode_i2s");
  if (n == 0) return;  // out may be null (an empty buffer's data()), which memset must not get
  std::memset(out, 0, (size_t)n / 4);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t g = i / kI2sBlock, j = i % kI2sBlock;
    out[32 * g + j % 32] |= (uint8_t)((values[i] + 1) << (6 - 2 * (j / 32)));
  }
}

void encode_i2s_trailer(float scale, uint8_t* out32) {
  std::memset(out32, 0, 32);
  detail::store_le_f32(scale, out32);
}

}  // namespace bitnet
