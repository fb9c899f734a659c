// GGUF container: a validating reader over mmap and a streaming writer.
//
// Invariant of the reader: every count, length, offset and size was checked against the file size
// before it is used, so a File that opened successfully never reads out of bounds and never
// allocates more than the file could describe. A bad file throws bitnet::Error with one line that
// names the file, the field and the value.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bitnet/error.h"

namespace bitnet {
class OutputFile;
}

namespace bitnet::gguf {

enum class ValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* value_type_name(ValueType t);

// One metadata value. Scalars live in the field of their kind (unsigned ints in u, signed in i,
// floats in f, bools in b); arrays hold their elements (themselves Values, so arrays nest).
struct Value {
  ValueType type = ValueType::UINT32;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string str;
  ValueType elem_type = ValueType::UINT8;  // for ARRAY
  std::vector<Value> arr;                   // for ARRAY

  static Value of_u32(uint32_t v);
  static Value of_i32(int32_t v);
  static Value of_u64(uint64_t v);
  static Value of_f32(float v);
  static Value of_bool(bool v);
  static Value of_string(std::string v);
  static Value of_strings(const std::vector<std::string>& v);
  static Value of_f32s(const std::vector<float>& v);
  static Value of_i32s(const std::vector<int32_t>& v);
};

constexpr int kMaxDims = 4;

struct TensorInfo {
  std::string name;
  int n_dims = 0;
  uint64_t ne[kMaxDims] = {1, 1, 1, 1};  // ggml order: ne[0] is contiguous
  uint32_t type = 0;                      // raw ggml type id as stored (see formats.h to resolve)
  uint64_t offset = 0;                    // relative to the data section
  uint64_t nbytes = 0;                    // validated size of the data
  const uint8_t* data = nullptr;          // points into the mapping
  uint64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class File {
 public:
  // Maps and validates the file. Throws bitnet::Error on any problem. With use_mmap false the file
  // is read into anonymous memory instead (llama.cpp's --no-mmap): nothing then depends on the file
  // after open returns.
  static std::unique_ptr<File> open(const std::string& path, bool use_mmap = true);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t file_size() const { return size_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;
  // Typed getters: throw bitnet::Error naming the key when it is absent (required variants) or of
  // an incompatible type. Integer getters accept any integer type whose value fits.
  std::string get_string(std::string_view key) const;
  std::string get_string(std::string_view key, const std::string& fallback) const;
  uint64_t get_uint(std::string_view key) const;
  uint64_t get_uint(std::string_view key, uint64_t fallback) const;
  double get_float(std::string_view key) const;
  double get_float(std::string_view key, double fallback) const;
  bool get_bool(std::string_view key, bool fallback) const;
  // Arrays of strings / floats / integers, converted; throws when the key holds something else.
  std::vector<std::string> get_strings(std::string_view key) const;
  std::vector<float> get_floats(std::string_view key) const;
  std::vector<int64_t> get_ints(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  // The whole file's bytes (the mapping or the memory it was read into).
  const uint8_t* bytes() const { return static_cast<const uint8_t*>(map_); }

 private:
  File() = default;
  friend class Reader;
  std::string path_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t size_ = 0;
  void* map_ = nullptr;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Streaming writer: declare metadata and every tensor first, then write_header(), then the data of
// each tensor in declaration order (in as many pieces as wanted), then finish(). Nothing is buffered
// beyond one tensor's padding, so files larger than RAM can be written. The file is published under
// its name only by finish() (see OutputFile in util/files.h): a writer destroyed before, or killed
// by SIGINT/SIGTERM, leaves no partial file and any existing file as it was.
class Writer {
 public:
  explicit Writer(uint64_t alignment = 32);
  ~Writer();
  void set(const std::string& key, Value v);  // replaces an existing key, keeps first position
  void add_tensor(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type,
                  uint64_t nbytes);
  // Starts the file (refuses an existing one unless overwrite is set, and anything but a regular
  // file always; a symlink is written through).
  void write_header(const std::string& path, bool overwrite = false);
  void write_data(const void* data, size_t n);  // appends to the current tensor
  void finish();                                // checks every tensor got exactly its nbytes

 private:
  struct PendingTensor {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t type;
    uint64_t nbytes;
    uint64_t offset;
  };
  uint64_t alignment_;
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<PendingTensor> tensors_;
  std::unique_ptr<OutputFile> out_;
  std::string path_;
  size_t current_ = 0;
  uint64_t written_in_current_ = 0;
};

}  // namespace bitnet::gguf
