// Private model state shared by the loader and the forward pass.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bitnet/formats.h"
#include "bitnet/gguf.h"
#include "bitnet/kernels.h"
#include "bitnet/model.h"

namespace bitnet {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using AlignedBytes = std::unique_ptr<uint8_t[], FreeDeleter>;
// 64-byte aligned; zeroed unless `zero` is false (pages then stay uncommitted until first written).
AlignedBytes allocate_aligned(size_t bytes, bool zero = true);

// Activations of one matmul input quantized for the ternary kernels, computed once and shared by
// every ternary linear reading the same input (q/k/v, gate/up).
struct QuantizedActs {
  int64_t kp = 0, n = 0;
  std::vector<int8_t> q;  // n rows of kp
  std::vector<float> scale;
  std::vector<int32_t> sum;
};

// Per-row scales of a TQ1_0 linear read in place, found on first use instead of at load (which
// would touch every page of the file): the kernels take each row's scale from its first block and
// flag rows whose blocks disagree; a flagged or non-finite result has the whole tensor checked
// once with the reference reader (an error for a tensor the repacking reader refuses; otherwise
// these scales are used from then on). Thread-safe: filled once under `once`.
struct Tq1Scales {
  std::once_flag once;
  std::atomic<bool> ready{false};
  std::vector<float> row_scale;  // includes the `.scale` factor
};

// A linear layer y = W x (+ bias), W of `out` rows by `in` columns. Either ternary (I2_S read in
// place or repacked into the kernels' runtime layout with one scale per row, or TQ1_0 read in
// place), or a float/quantized-float tensor read in place from the mapping.
struct Linear {
  std::string name;
  int64_t in = 0, out = 0;
  TensorType type = TensorType::F32;  // storage type in the file
  bool ternary = false;
  // ternary: rows of the runtime layout at weights + m * stride, either in `packed` or, for I2_S
  // files (whose layout is the runtime one), directly in the mapping; for TQ1_0 (tq1 set), the
  // file's rows in the mapping, read by the kernels' tq1_gemm
  const uint8_t* weights = nullptr;
  AlignedBytes packed;
  size_t stride = 0;
  std::vector<float> row_scale;  // includes an optional `.scale` tensor's factor (empty for TQ1_0)
  bool tq1 = false;
  std::unique_ptr<Tq1Scales> tq1_scales;  // TQ1_0 only
  const uint8_t* tensor_data = nullptr;   // TQ1_0 only: the whole tensor, for the reference check
  // float
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;
  float out_scale = 1.f;  // optional `.scale` tensor on a float or TQ1_0 linear
  std::vector<float> bias;  // empty when absent

  uint64_t bytes() const { return ternary ? (uint64_t)stride * out : (uint64_t)row_bytes * out; }
};

struct Layer {
  std::vector<float> attn_norm, ffn_norm, attn_sub_norm, ffn_sub_norm;
  Linear wq, wk, wv, wo, gate, up, down;
};

class ModelImpl final : public Model {
 public:
  const ModelConfig& config() const override { return cfg; }
  const Tokenizer& tokenizer() const override { return *tok; }
  std::string chat_template() const override { return chat_template_text; }
  uint64_t n_params() const override { return params; }
  uint64_t file_size() const override { return file->file_size(); }
  std::string description() const override;
  TensorType weight_type() const override { return layers.empty() ? TensorType::F32 : layers[0].wq.type; }
  uint64_t bytes_per_token() const override;
  Macs macs_per_token() const override;

  ModelConfig cfg;
  std::unique_ptr<gguf::File> file;
  std::unique_ptr<Tokenizer> tok;
  std::string chat_template_text;
  uint64_t params = 0;
  int64_t n_rot = 0;  // rotary dimensions per head (<= head_dim)

  const gguf::TensorInfo* token_embd = nullptr;
  TensorType token_embd_type = TensorType::F32;
  std::vector<float> output_norm;
  Linear head;  // output.weight, or token_embd when tied
  std::vector<Layer> layers;
};

// The pages of the KV pool a context of n_ctx positions for n_seq sequences allocates: pages of
// 256 positions, smaller (down to one key tile) when n_ctx could not give every sequence a page;
// n_ctx positions rounded up to whole pages, and at least one page per sequence. The memory plan
// counts the same pool.
struct KvPoolLayout {
  int page_size = 0;
  size_t n_pages = 0;
  uint64_t positions() const { return (uint64_t)page_size * n_pages; }
};
KvPoolLayout kv_pool_layout(int n_ctx, int n_seq);

// A linear layer and where its output goes (n rows of w->out floats).
struct LinearOutput {
  const Linear* w;
  float* y;
};

void quantize_acts(const float* x, int64_t n, int64_t k, QuantizedActs& out, ThreadPool& pool);
// y[n][m] for ternary linears sharing one input, from activations already quantized, in one
// parallel loop.
void ternary_matmul(std::initializer_list<LinearOutput> parts, const QuantizedActs& a, ThreadPool& pool);
// y[n][m] = W x[n] for a float linear (any float/quantized-float storage type).
void float_matmul(const Linear& w, const float* x, int64_t n, float* y, ThreadPool& pool);
// Linears that read the same input x (n rows of the linears' common `in`), quantizing x once into
// `scratch` when any of them is ternary. Applies the optional biases.
void linear_forward(std::initializer_list<LinearOutput> parts, const float* x, int64_t n,
                    QuantizedActs& scratch, ThreadPool& pool);

}  // namespace bitnet
