// Hugging Face checkpoint -> GGUF. The plan (which source tensor and which arithmetic produce each
// GGUF tensor) is made and checked completely before the output file is created.
#include "convert/convert.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "bitnet/arch.h"
#include "bitnet/error.h"
#include "bitnet/gguf.h"
#include "bitnet/tokenizer.h"
#include "convert/model_writer.h"
#include "convert/safetensors.h"
#include "convert/ternarize.h"
#include "util/files.h"

namespace bitnet {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// How a checkpoint family's names and math map to GGUF.
struct Family {
  const char* hf_arch;    // config.json architectures[0]
  const char* gguf_arch;  // general.architecture
  const char* activation; // the hidden_act the GGUF architecture computes
  const char* attn_sub_norm;  // checkpoint names of the sub-norms (nullptr: none)
  const char* ffn_sub_norm;
  bool needs_quant_config;  // the family is only BitNet with quantization_config.quant_method = bitnet
};

constexpr Family kFamilies[] = {
    {"BitNetForCausalLM", "bitnet-b1.58", "relu2", "self_attn.attn_sub_norm", "mlp.ffn_sub_norm", false},
    {"LlamaForCausalLM", "llama", "silu", nullptr, nullptr, true},
    {"BitnetForCausalLM", "bitnet", "silu", "self_attn.inner_attn_ln", "mlp.ffn_layernorm", false},
};

// Checkpoint name of a block tensor (without ".weight").
std::string hf_layer_name(const Family& f, int64_t layer, LayerTensor t) {
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  switch (t) {
    case LayerTensor::AttnNorm: return p + "input_layernorm";
    case LayerTensor::AttnQ: return p + "self_attn.q_proj";
    case LayerTensor::AttnK: return p + "self_attn.k_proj";
    case LayerTensor::AttnV: return p + "self_attn.v_proj";
    case LayerTensor::AttnOutput: return p + "self_attn.o_proj";
    case LayerTensor::AttnSubNorm: return p + f.attn_sub_norm;
    case LayerTensor::FfnNorm: return p + "post_attention_layernorm";
    case LayerTensor::FfnGate: return p + "mlp.gate_proj";
    case LayerTensor::FfnUp: return p + "mlp.up_proj";
    case LayerTensor::FfnDown: return p + "mlp.down_proj";
    case LayerTensor::FfnSubNorm: return p + f.ffn_sub_norm;
  }
  return p;
}

json read_json(const fs::path& path, bool required) {
  std::ifstream in(path);
  if (!in) {
    if (required) throw Error(path.string() + ": cannot open");
    return json();
  }
  std::stringstream text;
  text << in.rdbuf();
  try {
    json j = json::parse(text.str());
    if (!j.is_object()) throw Error(path.string() + ": not a JSON object");
    return j;
  } catch (const json::exception& e) {
    throw Error(path.string() + ": not valid JSON (" + e.what() + ")");
  }
}

// How a ternary GGUF tensor's values and scale come from the checkpoint.
enum class Source { Packed, Float };

struct PlannedTensor {
  TensorSpec spec;
  TensorType type;
  const StTensor* src = nullptr;
  // Linear weights
  Source source = Source::Float;
  float scale = 0;            // Packed: the ternary values' scale
  int64_t permute_heads = 0;  // > 0: rows permuted from rotate-half to interleaved pairs
  int64_t head_dim = 0;
};

class Converter {
 public:
  Converter(std::string dir, const ConvertOptions& opts) : dir_(std::move(dir)), opts_(opts) {}
  void run(const std::string& out_path);

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error(dir_ + ": " + what); }
  void read_config();
  void read_tokenizer();
  void plan();
  const StTensor& tensor(const std::string& name) const;
  void expect_shape(const StTensor& t, std::vector<int64_t> shape) const;
  const StTensor& float_tensor(const std::string& name, std::vector<int64_t> shape) const;
  void plan_linear(PlannedTensor& p, const std::string& hf_base);
  void write_tensor(ModelFileWriter& out, const PlannedTensor& p, ThreadPool& pool) const;
  void write_linear(ModelFileWriter& out, const PlannedTensor& p) const;

  std::string dir_;
  ConvertOptions opts_;
  json config_;
  const Family* family_ = nullptr;
  const ArchInfo* arch_ = nullptr;
  ModelHparams h_;
  bool tied_ = true;
  // quantization_config
  bool packed_ = false;           // offline: packed uint8 weights with weight_scale
  bool scale_divides_ = false;    // BitLinear: y = xq W^T / weight_scale (the stored scale is 1/beta)
  Checkpoint ckpt_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::string chat_template_;
  std::vector<PlannedTensor> plan_;
};

void Converter::read_config() {
  config_ = read_json(fs::path(dir_) / "config.json", true);
  std::string arch_name;
  if (config_.contains("architectures") && config_["architectures"].is_array() && !config_["architectures"].empty() &&
      config_["architectures"][0].is_string())
    arch_name = config_["architectures"][0].get<std::string>();
  std::string known;
  for (const Family& f : kFamilies) {
    if (arch_name == f.hf_arch) family_ = &f;
    known += (known.empty() ? "" : ", ") + std::string(f.hf_arch);
  }
  if (!family_)
    fail("config.json architecture '" + arch_name + "' is not supported (supported: " + known + ")");
  arch_ = find_arch(family_->gguf_arch);

  const json qc = config_.value("quantization_config", json());
  if (!qc.is_null()) {
    const std::string method = qc.value("quant_method", "");
    if (method != "bitnet")
      fail("quantization_config.quant_method '" + method + "' is not supported (only 'bitnet')");
    const std::string linear_class = qc.value("linear_class", "bitlinear");
    const std::string mode = qc.value("quantization_mode", "offline");
    if (linear_class != "bitlinear" && linear_class != "autobitlinear")
      fail("quantization_config.linear_class '" + linear_class + "' is not supported (bitlinear, autobitlinear)");
    if (mode != "offline" && mode != "online")
      fail("quantization_config.quantization_mode '" + mode + "' is not supported (offline, online)");
    if (qc.value("use_rms_norm", false))
      fail("quantization_config.use_rms_norm (a norm inside every BitLinear) is not supported");
    packed_ = mode == "offline";
    scale_divides_ = linear_class == "bitlinear";
  } else if (family_->needs_quant_config) {
    fail(std::string(family_->hf_arch) + " without quantization_config.quant_method = bitnet is a float model, "
         "not a BitNet checkpoint");
  }

  const std::string act = config_.value("hidden_act", family_->activation);
  if (act != family_->activation)
    fail("hidden_act '" + act + "' does not match " + family_->hf_arch + " (" + family_->activation + ")");
  const json rs = config_.value("rope_scaling", json());
  if (!rs.is_null()) {
    const std::string type = rs.value("rope_type", rs.value("type", ""));
    if (!(type == "default" || (type == "linear" && rs.value("factor", 1.0) == 1.0)))
      fail("rope_scaling " + rs.dump() + " is not supported");
  }
  if (config_.value("attention_bias", false) || config_.value("mlp_bias", false))
    fail("linear biases (attention_bias / mlp_bias) are not supported");

  auto get_int = [&](const char* key, int64_t fallback) -> int64_t {
    const json v = config_.value(key, json());
    if (v.is_null()) {
      if (fallback < 0) fail(std::string("config.json has no \"") + key + "\"");
      return fallback;
    }
    if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > (1 << 24))
      fail(std::string("config.json \"") + key + "\" = " + v.dump() + " is not a positive integer");
    return v.get<int64_t>();
  };
  h_.n_embd = get_int("hidden_size", -1);
  h_.n_layer = get_int("num_hidden_layers", -1);
  h_.n_ff = get_int("intermediate_size", -1);
  h_.n_head = get_int("num_attention_heads", -1);
  h_.n_head_kv = get_int("num_key_value_heads", h_.n_head);
  h_.n_vocab = get_int("vocab_size", -1);
  h_.n_ctx_train = get_int("max_position_embeddings", 2048);
  if (h_.n_head % h_.n_head_kv != 0)
    fail("num_attention_heads " + std::to_string(h_.n_head) + " is not a multiple of num_key_value_heads " +
         std::to_string(h_.n_head_kv));
  h_.head_dim = get_int("head_dim", h_.n_embd % h_.n_head == 0 ? h_.n_embd / h_.n_head : -1);
  if (h_.head_dim % 2 != 0) fail("head dimension " + std::to_string(h_.head_dim) + " is odd");
  h_.rope_theta = (float)config_.value("rope_theta", 10000.0);
  h_.rms_eps = (float)config_.value("rms_norm_eps", 1e-6);
  if (!(h_.rope_theta > 0) || !(h_.rms_eps > 0)) fail("rope_theta and rms_norm_eps must be positive");
  tied_ = config_.value("tie_word_embeddings", false);
}

void Converter::read_tokenizer() {
  const fs::path dir(dir_);
  std::error_code ec;
  fs::path file = dir / "tokenizer.json";
  if (!fs::exists(file, ec)) file = dir / "tokenizer.model";
  if (!fs::exists(file, ec)) fail("no tokenizer.json or tokenizer.model");
  const json tc = read_json(dir / "tokenizer_config.json", false);
  Tokenizer::SpecialTokens special;
  auto token_text = [&](const char* key) {
    const json v = tc.value(key, json());
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.value("content", json()).is_string()) return v["content"].get<std::string>();
    return std::string();
  };
  special.bos = token_text("bos_token");
  special.eos = token_text("eos_token");
  if (tc.value("add_bos_token", json()).is_boolean()) special.add_bos = tc["add_bos_token"].get<bool>();
  tokenizer_ = Tokenizer::from_file(file.string(), special);
  if (tokenizer_->n_vocab() > h_.n_vocab)
    fail(file.string() + " has " + std::to_string(tokenizer_->n_vocab()) + " tokens but vocab_size is " +
         std::to_string(h_.n_vocab));
  // A template string, or a list of named templates of which "default" is the chat one.
  const json t = tc.value("chat_template", json());
  if (t.is_string()) chat_template_ = t.get<std::string>();
  else if (t.is_array())
    for (const json& e : t)
      if (e.is_object() && e.value("name", "") == "default" && e.value("template", json()).is_string())
        chat_template_ = e["template"].get<std::string>();
}

const StTensor& Converter::tensor(const std::string& name) const {
  const StTensor* t = ckpt_.find(name);
  if (!t) fail("checkpoint has no tensor '" + name + "'");
  return *t;
}

void Converter::expect_shape(const StTensor& t, std::vector<int64_t> shape) const {
  if (t.shape != shape) {
    StTensor want;
    want.shape = std::move(shape);
    fail("tensor '" + t.name + "' has shape " + t.shape_string() + ", expected " + want.shape_string());
  }
}

const StTensor& Converter::float_tensor(const std::string& name, std::vector<int64_t> shape) const {
  const StTensor& t = tensor(name);
  if (!t.is_float()) fail("tensor '" + name + "' has dtype " + t.dtype + ", expected F32, F16 or BF16");
  expect_shape(t, std::move(shape));
  return t;
}

void Converter::plan_linear(PlannedTensor& p, const std::string& hf_base) {
  const int64_t in = (int64_t)p.spec.ne[0], out = (int64_t)p.spec.ne[1];
  const StTensor& w = tensor(hf_base + ".weight");
  p.src = &w;
  if (w.dtype == "U8") {
    if (!packed_)
      fail("tensor '" + w.name + "' is packed (U8) but config.json has no quantization_config in offline mode");
    if (out % 4 != 0) fail("tensor '" + w.name + "': " + std::to_string(out) + " rows cannot be packed 4 per byte");
    expect_shape(w, {out / 4, in});
    const StTensor& s = tensor(hf_base + ".weight_scale");
    if (!s.is_float() || s.n_elements() != 1)
      fail("tensor '" + s.name + "' must be one float, not " + s.dtype + " " + s.shape_string());
    const float ws = read_floats(s)[0];
    if (!std::isfinite(ws) || ws == 0) fail("tensor '" + s.name + "' = " + std::to_string(ws) + " is not a usable scale");
    p.source = Source::Packed;
    p.scale = scale_divides_ ? 1.0f / ws : ws;
  } else if (w.is_float()) {
    if (packed_)
      fail("tensor '" + w.name + "' is " + w.dtype + " but quantization_config says packed (offline) weights");
    expect_shape(w, {out, in});
    p.source = Source::Float;
  } else {
    fail("tensor '" + w.name + "' has dtype " + w.dtype + ", expected U8 (packed) or a float type");
  }
  // transformers rotates pairs (i, i + d/2); llama's GGUF layout rotates (2i, 2i+1).
  if (!arch_->rope_neox && (p.spec.kind == LayerTensor::AttnQ || p.spec.kind == LayerTensor::AttnK)) {
    p.permute_heads = p.spec.kind == LayerTensor::AttnQ ? h_.n_head : h_.n_head_kv;
    p.head_dim = h_.head_dim;
  }
}

void Converter::plan() {
  const std::string embed = "model.embed_tokens.weight";
  const bool has_lm_head = ckpt_.find("lm_head.weight") != nullptr;
  const bool with_output = !tied_ && has_lm_head;
  if (!tied_ && !has_lm_head && !arch_->tied_head) fail("checkpoint has no tensor 'lm_head.weight'");
  for (TensorSpec& spec : model_tensors(*arch_, h_, with_output)) {
    PlannedTensor p;
    p.spec = std::move(spec);
    const std::vector<int64_t> hf_shape(p.spec.ne.rbegin(), p.spec.ne.rend());  // GGUF dims reversed
    switch (p.spec.role) {
      case TensorRole::Embedding:
        p.type = opts_.head_type;
        p.src = &float_tensor(p.spec.name == kOutputName ? "lm_head.weight" : embed, hf_shape);
        break;
      case TensorRole::Norm:
        p.type = TensorType::F32;
        p.src = &float_tensor(p.spec.layer < 0 ? std::string("model.norm.weight")
                                               : hf_layer_name(*family_, p.spec.layer, p.spec.kind) + ".weight",
                              hf_shape);
        break;
      case TensorRole::Linear:
        p.type = opts_.type;
        plan_linear(p, hf_layer_name(*family_, p.spec.layer, p.spec.kind));
        break;
    }
    check_row_length(p.type, p.spec.ne[0], p.spec.ne.size() > 1 ? p.spec.ne[1] : 1, p.spec.name);
    plan_.push_back(std::move(p));
  }
}

void Converter::write_linear(ModelFileWriter& out, const PlannedTensor& p) const {
  const int64_t in = (int64_t)p.spec.ne[0], rows = (int64_t)p.spec.ne[1];
  const StTensor& w = *p.src;
  // GGUF row r comes from checkpoint row source_row(r).
  auto source_row = [&](int64_t r) {
    if (p.permute_heads == 0) return r;
    const int64_t d = p.head_dim, head = r / d, j = r % d;
    return head * d + (j % 2) * (d / 2) + j / 2;
  };
  std::vector<int8_t> values((size_t)in);
  TernaryTensorEncoder enc(out, p.spec.name, p.type, (uint64_t)in, (uint64_t)rows);
  if (p.source == Source::Packed) {
    // Checkpoint row m is bits 2*(m / P) of packed row m % P, P = rows / 4; value = code - 1.
    const int64_t packed_rows = rows / 4;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t m = source_row(r);
      const uint8_t* src = w.data + (size_t)((m % packed_rows) * in);
      const int shift = 2 * (int)(m / packed_rows);
      for (int64_t c = 0; c < in; ++c) {
        const int code = (src[c] >> shift) & 3;
        if (code == 3)
          fail("tensor '" + w.name + "' holds the packed code 3 (value 2) at row " + std::to_string(m) +
               ", column " + std::to_string(c) + ": not a ternary weight");
        values[(size_t)c] = (int8_t)(code - 1);
      }
      enc.write_row(values.data(), p.scale);
    }
  } else {
    auto read_row = [&](int64_t r, float* x) { read_float_row(w, r, x); };
    const Absmean q = absmean(rows, in, read_row);
    std::vector<float> x((size_t)in);
    for (int64_t r = 0; r < rows; ++r) {
      read_float_row(w, source_row(r), x.data());
      ternarize_row(x.data(), in, q.multiplier, values.data());
      enc.write_row(values.data(), q.scale);
    }
  }
  enc.finish();
}

void Converter::write_tensor(ModelFileWriter& out, const PlannedTensor& p, ThreadPool& pool) const {
  const int64_t ne0 = (int64_t)p.spec.ne[0], rows = p.spec.ne.size() > 1 ? (int64_t)p.spec.ne[1] : 1;
  if (p.spec.role == TensorRole::Linear) {
    write_linear(out, p);
  } else {
    // An embedding is read once, front to back: the pages of each slab's rows are dropped once it
    // is written, so the resident set never holds the whole tensor (2B4T: 656 MB of BF16).
    const uint64_t src_row = p.src->nbytes / (uint64_t)rows;
    uint64_t released = 0;
    write_quantized_rows(out, p.type, (uint64_t)ne0, (uint64_t)rows, pool,
                         [&](uint64_t r, float* x) { read_float_row(*p.src, (int64_t)r, x); },
                         [&](uint64_t rows_done) {
                           ckpt_.release(*p.src, released * src_row, rows_done * src_row);
                           released = rows_done;
                         });
  }
  ckpt_.release(*p.src);
}

void Converter::run(const std::string& out_path) {
  read_config();
  ckpt_ = Checkpoint::open(dir_);
  plan();
  read_tokenizer();

  ModelFileWriter out(out_path, "convert");
  gguf::Writer& w = out.gguf();
  write_hparams(w, *arch_, h_);
  fs::path name = fs::absolute(fs::path(dir_)).lexically_normal();
  if (name.filename().empty()) name = name.parent_path();
  w.set("general.name", gguf::Value::of_string(name.filename().string()));
  w.set("general.file_type", gguf::Value::of_u32(llama_ftype_for(opts_.type)));
  tokenizer_->write_gguf(w);
  if (!chat_template_.empty()) w.set("tokenizer.chat_template", gguf::Value::of_string(chat_template_));
  for (const PlannedTensor& p : plan_) out.declare(p.spec.name, p.spec.ne, p.type);
  ThreadPool pool(opts_.n_threads);
  out.open(opts_.force);
  for (const PlannedTensor& p : plan_) write_tensor(out, p, pool);
  out.finish();
}

}  // namespace

void convert_checkpoint(const std::string& dir, const std::string& out, const ConvertOptions& opts) {
  if (opts.type != TensorType::I2_S && opts.type != TensorType::TQ1_0 && opts.type != TensorType::TQ2_0)
    throw Error(std::string("convert: --type must be i2_s, tq1_0 or tq2_0, not ") + type_name(opts.type));
  if (is_ternary(opts.head_type) || opts.head_type == TensorType::Q4_0)
    throw Error(std::string("convert: --head-type must be f16, q8_0, q6_k, bf16 or f32, not ") + type_name(opts.head_type));
  check_output_path(out, opts.force);
  Converter(dir, opts).run(out);
}

}  // namespace bitnet
