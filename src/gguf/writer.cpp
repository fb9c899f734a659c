// GGUF v3 streaming writer over an OutputFile: an interrupted write never leaves a truncated file
// under the final name.
#include <algorithm>
#include <limits>

#include "bitnet/gguf.h"
#include "gguf/wire.h"
#include "util/files.h"

namespace bitnet::gguf {

namespace {

template <class T>
void put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

void put_string(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

// Encodes a value already checked by check_value().
void put_value(std::string& out, const Value& v) {
  switch (v.type) {
    case ValueType::UINT8: put<uint8_t>(out, v.u); break;
    case ValueType::INT8: put<int8_t>(out, v.i); break;
    case ValueType::UINT16: put<uint16_t>(out, v.u); break;
    case ValueType::INT16: put<int16_t>(out, v.i); break;
    case ValueType::UINT32: put<uint32_t>(out, v.u); break;
    case ValueType::INT32: put<int32_t>(out, v.i); break;
    case ValueType::UINT64: put<uint64_t>(out, v.u); break;
    case ValueType::INT64: put<int64_t>(out, v.i); break;
    case ValueType::FLOAT32: put<float>(out, static_cast<float>(v.f)); break;
    case ValueType::FLOAT64: put<double>(out, v.f); break;
    case ValueType::BOOL: put<uint8_t>(out, v.b ? 1 : 0); break;
    case ValueType::STRING: put_string(out, v.str); break;
    case ValueType::ARRAY:
      put<uint32_t>(out, static_cast<uint32_t>(v.elem_type));
      put<uint64_t>(out, v.arr.size());
      for (const Value& e : v.arr) put_value(out, e);
      break;
  }
}

template <class T>
bool fits(const Value& v) {
  if constexpr (std::is_signed_v<T>)
    return v.i >= std::numeric_limits<T>::min() && v.i <= std::numeric_limits<T>::max();
  else
    return v.u <= std::numeric_limits<T>::max();
}

// Throws unless v can be written as it claims: a known type, integers within their type's range,
// array elements all of the declared element type, nesting within what the reader accepts.
void check_value(const std::string& key, const Value& v, int depth) {
  const uint32_t raw = static_cast<uint32_t>(v.type);
  if (!wire::is_known(raw)) throw Error("metadata key '" + key + "': unknown value type " + std::to_string(raw));
  bool ok = true;
  switch (v.type) {
    case ValueType::UINT8: ok = fits<uint8_t>(v); break;
    case ValueType::INT8: ok = fits<int8_t>(v); break;
    case ValueType::UINT16: ok = fits<uint16_t>(v); break;
    case ValueType::INT16: ok = fits<int16_t>(v); break;
    case ValueType::UINT32: ok = fits<uint32_t>(v); break;
    case ValueType::INT32: ok = fits<int32_t>(v); break;
    case ValueType::ARRAY:
      if (depth >= wire::kMaxArrayDepth)
        throw Error("metadata key '" + key + "': arrays nested deeper than " +
                    std::to_string(wire::kMaxArrayDepth) + " levels");
      for (const Value& e : v.arr) {
        if (e.type != v.elem_type)
          throw Error("metadata key '" + key + "': array of " + value_type_name(v.elem_type) +
                      " holds an element of type " + value_type_name(e.type));
        check_value(key, e, depth + 1);
      }
      break;
    default: break;
  }
  if (!ok)
    throw Error("metadata key '" + key + "': value " +
                (wire::is_signed(v.type) ? std::to_string(v.i) : std::to_string(v.u)) +
                " does not fit in " + value_type_name(v.type));
}

}  // namespace

Writer::Writer(uint64_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > UINT32_MAX)
    throw Error("GGUF alignment " + std::to_string(alignment) + " is not a power of two that fits in 32 bits");
}

Writer::~Writer() = default;  // an OutputFile not committed removes its temporary

void Writer::set(const std::string& key, Value v) {
  if (out_) throw Error("metadata key '" + key + "': set after write_header");
  check_value(key, v, 0);
  // The alignment the data is padded to is the constructor's; a different stored value would lie.
  if (key == wire::kAlignmentKey && !(v.type == ValueType::UINT32 && v.u == alignment_))
    throw Error(std::string(wire::kAlignmentKey) + " must be the uint32 " + std::to_string(alignment_) +
                " given to the Writer, not " + value_type_name(v.type) + " " + std::to_string(v.u));
  for (auto& [existing_key, value] : kv_)
    if (existing_key == key) {
      value = std::move(v);
      return;
    }
  kv_.emplace_back(key, std::move(v));
}

void Writer::add_tensor(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type,
                        uint64_t nbytes) {
  const std::string what = "tensor '" + name + "'";
  if (out_) throw Error(what + ": added after write_header");
  if (std::any_of(tensors_.begin(), tensors_.end(), [&](const PendingTensor& t) { return t.name == name; }))
    throw Error(what + ": added twice");
  if (ne.empty() || ne.size() > static_cast<size_t>(kMaxDims))
    throw Error(what + ": " + std::to_string(ne.size()) + " dimensions (must be 1.." + std::to_string(kMaxDims) + ")");
  uint64_t n_elements = 1;
  for (uint64_t d : ne)
    if (d == 0 || __builtin_mul_overflow(n_elements, d, &n_elements) || n_elements > wire::kMaxElements)
      throw Error(what + ": dimension " + std::to_string(d) + " is zero or makes the element count overflow");
  const uint64_t offset =
      tensors_.empty() ? 0 : wire::align_up(tensors_.back().offset + tensors_.back().nbytes, alignment_);
  tensors_.push_back({name, ne, type, nbytes, offset});
}

void Writer::write_header(const std::string& path, bool overwrite) {
  if (out_) throw Error(path + ": write_header called twice");
  // Sizes must be what a reader will compute, or the file would open with wrong tensor bounds.
  const bool bitnet_file = wire::is_bitnet_file([this](std::string_view k) -> const Value* {
    for (const auto& [key, value] : kv_)
      if (key == k) return &value;
    return nullptr;
  });
  for (const PendingTensor& t : tensors_) {
    uint64_t ne[kMaxDims] = {1, 1, 1, 1};
    std::copy(t.ne.begin(), t.ne.end(), ne);
    uint64_t expected = 0;
    try {
      expected = wire::tensor_data_size(t.type, bitnet_file, t.name, ne);
    } catch (const Error& e) {
      throw Error(path + ": " + e.what());
    }
    if (expected != t.nbytes)
      throw Error(path + ": tensor '" + t.name + "': declared " + std::to_string(t.nbytes) +
                  " bytes but its type and dims take " + std::to_string(expected));
  }
  check_output_path(path, overwrite);

  const bool store_alignment = alignment_ != wire::kDefaultAlignment &&
                               std::none_of(kv_.begin(), kv_.end(), [](const auto& kv) { return kv.first == wire::kAlignmentKey; });
  std::string header(wire::kMagic, sizeof(wire::kMagic));
  put<uint32_t>(header, wire::kVersion);
  put<uint64_t>(header, tensors_.size());
  put<uint64_t>(header, kv_.size() + (store_alignment ? 1 : 0));
  for (const auto& [key, value] : kv_) {
    put_string(header, key);
    put<uint32_t>(header, static_cast<uint32_t>(value.type));
    put_value(header, value);
  }
  if (store_alignment) {
    put_string(header, wire::kAlignmentKey);
    put<uint32_t>(header, static_cast<uint32_t>(ValueType::UINT32));
    put<uint32_t>(header, static_cast<uint32_t>(alignment_));
  }
  for (const PendingTensor& t : tensors_) {
    put_string(header, t.name);
    put<uint32_t>(header, static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) put<uint64_t>(header, d);
    put<uint32_t>(header, t.type);
    put<uint64_t>(header, t.offset);
  }
  header.resize(wire::align_up(header.size(), alignment_), '\0');

  out_ = std::make_unique<OutputFile>(path, overwrite);
  path_ = path;
  current_ = 0;
  written_in_current_ = 0;
  out_->write(header.data(), header.size());
}

void Writer::write_data(const void* data, size_t n) {
  if (!out_) throw Error("GGUF writer: write_data before write_header");
  const auto* bytes = static_cast<const uint8_t*>(data);
  while (n > 0) {
    if (current_ == tensors_.size())
      throw Error(path_ + ": " + std::to_string(n) + " bytes of data beyond the last declared tensor");
    const PendingTensor& t = tensors_[current_];
    const uint64_t take = std::min<uint64_t>(n, t.nbytes - written_in_current_);
    out_->write(bytes, take);
    bytes += take;
    n -= take;
    written_in_current_ += take;
    if (written_in_current_ == t.nbytes) {
      static const char kZeros[4096] = {};
      for (uint64_t pad = wire::align_up(t.nbytes, alignment_) - t.nbytes; pad > 0;) {
        const uint64_t chunk = std::min<uint64_t>(pad, sizeof(kZeros));
        out_->write(kZeros, chunk);
        pad -= chunk;
      }
      ++current_;
      written_in_current_ = 0;
    }
  }
}

void Writer::finish() {
  if (!out_) throw Error("GGUF writer: finish before write_header");
  if (current_ < tensors_.size())
    throw Error(path_ + ": tensor '" + tensors_[current_].name + "' received " +
                std::to_string(written_in_current_) + " of its " + std::to_string(tensors_[current_].nbytes) +
                " bytes" + (tensors_.size() - current_ > 1 ? " (and later tensors none)" : ""));
  std::unique_ptr<OutputFile> out = std::move(out_);  // finished either way
  out->commit();
}

}  // namespace bitnet::gguf
