// bitnet dummy: a model file with random ternary weights in the exact tensor set, names, shapes and
// metadata of a real model, for benchmarks and tests without downloading weights.
//
// Every tensor's values come from its own RNG stream seeded by (--seed, tensor name), generated
// row by row while writing, so equal arguments give byte-identical files (with any -t) and a
// 100B-shaped file never needs more memory than one slab of rows.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "bitnet/arch.h"
#include "bitnet/error.h"
#include "bitnet/formats.h"
#include "bitnet/gguf.h"
#include "bitnet/tokenizer.h"
#include "commands.h"
#include "common_params.h"
#include "convert/model_writer.h"
#include "options.h"
#include "util/files.h"

namespace bitnet::cli {

namespace {

// Hyperparameters of a real model family. Sources: the models' config.json / GGUF metadata as
// summarised in shared/notes/formats.md; Falcon3 from the tiiuae/Falcon3-{1B,3B,7B,10B}-Instruct
// model cards (18/22/28/40 decoder blocks, 8 or 12 query heads and 4 KV heads, head dimension
// 256, RoPE theta 1000042, 131K vocabulary, 8K context for 1B and 32K for the others) and their
// config.json (hidden 2048/3072, intermediate 8192/9216/23040/23040, vocab 131072, rms eps 1e-6).
// For all of them head_dim == n_embd / n_head, so no key_length is written unless --head-dim says
// otherwise.
struct Shape {
  const char* name;
  const char* arch;  // general.architecture
  const char* description;
  int64_t n_embd, n_layer, n_ff, n_head, n_head_kv, n_vocab, n_ctx;
  float rope_theta, rms_eps;
  const char* tokenizer_model;  // "gpt2" (byte-level BPE) or "llama" (SentencePiece)
  const char* chat_template;    // nullptr: the real checkpoints ship none
};

// Short templates in each family's chat format (what tokenizer.chat_template holds).
// BitNet b1.58 2B4T's is the one of its tokenizer_config.json, verbatim.
constexpr const char* kBitnetTemplate =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "message['role'] | capitalize + ': '+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}";
constexpr const char* kLlama3Template =
    "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}"
    "<|end_header_id|>\n\n{{ message['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}";
// Falcon3's is the branch without tools of its tokenizer_config.json template.
constexpr const char* kFalcon3Template =
    "{%- for message in messages %}{%- if message['role'] == 'system' %}"
    "{{- '<|system|>\\n' + message['content'] + '\\n' }}"
    "{%- elif message['role'] == 'user' %}{{- '<|user|>\\n' + message['content'] + '\\n' }}"
    "{%- elif message['role'] == 'assistant' %}{%- if not loop.last %}"
    "{{- '<|assistant|>\\n' + message['content'] + eos_token + '\\n' }}{%- else %}"
    "{{- '<|assistant|>\\n' + message['content'] + eos_token }}{%- endif %}{%- endif %}"
    "{%- if loop.last and add_generation_prompt %}{{- '<|assistant|>\\n' }}{%- endif %}{%- endfor %}";

constexpr Shape kShapes[] = {
    {"2b4t", "bitnet-b1.58", "BitNet b1.58 2B4T", 2560, 30, 6912, 20, 5, 128256, 4096, 500000.f,
     1e-5f, "gpt2", kBitnetTemplate},
    {"large", "bitnet", "bitnet_b1_58-large", 1536, 24, 4096, 16, 16, 32002, 2048, 10000.f, 1e-5f,
     "llama", nullptr},
    {"3b", "bitnet", "bitnet_b1_58-3B", 3200, 26, 8640, 32, 32, 32002, 2048, 10000.f, 1e-5f,
     "llama", nullptr},
    {"llama3-8b", "llama", "Llama3-8B-1.58", 4096, 32, 14336, 32, 8, 128256, 8192, 500000.f, 1e-5f,
     "gpt2", kLlama3Template},
    {"falcon3-1b", "llama", "Falcon3-1B-Instruct-1.58bit", 2048, 18, 8192, 8, 4, 131072, 8192,
     1000042.f, 1e-6f, "gpt2", kFalcon3Template},
    {"falcon3-3b", "llama", "Falcon3-3B-Instruct-1.58bit", 3072, 22, 9216, 12, 4, 131072, 32768,
     1000042.f, 1e-6f, "gpt2", kFalcon3Template},
    {"falcon3-7b", "llama", "Falcon3-7B-Instruct-1.58bit", 3072, 28, 23040, 12, 4, 131072, 32768,
     1000042.f, 1e-6f, "gpt2", kFalcon3Template},
    {"falcon3-10b", "llama", "Falcon3-10B-Instruct-1.58bit", 3072, 40, 23040, 12, 4, 131072, 32768,
     1000042.f, 1e-6f, "gpt2", kFalcon3Template},
    // bitnet.cpp's 100B benchmark shape, built like 2B4T.
    {"100b", "bitnet-b1.58", "BitNet b1.58 100B (benchmark shape)", 8192, 72, 45568, 64, 8, 128256,
     4096, 500000.f, 1e-5f, "gpt2", kBitnetTemplate},
};

const Shape& find_shape(const std::string& name) {
  std::string known;
  for (const auto& s : kShapes) {
    if (name == s.name) return s;
    known += known.empty() ? "" : ", ";
    known += s.name;
  }
  throw Error("unknown --shape '" + name + "' (known: " + known + ")");
}

// splitmix64: fast, statistically fine for weights, and trivially seedable per tensor.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += kGamma);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Jumps over the next n draws (the state advances by a constant per draw), so that rows can be
  // generated out of order, each from where a sequential pass would be.
  void skip(uint64_t n) { state_ += n * kGamma; }
  float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }  // [0, 1)
  // Approximately standard normal: Irwin-Hall sum of four 16-bit uniforms, rescaled to unit
  // variance. One RNG call per value; tails end at +-3.46, which is fine for random weights.
  float normal() {
    const uint64_t r = next();
    const float sum = static_cast<float>((r & 0xFFFF) + ((r >> 16) & 0xFFFF) + ((r >> 32) & 0xFFFF) +
                                         (r >> 48));
    return (sum * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;  // var of the sum of 4 U(0,1) is 1/3
  }

 private:
  static constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;
  uint64_t state_;
};

uint64_t tensor_seed(uint64_t seed, const std::string& name) {
  uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a of the name, mixed with the user's seed
  for (unsigned char c : name) h = (h ^ c) * 0x100000001B3ull;
  return Rng(seed ^ h).next();
}

// Byte -> ternary value with P(-1) = 85/256, P(0) = 86/256, P(+1) = 85/256.
struct TernaryTable {
  int8_t v[256];
  constexpr TernaryTable() : v() {
    for (int b = 0; b < 256; ++b) v[b] = static_cast<int8_t>(b < 85 ? -1 : b < 171 ? 0 : 1);
  }
};
constexpr TernaryTable kTernary;

void fill_ternary(Rng& rng, int8_t* out, uint64_t n) {
  for (uint64_t i = 0; i < n; i += 8) {
    uint64_t r = rng.next();
    for (uint64_t j = 0; j < 8 && i + j < n; ++j, r >>= 8) out[i + j] = kTernary.v[r & 0xFF];
  }
}

enum class Fill { Norm, Ternary, Embedding };

struct PlannedTensor {
  std::string name;
  std::vector<uint64_t> ne;
  TensorType type;
  Fill fill;
};

std::vector<PlannedTensor> plan_tensors(const ArchInfo& arch, const ModelHparams& h, TensorType weight,
                                        TensorType head) {
  std::vector<PlannedTensor> planned;
  for (TensorSpec& t : model_tensors(arch, h, !arch.tied_head)) {
    switch (t.role) {
      case TensorRole::Embedding: planned.push_back({std::move(t.name), std::move(t.ne), head, Fill::Embedding}); break;
      case TensorRole::Norm: planned.push_back({std::move(t.name), std::move(t.ne), TensorType::F32, Fill::Norm}); break;
      case TensorRole::Linear: planned.push_back({std::move(t.name), std::move(t.ne), weight, Fill::Ternary}); break;
    }
  }
  return planned;
}

void write_tensor(ModelFileWriter& out, const PlannedTensor& t, uint64_t seed, ThreadPool& pool) {
  Rng rng(tensor_seed(seed, t.name));
  const uint64_t ne0 = t.ne[0], rows = t.ne.size() > 1 ? t.ne[1] : 1;
  switch (t.fill) {
    case Fill::Norm: {
      std::vector<float> v(ne0);
      for (auto& x : v) x = 1.0f + 0.05f * rng.normal();
      out.write(v.data(), v.size() * sizeof(float));
      return;
    }
    case Fill::Ternary: {
      // One scale per tensor as absmean quantization gives, rounded to f16 so that the tensor
      // converts losslessly between I2_S (f32 scale) and TQ1_0/TQ2_0 (f16 block scale).
      const float scale = fp16_to_fp32(fp32_to_fp16(0.01f + 0.04f * rng.uniform()));
      TernaryTensorEncoder enc(out, t.name, t.type, ne0, rows);
      // A slab of rows (16 MiB of values) at a time, generated and encoded on all threads; row r
      // starts r * ceil(ne0 / 8) draws after the scale's (fill_ternary draws once per 8 values).
      const uint64_t slab_rows = std::max<uint64_t>(1, std::min<uint64_t>(rows, (16u << 20) / ne0));
      std::vector<int8_t> values(slab_rows * ne0);
      for (uint64_t begin = 0; begin < rows; begin += slab_rows) {
        const uint64_t n = std::min(slab_rows, rows - begin);
        pool.parallel_for(static_cast<int64_t>(n), [&](int64_t i) {
          Rng row_rng = rng;
          row_rng.skip((begin + static_cast<uint64_t>(i)) * ((ne0 + 7) / 8));
          fill_ternary(row_rng, values.data() + static_cast<uint64_t>(i) * ne0, ne0);
        });
        enc.write_rows(values.data(), n, scale, pool);
      }
      enc.finish();
      return;
    }
    case Fill::Embedding: {
      // One draw per value: row r starts r * ne0 draws in.
      write_quantized_rows(out, t.type, ne0, rows, pool, [&](uint64_t r, float* x) {
        Rng row_rng = rng;
        row_rng.skip(r * ne0);
        for (uint64_t i = 0; i < ne0; ++i) x[i] = 0.02f * row_rng.normal();
      });
      return;
    }
  }
}

}  // namespace

int cmd_dummy(int argc, char** argv) {
  std::string shape_name, type_name_arg, output, head_type_name = "f16", tokenizer_path;
  uint64_t seed = 0;
  int n_threads = 0;
  bool force = false;
  std::optional<int64_t> embd, layers, ff, heads, heads_kv, head_dim, vocab, ctx;

  OptionTable opts(
      "usage: bitnet dummy --shape S --type T -o FILE [options]\n"
      "Writes a GGUF model with random ternary weights in the tensor layout and metadata of a real\n"
      "model. Equal arguments give byte-identical files.");
  std::string shapes;
  for (const auto& s : kShapes) shapes += (shapes.empty() ? "" : ", ") + std::string(s.name);
  opts.value({"--shape"}, "S", "model shape: " + shapes, [&](const std::string& v) { shape_name = v; });
  opts.value({"--type"}, "T", "linear weight type: i2_s, tq1_0, tq2_0",
             [&](const std::string& v) { type_name_arg = v; });
  opts.value({"-o", "--output"}, "FILE", "output GGUF file", [&](const std::string& v) { output = v; });
  opts.value({"-s", "--seed"}, "N", "random seed (default 0)", [&](const std::string& v) {
    seed = static_cast<uint64_t>(parse_int("--seed", v, 0, INT64_MAX));
  });
  opts.value({"--head-type"}, "T", "token_embd/output type: f16 (default), q6_k, q8_0, f32",
             [&](const std::string& v) { head_type_name = v; });
  opts.value({"--tokenizer"}, "FILE",
             "tokenizer.json / tiktoken / SentencePiece .model to embed (default: a synthetic "
             "vocabulary of the family's kind)",
             [&](const std::string& v) { tokenizer_path = v; });
  add_threads_option(opts, n_threads);
  opts.flag({"--force"}, "overwrite an existing output file", [&] { force = true; });
  opts.section("Shape overrides (for small test models)");
  auto int_option = [&](const char* name, const char* help, std::optional<int64_t>& dst) {
    opts.value({name}, "N", help, [&, name](const std::string& v) { dst = parse_int(name, v, 1, 1 << 24); });
  };
  int_option("--embd", "embedding length", embd);
  int_option("--layers", "number of layers", layers);
  int_option("--ff", "feed-forward length", ff);
  int_option("--heads", "attention heads", heads);
  int_option("--heads-kv", "key/value heads", heads_kv);
  int_option("--head-dim", "head dimension (default embd / heads)", head_dim);
  int_option("--vocab", "vocabulary size", vocab);
  int_option("--ctx", "training context length", ctx);

  if (!opts.parse_command(argc, argv)) return 0;
  if (shape_name.empty() || type_name_arg.empty() || output.empty())
    throw Error("dummy: --shape, --type and -o are required (see --help)");

  const Shape& shape = find_shape(shape_name);
  const TensorType weight = parse_type_name(type_name_arg);
  if (weight != TensorType::I2_S && weight != TensorType::TQ1_0 && weight != TensorType::TQ2_0)
    throw Error("dummy: --type must be i2_s, tq1_0 or tq2_0, not '" + type_name_arg + "'");
  const TensorType head = parse_type_name(head_type_name);
  if (head != TensorType::F16 && head != TensorType::Q6_K && head != TensorType::Q8_0 &&
      head != TensorType::F32)
    throw Error("dummy: --head-type must be f16, q6_k, q8_0 or f32, not '" + head_type_name + "'");

  ModelHparams h;
  h.n_embd = embd.value_or(shape.n_embd);
  h.n_layer = layers.value_or(shape.n_layer);
  h.n_ff = ff.value_or(shape.n_ff);
  h.n_head = heads.value_or(shape.n_head);
  h.n_head_kv = heads_kv.value_or(shape.n_head_kv);
  h.n_vocab = vocab.value_or(shape.n_vocab);
  h.n_ctx_train = ctx.value_or(shape.n_ctx);
  h.rope_theta = shape.rope_theta;
  h.rms_eps = shape.rms_eps;
  if (h.n_head_kv > h.n_head || h.n_head % h.n_head_kv != 0)
    throw Error("dummy: --heads " + std::to_string(h.n_head) + " must be a multiple of --heads-kv " +
                std::to_string(h.n_head_kv));
  if (!head_dim && h.n_embd % h.n_head != 0)
    throw Error("dummy: embedding length " + std::to_string(h.n_embd) + " is not a multiple of " +
                std::to_string(h.n_head) + " heads (or pass --head-dim)");
  h.head_dim = head_dim.value_or(h.n_embd / h.n_head);
  if (h.head_dim % 2 != 0)
    throw Error("dummy: head dimension " + std::to_string(h.head_dim) + " must be even for RoPE");

  check_output_path(output, force);

  std::unique_ptr<Tokenizer> tokenizer;
  if (!tokenizer_path.empty()) {
    tokenizer = Tokenizer::from_file(tokenizer_path);
    if (!vocab) h.n_vocab = tokenizer->n_vocab();
    if (tokenizer->n_vocab() != h.n_vocab)
      throw Error("dummy: tokenizer '" + tokenizer_path + "' has " +
                  std::to_string(tokenizer->n_vocab()) + " tokens but --vocab is " +
                  std::to_string(h.n_vocab));
  } else {
    tokenizer = Tokenizer::synthetic(shape.tokenizer_model, static_cast<int32_t>(h.n_vocab));
  }

  const ArchInfo& arch = *find_arch(shape.arch);
  const auto tensors = plan_tensors(arch, h, weight, head);
  // Checked before anything is written, with the first tensor that breaks the rule named.
  try {
    for (const auto& t : tensors)
      if (t.fill != Fill::Norm) check_row_length(t.type, t.ne[0], t.ne[1], t.name);
  } catch (const Error& e) {
    throw Error("dummy --shape " + shape_name + ": " + e.what() +
                "; choose --embd/--ff/--heads/--head-dim (or another --type/--head-type) that fit");
  }

  ModelFileWriter out(output, "dummy");
  gguf::Writer& w = out.gguf();
  write_hparams(w, arch, h);
  w.set("general.name", gguf::Value::of_string(std::string(shape.description) + " (dummy weights)"));
  w.set("general.file_type", gguf::Value::of_u32(llama_ftype_for(weight)));
  tokenizer->write_gguf(w);
  if (shape.chat_template) w.set("tokenizer.chat_template", gguf::Value::of_string(shape.chat_template));

  for (const auto& t : tensors) out.declare(t.name, t.ne, t.type);
  ThreadPool pool(resolve_threads(n_threads));
  out.open(force);
  for (const auto& t : tensors) write_tensor(out, t, seed, pool);
  out.finish();
  return 0;
}

}  // namespace bitnet::cli
