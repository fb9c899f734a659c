// Type ids, names and sizes of the tensor formats.
#include <algorithm>
#include <cctype>

#include "bitnet/error.h"
#include "bitnet/formats.h"

namespace bitnet {

namespace {

struct TypeInfo {
  TensorType type;
  const char* name;
  int64_t block;       // values per block
  uint64_t block_bytes;
};

// I2_S is sized per tensor (n/4 + 32), listed with its 128-value blocks of 32 bytes for checks.
constexpr TypeInfo kTypes[] = {
    {TensorType::F32, "F32", 1, 4},          {TensorType::F16, "F16", 1, 2},
    {TensorType::BF16, "BF16", 1, 2},        {TensorType::Q4_0, "Q4_0", 32, 18},
    {TensorType::Q8_0, "Q8_0", 32, 34},      {TensorType::Q6_K, "Q6_K", 256, 210},
    {TensorType::TQ1_0, "TQ1_0", 256, 54},   {TensorType::TQ2_0, "TQ2_0", 256, 66},
    {TensorType::I2_S, "I2_S", 128, 32},     {TensorType::TL1, "TL1", 0, 0},
    {TensorType::TL2, "TL2", 0, 0},
};

const TypeInfo& info(TensorType t) {
  for (const auto& ti : kTypes)
    if (ti.type == t) return ti;
  throw Error("unknown tensor type id " + std::to_string((uint32_t)t));
}

}  // namespace

const char* type_name(TensorType t) {
  for (const auto& ti : kTypes)
    if (ti.type == t) return ti.name;
  return "unknown";
}

TensorType parse_type_name(const std::string& name) {
  std::string upper = name;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  std::string accepted;
  for (const auto& ti : kTypes) {
    if (ti.type == TensorType::TL1 || ti.type == TensorType::TL2) continue;
    if (upper == ti.name) return ti.type;
    accepted += accepted.empty() ? "" : ", ";
    accepted += ti.name;
  }
  throw Error("unknown tensor type '" + name + "' (accepted: " + accepted + ")");
}

TensorType resolve_type(uint32_t raw, bool bitnet_file, const std::string& tensor_name) {
  switch (raw) {
    case 0: case 1: case 2: case 8: case 14: case 30: case 34: case 35:
      return static_cast<TensorType>(raw);
    case 36: case 38: case 39:
      if (bitnet_file) return static_cast<TensorType>(raw);
      break;
    default:
      break;
  }
  std::string why = (raw >= 36 && raw <= 39 && !bitnet_file)
                        ? " (ids 36..39 are bitnet.cpp types only in BitNet files; this file's "
                          "architecture is not a BitNet one)"
                        : "";
  throw Error("tensor '" + tensor_name + "': unsupported tensor type id " + std::to_string(raw) + why);
}

bool is_ternary(TensorType t) {
  return t == TensorType::TQ1_0 || t == TensorType::TQ2_0 || t == TensorType::I2_S ||
         t == TensorType::TL1 || t == TensorType::TL2;
}

int64_t block_size(TensorType t) { return info(t).block; }

uint64_t row_nbytes(TensorType t, uint64_t ne0) {
  const TypeInfo& ti = info(t);
  if (ti.block == 0)
    throw Error(std::string("tensor type ") + ti.name +
                " (bitnet.cpp lookup-table layout) is not supported: its packing depends on "
                "build-time tile parameters not stored in the file; convert the model to I2_S");
  if (ne0 % (uint64_t)ti.block != 0)
    throw Error(std::string("row length ") + std::to_string(ne0) + " is not a multiple of the " +
                ti.name + " block size " + std::to_string(ti.block));
  uint64_t bytes;
  if (__builtin_mul_overflow(ne0 / (uint64_t)ti.block, ti.block_bytes, &bytes))
    throw Error(std::string("row of ") + std::to_string(ne0) + " " + ti.name + " values: size overflows 64 bits");
  return bytes;
}

uint64_t tensor_nbytes(TensorType t, uint64_t ne0, uint64_t ne1) {
  auto overflow = [&] {
    return Error(std::string(type_name(t)) + " tensor of " + std::to_string(ne0) + " x " + std::to_string(ne1) +
                 " values: size overflows 64 bits");
  };
  uint64_t product;
  if (t == TensorType::I2_S) {
    // The codes of the whole tensor then a 32-byte trailer (f32 scale + padding).
    if (__builtin_mul_overflow(ne0, ne1, &product)) throw overflow();
    if (product % 128 != 0)
      throw Error("I2_S tensor of " + std::to_string(product) + " values: not a multiple of 128");
    return product / 4 + 32;
  }
  if (__builtin_mul_overflow(row_nbytes(t, ne0), ne1, &product)) throw overflow();
  return product;
}

}  // namespace bitnet
