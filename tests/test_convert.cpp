// bitnet convert: small checkpoints of every BitNet family, written here as safetensors, converted,
// and run by the engine; their logits are compared with a float64 evaluation of the transformers
// math written below (packing, scale conventions, absmean, per-token int8 activations, RMSNorm,
// rotate-half rope, sub-norms, ReLU^2 / SiLU). Bad checkpoints must fail with one line and no file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "bitnet/error.h"
#include "bitnet/formats.h"
#include "bitnet/gguf.h"
#include "bitnet/model.h"
#include "convert/convert.h"
#include "convert/model_writer.h"
#include "convert/safetensors.h"
#include "convert/ternarize.h"
#include "fixtures.h"
#include "reference_model.h"

namespace bitnet {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Vec = std::vector<double>;
using test::ref::relative_error;

// ---- a safetensors writer --------------------------------------------------------------------

struct StEntry {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

// `header_edit` may change the header JSON before it is written (lying headers).
void write_safetensors(const fs::path& path, const std::vector<StEntry>& entries,
                       const std::function<void(json&)>& header_edit = nullptr) {
  json header = json::object();
  std::string data;
  for (const StEntry& e : entries) {
    header[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {data.size(), data.size() + e.bytes.size()}}};
    data += e.bytes;
  }
  header["__metadata__"] = {{"format", "pt"}};
  if (header_edit) header_edit(header);
  std::string h = header.dump();
  h.resize((h.size() + 7) / 8 * 8, ' ');
  std::ofstream out(path, std::ios::binary);
  uint64_t n = h.size();
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = (char)(n >> (8 * i));
  out.write(len, 8);
  out << h << data;
}

std::string encode_floats(const std::vector<float>& v, const std::string& dtype) {
  std::string out;
  for (float x : v) {
    if (dtype == "F32") {
      out.append(reinterpret_cast<const char*>(&x), 4);
    } else {
      const uint16_t h = dtype == "BF16" ? fp32_to_bf16(x) : fp32_to_fp16(x);
      out += (char)(h & 0xff);
      out += (char)(h >> 8);
    }
  }
  return out;
}

// Rounds through the dtype, so that the test keeps exactly what the file holds.
float as_dtype(float x, const std::string& dtype) {
  if (dtype == "BF16") return bf16_to_fp32(fp32_to_bf16(x));
  if (dtype == "F16") return fp16_to_fp32(fp32_to_fp16(x));
  return x;
}

// ---- test checkpoints ------------------------------------------------------------------------

enum class Family { BitNetPacked, BitNetMaster, LlamaBitnet, BitnetFp16 };

struct Lin {
  int64_t out = 0, in = 0;
  std::vector<int8_t> t;  // packed families: the ternary values
  float ws = 0;           // packed families: weight_scale
  std::vector<float> w;   // float masters: the stored weights
};

struct Layer {
  std::vector<float> attn_norm, ffn_norm, attn_sub, ffn_sub;
  Lin q, k, v, o, gate, up, down;
};

struct Ckpt {
  Family fam;
  int64_t vocab = 272, embd = 64, layers = 2, ff = 160, heads = 4, heads_kv = 2;
  double theta = 10000, eps = 1e-5;
  std::string dtype = "BF16";  // of floats
  std::vector<float> embed, lm_head, norm;
  std::vector<Layer> l;

  int64_t hd() const { return embd / heads; }
  bool packed() const { return fam == Family::BitNetPacked || fam == Family::LlamaBitnet; }
  bool sub_norms() const { return fam != Family::LlamaBitnet; }
  bool relu2() const { return fam == Family::BitNetPacked || fam == Family::BitNetMaster; }
  bool tied() const { return fam == Family::BitNetPacked || fam == Family::BitNetMaster; }
};

std::vector<float> random_floats(std::mt19937& rng, size_t n, float mean, float sd, const std::string& dtype) {
  std::normal_distribution<float> d(mean, sd);
  std::vector<float> v(n);
  for (float& x : v) x = as_dtype(d(rng), dtype);
  return v;
}

Lin random_linear(std::mt19937& rng, const Ckpt& c, int64_t out, int64_t in) {
  Lin l;
  l.out = out, l.in = in;
  if (c.packed()) {
    std::uniform_int_distribution<int> d(-1, 1);
    l.t.resize((size_t)(out * in));
    for (int8_t& x : l.t) x = (int8_t)d(rng);
    // Powers of two: 1/ws is exact in f16 too (TQ formats store the scale as f16).
    const float choices[] = {0.25f, 0.5f, 2.0f, 4.0f};
    l.ws = choices[std::uniform_int_distribution<int>(0, 3)(rng)];
  } else {
    l.w = random_floats(rng, (size_t)(out * in), 0.f, 0.02f, c.dtype);
  }
  return l;
}

Ckpt make_ckpt(Family fam, uint32_t seed, int64_t embd = 64, int64_t ff = 0) {
  Ckpt c;
  c.fam = fam;
  c.embd = embd;
  std::mt19937 rng(seed);
  if (fam == Family::LlamaBitnet) c.theta = 500000, c.dtype = "F32";
  if (fam == Family::BitnetFp16) c.ff = 200, c.dtype = "F16";  // 200: not a multiple of 128 or 256
  if (ff) c.ff = ff;
  c.embed = random_floats(rng, (size_t)(c.vocab * c.embd), 0.f, 1.f, c.dtype);
  if (!c.tied()) c.lm_head = random_floats(rng, (size_t)(c.vocab * c.embd), 0.f, 0.5f, c.dtype);
  c.norm = random_floats(rng, (size_t)c.embd, 1.f, 0.1f, c.dtype);
  const int64_t q = c.heads * c.hd(), kv = c.heads_kv * c.hd();
  for (int64_t i = 0; i < c.layers; ++i) {
    Layer L;
    L.attn_norm = random_floats(rng, (size_t)c.embd, 1.f, 0.1f, c.dtype);
    L.ffn_norm = random_floats(rng, (size_t)c.embd, 1.f, 0.1f, c.dtype);
    if (c.sub_norms()) {
      L.attn_sub = random_floats(rng, (size_t)q, 1.f, 0.1f, c.dtype);
      L.ffn_sub = random_floats(rng, (size_t)c.ff, 1.f, 0.1f, c.dtype);
    }
    L.q = random_linear(rng, c, q, c.embd);
    L.k = random_linear(rng, c, kv, c.embd);
    L.v = random_linear(rng, c, kv, c.embd);
    L.o = random_linear(rng, c, c.embd, q);
    L.gate = random_linear(rng, c, c.ff, c.embd);
    L.up = random_linear(rng, c, c.ff, c.embd);
    L.down = random_linear(rng, c, c.embd, c.ff);
    c.l.push_back(std::move(L));
  }
  return c;
}

// transformers' pack_weights: row block i of the out/4 packed rows in bits 2i..2i+1, code = t + 1.
std::string pack(const Lin& l) {
  const int64_t P = l.out / 4;
  std::string out((size_t)(P * l.in), '\0');
  for (int64_t m = 0; m < l.out; ++m)
    for (int64_t c = 0; c < l.in; ++c)
      out[(size_t)((m % P) * l.in + c)] |= (char)((l.t[(size_t)(m * l.in + c)] + 1) << (2 * (m / P)));
  return out;
}

std::vector<StEntry> tensors_of(const Ckpt& c) {
  std::vector<StEntry> e;
  auto floats = [&](const std::string& name, const std::vector<float>& v, std::vector<int64_t> shape) {
    e.push_back({name, c.dtype, std::move(shape), encode_floats(v, c.dtype)});
  };
  floats("model.embed_tokens.weight", c.embed, {c.vocab, c.embd});
  if (!c.tied()) floats("lm_head.weight", c.lm_head, {c.vocab, c.embd});
  floats("model.norm.weight", c.norm, {c.embd});
  const bool bitnet = c.fam == Family::BitnetFp16;
  for (int64_t i = 0; i < c.layers; ++i) {
    const Layer& L = c.l[(size_t)i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    floats(p + "input_layernorm.weight", L.attn_norm, {c.embd});
    floats(p + "post_attention_layernorm.weight", L.ffn_norm, {c.embd});
    if (c.sub_norms()) {
      floats(p + (bitnet ? "self_attn.inner_attn_ln.weight" : "self_attn.attn_sub_norm.weight"), L.attn_sub,
             {(int64_t)L.attn_sub.size()});
      floats(p + (bitnet ? "mlp.ffn_layernorm.weight" : "mlp.ffn_sub_norm.weight"), L.ffn_sub, {c.ff});
    }
    const std::pair<const char*, const Lin*> lins[] = {
        {"self_attn.q_proj", &L.q}, {"self_attn.k_proj", &L.k}, {"self_attn.v_proj", &L.v},
        {"self_attn.o_proj", &L.o}, {"mlp.gate_proj", &L.gate}, {"mlp.up_proj", &L.up},
        {"mlp.down_proj", &L.down}};
    for (const auto& [name, lin] : lins) {
      if (c.packed()) {
        e.push_back({p + name + ".weight", "U8", {lin->out / 4, lin->in}, pack(*lin)});
        e.push_back({p + name + ".weight_scale", "BF16", {1}, encode_floats({lin->ws}, "BF16")});
      } else {
        floats(p + name + ".weight", lin->w, {lin->out, lin->in});
      }
    }
  }
  return e;
}

json config_of(const Ckpt& c) {
  json j = {{"hidden_size", c.embd}, {"num_hidden_layers", c.layers}, {"intermediate_size", c.ff},
            {"num_attention_heads", c.heads}, {"num_key_value_heads", c.heads_kv}, {"vocab_size", c.vocab},
            {"max_position_embeddings", 256}, {"rope_theta", c.theta}, {"rms_norm_eps", c.eps},
            {"tie_word_embeddings", c.tied()}};
  switch (c.fam) {
    case Family::BitNetPacked:
      j["architectures"] = {"BitNetForCausalLM"};
      j["hidden_act"] = "relu2";
      j["quantization_config"] = {{"quant_method", "bitnet"}, {"linear_class", "autobitlinear"},
                                  {"quantization_mode", "offline"}};
      break;
    case Family::BitNetMaster:
      j["architectures"] = {"BitNetForCausalLM"};
      j["hidden_act"] = "relu2";
      break;
    case Family::LlamaBitnet:
      j["architectures"] = {"LlamaForCausalLM"};
      j["hidden_act"] = "silu";
      j["quantization_config"] = {{"quant_method", "bitnet"}, {"modules_to_not_convert", {"lm_head"}}};
      break;
    case Family::BitnetFp16:
      j["architectures"] = {"BitnetForCausalLM"};
      j["hidden_act"] = "silu";
      break;
  }
  return j;
}

// GPT-2's byte-to-unicode map.
std::string byte_text(int b) {
  int cp = b;
  if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
    int n = 0;
    for (int x = 0; x < b; ++x)
      if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) ++n;
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) s += (char)cp;
  else {
    s += (char)(0xC0 | (cp >> 6));
    s += (char)(0x80 | (cp & 0x3F));
  }
  return s;
}

// A byte-level tokenizer.json of 256 byte tokens and two specials (no merges).
void write_small_tokenizer(const fs::path& dir) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_text(b)] = b;
  json tok = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}},
              {"added_tokens", {{{"id", 256}, {"content", "<|begin_of_text|>"}, {"special", true}},
                                {{"id", 257}, {"content", "<|end_of_text|>"}, {"special", true}}}},
              {"pre_tokenizer", {{"type", "ByteLevel"}}},
              {"decoder", {{"type", "ByteLevel"}}}};
  std::ofstream(dir / "tokenizer.json") << tok.dump();
  json tc = {{"bos_token", "<|begin_of_text|>"}, {"eos_token", {{"content", "<|end_of_text|>"}}},
             {"add_bos_token", true}, {"chat_template", "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"}};
  std::ofstream(dir / "tokenizer_config.json") << tc.dump();
}

fs::path write_ckpt(const Ckpt& c, const std::string& name, int shards = 1) {
  const fs::path dir = test::scratch_dir() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << config_of(c).dump(2);
  write_small_tokenizer(dir);
  const std::vector<StEntry> all = tensors_of(c);
  if (shards == 1) {
    write_safetensors(dir / "model.safetensors", all);
  } else {
    json map = json::object();
    for (int s = 0; s < shards; ++s) {
      char file[64];
      std::snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", s + 1, shards);
      std::vector<StEntry> part;
      for (size_t i = (size_t)s; i < all.size(); i += (size_t)shards) {
        part.push_back(all[i]);
        map[all[i].name] = file;
      }
      write_safetensors(dir / file, part);
    }
    std::ofstream(dir / "model.safetensors.index.json") << json{{"metadata", json::object()}, {"weight_map", map}}.dump();
  }
  return dir;
}

// ---- the transformers math in float64 (tests/reference_model.h) -------------------------------

// BitLinear / AutoBitLinear: the family's ternary values and scale (packed: weight_scale, which
// BitLinear divides by and AutoBitLinear multiplies with; float masters: absmean ternarization).
Vec linear(const Ckpt& c, const Lin& l, const Vec& x) {
  if (c.packed())
    return test::ref::bitlinear(l.t, c.fam == Family::LlamaBitnet ? 1.0 / l.ws : l.ws, l.in, l.out, x);
  double sum = 0;
  for (float w : l.w) sum += std::fabs((double)w);
  const double beta = std::max(sum / (double)l.w.size(), 1e-5);
  std::vector<int8_t> t(l.w.size());
  for (size_t i = 0; i < l.w.size(); ++i) t[i] = (int8_t)std::clamp(std::nearbyint(l.w[i] / beta), -1.0, 1.0);
  return test::ref::bitlinear(t, beta, l.in, l.out, x);
}

std::vector<Vec> reference_logits(const Ckpt& c, const std::vector<int32_t>& tokens) {
  using test::ref::Proj;
  test::ref::Transformer m;
  m.embd = c.embd, m.heads = c.heads, m.kv_heads = c.heads_kv, m.ff = c.ff, m.vocab = c.vocab, m.layers = c.layers;
  m.eps = c.eps, m.theta = c.theta;
  m.neox = true;  // transformers' rotate_half
  m.relu2 = c.relu2();
  m.embed = [&](int32_t t) { return Vec(c.embed.begin() + t * c.embd, c.embed.begin() + (t + 1) * c.embd); };
  m.norms = [&](int64_t l) {
    const Layer& L = c.l[(size_t)l];
    return test::ref::Norms{&L.attn_norm, &L.ffn_norm, c.sub_norms() ? &L.attn_sub : nullptr,
                            c.sub_norms() ? &L.ffn_sub : nullptr};
  };
  m.linear = [&](int64_t l, Proj p, const Vec& x) {
    const Layer& L = c.l[(size_t)l];
    const Lin* w[] = {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down};
    return linear(c, *w[(int)p], x);
  };
  m.output_norm = &c.norm;
  m.head = c.tied() ? &c.embed : &c.lm_head;
  return test::ref::logits(m, tokens);
}

std::vector<std::vector<float>> engine_logits(const std::string& path, const std::vector<int32_t>& tokens) {
  LoadOptions lo;
  lo.n_threads = 2;
  lo.progress = false;
  auto model = Model::load(path, lo);
  ContextParams cp;
  cp.n_threads = 2;
  cp.kv_type = KvType::F32;
  auto ctx = Context::create(*model, cp);
  Batch b;
  for (size_t i = 0; i < tokens.size(); ++i) b.add(tokens[i], (int32_t)i, 0, true);
  ctx->decode(b);
  std::vector<std::vector<float>> out;
  for (size_t i = 0; i < tokens.size(); ++i) out.emplace_back(ctx->logits(i), ctx->logits(i) + model->config().n_vocab);
  return out;
}

const std::vector<int32_t> kTokens = {256, 72, 101, 108, 108, 111, 32, 271, 7, 200};

std::string convert(const fs::path& dir, TensorType type = TensorType::I2_S, TensorType head = TensorType::F32) {
  const std::string out = (test::scratch_dir() / (dir.filename().string() + "-" + type_name(type) + ".gguf")).string();
  ConvertOptions o;
  o.type = type;
  o.head_type = head;
  o.force = true;
  convert_checkpoint(dir.string(), out, o);
  return out;
}

struct Case {
  const char* name;
  Family fam;
  TensorType type;
  int shards;
};

class ConvertFamily : public ::testing::TestWithParam<Case> {};

TEST_P(ConvertFamily, LogitsMatchFloat64TransformersMath) {
  const Case& k = GetParam();
  // Seed 7 put one activation on an int8 rounding boundary (4e-3); other seeds give ~1e-7.
  const Ckpt c = make_ckpt(k.fam, 11);
  const fs::path dir = write_ckpt(c, k.name, k.shards);
  const std::string gguf = convert(dir, k.type);
  const double err = relative_error(engine_logits(gguf, kTokens), reference_logits(c, kTokens));
  std::printf("%s: relative error vs float64: %.3g\n", k.name, err);
  // Float-vs-double rounding can move an activation across an int8 rounding boundary; observed
  // errors are ~1e-7.
  EXPECT_LT(err, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Families, ConvertFamily,
                         ::testing::Values(Case{"bitnet_packed", Family::BitNetPacked, TensorType::I2_S, 1},
                                           Case{"bitnet_bf16_master", Family::BitNetMaster, TensorType::I2_S, 1},
                                           Case{"llama_bitnet_sharded", Family::LlamaBitnet, TensorType::I2_S, 3},
                                           Case{"bitnet_fp16_ff200", Family::BitnetFp16, TensorType::I2_S, 1}),
                         [](const auto& info) { return std::string(info.param.name); });

// TQ files need rows of a multiple of 256 values; their f16 scale holds these weight scales (and
// 1/weight_scale) exactly, so all three types give identical logits.
TEST(ConvertTypes, Tq1AndTq2GiveTheLogitsOfI2s) {
  const Ckpt c = make_ckpt(Family::LlamaBitnet, 5, 256, 512);
  const fs::path dir = write_ckpt(c, "llama_types");
  const auto i2s = engine_logits(convert(dir, TensorType::I2_S), kTokens);
  EXPECT_LT(relative_error(i2s, reference_logits(c, kTokens)), 1e-4);
  EXPECT_EQ(engine_logits(convert(dir, TensorType::TQ2_0), kTokens), i2s);
  EXPECT_EQ(engine_logits(convert(dir, TensorType::TQ1_0), kTokens), i2s);
  const fs::path narrow = write_ckpt(make_ckpt(Family::LlamaBitnet, 3), "llama_types_narrow");
  try {
    convert(narrow, TensorType::TQ2_0);
    ADD_FAILURE() << "rows of 64 values converted to TQ2_0";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of 256"), std::string::npos) << e.what();
  }
}

// quantize's float path: ternary x one scale is recognised (then converted exactly); anything else
// gets transformers' absmean (multiplier 1 / mean|W|, values rounded half to even and clamped).
TEST(Ternarize, CommonMagnitudeAndAbsmean) {
  const std::vector<float> ternary = {0.25f, -0.25f, 0.f, 0.25f, 0.f, -0.25f};
  auto rows_of = [](const std::vector<float>& v) {
    return [&v](int64_t r, float* out) { std::copy(v.begin() + r * 3, v.begin() + r * 3 + 3, out); };
  };
  EXPECT_EQ(common_magnitude(2, 3, rows_of(ternary)), 0.25f);
  const std::vector<float> mixed = {0.25f, -0.5f, 0.f, 0.25f, 0.f, -0.25f};
  EXPECT_EQ(common_magnitude(2, 3, rows_of(mixed)), 0.f);
  const Absmean q = absmean(2, 3, rows_of(mixed));
  EXPECT_FLOAT_EQ(q.scale, 1.25f / 6);
  std::vector<int8_t> t(6);
  ternarize_row(mixed.data(), 6, q.multiplier, t.data());
  EXPECT_EQ(t, (std::vector<int8_t>{1, -1, 0, 1, 0, -1}));
  const std::vector<float> tie = {0.5f, -1.5f, 2.5f};  // mean 1.5: 1/3 -> 0, -1 -> -1, 5/3 -> 1 (clamped 2)
  const Absmean qt = absmean(1, 3, rows_of(tie));
  ternarize_row(tie.data(), 3, qt.multiplier, t.data());
  EXPECT_EQ(std::vector<int8_t>(t.begin(), t.begin() + 3), (std::vector<int8_t>{0, -1, 1}));
}

// ---- bad checkpoints: one line, no output ----------------------------------------------------

class BadCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override { good_ = make_ckpt(Family::BitNetPacked, 11); }

  // Writes the good checkpoint, lets `edit` break it, converts, and checks the error.
  void expect_failure(const std::string& name, const std::function<void(const fs::path&)>& edit,
                      const std::string& needle, int shards = 1) {
    const fs::path dir = write_ckpt(good_, "bad_" + name, shards);
    edit(dir);
    const fs::path out = test::scratch_dir() / ("bad_" + name + ".gguf");
    fs::remove(out);
    ConvertOptions o;
    try {
      convert_checkpoint(dir.string(), out.string(), o);
      ADD_FAILURE() << name << ": converted without error";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(needle), std::string::npos) << name << ": " << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << name << ": not one line: " << msg;
    }
    EXPECT_FALSE(fs::exists(out)) << name;
    EXPECT_FALSE(fs::exists(out.string() + ".partial")) << name;
  }

  void rewrite(const fs::path& dir, const std::function<void(std::vector<StEntry>&)>& edit,
               const std::function<void(json&)>& header_edit = nullptr) {
    std::vector<StEntry> t = tensors_of(good_);
    edit(t);
    write_safetensors(dir / "model.safetensors", t, header_edit);
  }
  void edit_config(const fs::path& dir, const std::function<void(json&)>& edit) {
    json j = config_of(good_);
    edit(j);
    std::ofstream(dir / "config.json") << j.dump();
  }

  Ckpt good_;
};

TEST_F(BadCheckpoint, MissingTensor) {
  expect_failure("missing", [&](const fs::path& d) {
    rewrite(d, [](auto& t) { std::erase_if(t, [](const StEntry& e) { return e.name == "model.layers.1.mlp.down_proj.weight"; }); });
  }, "model.layers.1.mlp.down_proj.weight");
}

TEST_F(BadCheckpoint, MissingWeightScale) {
  expect_failure("noscale", [&](const fs::path& d) {
    rewrite(d, [](auto& t) { std::erase_if(t, [](const StEntry& e) { return e.name == "model.layers.0.self_attn.k_proj.weight_scale"; }); });
  }, "weight_scale");
}

TEST_F(BadCheckpoint, WrongShape) {
  expect_failure("shape", [&](const fs::path& d) {
    rewrite(d, [](auto& t) {
      for (StEntry& e : t)
        if (e.name == "model.layers.0.self_attn.q_proj.weight") e.shape = {8, 128};
    });
  }, "model.layers.0.self_attn.q_proj.weight' has shape [8, 128], expected [16, 64]");
}

TEST_F(BadCheckpoint, UnknownArchitecture) {
  expect_failure("arch", [&](const fs::path& d) { edit_config(d, [](json& j) { j["architectures"] = {"MistralForCausalLM"}; }); },
                 "architecture 'MistralForCausalLM' is not supported");
}

TEST_F(BadCheckpoint, UnknownQuantMethod) {
  expect_failure("method", [&](const fs::path& d) {
    edit_config(d, [](json& j) { j["quantization_config"]["quant_method"] = "gptq"; });
  }, "quant_method 'gptq'");
}

TEST_F(BadCheckpoint, FloatLlamaIsNotABitNetCheckpoint) {
  good_ = make_ckpt(Family::LlamaBitnet, 11);
  expect_failure("float_llama", [&](const fs::path& d) { edit_config(d, [](json& j) { j.erase("quantization_config"); }); },
                 "not a BitNet checkpoint");
}

TEST_F(BadCheckpoint, WrongActivation) {
  expect_failure("act", [&](const fs::path& d) { edit_config(d, [](json& j) { j["hidden_act"] = "silu"; }); },
                 "hidden_act 'silu'");
}

TEST_F(BadCheckpoint, TruncatedSafetensors) {
  expect_failure("truncated", [&](const fs::path& d) {
    fs::resize_file(d / "model.safetensors", fs::file_size(d / "model.safetensors") - 100);
  }, "outside the data section");
  expect_failure("tiny", [&](const fs::path& d) { fs::resize_file(d / "model.safetensors", 5); }, "truncated");
}

TEST_F(BadCheckpoint, HeaderLengthBeyondTheFile) {
  expect_failure("header_len", [&](const fs::path& d) {
    std::fstream f(d / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    const char huge[8] = {0, 0, 0, 0x10, 0, 0, 0, 0};
    f.write(huge, 8);
  }, "header length");
}

TEST_F(BadCheckpoint, LyingOffsets) {
  expect_failure("size_mismatch", [&](const fs::path& d) {
    rewrite(d, [](auto&) {}, [](json& h) { h["model.norm.weight"]["data_offsets"][1] = h["model.norm.weight"]["data_offsets"][1].get<uint64_t>() - 2; });
  }, "data_offsets span");
  expect_failure("overlap", [&](const fs::path& d) {
    rewrite(d, [](auto&) {}, [](json& h) {
      h["model.norm.weight"]["data_offsets"] = h["model.embed_tokens.weight"]["data_offsets"];
      h["model.norm.weight"]["shape"] = h["model.embed_tokens.weight"]["shape"];
    });
  }, "overlap");
  expect_failure("not_json", [&](const fs::path& d) {
    std::fstream f(d / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8);
    f.write("[[[", 3);
  }, "not valid JSON");
}

TEST_F(BadCheckpoint, ShardMissingOrLackingATensor) {
  expect_failure("shard_missing", [&](const fs::path& d) { fs::remove(d / "model-00002-of-00002.safetensors"); },
                 "model-00002-of-00002.safetensors: cannot open", 2);
  expect_failure("shard_lacks", [&](const fs::path& d) {
    std::ifstream in(d / "model.safetensors.index.json");
    json index = json::parse(in);
    index["weight_map"]["model.norm.weight"] = "model-00002-of-00002.safetensors";
    index["weight_map"]["model.embed_tokens.weight"] = "model-00002-of-00002.safetensors";
    std::ofstream(d / "model.safetensors.index.json") << index.dump();
  }, "which the index puts there", 2);
}

// Found while writing (code 3 is not a ternary value): the partial file is removed.
TEST_F(BadCheckpoint, PackedCodeThree) {
  expect_failure("code3", [&](const fs::path& d) {
    rewrite(d, [](auto& t) {
      for (StEntry& e : t)
        if (e.name == "model.layers.1.mlp.up_proj.weight") e.bytes[5] = (char)0xff;
    });
  }, "packed code 3");
}

TEST_F(BadCheckpoint, NoTokenizer) {
  expect_failure("no_tokenizer", [&](const fs::path& d) { fs::remove(d / "tokenizer.json"); }, "no tokenizer.json or tokenizer.model");
}

// A zero-width float tensor's row is nothing to read: the caller's buffer may then be null, which
// memcpy must not get (found by fuzz_safetensors under UBSan; checked by make test-sanitize).
TEST(Safetensors, ZeroWidthRowReadsNothing) {
  for (const char* dtype : {"F32", "F16", "BF16"}) {
    StTensor t;
    t.name = "empty";
    t.dtype = dtype;
    t.shape = {3, 0};
    read_float_row(t, 2, nullptr);
  }
}

TEST(Convert, RefusesToOverwriteWithoutForce) {
  const fs::path dir = write_ckpt(make_ckpt(Family::BitNetPacked, 11), "overwrite");
  const fs::path out = test::scratch_dir() / "overwrite.gguf";
  std::ofstream(out) << "precious";
  ConvertOptions o;
  EXPECT_THROW(convert_checkpoint(dir.string(), out.string(), o), Error);
  std::ifstream in(out);
  std::string text;
  in >> text;
  EXPECT_EQ(text, "precious");
}

// Rows quantized on several threads, a slab at a time, are the bytes of a loop over the rows; the
// slabs cover every row once, in order, with after_slab told each boundary.
TEST(ModelWriter, QuantizedRowsEqualARowLoopOnAnyThreadsAndSlabs) {
  const uint64_t ne0 = 512, rows = 37, row_bytes = row_nbytes(TensorType::Q6_K, ne0);
  auto fill = [&](uint64_t r, float* x) {
    std::mt19937 rng((uint32_t)r);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    for (uint64_t i = 0; i < ne0; ++i) x[i] = normal(rng);
  };
  std::vector<uint8_t> want(rows * row_bytes);
  std::vector<float> x(ne0);
  for (uint64_t r = 0; r < rows; ++r) {
    fill(r, x.data());
    quantize_row(TensorType::Q6_K, x.data(), want.data() + r * row_bytes, (int64_t)ne0);
  }
  // One row per slab, 5 rows with a short last slab, and everything in one slab.
  for (uint64_t slab_bytes : {uint64_t{1}, 5 * row_bytes, uint64_t{1} << 24})
    for (int threads : {1, 3}) {
      SCOPED_TRACE("slab " + std::to_string(slab_bytes) + " bytes, " + std::to_string(threads) + " threads");
      const std::string path = (test::scratch_dir() / "rows.gguf").string();
      ModelFileWriter out(path, "test");
      out.declare("t", {ne0, rows}, TensorType::Q6_K);
      out.open(true);
      ThreadPool pool(threads);
      std::vector<uint64_t> boundaries;
      write_quantized_rows(out, TensorType::Q6_K, ne0, rows, pool, fill,
                           [&](uint64_t done) { boundaries.push_back(done); }, slab_bytes);
      out.finish();
      const uint64_t slab_rows = std::clamp<uint64_t>(slab_bytes / row_bytes, 1, rows);
      ASSERT_EQ(boundaries.size(), (rows + slab_rows - 1) / slab_rows);
      for (size_t i = 0; i < boundaries.size(); ++i) EXPECT_EQ(boundaries[i], std::min(rows, (i + 1) * slab_rows));
      auto file = gguf::File::open(path);
      const gguf::TensorInfo* t = file->find_tensor("t");
      ASSERT_NE(t, nullptr);
      ASSERT_EQ(t->nbytes, want.size());
      EXPECT_EQ(std::memcmp(t->data, want.data(), want.size()), 0);
    }
}

// write_rows on several threads writes the bytes of write_row calls, also where I2_S groups of 128
// values straddle rows (ne0 200) and when row-at-a-time and slab writes mix.
TEST(ModelWriter, TernaryRowsOnThreadsEqualRowByRow) {
  for (TensorType t : {TensorType::TQ1_0, TensorType::TQ2_0, TensorType::I2_S})
    for (uint64_t ne0 : {uint64_t{256}, uint64_t{512}, uint64_t{200}}) {
      if (t != TensorType::I2_S && ne0 % 256 != 0) continue;
      SCOPED_TRACE(std::string(type_name(t)) + " ne0 " + std::to_string(ne0));
      const uint64_t rows = 32;
      std::vector<int8_t> values(rows * ne0);
      std::mt19937 rng(7);
      for (int8_t& v : values) v = (int8_t)((int)(rng() % 3) - 1);
      std::string bytes[2];
      for (int way = 0; way < 2; ++way) {
        const std::string path = (test::scratch_dir() / "ternary.gguf").string();
        ModelFileWriter out(path, "test");
        out.gguf().set("general.architecture", gguf::Value::of_string("bitnet-b1.58"));  // I2_S's type id
        out.declare("t", {ne0, rows}, t);
        out.open(true);
        ThreadPool pool(3);
        TernaryTensorEncoder enc(out, "t", t, ne0, rows);
        if (way == 0) {
          for (uint64_t r = 0; r < rows; ++r) enc.write_row(values.data() + r * ne0, 0.5f);
        } else {  // 16 rows (whole I2_S groups), 1 row, 15 rows (for ne0 200, after a partial group)
          enc.write_rows(values.data(), 16, 0.5f, pool);
          enc.write_row(values.data() + 16 * ne0, 0.5f);
          enc.write_rows(values.data() + 17 * ne0, rows - 17, 0.5f, pool);
        }
        enc.finish();
        out.finish();
        std::ifstream in(path, std::ios::binary);
        bytes[way].assign(std::istreambuf_iterator<char>(in), {});
      }
      EXPECT_EQ(bytes[0], bytes[1]);
    }
}

// The converter's head requantization on several threads writes the file one thread writes.
TEST(Convert, ThreadsDoNotChangeTheFile) {
  const fs::path dir = write_ckpt(make_ckpt(Family::BitNetPacked, 11, 256, 512), "threads");
  std::string bytes[2];
  for (int i = 0; i < 2; ++i) {
    const fs::path out = test::scratch_dir() / ("threads-" + std::to_string(i) + ".gguf");
    ConvertOptions o;
    o.type = TensorType::TQ1_0;
    o.head_type = TensorType::Q6_K;
    o.n_threads = i == 0 ? 1 : 3;
    o.force = true;
    convert_checkpoint(dir.string(), out.string(), o);
    std::ifstream in(out, std::ios::binary);
    bytes[i].assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_FALSE(bytes[0].empty());
  EXPECT_EQ(bytes[0], bytes[1]);
}

// The GGUF carries the checkpoint's tokenizer, tokenizer_config's BOS/EOS and chat template.
TEST(Convert, TokenizerAndChatTemplateGoIntoTheGguf) {
  const fs::path dir = write_ckpt(make_ckpt(Family::BitNetPacked, 11), "tokenizer_small");
  LoadOptions lo;
  lo.progress = false;
  auto model = Model::load(convert(dir), lo);
  auto reference = Tokenizer::from_file((dir / "tokenizer.json").string());
  EXPECT_EQ(model->tokenizer().encode("Hello, world", true, true), (std::vector<int32_t>{256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100}));
  EXPECT_EQ(model->tokenizer().eos(), 257);
  EXPECT_EQ(model->chat_template(), "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}");
  EXPECT_EQ(model->tokenizer().encode("Hello, world", false, false), reference->encode("Hello, world", false, false));
}

// Real tokenizers (LLaMA 3 tokenizer.json with its tokenizer_config, LLaMA 2 tokenizer.model):
// the converted GGUF's tokenizer gives the ids the checkpoint's tokenizer gives.
void expect_same_ids(const fs::path& dir, const fs::path& source) {
  LoadOptions lo;
  lo.progress = false;
  auto model = Model::load(convert(dir, TensorType::I2_S, TensorType::F16), lo);
  auto reference = Tokenizer::from_file(source.string());
  const char* texts[] = {"Hello, world! 123 4567", "  leading spaces and\ttabs\n\nnew lines",
                         "Unicode: caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x99\x82",
                         "<|begin_of_text|>special<|eot_id|> text", "don't you'll we've"};
  for (const char* t : texts)
    for (bool special : {false, true})
      EXPECT_EQ(model->tokenizer().encode(t, true, special), reference->encode(t, true, special)) << t;
  EXPECT_EQ(model->tokenizer().bos(), reference->bos());
}

TEST(ConvertTokenizer, Llama3TokenizerJsonGivesTheSameIds) {
  BITNET_REQUIRE_FIXTURE("tokenizers/llama3_tokenizer.json");
  Ckpt c = make_ckpt(Family::BitNetPacked, 11);
  c.vocab = 128256, c.layers = 1;
  c.embed.assign((size_t)(c.vocab * c.embd), 0.5f);  // only the tokenizer matters here
  c.l.resize(1);
  const fs::path dir = write_ckpt(c, "tokenizer_llama3");
  fs::copy_file(test::fixture("tokenizers/llama3_tokenizer.json"), dir / "tokenizer.json", fs::copy_options::overwrite_existing);
  fs::copy_file(test::fixture("tokenizers/llama3_tokenizer_config.json"), dir / "tokenizer_config.json", fs::copy_options::overwrite_existing);
  expect_same_ids(dir, dir / "tokenizer.json");
}

TEST(ConvertTokenizer, Llama2TokenizerModelGivesTheSameIds) {
  BITNET_REQUIRE_FIXTURE("tokenizers/llama2_tokenizer.model");
  Ckpt c = make_ckpt(Family::BitnetFp16, 11);
  c.vocab = 32002, c.layers = 1;
  c.embed.assign((size_t)(c.vocab * c.embd), 0.5f);  // only the tokenizer matters here
  c.lm_head = c.embed;
  c.l.resize(1);
  const fs::path dir = write_ckpt(c, "tokenizer_llama2");
  fs::remove(dir / "tokenizer.json");
  fs::copy_file(test::fixture("tokenizers/llama2_tokenizer.model"), dir / "tokenizer.model");
  std::ofstream(dir / "tokenizer_config.json") << json{{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"add_bos_token", true}}.dump();
  expect_same_ids(dir, dir / "tokenizer.model");
}

}  // namespace
}  // namespace bitnet
