// Helpers shared by `bitnet dummy`, `bitnet quantize` and `bitnet convert`: streaming a model file
// tensor by tensor and row by row, with progress on stderr, so that no tensor (let alone the file)
// is ever held in memory whole. A writer is used by one thread.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bitnet/formats.h"
#include "bitnet/gguf.h"
#include "bitnet/threadpool.h"

namespace bitnet {

// llama.cpp's general.file_type for a file whose linear weights are of type `t` (LLAMA_FTYPE_*:
// TQ1_0 36, TQ2_0 37, and bitnet.cpp's MOSTLY_I2_S 40). Throws for non-ternary types.
uint32_t llama_ftype_for(TensorType t);

// Whether raw type ids 36..39 mean bitnet.cpp's types in this file (see resolve_type()).
bool is_bitnet_file(const gguf::File& file);

// Throws a bitnet::Error naming the tensor when a tensor of ne1 rows of ne0 values cannot be stored
// in type `t`: ne0 must be a multiple of the type's block (256 for TQ1_0/TQ2_0 and Q6_K, 32 for
// Q8_0/Q4_0), except for I2_S, which packs the flattened tensor and needs ne0 * ne1 to be a
// multiple of 128.
void check_row_length(TensorType t, uint64_t ne0, uint64_t ne1, const std::string& tensor_name);

// A GGUF file being written: declare metadata and tensors, open(), then each tensor's bytes in
// declaration order through write(). Reports progress as a percentage of the declared bytes.
// (gguf::Writer publishes the file only on finish(), so a failed or interrupted run leaves any
// existing file at `path` as it was and no temporary behind.)
class ModelFileWriter {
 public:
  ModelFileWriter(std::string path, std::string progress_label, uint64_t alignment = 32);

  gguf::Writer& gguf() { return writer_; }
  // Declares a tensor of ne[0] x ne[1] (x ne[2]...) values of type `t`; returns its byte size.
  uint64_t declare(const std::string& name, const std::vector<uint64_t>& ne, TensorType t);
  // Declares a tensor copied as stored (raw type id and byte size taken from another file).
  void declare_raw(const std::string& name, const std::vector<uint64_t>& ne, uint32_t raw_type,
                   uint64_t nbytes);
  void open(bool overwrite);
  void write(const void* data, size_t n);
  void finish();

 private:
  void report(bool final);
  gguf::Writer writer_;
  std::string path_, label_;
  uint64_t total_ = 0, done_ = 0;
  int last_percent_ = -1;
};

// Writes a tensor of `rows` rows of ne0 values quantized to `t` (a type quantize_row takes), the rows
// of a bounded slab (slab_bytes of output, at least one row) quantized on all of `pool`'s threads,
// then written, then the next slab: fill(r, x) stores row r's ne0 floats in x. fill is called from several threads at
// once, for different rows in no particular order, so it must be safe for that; the bytes written
// are those of a loop over the rows in order. after_slab(rows_done), when given, is called on the
// calling thread after each slab is written (e.g. to drop the source pages read so far). Throws
// what fill or quantize_row throws.
void write_quantized_rows(ModelFileWriter& out, TensorType t, uint64_t ne0, uint64_t rows, ThreadPool& pool,
                          const std::function<void(uint64_t row, float* x)>& fill,
                          const std::function<void(uint64_t rows_done)>& after_slab = {},
                          uint64_t slab_bytes = uint64_t{16} << 20);

// Writes one ternary tensor row by row in type `t` (I2_S, TQ1_0 or TQ2_0); for I2_S the scale
// trailer follows the last row. The shape must pass check_row_length.
class TernaryTensorEncoder {
 public:
  TernaryTensorEncoder(ModelFileWriter& out, std::string tensor_name, TensorType t, uint64_t ne0,
                       uint64_t ne1);
  // TQ types keep a scale per row (as the f16 block scale d, so `scale` is rounded to f16); I2_S
  // has one f32 scale per tensor, so every row must come with the first row's scale.
  void write_row(const int8_t* values, float scale);
  // Writes the next n rows (n * ne0 values), all with one scale, encoded on `pool`'s threads; the
  // bytes are those of n write_row calls.
  void write_rows(const int8_t* values, uint64_t n, float scale, ThreadPool& pool);
  // Writes the I2_S trailer; checks that exactly ne1 rows were written.
  void finish();

 private:
  void start_rows(uint64_t n, float scale);  // checks the row count and the I2_S scale rule
  ModelFileWriter& out_;
  std::string name_;
  TensorType type_;
  uint64_t ne0_, ne1_, rows_done_ = 0;
  float tensor_scale_ = 0;
  std::vector<uint8_t> buffer_;
  std::vector<int8_t> group_;  // I2_S: values of the 128-value group not yet complete
};

}  // namespace bitnet
