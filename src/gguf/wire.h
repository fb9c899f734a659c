// GGUF on-disk facts shared by the reader and the writer (private to src/gguf).
#pragma once
#include <bit>
#include <cstdint>
#include <string>

#include "bitnet/gguf.h"

namespace bitnet::gguf::wire {

static_assert(std::endian::native == std::endian::little,
              "GGUF is little endian; the reader and writer copy integers as they are in memory");

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kVersion = 3;  // what the writer writes
constexpr uint64_t kDefaultAlignment = 32;
constexpr const char* kAlignmentKey = "general.alignment";
constexpr int kMaxArrayDepth = 8;

constexpr bool is_known(uint32_t raw) { return raw <= static_cast<uint32_t>(ValueType::FLOAT64); }

// Bytes of a fixed-size scalar; 0 for STRING and ARRAY.
constexpr uint64_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    case ValueType::STRING: case ValueType::ARRAY: return 0;
  }
  return 0;
}

// The fewest bytes a value of type t can occupy: a string is at least its u64 length, an array
// at least its u32 element type and u64 count. Used to bound counts by the bytes that remain.
constexpr uint64_t min_encoded_size(ValueType t) {
  if (t == ValueType::STRING) return 8;
  if (t == ValueType::ARRAY) return 4 + 8;
  return scalar_size(t);
}

// One metadata entry: key length (u64), value type (u32), the smallest value (1 byte).
constexpr uint64_t kMinKvSize = 8 + 4 + 1;
// One tensor info: name length (u64), n_dims (u32), one dim (u64), type (u32), offset (u64).
constexpr uint64_t kMinTensorInfoSize = 8 + 4 + 8 + 4 + 8;

constexpr bool is_integer(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::UINT16: case ValueType::INT16:
    case ValueType::UINT32: case ValueType::INT32: case ValueType::UINT64: case ValueType::INT64:
      return true;
    default:
      return false;
  }
}
constexpr bool is_signed(ValueType t) {
  return t == ValueType::INT8 || t == ValueType::INT16 || t == ValueType::INT32 ||
         t == ValueType::INT64;
}
constexpr bool is_float(ValueType t) { return t == ValueType::FLOAT32 || t == ValueType::FLOAT64; }

constexpr uint64_t align_up(uint64_t x, uint64_t alignment) {
  return (x + alignment - 1) / alignment * alignment;
}

// Whether raw type ids 36..39 mean bitnet.cpp's types: the architecture is a BitNet one or
// general.file_type is 40 (MOSTLY_I2_S). `find` looks a key up in the metadata.
template <class Find>
bool is_bitnet_file(Find find) {
  if (const Value* arch = find("general.architecture"); arch && arch->type == ValueType::STRING)
    if (arch->str == "bitnet-b1.58" || arch->str == "bitnet-25" || arch->str == "bitnet")
      return true;
  if (const Value* ft = find("general.file_type"); ft && is_integer(ft->type))
    return is_signed(ft->type) ? ft->i == 40 : ft->u == 40;
  return false;
}

// Bytes of a tensor's data, or throws bitnet::Error (message names the tensor, without the file).
// Caller guarantees the element count fits in 64 bits and is at most kMaxElements.
uint64_t tensor_data_size(uint32_t raw_type, bool bitnet_file, const std::string& name,
                          const uint64_t ne[kMaxDims]);
// No stored type takes more than 4 bytes per value (F32), so below this count sizes cannot overflow.
constexpr uint64_t kMaxElements = UINT64_MAX / 8;

}  // namespace bitnet::gguf::wire
