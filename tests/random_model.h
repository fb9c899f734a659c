// Small random models of each architecture, written as GGUF files independently of the engine,
// with the values that define them (for a reference evaluation). Shared by the model tests.
#pragma once
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "bitnet/formats.h"
#include "bitnet/gguf.h"
#include "bitnet/tokenizer.h"

namespace bitnet::test {

struct Spec {
  std::string arch = "bitnet-b1.58";
  TensorType type = TensorType::I2_S;  // of the linear weights (F32 = a float model)
  TensorType embd_type = TensorType::F32;
  int64_t embd = 256, ff = 512, heads = 4, kv_heads = 2, layers = 2, vocab = 300, ctx = 64;
  float theta = 10000.f, eps = 1e-5f;
};

// A linear weight as the model defines it: ternary values and a scale, or plain floats.
struct Weight {
  int64_t in = 0, out = 0;
  std::vector<int8_t> t;   // out x in, for ternary
  float scale = 0;
  std::vector<float> f;    // out x in, for float
};

struct RefLayer {
  std::vector<float> attn_norm, ffn_norm, attn_sub_norm, ffn_sub_norm;
  Weight wq, wk, wv, wo, gate, up, down;
};

struct RefModel {
  Spec spec;
  std::vector<float> embd;  // vocab x embd, the values the stored bytes decode to
  std::vector<uint8_t> embd_bytes;  // as stored, in spec.embd_type
  std::vector<float> output_norm;
  Weight output;            // llama only
  std::vector<RefLayer> layers;
  bool bitnet() const { return spec.arch != "llama"; }
};

inline RefModel make_model(const Spec& s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_int_distribution<int> trit(-1, 1), scale_steps(16, 64);
  auto vec = [&](int64_t n, float mean, float sd) {
    std::vector<float> v((size_t)n);
    for (auto& x : v) x = mean + sd * normal(rng);
    return v;
  };
  auto weight = [&](int64_t in, int64_t out) {
    Weight w;
    w.in = in;
    w.out = out;
    if (s.type == TensorType::F32) {
      w.f = vec(in * out, 0.f, 1.f / std::sqrt((float)in));
    } else {
      w.t.resize((size_t)(in * out));
      for (auto& x : w.t) x = (int8_t)trit(rng);
      w.scale = (float)scale_steps(rng) / 1024.f;  // exact in f16, as TQ formats store it
    }
    return w;
  };
  RefModel m;
  m.spec = s;
  m.embd = vec(s.vocab * s.embd, 0.f, 1.f);
  // The model is defined by the stored bytes: keep them, and the values they decode to.
  const uint64_t embd_row = row_nbytes(s.embd_type, (uint64_t)s.embd);
  m.embd_bytes.resize(embd_row * (size_t)s.vocab);
  for (int64_t r = 0; r < s.vocab; ++r) {
    quantize_row(s.embd_type, m.embd.data() + r * s.embd, m.embd_bytes.data() + r * embd_row, s.embd);
    dequantize_row(s.embd_type, m.embd_bytes.data() + r * embd_row, m.embd.data() + r * s.embd, s.embd);
  }
  m.output_norm = vec(s.embd, 1.f, 0.1f);
  const int64_t hd = s.embd / s.heads;
  for (int64_t l = 0; l < s.layers; ++l) {
    RefLayer L;
    L.attn_norm = vec(s.embd, 1.f, 0.1f);
    L.ffn_norm = vec(s.embd, 1.f, 0.1f);
    if (m.bitnet()) {
      L.attn_sub_norm = vec(s.embd, 1.f, 0.1f);
      L.ffn_sub_norm = vec(s.ff, 1.f, 0.1f);
    }
    L.wq = weight(s.embd, s.heads * hd);
    L.wk = weight(s.embd, s.kv_heads * hd);
    L.wv = weight(s.embd, s.kv_heads * hd);
    L.wo = weight(s.heads * hd, s.embd);
    L.gate = weight(s.embd, s.ff);
    L.up = weight(s.embd, s.ff);
    L.down = weight(s.ff, s.embd);
    m.layers.push_back(std::move(L));
  }
  if (!m.bitnet()) {
    m.output.in = s.embd;
    m.output.out = s.vocab;
    m.output.f = vec(s.vocab * s.embd, 0.f, 0.1f);
  }
  return m;
}

// ---- writing the model as a GGUF file (independently of the engine) --------------------------

inline void write_model(const RefModel& m, const std::string& path) {
  const Spec& s = m.spec;
  gguf::Writer w;
  const std::string a = s.arch + ".";
  w.set("general.architecture", gguf::Value::of_string(s.arch));
  w.set(a + "context_length", gguf::Value::of_u32((uint32_t)s.ctx));
  w.set(a + "embedding_length", gguf::Value::of_u32((uint32_t)s.embd));
  w.set(a + "block_count", gguf::Value::of_u32((uint32_t)s.layers));
  w.set(a + "feed_forward_length", gguf::Value::of_u32((uint32_t)s.ff));
  w.set(a + "attention.head_count", gguf::Value::of_u32((uint32_t)s.heads));
  w.set(a + "attention.head_count_kv", gguf::Value::of_u32((uint32_t)s.kv_heads));
  w.set(a + "rope.freq_base", gguf::Value::of_f32(s.theta));
  w.set(a + "attention.layer_norm_rms_epsilon", gguf::Value::of_f32(s.eps));
  Tokenizer::synthetic("gpt2", (int32_t)s.vocab)->write_gguf(w);

  struct Pending {
    std::string name;
    std::vector<uint64_t> ne;
    std::vector<uint8_t> bytes;
  };
  std::vector<Pending> tensors;
  auto floats = [&](const std::string& name, const std::vector<float>& v, std::vector<uint64_t> ne, TensorType t) {
    Pending p{name, ne, std::vector<uint8_t>(tensor_nbytes(t, ne[0], v.size() / ne[0]))};
    const uint64_t row = row_nbytes(t, ne[0]);
    for (size_t r = 0; r < v.size() / ne[0]; ++r) quantize_row(t, v.data() + r * ne[0], p.bytes.data() + r * row, (int64_t)ne[0]);
    tensors.push_back({p.name, p.ne, std::move(p.bytes)});
    return t;
  };
  std::vector<std::pair<std::string, TensorType>> types;
  auto linear = [&](const std::string& name, const Weight& wt) {
    if (s.type == TensorType::F32) {
      types.emplace_back(name, floats(name, wt.f, {(uint64_t)wt.in, (uint64_t)wt.out}, TensorType::F32));
      return;
    }
    Pending p{name, {(uint64_t)wt.in, (uint64_t)wt.out}, std::vector<uint8_t>(tensor_nbytes(s.type, wt.in, wt.out))};
    if (s.type == TensorType::I2_S) {
      encode_i2s(wt.t.data(), wt.in * wt.out, p.bytes.data());
      encode_i2s_trailer(wt.scale, p.bytes.data() + wt.in * wt.out / 4);
    } else {
      const uint64_t row = row_nbytes(s.type, wt.in);
      for (int64_t r = 0; r < wt.out; ++r) write_ternary_row(s.type, wt.t.data() + r * wt.in, wt.in, wt.scale, p.bytes.data() + r * row);
    }
    tensors.push_back(std::move(p));
    types.emplace_back(name, s.type);
  };
  tensors.push_back({"token_embd.weight", {(uint64_t)s.embd, (uint64_t)s.vocab}, m.embd_bytes});
  types.emplace_back("token_embd.weight", s.embd_type);
  types.emplace_back("output_norm.weight", floats("output_norm.weight", m.output_norm, {(uint64_t)s.embd}, TensorType::F32));
  if (!m.bitnet()) types.emplace_back("output.weight", floats("output.weight", m.output.f, {(uint64_t)s.embd, (uint64_t)s.vocab}, TensorType::F32));
  for (int64_t l = 0; l < s.layers; ++l) {
    const RefLayer& L = m.layers[(size_t)l];
    const std::string p = "blk." + std::to_string(l) + ".";
    types.emplace_back(p + "attn_norm.weight", floats(p + "attn_norm.weight", L.attn_norm, {(uint64_t)s.embd}, TensorType::F32));
    types.emplace_back(p + "ffn_norm.weight", floats(p + "ffn_norm.weight", L.ffn_norm, {(uint64_t)s.embd}, TensorType::F32));
    if (m.bitnet()) {
      types.emplace_back(p + "attn_sub_norm.weight", floats(p + "attn_sub_norm.weight", L.attn_sub_norm, {(uint64_t)s.embd}, TensorType::F32));
      types.emplace_back(p + "ffn_sub_norm.weight", floats(p + "ffn_sub_norm.weight", L.ffn_sub_norm, {(uint64_t)s.ff}, TensorType::F32));
    }
    linear(p + "attn_q.weight", L.wq);
    linear(p + "attn_k.weight", L.wk);
    linear(p + "attn_v.weight", L.wv);
    linear(p + "attn_output.weight", L.wo);
    linear(p + "ffn_gate.weight", L.gate);
    linear(p + "ffn_up.weight", L.up);
    linear(p + "ffn_down.weight", L.down);
  }
  for (size_t i = 0; i < tensors.size(); ++i)
    w.add_tensor(tensors[i].name, tensors[i].ne, (uint32_t)types[i].second, tensors[i].bytes.size());
  w.write_header(path, /*overwrite=*/true);
  for (const auto& t : tensors) w.write_data(t.bytes.data(), t.bytes.size());
  w.finish();
}

}  // namespace bitnet::test
