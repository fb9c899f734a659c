// Loading a model from GGUF and running it: the engine's public API.
//
// A Model is immutable after load (weights repacked into the kernels' runtime layout, tokenizer,
// hyperparameters): its const methods may be called from any number of threads at once, and one
// Model may back several Contexts, also on different threads. A Context holds the KV cache of
// several sequences (pages taken from one pool) and decodes batches whose tokens may belong to
// different sequences, so a server can advance many conversations in one pass over the weights.
//
// Lifetimes: the Model must outlive every Context created from it (a Context reads its weights);
// pointers returned by Context::logits stay valid until the next decode or the Context's end.
// Messages (loading progress, warnings) go through the log sink of bitnet/log.h.
#pragma once
#include <cstdint>
#include <functional>
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
  bool progress = true;         // loading progress through the log sink (bitnet/log.h)
  bool use_mmap = true;         // false: read the file into memory (llama.cpp's --no-mmap)
  bool mlock = false;           // lock the weights in RAM (mlock); throws bitnet::Error when refused
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
  // Multiply-accumulates with weights to generate one token: in ternary linears (int8 kernels) and
  // in the others (the head and any float linear); attention is not counted.
  struct Macs {
    uint64_t ternary = 0, other = 0;
  };
  virtual Macs macs_per_token() const = 0;
};

// Storage of the KV cache: f16 (default), f32, or q8_0 (int8 with one scale per 32 values: half
// the bytes of f16, for long contexts; not lossless).
enum class KvType { F16, F32, Q8_0 };
const char* kv_type_name(KvType t);
// "f16" / "f32" / "q8_0" (llama.cpp's -ctk/-ctv spellings); throws bitnet::Error otherwise.
KvType parse_kv_type(const std::string& name);

struct ContextParams {
  int n_ctx = 0;         // 0: the model's training context. The KV pool holds n_ctx positions in
                         // total, shared by all sequences (whole pages of kv_page_size() positions,
                         // at least one page per sequence); one sequence holds up to n_ctx positions.
  int n_seq = 1;         // sequence ids [0, n_seq)
  KvType kv_type = KvType::F16;
  int n_threads = 0;     // 0: physical cores
  int n_batch = 512;     // tokens per forward pass (micro-batch); larger batches are split
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

// Not thread-safe: one thread at a time may use a Context (it runs its own thread pool inside
// decode). The Model it was created from must outlive it.
//
// KV cache: each sequence holds positions [0, seq_length) in pages of kv_page_size() positions
// taken from a pool shared by all sequences and returned to it when a sequence is truncated or
// released. Pages may be shared between sequences (seq_copy); a shared page is copied before one
// of its sharers writes to it (copy-on-write), so sequences never see each other's tokens.
//
// Results do not depend on the batch: a sequence's logits are bit-identical whether it is decoded
// alone or together with other sequences, in one batch or token by token, with any micro-batch
// size (for the same thread count and backend).
class Context {
 public:
  static std::unique_ptr<Context> create(const Model& model, const ContextParams& params);
  virtual ~Context() = default;

  // Runs the batch. The positions of each sequence in the batch must continue exactly from its
  // seq_length and increase by one (p, p+1, ...; entries of different sequences may interleave);
  // anything else (a gap, a repeat, going back), a token id outside the vocabulary, a sequence id
  // outside [0, n_seq) or a position at or past n_ctx throws bitnet::Error and leaves the cache
  // untouched. Rewinding is explicit: seq_truncate. Throws bitnet::Error("KV cache full ...") when
  // the pool lacks the pages the batch needs, cache untouched.
  // The batch runs in micro-batches of n_batch tokens; the abort callback is polled before each.
  // Returns false when it asked to stop: the sequences then hold the tokens of the micro-batches
  // that completed (seq_length tells) and there are no logits. Returns true otherwise.
  virtual bool decode(const Batch& batch) = 0;
  // Logits of the j-th entry of the last decoded batch that asked for them (entries counted in
  // batch order, only those with want_logits): n_vocab floats, valid until the next decode.
  // Throws bitnet::Error when j is out of range.
  virtual const float* logits(size_t j) const = 0;

  virtual int seq_length(int seq) const = 0;           // positions the sequence holds
  // Keeps positions [0, n) of the sequence (0 <= n <= seq_length); pages past n return to the pool.
  virtual void seq_truncate(int seq, int n) = 0;
  // dst := the first n positions of src (n <= seq_length(src)); dst's old content is released
  // first. Pages are shared, not copied (copy-on-write), so this takes no pool pages by itself.
  // src == dst truncates.
  virtual void seq_copy(int src, int dst, int n) = 0;
  virtual void seq_release(int seq) = 0;               // seq_truncate(seq, 0)
  virtual int kv_page_size() const = 0;                // positions per page (a multiple of kKeyTile)
  virtual size_t kv_pages_total() const = 0;
  virtual size_t kv_pages_free() const = 0;
  // Polled by decode before each micro-batch (on the calling thread); returning true stops it.
  virtual void set_abort_callback(std::function<bool()> cb) = 0;

  virtual int n_ctx() const = 0;
  virtual int n_seq() const = 0;
  // Bytes of the pages sequences currently hold: the pool's memory is committed as pages are
  // written and given back to the system when they return to the pool, so the process's resident
  // memory follows this figure.
  virtual size_t kv_bytes() const = 0;
  // Bytes the keys and values of one position take over all layers and KV heads (what generating a
  // token reads per cached position).
  virtual size_t kv_bytes_per_position() const = 0;
  virtual ThreadPool& threads() = 0;
};

// ---- memory plan: what running a model needs resident, checked before loading it ------------
struct MemoryPlan {
  uint64_t weights = 0;      // weight bytes the forward pass reads (in place from the file or repacked)
  uint64_t kv_cache = 0;     // the KV pool of n_ctx positions (in whole pages) shared by n_seq sequences
  uint64_t buffers = 0;      // activations and logits of one micro-batch
  uint64_t available = 0;    // see available_memory
  std::string available_from;
  uint64_t tq1_weights = 0;  // the weights with every ternary linear stored as TQ1_0
  int n_ctx = 0;             // the context planned for, all sequences together
  int n_seq = 1;
  int fitting_ctx = 0;       // the largest smaller context (a multiple of 256) that fits; 0: none
  uint64_t total() const { return weights + kv_cache + buffers; }
  bool fits() const { return total() <= available; }
  // One line: the numbers, what would fit (the model as TQ1_0, a smaller -c) and the way out.
  std::string refusal() const;
};
// From the file's header and tensor table only (no weight is read). cp.n_ctx 0 plans the training
// context for each of cp.n_seq sequences, as an Engine allocates it (for one sequence that is also
// what a Context given n_ctx 0 allocates).
MemoryPlan plan_memory(const std::string& path, const ContextParams& cp);
// Memory this process can still use: MemAvailable, or less when its cgroup (v2 memory.max, v1
// memory.limit_in_bytes) leaves less; BITNET_MEM_AVAILABLE=BYTES in the environment replaces both
// (for tests). `from` names the source.
uint64_t available_memory(std::string* from = nullptr);

// Peak resident memory of this process in bytes (VmHWM).
uint64_t peak_rss_bytes();
// Memory this process holds locked in RAM (VmLck), e.g. by LoadOptions::mlock.
uint64_t locked_bytes();

}  // namespace bitnet
