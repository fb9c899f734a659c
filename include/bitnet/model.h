// Loading a model from GGUF and running it: the engine's public API.
//
// A Model is immutable after load (weights repacked into the kernels' runtime layout, tokenizer,
// hyperparameters) and can be shared by several Contexts. A Context owns a KV cache with one slot
// per sequence and decodes batches whose tokens may belong to different sequences, so a server can
// advance many conversations in one pass over the weights.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bitnet/formats.h"
#include "bitnet/threadpool.h"
#include "bitnet/tokenizer.h"

namespace bitnet {

enum class Arch {
  BitNetB158,  // "bitnet-b1.58" / "bitnet-25": BitNet b1.58 2B4T (ReLU^2, sub-norms, NEOX rope)
  BitNet,      // "bitnet": bitnet_b1_58-large / -3B (SiLU, sub-norms, NEOX rope)
  Llama,       // "llama": Llama3-8B-1.58, Falcon3 1.58-bit, Falcon-E, float llama models
};

struct ModelConfig {
  std::string arch_name;  // general.architecture as in the file
  Arch arch = Arch::Llama;
  int64_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
  int64_t n_ff = 0, n_ctx_train = 0;
  float rope_theta = 10000.f;
  float rms_eps = 1e-5f;
  bool rope_neox = false;   // pairs (i, i + d/2) instead of (2i, 2i+1)
  bool ffn_relu2 = false;   // relu(gate)^2 * up instead of silu(gate) * up
  bool sub_norms = false;   // attn_sub_norm before o_proj, ffn_sub_norm before down_proj
};

struct LoadOptions {
  int n_threads = 0;            // 0: physical cores
  std::string tokenizer_path;   // optional tokenizer file used instead of the GGUF's vocabulary
  bool progress = true;         // loading progress on stderr
};

class Model {
 public:
  static std::unique_ptr<Model> load(const std::string& path, const LoadOptions& opts = {});
  virtual ~Model() = default;

  virtual const ModelConfig& config() const = 0;
  virtual const Tokenizer& tokenizer() const = 0;
  virtual std::string chat_template() const = 0;  // tokenizer.chat_template text, "" when absent
  virtual uint64_t n_params() const = 0;
  virtual uint64_t file_size() const = 0;
  // llama-bench style description, e.g. "bitnet-b1.58 2B I2_S - 2 bpw ternary".
  virtual std::string description() const = 0;
  virtual TensorType weight_type() const = 0;  // type of the (first) linear weights
  // Bytes of weights read to generate one token (all linears and the head).
  virtual uint64_t bytes_per_token() const = 0;
};

// Storage of the KV cache: f16 (default), f32, or q8_0 (int8 with one scale per 32 values: half
// the bytes of f16, for long contexts; not lossless).
enum class KvType { F16, F32, Q8_0 };
const char* kv_type_name(KvType t);
// "f16" / "f32" / "q8_0" (llama.cpp's -ctk/-ctv spellings); throws bitnet::Error otherwise.
KvType parse_kv_type(const std::string& name);

struct ContextParams {
  int n_ctx = 0;         // 0: the model's training context
  int n_seq = 1;         // sequences (KV slots)
  KvType kv_type = KvType::F16;
  int n_threads = 0;     // 0: physical cores
  int n_batch = 512;     // tokens per forward pass; larger batches are split
};

// Tokens to decode together. Entry i: token at position pos of sequence seq; want_logits says
// whether its logits are kept.
struct Batch {
  std::vector<int32_t> token, pos, seq;
  std::vector<uint8_t> want_logits;
  void add(int32_t t, int32_t p, int32_t s, bool logits) {
    token.push_back(t); pos.push_back(p); seq.push_back(s); want_logits.push_back(logits);
  }
  void clear() { token.clear(); pos.clear(); seq.clear(); want_logits.clear(); }
  size_t size() const { return token.size(); }
};

class Context {
 public:
  static std::unique_ptr<Context> create(const Model& model, const ContextParams& params);
  virtual ~Context() = default;

  // Runs the batch. Each sequence's positions must be contiguous from its cached length: the
  // tokens of sequence s at positions p..p+k need positions 0..p-1 of s already decoded. Throws
  // bitnet::Error when a position is out of the context or a token id out of the vocabulary.
  virtual void decode(const Batch& batch) = 0;
  // Logits of the j-th entry of the last batch that asked for them (n_vocab floats).
  virtual const float* logits(size_t j) const = 0;
  virtual void clear_sequence(int seq) = 0;
  virtual int n_ctx() const = 0;
  virtual int n_seq() const = 0;
  virtual size_t kv_bytes() const = 0;
  // Bytes the keys and values of one position take over all layers and KV heads (what generating a
  // token reads per cached position).
  virtual size_t kv_bytes_per_position() const = 0;
  virtual ThreadPool& threads() = 0;
};

// Peak resident memory of this process in bytes (VmHWM).
uint64_t peak_rss_bytes();

}  // namespace bitnet
