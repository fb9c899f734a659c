// Reading Hugging Face checkpoints: safetensors files (memory-mapped, header validated against the
// file) and checkpoint directories (one model.safetensors, or shards listed by
// model.safetensors.index.json). Objects are immutable after open and may be read from several
// threads; tensor data pointers live as long as the object that returned them.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet {

struct StTensor {
  std::string name;
  std::string dtype;           // "F32", "F16", "BF16", "U8", ... as in the header
  std::vector<int64_t> shape;  // row-major, outermost first
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;
  const std::string* file = nullptr;  // path of the file it lives in (for messages)

  int64_t n_elements() const;
  bool is_float() const { return dtype == "F32" || dtype == "F16" || dtype == "BF16"; }
  std::string shape_string() const;  // "[640, 2560]"
};

class SafetensorsFile {
 public:
  // Maps and validates the file: header length within the file, JSON of known dtypes, every
  // tensor's byte range inside the data section, matching its dtype and shape, without overlaps.
  // Throws bitnet::Error naming the file and the problem.
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<StTensor>& tensors() const { return tensors_; }
  const StTensor* find(std::string_view name) const;
  // Drops bytes [begin, end) of the tensor (default: all of it) from this process's resident set;
  // the data stays readable.
  void release(const StTensor& t, uint64_t begin = 0, uint64_t end = UINT64_MAX) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  uint64_t size_ = 0;
  std::vector<StTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
};

// The weights of a checkpoint directory.
class Checkpoint {
 public:
  // model.safetensors.index.json (weight_map: tensor -> shard file) when present, else
  // model.safetensors. Throws bitnet::Error when neither exists or a shard is missing, invalid, or
  // lacks a tensor the index puts in it.
  static Checkpoint open(const std::string& dir);

  const StTensor* find(std::string_view name) const;
  void release(const StTensor& t, uint64_t begin = 0, uint64_t end = UINT64_MAX) const;
  size_t n_files() const { return files_.size(); }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, std::pair<size_t, const StTensor*>, std::less<>> tensors_;
};

// Row `r` of a 2-D float tensor (F32, F16, BF16) as floats (cols = shape[1] values).
void read_float_row(const StTensor& t, int64_t r, float* out);
// All values of a float tensor of n elements (vectors, scalars).
std::vector<float> read_floats(const StTensor& t);

}  // namespace bitnet
