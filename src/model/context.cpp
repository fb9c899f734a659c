// The forward pass (BitNet b1.58 and LLaMA families) over a batch of tokens from any sequences,
// with a per-sequence KV cache. Read top to bottom in ContextImpl::forward().
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "bitnet/attention_kernels.h"
#include "model_impl.h"

namespace bitnet {

namespace {

// The elementwise steps of the forward pass, compiled for several ISAs and picked at load time
// (GCC function multi-versioning) so that they vectorize on every machine the binary runs on.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BITNET_ELEMENTWISE __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BITNET_ELEMENTWISE
#endif

BITNET_ELEMENTWISE void rmsnorm(const float* x, const float* __restrict w, float* out, int64_t n, float eps) {
  // Eight independent double sums: one serial chain of adds would cost more than the rest.
  double part[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) part[k] += (double)x[i + k] * x[i + k];
  for (; i < n; ++i) part[0] += (double)x[i] * x[i];
  const double ss = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  const float inv = (float)(1.0 / std::sqrt(ss / (double)n + eps));
  for (i = 0; i < n; ++i) out[i] = x[i] * inv * w[i];
}

BITNET_ELEMENTWISE void add_in_place(float* __restrict x, const float* __restrict y, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] += y[i];
}

// g = relu(g)^2 * u (BitNet b1.58) or silu(g) * u.
BITNET_ELEMENTWISE void gated_activation(float* __restrict g, const float* __restrict u, int64_t n, bool relu2) {
  if (relu2) {
    for (int64_t j = 0; j < n; ++j) {
      const float r = std::max(g[j], 0.f);
      g[j] = r * r * u[j];
    }
  } else {
    for (int64_t j = 0; j < n; ++j) g[j] = g[j] / (1.f + std::exp(-g[j])) * u[j];
  }
}

class ContextImpl final : public Context {
 public:
  ContextImpl(const ModelImpl& m, const ContextParams& p);

  void decode(const Batch& batch) override;
  const float* logits(size_t j) const override {
    if (j >= n_logits_) throw Error("logits index " + std::to_string(j) + " out of range");
    return logits_.data() + j * (size_t)m_.cfg.n_vocab;
  }
  void clear_sequence(int seq) override {
    if (seq < 0 || seq >= n_seq_) throw Error("sequence " + std::to_string(seq) + " out of range");
    seq_len_[(size_t)seq] = 0;
  }
  int n_ctx() const override { return n_ctx_; }
  int n_seq() const override { return n_seq_; }
  size_t kv_bytes() const override { return kv_bytes_; }
  size_t kv_bytes_per_position() const override {
    return 2 * (size_t)(m_.cfg.n_layer * m_.cfg.n_head_kv) * value_row_bytes_;
  }
  ThreadPool& threads() override { return pool_; }

 private:
  void forward(const int32_t* tokens, const int32_t* pos, const int32_t* seq, const uint8_t* want,
               int64_t n);
  void attention(int64_t layer, const int32_t* pos, const int32_t* seq, int64_t n);
  // Rotary cos/sin of each batch token's position, computed once per forward for all layers.
  void rope_angles(const int32_t* pos, int64_t n);
  // Rotates v (n_heads heads) by the angles of batch token i.
  void rope(float* v, int64_t n_heads, int64_t i) const;
  // The cache of (sequence, layer, KV head): n_ctx positions (whole key tiles) of head_dim values
  // (f16, f32 or Q8_0), so that attention streams one head's positions contiguously. Values are rows; keys are
  // tiles of kKeyTile positions (layouts in attention_kernels.h).
  uint8_t* k_head(int s, int64_t l, int64_t h) {
    return k_cache_.get() + (((size_t)s * m_.cfg.n_layer + l) * m_.cfg.n_head_kv + h) * head_bytes_;
  }
  uint8_t* v_head(int s, int64_t l, int64_t h) {
    return v_cache_.get() + (((size_t)s * m_.cfg.n_layer + l) * m_.cfg.n_head_kv + h) * head_bytes_;
  }
  // Stores the kv_dim keys and values of one token at position p.
  void store_kv(const float* keys, const float* values, int s, int64_t l, int64_t p) {
    const int64_t hd = m_.cfg.head_dim;
    thread_local std::vector<uint16_t> key_f16;  // one head's key before it is spread over its tile
    thread_local std::vector<int8_t> key_q8;
    thread_local std::vector<float> key_scales;
    for (int64_t h = 0; h < m_.cfg.n_head_kv; ++h) {
      uint8_t* tile = k_head(s, l, h) + (size_t)(p / kKeyTile) * key_tile_bytes_;
      uint8_t* v = v_head(s, l, h) + (size_t)p * value_row_bytes_;
      const float* key = keys + h * hd;
      const int64_t lane = p % kKeyTile;
      switch (kv_type_) {
        case KvType::F32:
          for (int64_t d = 0; d < hd; ++d) reinterpret_cast<float*>(tile)[d * kKeyTile + lane] = key[d];
          std::memcpy(v, values + h * hd, value_row_bytes_);
          break;
        case KvType::F16:
          key_f16.resize((size_t)hd);
          kernels().fp32_to_fp16_row(key, key_f16.data(), hd);
          for (int64_t d = 0; d < hd; ++d) reinterpret_cast<uint16_t*>(tile)[d * kKeyTile + lane] = key_f16[(size_t)d];
          kernels().fp32_to_fp16_row(values + h * hd, reinterpret_cast<uint16_t*>(v), hd);
          break;
        case KvType::Q8_0:
          key_q8.resize((size_t)hd);
          key_scales.resize((size_t)(hd / kQ8Block));
          quantize_q8_blocks(key, hd, key_q8.data(), key_scales.data());
          for (int64_t d = 0; d < hd; ++d) tile[d * kKeyTile + lane] = (uint8_t)key_q8[(size_t)d];
          for (int64_t b = 0; b < hd / kQ8Block; ++b)
            std::memcpy(tile + kKeyTile * hd + (b * kKeyTile + lane) * 4, &key_scales[(size_t)b], 4);
          quantize_q8_blocks(values + h * hd, hd, reinterpret_cast<int8_t*>(v), reinterpret_cast<float*>(v + hd));
          break;
      }
    }
  }

  const ModelImpl& m_;
  ThreadPool pool_;
  int n_ctx_, n_seq_, n_batch_;
  KvType kv_type_;
  int64_t q_dim_, kv_dim_;
  // Bytes of one key tile, of one value row, and of one head's keys (or values) for the whole
  // context rounded up to whole tiles.
  size_t key_tile_bytes_, value_row_bytes_, head_bytes_, kv_bytes_;
  std::vector<float> partial_;  // attention partial results per (token, KV head, chunk)
  AlignedBytes k_cache_, v_cache_;
  std::vector<int32_t> seq_len_;
  std::vector<float> rope_inv_freq_;
  std::vector<float> rope_cos_sin_;  // per batch token and rotary pair
  // Activations of the current micro-batch.
  std::vector<float> x_, h_, q_, k_, v_, att_, gate_, up_, ffn_, out_, logits_;
  QuantizedActs qa_;
  size_t n_logits_ = 0;
};

ContextImpl::ContextImpl(const ModelImpl& m, const ContextParams& p)
    : m_(m), pool_(p.n_threads > 0 ? p.n_threads : physical_core_count()) {
  const ModelConfig& c = m.cfg;
  // Like llama.cpp, a context longer than the training context is allowed (the caller warns).
  n_ctx_ = p.n_ctx > 0 ? p.n_ctx : (int)c.n_ctx_train;
  n_seq_ = p.n_seq;
  n_batch_ = p.n_batch;
  if (n_seq_ < 1 || n_seq_ > 1024) throw Error("n_seq " + std::to_string(n_seq_) + " out of range [1, 1024]");
  if (n_batch_ < 1) throw Error("batch size must be positive");
  kv_type_ = p.kv_type;
  q_dim_ = c.n_head * c.head_dim;
  kv_dim_ = c.n_head_kv * c.head_dim;
  if (kv_type_ == KvType::Q8_0 && c.head_dim % kQ8Block != 0)
    throw Error("a q8_0 KV cache needs a head size that is a multiple of 32; this model's is " +
                std::to_string(c.head_dim) + " (use f16)");
  const int64_t tiles = (n_ctx_ + kKeyTile - 1) / kKeyTile;
  value_row_bytes_ = kv_type_ == KvType::Q8_0 ? q8_value_row_bytes(c.head_dim)
                                              : (size_t)c.head_dim * (kv_type_ == KvType::F32 ? 4 : 2);
  key_tile_bytes_ = kKeyTile * value_row_bytes_;  // in every type (q8_key_tile_bytes), so K and V have one size
  head_bytes_ = (size_t)tiles * key_tile_bytes_;
  kv_bytes_ = 2 * (size_t)n_seq_ * c.n_layer * c.n_head_kv * head_bytes_;
  const uint64_t ram = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
  if (n_ctx_ < 1 || kv_bytes_ > ram)
    throw Error("a KV cache for a context of " + std::to_string(n_ctx_) + " tokens x " + std::to_string(n_seq_) +
                " sequences needs " + std::to_string(kv_bytes_ >> 20) + " MiB, more than this machine's memory");
  // Every cache row is written before it is read, so the cache needs no zeroing.
  k_cache_ = allocate_aligned(kv_bytes_ / 2, false);
  v_cache_ = allocate_aligned(kv_bytes_ / 2, false);
  seq_len_.assign((size_t)n_seq_, 0);
  for (int64_t i = 0; i < m.n_rot / 2; ++i)
    rope_inv_freq_.push_back((float)std::pow((double)c.rope_theta, -2.0 * (double)i / (double)m.n_rot));
}

void ContextImpl::decode(const Batch& batch) {
  const size_t n = batch.size();
  if (batch.pos.size() != n || batch.seq.size() != n || batch.want_logits.size() != n)
    throw Error("batch arrays have different lengths");
  // Validate the whole batch before touching the cache.
  std::vector<int32_t> len = seq_len_;
  size_t n_out = 0;
  for (size_t i = 0; i < n; ++i) {
    const int32_t t = batch.token[i], p = batch.pos[i], s = batch.seq[i];
    if (t < 0 || t >= m_.cfg.n_vocab)
      throw Error("token id " + std::to_string(t) + " out of the vocabulary (n_vocab " + std::to_string(m_.cfg.n_vocab) + ")");
    if (s < 0 || s >= n_seq_) throw Error("sequence id " + std::to_string(s) + " out of range [0, " + std::to_string(n_seq_) + ")");
    if (p < 0 || p >= n_ctx_)
      throw Error("position " + std::to_string(p) + " is outside the context of " + std::to_string(n_ctx_) + " tokens");
    if (p > len[(size_t)s])
      throw Error("position " + std::to_string(p) + " of sequence " + std::to_string(s) +
                  " skips positions (the sequence holds " + std::to_string(len[(size_t)s]) + ")");
    len[(size_t)s] = p + 1;
    n_out += batch.want_logits[i] ? 1 : 0;
  }
  logits_.resize(n_out * (size_t)m_.cfg.n_vocab);
  n_logits_ = 0;
  for (size_t b = 0; b < n; b += (size_t)n_batch_) {
    const int64_t nb = (int64_t)std::min(n - b, (size_t)n_batch_);
    forward(&batch.token[b], &batch.pos[b], &batch.seq[b], &batch.want_logits[b], nb);
  }
  seq_len_ = std::move(len);
}

void ContextImpl::rope_angles(const int32_t* pos, int64_t n) {
  const int64_t half = m_.n_rot / 2;
  rope_cos_sin_.resize((size_t)(n * half * 2));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < half; ++j) {
      const double angle = (double)pos[i] * rope_inv_freq_[(size_t)j];
      rope_cos_sin_[(size_t)((i * half + j) * 2)] = (float)std::cos(angle);
      rope_cos_sin_[(size_t)((i * half + j) * 2 + 1)] = (float)std::sin(angle);
    }
}

void ContextImpl::rope(float* v, int64_t n_heads, int64_t i) const {
  const int64_t hd = m_.cfg.head_dim, half = m_.n_rot / 2;
  const float* cs = rope_cos_sin_.data() + i * half * 2;
  for (int64_t j = 0; j < half; ++j) {
    const float c = cs[2 * j], s = cs[2 * j + 1];
    for (int64_t h = 0; h < n_heads; ++h) {
      float* head = v + h * hd;
      // NEOX rotates (j, j + n_rot/2); the original LLaMA layout rotates (2j, 2j + 1).
      float* a = m_.cfg.rope_neox ? head + j : head + 2 * j;
      float* b = m_.cfg.rope_neox ? head + j + half : head + 2 * j + 1;
      const float x0 = *a, x1 = *b;
      *a = x0 * c - x1 * s;
      *b = x0 * s + x1 * c;
    }
  }
}

// Causal attention of every batch token over its sequence's cache. One task covers a (token, KV
// head, chunk of positions) for all the query heads sharing that KV head, so each cached row is
// read once per token; a long context is split into chunks so that single-token generation still
// spreads over the threads. Each chunk keeps its own softmax maximum and sum, merged afterwards.
void ContextImpl::attention(int64_t layer, const int32_t* pos, const int32_t* seq, int64_t n) {
  const ModelConfig& c = m_.cfg;
  const int64_t hd = c.head_dim, group = c.n_head / c.n_head_kv, n_kv = c.n_head_kv;
  const float scale = 1.0f / std::sqrt((float)hd);
  const AttentionKernels& ak = attention_kernels();
  constexpr int64_t kMinChunk = 128;
  const int64_t wanted_tasks = 4 * (int64_t)pool_.size();
  const int64_t max_chunks = std::clamp<int64_t>((wanted_tasks + n * n_kv - 1) / (n * n_kv), 1, 64);
  // Per chunk and query head: the maximum score, the sum of exp, then hd unnormalised outputs.
  const int64_t part = hd + 2;
  partial_.resize((size_t)(n * n_kv * max_chunks * group * part));
  auto chunks_of = [&](int64_t i) { return std::min(max_chunks, (pos[i] + kMinChunk) / kMinChunk); };

  pool_.parallel_for(n * n_kv * max_chunks, [&](int64_t task) {
    const int64_t chunk = task % max_chunks, kvh = (task / max_chunks) % n_kv, i = task / (max_chunks * n_kv);
    const int64_t n_chunks = chunks_of(i);
    if (chunk >= n_chunks) return;
    // Chunks start at key tiles.
    const int64_t n_pos = pos[i] + 1, per_chunk = (n_pos + n_chunks * kKeyTile - 1) / (n_chunks * kKeyTile) * kKeyTile;
    const int64_t t0 = chunk * per_chunk, len = std::min(n_pos, t0 + per_chunk) - t0;
    float* out = partial_.data() + task * group * part;
    if (len <= 0) {
      for (int64_t j = 0; j < group; ++j) out[j * part] = -INFINITY;
      return;
    }
    const float* q = q_.data() + i * q_dim_ + kvh * group * hd;  // the group's query heads
    const uint8_t* k = k_head(seq[i], layer, kvh) + (size_t)(t0 / kKeyTile) * key_tile_bytes_;
    const uint8_t* v = v_head(seq[i], layer, kvh) + (size_t)t0 * value_row_bytes_;
    thread_local std::vector<float> scores, out_acc;
    scores.resize((size_t)(group * len));
    out_acc.assign((size_t)(group * hd), 0.f);
    switch (kv_type_) {
      case KvType::F32: {
        const float* kf = reinterpret_cast<const float*>(k);
        for (int64_t j = 0; j < group; ++j)
          for (int64_t t = 0; t < len; ++t) {
            float d = 0;
            for (int64_t x = 0; x < hd; ++x) d += q[j * hd + x] * kf[key_index(t, x, hd)];
            scores[(size_t)(j * len + t)] = d * scale;
          }
        break;
      }
      case KvType::F16: ak.scores_f16(reinterpret_cast<const uint16_t*>(k), len, hd, q, group, scale, scores.data()); break;
      case KvType::Q8_0: ak.scores_q8(k, len, hd, q, group, scale, scores.data()); break;
    }
    for (int64_t j = 0; j < group; ++j) {
      float* sj = scores.data() + j * len;
      const float mx = *std::max_element(sj, sj + len);
      out[j * part] = mx;
      out[j * part + 1] = ak.exp_sum(sj, len, mx);
    }
    switch (kv_type_) {
      case KvType::F32: {
        const float* vf = reinterpret_cast<const float*>(v);
        for (int64_t j = 0; j < group; ++j)
          for (int64_t t = 0; t < len; ++t)
            for (int64_t x = 0; x < hd; ++x) out_acc[(size_t)(j * hd + x)] += scores[(size_t)(j * len + t)] * vf[t * hd + x];
        break;
      }
      case KvType::F16: ak.values_f16(reinterpret_cast<const uint16_t*>(v), len, hd, scores.data(), group, out_acc.data()); break;
      case KvType::Q8_0: ak.values_q8(v, len, hd, scores.data(), group, out_acc.data()); break;
    }
    for (int64_t j = 0; j < group; ++j) std::copy_n(out_acc.data() + j * hd, hd, out + j * part + 2);
  });

  // Merge the chunks: rescale each to the overall maximum, then normalise.
  auto merge = [&](int64_t i) {
    for (int64_t kvh = 0; kvh < n_kv; ++kvh)
      for (int64_t j = 0; j < group; ++j) {
        const float* first = partial_.data() + ((i * n_kv + kvh) * max_chunks * group + j) * part;
        const int64_t stride = group * part, n_chunks = chunks_of(i);
        float mx = -INFINITY;
        for (int64_t ch = 0; ch < n_chunks; ++ch) mx = std::max(mx, first[ch * stride]);
        float* dst = att_.data() + i * q_dim_ + (kvh * group + j) * hd;
        std::fill(dst, dst + hd, 0.f);
        double sum = 0;
        for (int64_t ch = 0; ch < n_chunks; ++ch) {
          const float* p = first + ch * stride;
          if (p[0] == -INFINITY) continue;
          const float w = std::exp(p[0] - mx);
          sum += (double)w * p[1];
          for (int64_t x = 0; x < hd; ++x) dst[x] += w * p[2 + x];
        }
        const float inv = (float)(1.0 / sum);
        for (int64_t x = 0; x < hd; ++x) dst[x] *= inv;
      }
  };
  if (n == 1) merge(0);
  else pool_.parallel_for(n, merge);
}

void ContextImpl::forward(const int32_t* tokens, const int32_t* pos, const int32_t* seq,
                          const uint8_t* want, int64_t n) {
  const ModelConfig& c = m_.cfg;
  const int64_t E = c.n_embd, F = c.n_ff;
  x_.resize((size_t)(n * E));
  h_.resize((size_t)(n * std::max(E, q_dim_)));
  q_.resize((size_t)(n * q_dim_));
  k_.resize((size_t)(n * kv_dim_));
  v_.resize((size_t)(n * kv_dim_));
  att_.resize((size_t)(n * q_dim_));
  gate_.resize((size_t)(n * F));
  up_.resize((size_t)(n * F));
  ffn_.resize((size_t)(n * E));

  // Per-token loops over elementwise work.
  auto per_token = [&](const std::function<void(int64_t)>& fn) {
    if (n == 1) fn(0);
    else pool_.parallel_for(n, fn);
  };

  rope_angles(pos, n);

  // Embeddings.
  const size_t embd_row = row_nbytes(m_.token_embd_type, (uint64_t)E);
  per_token([&](int64_t i) {
    dequantize_row(m_.token_embd_type, m_.token_embd->data + (size_t)tokens[i] * embd_row, x_.data() + i * E, E);
  });

  for (int64_t l = 0; l < c.n_layer; ++l) {
    const Layer& L = m_.layers[(size_t)l];

    // Attention block.
    per_token([&](int64_t i) { rmsnorm(x_.data() + i * E, L.attn_norm.data(), h_.data() + i * E, E, c.rms_eps); });
    // q, k and v share the input, its quantization and one parallel loop.
    linear_forward({{&L.wq, q_.data()}, {&L.wk, k_.data()}, {&L.wv, v_.data()}}, h_.data(), n, qa_, pool_);
    per_token([&](int64_t i) {
      rope(q_.data() + i * q_dim_, c.n_head, i);
      rope(k_.data() + i * kv_dim_, c.n_head_kv, i);
      store_kv(k_.data() + i * kv_dim_, v_.data() + i * kv_dim_, seq[i], l, pos[i]);
    });
    attention(l, pos, seq, n);
    const float* o_in = att_.data();
    if (c.sub_norms) {
      per_token([&](int64_t i) {
        rmsnorm(att_.data() + i * q_dim_, L.attn_sub_norm.data(), h_.data() + i * q_dim_, q_dim_, c.rms_eps);
      });
      o_in = h_.data();
    }
    linear_forward({{&L.wo, ffn_.data()}}, o_in, n, qa_, pool_);
    add_in_place(x_.data(), ffn_.data(), x_.size());

    // Feed-forward block.
    per_token([&](int64_t i) { rmsnorm(x_.data() + i * E, L.ffn_norm.data(), h_.data() + i * E, E, c.rms_eps); });
    linear_forward({{&L.gate, gate_.data()}, {&L.up, up_.data()}}, h_.data(), n, qa_, pool_);
    per_token([&](int64_t i) {
      float* g = gate_.data() + i * F;
      gated_activation(g, up_.data() + i * F, F, c.ffn_relu2);
      if (c.sub_norms) rmsnorm(g, L.ffn_sub_norm.data(), g, F, c.rms_eps);
    });
    linear_forward({{&L.down, ffn_.data()}}, gate_.data(), n, qa_, pool_);
    add_in_place(x_.data(), ffn_.data(), x_.size());
  }

  // Head, only for the tokens that want logits.
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < n; ++i)
    if (want[i]) rows.push_back(i);
  if (rows.empty()) return;
  out_.resize(rows.size() * (size_t)E);
  for (size_t r = 0; r < rows.size(); ++r)
    rmsnorm(x_.data() + rows[r] * E, m_.output_norm.data(), out_.data() + r * E, E, c.rms_eps);
  float* dst = logits_.data() + n_logits_ * (size_t)c.n_vocab;
  linear_forward({{&m_.head, dst}}, out_.data(), (int64_t)rows.size(), qa_, pool_);
  n_logits_ += rows.size();
}

}  // namespace

std::unique_ptr<Context> Context::create(const Model& model, const ContextParams& params) {
  return std::make_unique<ContextImpl>(static_cast<const ModelImpl&>(model), params);
}

const char* kv_type_name(KvType t) {
  switch (t) {
    case KvType::F16: return "f16";
    case KvType::F32: return "f32";
    case KvType::Q8_0: return "q8_0";
  }
  return "?";
}

KvType parse_kv_type(const std::string& name) {
  for (KvType t : {KvType::F16, KvType::F32, KvType::Q8_0})
    if (name == kv_type_name(t)) return t;
  throw Error("unsupported KV cache type '" + name + "' (f16, f32 or q8_0)");
}

}  // namespace bitnet
