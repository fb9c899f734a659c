// A float64 evaluation of the transformer the engine runs, written from the models' definitions
// (transformers' modeling code, the BitNet b1.58 papers) independently of the engine: RMSNorm,
// BitLinear (per-token absmax int8 activations, ternary weights times one scale), rope, causal
// attention with grouped KV heads, optional sub-norms, ReLU^2 or SiLU gated FFN. The tests give it
// the weights through callbacks, so model tests and converter tests share this one reference.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

namespace bitnet::test::ref {

using Vec = std::vector<double>;

inline Vec rmsnorm(const Vec& x, const std::vector<float>& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / (double)x.size() + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * w[i];
  return y;
}

// W1.58A8: y = (t . round(x * 127 / absmax(x))) * scale * absmax(x) / 127; t is out x in.
inline Vec bitlinear(const std::vector<int8_t>& t, double scale, int64_t in, int64_t out, const Vec& x) {
  double amax = 0;
  for (double v : x) amax = std::max(amax, std::fabs(v));
  const double sigma = 127.0 / std::max(amax, 1e-5);
  std::vector<int64_t> q(x.size());
  for (size_t k = 0; k < x.size(); ++k) q[k] = (int64_t)std::clamp(std::nearbyint(x[k] * sigma), -128.0, 127.0);
  Vec y((size_t)out);
  for (int64_t m = 0; m < out; ++m) {
    int64_t dot = 0;
    for (int64_t k = 0; k < in; ++k) dot += t[(size_t)(m * in + k)] * q[(size_t)k];
    y[(size_t)m] = (double)dot * scale / sigma;
  }
  return y;
}

// A float linear layer; w is out x in.
inline Vec float_linear(const std::vector<float>& w, int64_t in, int64_t out, const Vec& x) {
  Vec y((size_t)out, 0.0);
  for (int64_t m = 0; m < out; ++m)
    for (int64_t k = 0; k < in; ++k) y[(size_t)m] += (double)w[(size_t)(m * in + k)] * x[(size_t)k];
  return y;
}

// Rotary embedding of each head: pairs (i, i + hd/2) (NEOX, transformers' rotate_half) or (2i, 2i+1).
inline void rope(Vec& v, int64_t heads, int64_t hd, int64_t pos, double theta, bool neox) {
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < hd / 2; ++i) {
      const double angle = (double)pos * std::pow(theta, -2.0 * (double)i / (double)hd);
      const size_t a = (size_t)(h * hd + (neox ? i : 2 * i)), b = (size_t)(h * hd + (neox ? i + hd / 2 : 2 * i + 1));
      const double x0 = v[a], x1 = v[b];
      v[a] = x0 * std::cos(angle) - x1 * std::sin(angle);
      v[b] = x0 * std::sin(angle) + x1 * std::cos(angle);
    }
}

enum class Proj { Q, K, V, O, Gate, Up, Down };

// One layer's norm weights; a null sub-norm means the architecture has none.
struct Norms {
  const std::vector<float>* attn = nullptr;
  const std::vector<float>* ffn = nullptr;
  const std::vector<float>* attn_sub = nullptr;
  const std::vector<float>* ffn_sub = nullptr;
};

struct Transformer {
  int64_t embd = 0, heads = 0, kv_heads = 0, ff = 0, vocab = 0, layers = 0;
  double eps = 1e-5, theta = 10000;
  bool neox = true;   // rope pairing
  bool relu2 = true;  // FFN activation: ReLU^2 (BitNet b1.58) or SiLU
  std::function<Vec(int32_t token)> embed;                           // [embd]
  std::function<Norms(int64_t layer)> norms;
  std::function<Vec(int64_t layer, Proj, const Vec& x)> linear;      // the layer's projections
  const std::vector<float>* output_norm = nullptr;                   // [embd]
  const std::vector<float>* head = nullptr;                          // [vocab x embd]
};

// Logits at every position of `tokens` (one causal sequence from position 0).
inline std::vector<Vec> logits(const Transformer& m, const std::vector<int32_t>& tokens) {
  const int64_t hd = m.embd / m.heads, group = m.heads / m.kv_heads;
  std::vector<std::vector<Vec>> keys((size_t)m.layers), values((size_t)m.layers);  // [layer][pos][kv_heads*hd]
  std::vector<Vec> result;
  for (size_t p = 0; p < tokens.size(); ++p) {
    Vec x = m.embed(tokens[p]);  // [embd]
    for (int64_t l = 0; l < m.layers; ++l) {
      const Norms n = m.norms(l);
      Vec h = rmsnorm(x, *n.attn, m.eps);
      Vec q = m.linear(l, Proj::Q, h), k = m.linear(l, Proj::K, h), v = m.linear(l, Proj::V, h);
      rope(q, m.heads, hd, (int64_t)p, m.theta, m.neox);
      rope(k, m.kv_heads, hd, (int64_t)p, m.theta, m.neox);
      keys[(size_t)l].push_back(k);
      values[(size_t)l].push_back(v);
      Vec att((size_t)(m.heads * hd), 0.0);  // [heads*hd]
      for (int64_t head = 0; head < m.heads; ++head) {
        const int64_t kvh = head / group;
        Vec scores(p + 1);
        double mx = -1e300, sum = 0;
        for (size_t t = 0; t <= p; ++t) {
          double d = 0;
          for (int64_t i = 0; i < hd; ++i) d += q[(size_t)(head * hd + i)] * keys[(size_t)l][t][(size_t)(kvh * hd + i)];
          scores[t] = d / std::sqrt((double)hd);
          mx = std::max(mx, scores[t]);
        }
        for (auto& sc : scores) sum += (sc = std::exp(sc - mx));
        for (size_t t = 0; t <= p; ++t)
          for (int64_t i = 0; i < hd; ++i)
            att[(size_t)(head * hd + i)] += scores[t] / sum * values[(size_t)l][t][(size_t)(kvh * hd + i)];
      }
      if (n.attn_sub) att = rmsnorm(att, *n.attn_sub, m.eps);
      const Vec o = m.linear(l, Proj::O, att);
      for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
      h = rmsnorm(x, *n.ffn, m.eps);
      Vec g = m.linear(l, Proj::Gate, h);  // [ff]
      const Vec u = m.linear(l, Proj::Up, h);
      for (size_t i = 0; i < g.size(); ++i)
        g[i] = (m.relu2 ? std::pow(std::max(g[i], 0.0), 2) : g[i] / (1 + std::exp(-g[i]))) * u[i];
      if (n.ffn_sub) g = rmsnorm(g, *n.ffn_sub, m.eps);
      const Vec d = m.linear(l, Proj::Down, g);
      for (size_t i = 0; i < x.size(); ++i) x[i] += d[i];
    }
    const Vec out = rmsnorm(x, *m.output_norm, m.eps);
    Vec lg((size_t)m.vocab, 0.0);  // [vocab]
    for (int64_t t = 0; t < m.vocab; ++t)
      for (int64_t i = 0; i < m.embd; ++i) lg[(size_t)t] += (double)(*m.head)[(size_t)(t * m.embd + i)] * out[(size_t)i];
    result.push_back(std::move(lg));
  }
  return result;
}

// Largest |engine - reference| relative to the largest |reference| logit.
inline double relative_error(const std::vector<std::vector<float>>& got, const std::vector<Vec>& want) {
  double max_diff = 0, max_ref = 0;
  for (size_t p = 0; p < want.size(); ++p)
    for (size_t i = 0; i < want[p].size(); ++i) {
      max_diff = std::max(max_diff, std::fabs(got[p][i] - want[p][i]));
      max_ref = std::max(max_ref, std::fabs(want[p][i]));
    }
  return max_diff / max_ref;
}

}  // namespace bitnet::test::ref
