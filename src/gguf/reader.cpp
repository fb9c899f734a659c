// GGUF reader: maps the file and validates every field against the file size before using it.
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <numeric>

#include "bitnet/gguf.h"
#include "gguf/wire.h"
#include "util/files.h"

namespace bitnet::gguf {

namespace {

// Bounds what a file's metadata can make us allocate (~100 bytes per Value, so ~440 MB at most):
// one-byte array elements would otherwise cost 100x the file's size. The largest real
// vocabularies (tokens, scores, types, merges) hold under 1.5M values in all.
constexpr uint64_t kMaxMetadataValues = uint64_t{1} << 22;

// Names and keys come from the file: show at most 64 characters, escaping unprintable bytes, so
// that a corrupt file still yields a one-line message.
std::string printable(std::string_view s) {
  constexpr size_t kMaxShown = 64;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out;
}

std::string quoted(std::string_view s) {
  std::string out = "'";  // appended, not "'" + ...: GCC 12 warns falsely (-Wrestrict) on that form
  out += printable(s);
  out += '\'';
  return out;
}

std::string dims_text(const uint64_t* ne, int n_dims) {
  std::string out = "{";
  for (int d = 0; d < n_dims; ++d) out += (d ? ", " : "") + std::to_string(ne[d]);
  return out + "}";
}

}  // namespace

// Parses the mapping into a File. Reads advance pos_ and each checks it stays within size_.
class Reader {
 public:
  Reader(File& file, const uint8_t* bytes) : file_(file), bytes_(bytes), size_(file.size_) {}

  void parse() {
    uint64_t n_tensors = 0;
    uint64_t n_kv = 0;
    read_header(n_tensors, n_kv);
    read_metadata(n_kv);
    read_alignment();
    read_tensor_infos(n_tensors);
    place_tensor_data();
  }

 private:
  File& file_;
  const uint8_t* bytes_;
  const uint64_t size_;
  uint64_t pos_ = 0;
  std::string context_;  // what is being read ("metadata key 'x'", "tensor 'y'"), for messages
  uint64_t metadata_values_left_ = kMaxMetadataValues;

  [[noreturn]] void fail(const std::string& what) const { throw Error(file_.path_ + ": " + what); }
  std::string where() const { return context_.empty() ? "" : context_ + ": "; }
  uint64_t remaining() const { return size_ - pos_; }

  [[noreturn]] void fail_past_end(const std::string& what) const {
    fail(where() + what + " at offset " + std::to_string(pos_) + " runs past end of file (size " +
         std::to_string(size_) + ")");
  }

  template <class T>
  T read_scalar(const char* what) {
    if (sizeof(T) > remaining()) fail_past_end(std::string(what) + " (" + std::to_string(sizeof(T)) + " bytes)");
    T value;
    std::memcpy(&value, bytes_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }

  std::string read_string(const char* what) {
    const uint64_t length = read_scalar<uint64_t>(what);
    if (length > remaining()) fail_past_end(std::string(what) + " of length " + std::to_string(length));
    std::string s(reinterpret_cast<const char*>(bytes_ + pos_), length);
    pos_ += length;
    return s;
  }

  ValueType read_value_type(const char* what) {
    const uint32_t raw = read_scalar<uint32_t>(what);
    if (!wire::is_known(raw)) fail(where() + "unknown " + what + " " + std::to_string(raw));
    return static_cast<ValueType>(raw);
  }

  void read_header(uint64_t& n_tensors, uint64_t& n_kv) {
    if (size_ < sizeof(wire::kMagic) || std::memcmp(bytes_, wire::kMagic, sizeof(wire::kMagic)) != 0)
      fail("not a GGUF file: magic is " +
           quoted({reinterpret_cast<const char*>(bytes_), std::min<size_t>(size_, 4)}) +
           ", expected 'GGUF'");
    pos_ = sizeof(wire::kMagic);
    const uint32_t version = read_scalar<uint32_t>("version");
    if (version == 1)
      fail("GGUF version 1 is not supported (only versions 2 and 3); re-convert the model with a "
           "current converter");
    if (version == __builtin_bswap32(2) || version == __builtin_bswap32(3))
      fail("version field reads " + std::to_string(version) + ", which is version " +
           std::to_string(__builtin_bswap32(version)) +
           " byte-swapped: this is a big-endian GGUF file, only little-endian is supported");
    if (version != 2 && version != 3)
      fail("unsupported GGUF version " + std::to_string(version) + " (only versions 2 and 3)");
    file_.version_ = version;

    n_tensors = read_scalar<uint64_t>("n_tensors");
    n_kv = read_scalar<uint64_t>("n_kv");
    // Each entry has a minimum encoded size, so the bytes left bound both counts; this keeps
    // reserve() and loops proportional to the file.
    const uint64_t room = remaining();
    if (n_tensors > room / wire::kMinTensorInfoSize)
      fail("n_tensors " + std::to_string(n_tensors) + " is more than the remaining " +
           std::to_string(room) + " bytes can describe (each tensor info takes at least " +
           std::to_string(wire::kMinTensorInfoSize) + ")");
    const uint64_t room_for_kv = room - n_tensors * wire::kMinTensorInfoSize;
    if (n_kv > room_for_kv / wire::kMinKvSize)
      fail("n_kv " + std::to_string(n_kv) + " is more than the remaining " + std::to_string(room_for_kv) +
           " bytes can describe (each metadata entry takes at least " +
           std::to_string(wire::kMinKvSize) + ")");
  }

  void read_metadata(uint64_t n_kv) {
    file_.kv_.reserve(n_kv);
    for (uint64_t index = 0; index < n_kv; ++index) {
      context_ = "metadata entry #" + std::to_string(index);
      std::string key = read_string("key");
      context_ = "metadata key " + quoted(key);
      if (file_.kv_index_.count(key))
        fail("duplicate metadata key " + quoted(key) + " (entries #" +
             std::to_string(file_.kv_index_.find(key)->second) + " and #" + std::to_string(index) + ")");
      const ValueType type = read_value_type("value type");
      Value value = read_value(type, 0);
      file_.kv_index_.emplace(key, file_.kv_.size());
      file_.kv_.emplace_back(std::move(key), std::move(value));
    }
    context_.clear();
  }

  Value read_value(ValueType type, int depth) {
    Value v;
    v.type = type;
    switch (type) {
      case ValueType::UINT8: v.u = read_scalar<uint8_t>("uint8"); break;
      case ValueType::INT8: v.i = read_scalar<int8_t>("int8"); break;
      case ValueType::UINT16: v.u = read_scalar<uint16_t>("uint16"); break;
      case ValueType::INT16: v.i = read_scalar<int16_t>("int16"); break;
      case ValueType::UINT32: v.u = read_scalar<uint32_t>("uint32"); break;
      case ValueType::INT32: v.i = read_scalar<int32_t>("int32"); break;
      case ValueType::UINT64: v.u = read_scalar<uint64_t>("uint64"); break;
      case ValueType::INT64: v.i = read_scalar<int64_t>("int64"); break;
      case ValueType::FLOAT32: v.f = read_scalar<float>("float32"); break;
      case ValueType::FLOAT64: v.f = read_scalar<double>("float64"); break;
      case ValueType::BOOL: {
        const uint8_t raw = read_scalar<uint8_t>("bool");
        if (raw > 1) fail(where() + "bool value " + std::to_string(raw) + " (must be 0 or 1)");
        v.b = raw != 0;
        break;
      }
      case ValueType::STRING: v.str = read_string("string"); break;
      case ValueType::ARRAY: read_array(v, depth); break;
    }
    return v;
  }

  void read_array(Value& v, int depth) {
    if (depth >= wire::kMaxArrayDepth)
      fail(where() + "arrays nested deeper than " + std::to_string(wire::kMaxArrayDepth) + " levels");
    v.elem_type = read_value_type("array element type");
    const uint64_t count = read_scalar<uint64_t>("array length");
    const uint64_t min_size = wire::min_encoded_size(v.elem_type);
    if (count > remaining() / min_size)
      fail_past_end("array length " + std::to_string(count) + " of " + value_type_name(v.elem_type) +
                    " (at least " + std::to_string(min_size) + " bytes each)");
    if (count > metadata_values_left_)
      fail(where() + "array length " + std::to_string(count) + " exceeds the limit of " +
           std::to_string(kMaxMetadataValues) + " metadata values per file");
    metadata_values_left_ -= count;
    v.arr.reserve(count);
    for (uint64_t i = 0; i < count; ++i) v.arr.push_back(read_value(v.elem_type, depth + 1));
  }

  void read_alignment() {
    const Value* a = file_.find(wire::kAlignmentKey);
    if (!a) return;
    const std::string key = wire::kAlignmentKey;
    if (a->type != ValueType::UINT32)
      fail(key + " has type " + value_type_name(a->type) + ", it must be uint32");
    if (a->u == 0 || (a->u & (a->u - 1)) != 0)
      fail(key + " " + std::to_string(a->u) + " is not a non-zero power of two");
    file_.alignment_ = a->u;
  }

  void read_tensor_infos(uint64_t n_tensors) {
    const bool bitnet_file = wire::is_bitnet_file([this](std::string_view k) { return file_.find(k); });
    file_.tensors_.reserve(n_tensors);
    for (uint64_t index = 0; index < n_tensors; ++index) {
      TensorInfo t;
      context_ = "tensor #" + std::to_string(index);
      t.name = read_string("name");
      context_ = "tensor " + quoted(t.name);
      const uint32_t n_dims = read_scalar<uint32_t>("n_dims");
      if (n_dims < 1 || n_dims > kMaxDims)
        fail(where() + "n_dims " + std::to_string(n_dims) + " (must be 1.." + std::to_string(kMaxDims) + ")");
      t.n_dims = static_cast<int>(n_dims);
      for (int d = 0; d < t.n_dims; ++d) {
        const std::string field = "ne[" + std::to_string(d) + "]";
        t.ne[d] = read_scalar<uint64_t>(field.c_str());
        if (t.ne[d] == 0) fail(where() + field + " is 0 (dimensions must be >= 1)");
      }
      uint64_t n_elements = 1;
      for (int d = 0; d < t.n_dims; ++d)
        if (__builtin_mul_overflow(n_elements, t.ne[d], &n_elements) || n_elements > wire::kMaxElements)
          fail(where() + "dims " + dims_text(t.ne, t.n_dims) + ": element count overflows 64 bits");
      t.type = read_scalar<uint32_t>("type");
      t.offset = read_scalar<uint64_t>("offset");
      if (auto [it, inserted] = file_.tensor_index_.emplace(t.name, file_.tensors_.size()); !inserted)
        fail("duplicate tensor name " + quoted(t.name) + " (tensors #" + std::to_string(it->second) +
             " and #" + std::to_string(index) + ")");
      try {
        t.nbytes = wire::tensor_data_size(t.type, bitnet_file, printable(t.name), t.ne);
      } catch (const Error& e) {
        fail(e.what());
      }
      if (t.offset % file_.alignment_ != 0)
        fail(where() + "data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
             std::to_string(file_.alignment_));
      file_.tensors_.push_back(std::move(t));
    }
  }

  void place_tensor_data() {
    // The data section starts at the aligned end of the tensor infos (pos_ <= size_, alignment
    // <= 2^31: no overflow). A file without tensors may end before that padding.
    const uint64_t data_start = wire::align_up(pos_, file_.alignment_);
    for (TensorInfo& t : file_.tensors_) {
      context_ = "tensor " + quoted(t.name);
      const bool fits = data_start <= size_ && t.offset <= size_ - data_start &&
                        t.nbytes <= size_ - data_start - t.offset;
      if (!fits)
        fail(where() + "data [offset " + std::to_string(t.offset) + ", size " + std::to_string(t.nbytes) +
             ") runs past end of file (size " + std::to_string(size_) + ", data section starts at " +
             std::to_string(data_start) + ")");
      t.data = bytes_ + data_start + t.offset;
    }
    context_.clear();
    std::vector<const TensorInfo*> by_offset;
    by_offset.reserve(file_.tensors_.size());
    for (const TensorInfo& t : file_.tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
      const TensorInfo& a = *by_offset[i - 1];
      const TensorInfo& b = *by_offset[i];
      if (a.offset + a.nbytes > b.offset)
        fail("tensor " + quoted(a.name) + " data [offset " + std::to_string(a.offset) + ", size " +
             std::to_string(a.nbytes) + ") overlaps tensor " + quoted(b.name) + " at offset " +
             std::to_string(b.offset));
    }
  }
};

// `size` bytes of the open file `fd` in anonymous memory (so ~File's munmap releases them too).
static void* read_into_memory(int fd, uint64_t size, const std::string& path) {
  void* mem = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) throw Error(path + ": cannot allocate " + std::to_string(size) + " bytes to read it: " + std::strerror(errno));
  for (uint64_t done = 0; done < size;) {
    const ssize_t n = ::pread(fd, static_cast<uint8_t*>(mem) + done, std::min<uint64_t>(size - done, 1u << 30), (off_t)done);
    if (n <= 0) {
      const std::string why = n < 0 ? std::strerror(errno) : "the file shrank while it was read";
      ::munmap(mem, size);
      throw Error(path + ": cannot read: " + why);
    }
    done += (uint64_t)n;
  }
  return mem;
}

std::unique_ptr<File> File::open(const std::string& path, bool use_mmap) {
  struct stat st {};
  const int fd = open_regular_file(path, "GGUF file", &st);
  if (st.st_size == 0) {
    ::close(fd);
    throw Error(path + ": file is empty (0 bytes), not a GGUF file");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  void* map = nullptr;
  if (!use_mmap) {
    try {
      map = read_into_memory(fd, size, path);
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
  } else {
    map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int map_errno = errno;
    ::close(fd);  // the mapping keeps the file alive
    if (map == MAP_FAILED) throw Error(path + ": cannot map " + std::to_string(size) + " bytes: " + std::strerror(map_errno));
  }

  std::unique_ptr<File> file(new File());
  file->path_ = path;
  file->size_ = size;
  file->map_ = map;  // from here ~File unmaps, also when parsing throws
  if (use_mmap) register_mapped_file(map, size, path);
  Reader(*file, static_cast<const uint8_t*>(map)).parse();
  return file;
}

File::~File() {
  if (!map_) return;
  unregister_mapped_file(map_);
  ::munmap(map_, size_);
}

const Value* File::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

// ---- typed getters ----------------------------------------------------------------------------

namespace {

std::string describe(const Value& v) {
  switch (v.type) {
    case ValueType::STRING: return "string " + quoted(v.str);
    case ValueType::ARRAY:
      return std::string("array of ") + std::to_string(v.arr.size()) + " " + value_type_name(v.elem_type);
    case ValueType::BOOL: return v.b ? "bool true" : "bool false";
    default: break;
  }
  std::string number = wire::is_float(v.type)     ? std::to_string(v.f)
                       : wire::is_signed(v.type) ? std::to_string(v.i)
                                                  : std::to_string(v.u);
  return std::string(value_type_name(v.type)) + " " + number;
}

[[noreturn]] void wrong_type(const File& f, std::string_view key, const Value& v, const char* expected) {
  throw Error(f.path() + ": metadata key " + quoted(key) + " holds " + describe(v) + ", expected " + expected);
}

// Integer value as uint64_t / int64_t if it is an integer that fits.
std::optional<uint64_t> as_uint(const Value& v) {
  if (!wire::is_integer(v.type)) return std::nullopt;
  if (wire::is_signed(v.type)) return v.i < 0 ? std::nullopt : std::optional<uint64_t>(v.i);
  return v.u;
}
std::optional<int64_t> as_int(const Value& v) {
  if (!wire::is_integer(v.type)) return std::nullopt;
  if (wire::is_signed(v.type)) return v.i;
  return v.u > static_cast<uint64_t>(INT64_MAX) ? std::nullopt : std::optional<int64_t>(v.u);
}
std::optional<double> as_float(const Value& v) {
  if (wire::is_float(v.type)) return v.f;
  if (!wire::is_integer(v.type)) return std::nullopt;
  return wire::is_signed(v.type) ? static_cast<double>(v.i) : static_cast<double>(v.u);
}

const Value& require(const File& f, std::string_view key) {
  const Value* v = f.find(key);
  if (!v) throw Error(f.path() + ": required metadata key " + quoted(key) + " is missing");
  return *v;
}

// Converts every element of an array with `convert`, or throws naming the key and the element.
template <class T, class Convert>
std::vector<T> array_elements(const File& f, std::string_view key, const char* expected, Convert convert) {
  const Value& v = require(f, key);
  if (v.type != ValueType::ARRAY) wrong_type(f, key, v, expected);
  std::vector<T> out;
  out.reserve(v.arr.size());
  for (size_t i = 0; i < v.arr.size(); ++i) {
    std::optional<T> item = convert(v.arr[i]);
    if (!item)
      throw Error(f.path() + ": metadata key " + quoted(key) + " element " + std::to_string(i) +
                  " is " + describe(v.arr[i]) + ", expected " + expected);
    out.push_back(std::move(*item));
  }
  return out;
}

}  // namespace

std::string File::get_string(std::string_view key) const {
  const Value& v = require(*this, key);
  if (v.type != ValueType::STRING) wrong_type(*this, key, v, "a string");
  return v.str;
}

std::string File::get_string(std::string_view key, const std::string& fallback) const {
  return find(key) ? get_string(key) : fallback;
}

uint64_t File::get_uint(std::string_view key) const {
  const Value& v = require(*this, key);
  if (auto u = as_uint(v)) return *u;
  wrong_type(*this, key, v, "a non-negative integer");
}

uint64_t File::get_uint(std::string_view key, uint64_t fallback) const {
  return find(key) ? get_uint(key) : fallback;
}

double File::get_float(std::string_view key) const {
  const Value& v = require(*this, key);
  if (auto x = as_float(v)) return *x;
  wrong_type(*this, key, v, "a number");
}

double File::get_float(std::string_view key, double fallback) const {
  return find(key) ? get_float(key) : fallback;
}

bool File::get_bool(std::string_view key, bool fallback) const {
  const Value* v = find(key);
  if (!v) return fallback;
  if (v->type != ValueType::BOOL) wrong_type(*this, key, *v, "a bool");
  return v->b;
}

std::vector<std::string> File::get_strings(std::string_view key) const {
  return array_elements<std::string>(*this, key, "an array of strings", [](const Value& e) {
    return e.type == ValueType::STRING ? std::optional<std::string>(e.str) : std::nullopt;
  });
}

std::vector<float> File::get_floats(std::string_view key) const {
  return array_elements<float>(*this, key, "an array of numbers", [](const Value& e) {
    auto x = as_float(e);
    return x ? std::optional<float>(static_cast<float>(*x)) : std::nullopt;
  });
}

std::vector<int64_t> File::get_ints(std::string_view key) const {
  return array_elements<int64_t>(*this, key, "an array of integers", as_int);
}

}  // namespace bitnet::gguf
