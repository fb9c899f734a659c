#include "model_writer.h"

#include <unistd.h>

#include <algorithm>
#include <cstddef>

#include "bitnet/error.h"
#include "bitnet/log.h"

namespace bitnet {

uint32_t llama_ftype_for(TensorType t) {
  switch (t) {
    case TensorType::TQ1_0: return 36;  // LLAMA_FTYPE_MOSTLY_TQ1_0
    case TensorType::TQ2_0: return 37;  // LLAMA_FTYPE_MOSTLY_TQ2_0
    case TensorType::I2_S: return 40;   // bitnet.cpp's LLAMA_FTYPE_MOSTLY_I2_S
    default: throw Error(std::string("no ternary file type for tensor type ") + type_name(t));
  }
}

bool is_bitnet_file(const gguf::File& file) {
  const std::string arch = file.get_string("general.architecture", "");
  return arch == "bitnet-b1.58" || arch == "bitnet-25" || arch == "bitnet" ||
         file.get_uint("general.file_type", 0) == 40;
}

void check_row_length(TensorType t, uint64_t ne0, uint64_t ne1, const std::string& tensor_name) {
  if (t == TensorType::I2_S) {
    if (ne0 == 0 || ne1 == 0 || (ne0 * ne1) % 128 != 0)
      throw Error("tensor '" + tensor_name + "': " + std::to_string(ne0) + " x " + std::to_string(ne1) +
                  " values cannot be stored as I2_S, which needs a multiple of 128 values per tensor");
    return;
  }
  const int64_t block = block_size(t);
  if (block <= 0 || ne0 == 0 || ne0 % static_cast<uint64_t>(block) != 0)
    throw Error("tensor '" + tensor_name + "': rows of " + std::to_string(ne0) + " values cannot be " +
                "stored as " + type_name(t) + ", which needs a multiple of " + std::to_string(block) +
                " values per row");
}

ModelFileWriter::ModelFileWriter(std::string path, std::string progress_label, uint64_t alignment)
    : writer_(alignment), path_(std::move(path)), label_(std::move(progress_label)) {}

uint64_t ModelFileWriter::declare(const std::string& name, const std::vector<uint64_t>& ne,
                                  TensorType t) {
  uint64_t rows = 1;
  for (size_t i = 1; i < ne.size(); ++i) rows *= ne[i];
  const uint64_t nbytes = tensor_nbytes(t, ne.at(0), rows);
  declare_raw(name, ne, static_cast<uint32_t>(t), nbytes);
  return nbytes;
}

void ModelFileWriter::declare_raw(const std::string& name, const std::vector<uint64_t>& ne,
                                  uint32_t raw_type, uint64_t nbytes) {
  writer_.add_tensor(name, ne, raw_type, nbytes);
  total_ += nbytes;
}

void ModelFileWriter::open(bool overwrite) {
  writer_.write_header(path_, overwrite);
  report(false);
}

void ModelFileWriter::write(const void* data, size_t n) {
  writer_.write_data(data, n);
  done_ += n;
  report(false);
}

void ModelFileWriter::finish() {
  writer_.finish();
  report(true);
}

void ModelFileWriter::report(bool final) {
  // On a terminal one line is rewritten in place; into a pipe or file, a line per 10 %.
  static const bool terminal = isatty(STDERR_FILENO);
  const int percent = total_ ? static_cast<int>(done_ * 100 / total_) : 100;
  const int step = terminal ? 1 : 10;
  if (percent / step == last_percent_ / step && !final) return;
  if (final && !terminal && last_percent_ == 100) return;
  last_percent_ = percent;
  log_printf(LogLevel::Info, "%s%s: %3d%% (%llu / %llu MiB)%s", terminal ? "\r" : "", label_.c_str(), percent,
             static_cast<unsigned long long>(done_ >> 20), static_cast<unsigned long long>(total_ >> 20),
             final || !terminal ? "\n" : "");
}

void write_quantized_rows(ModelFileWriter& out, TensorType t, uint64_t ne0, uint64_t rows, ThreadPool& pool,
                          const std::function<void(uint64_t row, float* x)>& fill,
                          const std::function<void(uint64_t rows_done)>& after_slab, uint64_t slab_bytes) {
  const uint64_t row_bytes = row_nbytes(t, ne0);
  const uint64_t slab_rows = std::max<uint64_t>(1, std::min(rows, slab_bytes / std::max<uint64_t>(row_bytes, 1)));
  std::vector<uint8_t> slab(slab_rows * row_bytes);
  for (uint64_t begin = 0; begin < rows; begin += slab_rows) {
    const uint64_t n = std::min(slab_rows, rows - begin);
    // A few contiguous runs of rows per thread: the runs even out uneven thread speeds, and each
    // needs only one row of floats.
    const uint64_t tasks = std::min<uint64_t>(n, static_cast<uint64_t>(pool.size()) * 4);
    pool.parallel_for(static_cast<int64_t>(tasks), [&](int64_t task) {
      const uint64_t first = n * static_cast<uint64_t>(task) / tasks, last = n * static_cast<uint64_t>(task + 1) / tasks;
      std::vector<float> x(ne0);
      for (uint64_t r = first; r < last; ++r) {
        fill(begin + r, x.data());
        quantize_row(t, x.data(), slab.data() + r * row_bytes, static_cast<int64_t>(ne0));
      }
    });
    out.write(slab.data(), n * row_bytes);
    if (after_slab) after_slab(begin + n);
  }
}

TernaryTensorEncoder::TernaryTensorEncoder(ModelFileWriter& out, std::string tensor_name,
                                           TensorType t, uint64_t ne0, uint64_t ne1)
    : out_(out), name_(std::move(tensor_name)), type_(t), ne0_(ne0), ne1_(ne1) {
  if (t != TensorType::I2_S && t != TensorType::TQ1_0 && t != TensorType::TQ2_0)
    throw Error("tensor '" + name_ + "': cannot write ternary rows as " + type_name(t));
  check_row_length(t, ne0, ne1, name_);
  if (t == TensorType::I2_S) group_.reserve(128 + ne0);
}

void TernaryTensorEncoder::start_rows(uint64_t n, float scale) {
  if (n > ne1_ - rows_done_) throw Error("tensor '" + name_ + "': more rows written than declared");
  if (rows_done_ == 0) tensor_scale_ = scale;
  if (type_ == TensorType::I2_S && scale != tensor_scale_)
    throw Error("tensor '" + name_ + "': row " + std::to_string(rows_done_) + " has scale " +
                std::to_string(scale) + " but row 0 has " + std::to_string(tensor_scale_) +
                "; I2_S stores one scale per tensor, so this tensor cannot be converted losslessly");
}

void TernaryTensorEncoder::write_rows(const int8_t* values, uint64_t n, float scale, ThreadPool& pool) {
  const bool i2s = type_ == TensorType::I2_S;
  if (i2s && (!group_.empty() || n * ne0_ % 128 != 0)) {  // a 128-value group spans two calls
    for (uint64_t r = 0; r < n; ++r) write_row(values + r * ne0_, scale);
    return;
  }
  start_rows(n, scale);
  // Independent pieces: I2_S groups of 128 values (32 bytes), or TQ rows.
  const uint64_t piece = i2s ? 128 : ne0_, piece_bytes = i2s ? 32 : row_nbytes(type_, ne0_);
  const uint64_t pieces = n * ne0_ / piece;
  buffer_.resize(pieces * piece_bytes);
  const uint64_t tasks = std::min<uint64_t>(pieces, static_cast<uint64_t>(pool.size()) * 4);
  pool.parallel_for(static_cast<int64_t>(tasks), [&](int64_t task) {
    const uint64_t first = pieces * static_cast<uint64_t>(task) / tasks, last = pieces * static_cast<uint64_t>(task + 1) / tasks;
    if (i2s) {
      encode_i2s(values + first * piece, static_cast<int64_t>((last - first) * piece), buffer_.data() + first * piece_bytes);
      return;
    }
    for (uint64_t p = first; p < last; ++p)
      write_ternary_row(type_, values + p * piece, static_cast<int64_t>(ne0_), scale, buffer_.data() + p * piece_bytes);
  });
  out_.write(buffer_.data(), buffer_.size());
  rows_done_ += n;
}

void TernaryTensorEncoder::write_row(const int8_t* values, float scale) {
  start_rows(1, scale);
  if (type_ == TensorType::I2_S) {
    // Rows are concatenated into 128-value groups; a row may end inside a group.
    group_.insert(group_.end(), values, values + ne0_);
    const size_t whole = group_.size() / 128 * 128;
    buffer_.resize(whole / 4);
    encode_i2s(group_.data(), static_cast<int64_t>(whole), buffer_.data());
    group_.erase(group_.begin(), group_.begin() + static_cast<std::ptrdiff_t>(whole));
  } else {
    buffer_.resize(row_nbytes(type_, ne0_));  // write_rows may have left it longer
    write_ternary_row(type_, values, static_cast<int64_t>(ne0_), scale, buffer_.data());
  }
  out_.write(buffer_.data(), buffer_.size());
  ++rows_done_;
}

void TernaryTensorEncoder::finish() {
  if (rows_done_ != ne1_)
    throw Error("tensor '" + name_ + "': " + std::to_string(rows_done_) + " rows written, " +
                std::to_string(ne1_) + " declared");
  if (type_ == TensorType::I2_S) {
    uint8_t trailer[32];
    encode_i2s_trailer(tensor_scale_, trailer);
    out_.write(trailer, sizeof trailer);
  }
}

}  // namespace bitnet
