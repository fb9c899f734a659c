// Metadata values and the tensor sizing rule shared by the GGUF reader and writer.
#include "bitnet/formats.h"
#include "bitnet/gguf.h"
#include "gguf/wire.h"

namespace bitnet::gguf {

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::UINT8: return "uint8";
    case ValueType::INT8: return "int8";
    case ValueType::UINT16: return "uint16";
    case ValueType::INT16: return "int16";
    case ValueType::UINT32: return "uint32";
    case ValueType::INT32: return "int32";
    case ValueType::FLOAT32: return "float32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::UINT64: return "uint64";
    case ValueType::INT64: return "int64";
    case ValueType::FLOAT64: return "float64";
  }
  return "unknown";
}

Value Value::of_u32(uint32_t v) {
  Value out;
  out.type = ValueType::UINT32;
  out.u = v;
  return out;
}

Value Value::of_i32(int32_t v) {
  Value out;
  out.type = ValueType::INT32;
  out.i = v;
  return out;
}

Value Value::of_u64(uint64_t v) {
  Value out;
  out.type = ValueType::UINT64;
  out.u = v;
  return out;
}

Value Value::of_f32(float v) {
  Value out;
  out.type = ValueType::FLOAT32;
  out.f = v;
  return out;
}

Value Value::of_bool(bool v) {
  Value out;
  out.type = ValueType::BOOL;
  out.b = v;
  return out;
}

Value Value::of_string(std::string v) {
  Value out;
  out.type = ValueType::STRING;
  out.str = std::move(v);
  return out;
}

namespace {
template <class T, class Make>
Value array_of(ValueType elem_type, const std::vector<T>& items, Make make) {
  Value out;
  out.type = ValueType::ARRAY;
  out.elem_type = elem_type;
  out.arr.reserve(items.size());
  for (const T& item : items) out.arr.push_back(make(item));
  return out;
}
}  // namespace

Value Value::of_strings(const std::vector<std::string>& v) {
  return array_of(ValueType::STRING, v, [](const std::string& s) { return of_string(s); });
}

Value Value::of_f32s(const std::vector<float>& v) {
  return array_of(ValueType::FLOAT32, v, [](float x) { return of_f32(x); });
}

Value Value::of_i32s(const std::vector<int32_t>& v) {
  return array_of(ValueType::INT32, v, [](int32_t x) { return of_i32(x); });
}

namespace wire {

uint64_t tensor_data_size(uint32_t raw_type, bool bitnet_file, const std::string& name,
                          const uint64_t ne[kMaxDims]) {
  const TensorType type = resolve_type(raw_type, bitnet_file, name);  // its message names the tensor
  try {
    return tensor_nbytes(type, ne[0], ne[1] * ne[2] * ne[3]);
  } catch (const Error& e) {
    throw Error("tensor '" + name + "': " + e.what());
  }
}

}  // namespace wire
}  // namespace bitnet::gguf
