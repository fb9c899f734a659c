// The forward pass (BitNet b1.58 and LLaMA families) over a batch of tokens from any sequences,
// with a paged KV cache shared by the sequences. Read top to bottom in ContextImpl::forward().
#include <sys/mman.h>
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
// Not in sanitizer builds: the ifunc resolvers run before the sanitizer runtime is initialised.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
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

// Attention reads a sequence's cache in chunks of this many positions (whole pages, as page sizes
// divide it): each chunk is one task with its own softmax maximum and sum, merged afterwards. The
// chunking depends on positions only, never on the batch, the page size or the thread count, so a
// token's result is the same however it is batched.
constexpr int64_t kAttnChunk = 256;

class ContextImpl final : public Context {
 public:
  ContextImpl(const ModelImpl& m, const ContextParams& p);

  bool decode(const Batch& batch) override;
  const float* logits(size_t j) const override {
    if (j >= n_logits_) throw Error("logits index " + std::to_string(j) + " out of range (the last batch has " +
                                    std::to_string(n_logits_) + ")");
    return logits_.data() + j * (size_t)m_.cfg.n_vocab;
  }
  int seq_length(int seq) const override { return seqs_[checked_seq(seq)].len; }
  void seq_truncate(int seq, int n) override {
    Seq& q = seqs_[checked_seq(seq)];
    if (n < 0 || n > q.len)
      throw Error("cannot truncate sequence " + std::to_string(seq) + " to " + std::to_string(n) + " positions: it holds " +
                  std::to_string(q.len));
    keep_pages(q, pages_for(n));
    q.len = n;
  }
  void seq_copy(int src, int dst, int n) override {
    const Seq& from = seqs_[checked_seq(src)];
    Seq& to = seqs_[checked_seq(dst)];
    if (n < 0 || n > from.len)
      throw Error("cannot copy " + std::to_string(n) + " positions of sequence " + std::to_string(src) + ": it holds " +
                  std::to_string(from.len));
    if (src == dst) return seq_truncate(src, n);
    keep_pages(to, 0);
    to.pages.assign(from.pages.begin(), from.pages.begin() + (ptrdiff_t)pages_for(n));
    for (int32_t page : to.pages) ++ref_[(size_t)page];
    to.len = n;
  }
  void seq_release(int seq) override { seq_truncate(seq, 0); }
  int kv_page_size() const override { return page_size_; }
  size_t kv_pages_total() const override { return ref_.size(); }
  size_t kv_pages_free() const override { return free_.size(); }
  void set_abort_callback(std::function<bool()> cb) override { abort_ = std::move(cb); }
  int n_ctx() const override { return n_ctx_; }
  int n_seq() const override { return (int)seqs_.size(); }
  size_t kv_bytes() const override { return (ref_.size() - free_.size()) * page_bytes_; }
  size_t kv_bytes_per_position() const override {
    return 2 * (size_t)(m_.cfg.n_layer * m_.cfg.n_head_kv) * value_row_bytes_;
  }
  ThreadPool& threads() override { return pool_; }

 private:
  // A sequence's cache: positions [0, len) in pages[p / page_size_] (ceil(len / page_size_) pages).
  struct Seq {
    int32_t len = 0;
    std::vector<int32_t> pages;
  };

  size_t checked_seq(int seq) const {
    if (seq < 0 || (size_t)seq >= seqs_.size())
      throw Error("sequence id " + std::to_string(seq) + " out of range [0, " + std::to_string(seqs_.size()) + ")");
    return (size_t)seq;
  }
  size_t pages_for(int64_t positions) const { return (size_t)((positions + page_size_ - 1) / page_size_); }
  // Drops the sequence's pages past the first `n`; a page nobody holds any more returns to the pool.
  void keep_pages(Seq& q, size_t n) {
    while (q.pages.size() > n) {
      if (--ref_[(size_t)q.pages.back()] == 0) give_back(q.pages.back());
      q.pages.pop_back();
    }
  }
  // A page returns to the pool and its memory to the operating system (the whole OS pages inside
  // it), so the process's resident memory follows the tokens held. Its next user writes every row
  // before reading it, so the zero pages it then gets are never read.
  void give_back(int32_t page) {
    free_.push_back(page);
    const uintptr_t os_page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t begin = (uintptr_t)(pool_bytes_.get() + (size_t)page * page_bytes_);
    const uintptr_t first = (begin + os_page - 1) / os_page * os_page, last = (begin + page_bytes_) / os_page * os_page;
    if (last > first) madvise((void*)first, last - first, MADV_DONTNEED);
  }
  int32_t take_page() {
    const int32_t page = free_.back();
    free_.pop_back();
    ref_[(size_t)page] = 1;
    return page;
  }
  // Pages the batch needs beyond those its sequences hold: new pages, and copies of shared pages it
  // writes to. `next` is each sequence's length after the batch.
  size_t pages_needed(const std::vector<int32_t>& next) const;
  // Gives each token of a micro-batch a page of its own to write to (new pages, copy-on-write).
  void prepare_pages(const int32_t* pos, const int32_t* seq, int64_t n);

  // One micro-batch; its logits go to logits_ from entry n_logits on, which it advances.
  void forward(const int32_t* tokens, const int32_t* pos, const int32_t* seq, const uint8_t* want,
               int64_t n, size_t& n_logits);
  void attention(int64_t layer, const int32_t* pos, const int32_t* seq, int64_t n);
  // Chunk `chunk` of batch token i's attention over KV head kvh: per query head of the group, the
  // maximum score, the sum of exp, then head_dim unnormalised outputs (kPart floats).
  void attention_chunk(int64_t layer, int64_t pos, int seq, const float* q, int64_t kvh, int64_t chunk, float* out);
  // Rotary cos/sin of each batch token's position, computed once per forward for all layers.
  void rope_angles(const int32_t* pos, int64_t n);
  // Rotates v (n_heads heads) by the angles of batch token i.
  void rope(float* v, int64_t n_heads, int64_t i) const;

  // A page holds page_size_ positions of every (layer, KV head): for each, its keys (whole key
  // tiles, layout in attention_kernels.h) then its values (rows), segment_bytes_ each, so that
  // attention streams one head's positions of a page contiguously.
  uint8_t* segment(int32_t page, int64_t l, int64_t h, bool values) {
    return pool_bytes_.get() + (size_t)page * page_bytes_ + (size_t)((l * m_.cfg.n_head_kv + h) * 2 + values) * segment_bytes_;
  }
  // Stores the kv_dim keys and values of one token at position p of sequence s.
  void store_kv(const float* keys, const float* values, int s, int64_t l, int64_t p) {
    const int64_t hd = m_.cfg.head_dim;
    const int32_t page = seqs_[(size_t)s].pages[(size_t)(p / page_size_)];
    const int64_t in_page = p % page_size_, lane = p % kKeyTile;
    thread_local std::vector<uint16_t> key_f16;  // one head's key before it is spread over its tile
    thread_local std::vector<int8_t> key_q8;
    thread_local std::vector<float> key_scales;
    for (int64_t h = 0; h < m_.cfg.n_head_kv; ++h) {
      uint8_t* tile = segment(page, l, h, false) + (size_t)(in_page / kKeyTile) * key_tile_bytes_;
      uint8_t* v = segment(page, l, h, true) + (size_t)in_page * value_row_bytes_;
      const float* key = keys + h * hd;
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
  int n_ctx_, n_batch_;
  KvType kv_type_;
  int64_t q_dim_, kv_dim_;
  std::function<bool()> abort_;
  // The page pool. Bytes of one key tile, of one value row, of one (layer, KV head)'s keys (or
  // values) in a page, and of a page.
  int page_size_;
  size_t key_tile_bytes_, value_row_bytes_, segment_bytes_, page_bytes_;
  struct Unmap {
    size_t bytes;
    void operator()(uint8_t* p) const { munmap(p, bytes); }
  };
  std::unique_ptr<uint8_t, Unmap> pool_bytes_{nullptr, Unmap{0}};  // anonymous mapping of the pages
  std::vector<int32_t> ref_;   // sequences holding each page (0: free)
  std::vector<int32_t> free_;  // free pages (their memory given back to the system)
  std::vector<Seq> seqs_;
  std::vector<float> partial_;  // attention chunk results per (token chunk, KV head), see attention()
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
  n_batch_ = p.n_batch;
  if (p.n_seq < 1 || p.n_seq > 1024) throw Error("n_seq " + std::to_string(p.n_seq) + " out of range [1, 1024]");
  if (n_batch_ < 1) throw Error("batch size must be positive");
  if (n_ctx_ < 1) throw Error("context size must be positive");
  kv_type_ = p.kv_type;
  q_dim_ = c.n_head * c.head_dim;
  kv_dim_ = c.n_head_kv * c.head_dim;
  if (kv_type_ == KvType::Q8_0 && c.head_dim % kQ8Block != 0)
    throw Error("a q8_0 KV cache needs a head size that is a multiple of 32; this model's is " +
                std::to_string(c.head_dim) + " (use f16)");
  const KvPoolLayout layout = kv_pool_layout(n_ctx_, p.n_seq);
  page_size_ = layout.page_size;
  const size_t n_pages = layout.n_pages;
  value_row_bytes_ = kv_type_ == KvType::Q8_0 ? q8_value_row_bytes(c.head_dim)
                                              : (size_t)c.head_dim * (kv_type_ == KvType::F32 ? 4 : 2);
  key_tile_bytes_ = kKeyTile * value_row_bytes_;  // in every type (q8_key_tile_bytes), so K and V have one size
  segment_bytes_ = (size_t)page_size_ * value_row_bytes_;
  page_bytes_ = 2 * (size_t)(c.n_layer * c.n_head_kv) * segment_bytes_;
  const uint64_t ram = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
  if (n_pages * page_bytes_ > ram)
    throw Error("a KV cache for a context of " + std::to_string(n_ctx_) + " tokens needs " +
                std::to_string((n_pages * page_bytes_) >> 20) + " MiB, more than this machine's memory");
  // Every cache row is written before it is read, so the pool needs no zeroing; its memory is
  // committed as pages are written and given back as they are freed (give_back).
  void* mem = mmap(nullptr, n_pages * page_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED)
    throw Error("cannot map " + std::to_string((n_pages * page_bytes_) >> 20) + " MiB for the KV cache");
  pool_bytes_ = std::unique_ptr<uint8_t, Unmap>(static_cast<uint8_t*>(mem), Unmap{n_pages * page_bytes_});
  ref_.assign(n_pages, 0);
  for (size_t i = n_pages; i-- > 0;) free_.push_back((int32_t)i);
  seqs_.resize((size_t)p.n_seq);
  for (int64_t i = 0; i < m.n_rot / 2; ++i)
    rope_inv_freq_.push_back((float)std::pow((double)c.rope_theta, -2.0 * (double)i / (double)m.n_rot));
}

size_t ContextImpl::pages_needed(const std::vector<int32_t>& next) const {
  size_t needed = 0;
  std::vector<int32_t> written_shared;  // shared partial pages the batch writes to, one per writer
  for (size_t s = 0; s < seqs_.size(); ++s) {
    const Seq& q = seqs_[s];
    if (next[s] == q.len) continue;
    needed += pages_for(next[s]) - q.pages.size();
    if (q.len % page_size_ != 0 && ref_[(size_t)q.pages.back()] > 1) written_shared.push_back(q.pages.back());
  }
  // A page shared by r sequences, k of which write to it: each writer copies it, except that the
  // last of r writers finds it no longer shared.
  std::sort(written_shared.begin(), written_shared.end());
  for (size_t a = 0, b; a < written_shared.size(); a = b) {
    for (b = a; b < written_shared.size() && written_shared[b] == written_shared[a];) ++b;
    const size_t writers = b - a, sharers = (size_t)ref_[(size_t)written_shared[a]];
    needed += writers < sharers ? writers : writers - 1;
  }
  return needed;
}

void ContextImpl::prepare_pages(const int32_t* pos, const int32_t* seq, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    Seq& q = seqs_[(size_t)seq[i]];
    const size_t index = (size_t)(pos[i] / page_size_);
    if (index == q.pages.size()) {
      q.pages.push_back(take_page());
      continue;
    }
    const int32_t old = q.pages[index];
    if (ref_[(size_t)old] == 1) continue;
    // Copy-on-write: the positions of the page before this one are the sequence's own from now on.
    const int32_t page = take_page();
    const int64_t held = pos[i] % page_size_;
    for (int64_t l = 0; l < m_.cfg.n_layer; ++l)
      for (int64_t h = 0; h < m_.cfg.n_head_kv; ++h) {
        std::memcpy(segment(page, l, h, false), segment(old, l, h, false),
                    (size_t)((held + kKeyTile - 1) / kKeyTile) * key_tile_bytes_);
        std::memcpy(segment(page, l, h, true), segment(old, l, h, true), (size_t)held * value_row_bytes_);
      }
    --ref_[(size_t)old];
    q.pages[index] = page;
  }
}

bool ContextImpl::decode(const Batch& batch) {
  n_logits_ = 0;
  const size_t n = batch.size();
  if (batch.pos.size() != n || batch.seq.size() != n || batch.want_logits.size() != n)
    throw Error("batch arrays have different lengths");
  // Validate the whole batch before touching the cache.
  std::vector<int32_t> next(seqs_.size());
  for (size_t s = 0; s < seqs_.size(); ++s) next[s] = seqs_[s].len;
  size_t n_out = 0;
  for (size_t i = 0; i < n; ++i) {
    const int32_t t = batch.token[i], p = batch.pos[i], s = batch.seq[i];
    if (t < 0 || t >= m_.cfg.n_vocab)
      throw Error("token id " + std::to_string(t) + " out of the vocabulary (n_vocab " + std::to_string(m_.cfg.n_vocab) + ")");
    checked_seq(s);
    if (p < 0 || p >= n_ctx_)
      throw Error("position " + std::to_string(p) + " is outside the context of " + std::to_string(n_ctx_) + " tokens");
    const int32_t want = next[(size_t)s];
    if (p != want)
      throw Error("position " + std::to_string(p) + " of sequence " + std::to_string(s) +
                  (p > want ? " skips positions" : " repeats or goes back") + ": the next is " + std::to_string(want) +
                  (p > want ? "" : " (rewind with seq_truncate)"));
    next[(size_t)s] = p + 1;
    n_out += batch.want_logits[i] ? 1 : 0;
  }
  const size_t needed = pages_needed(next);
  if (needed > free_.size())
    throw Error("KV cache full: the batch needs " + std::to_string(needed) + " more pages of " + std::to_string(page_size_) +
                " positions, " + std::to_string(free_.size()) + " of " + std::to_string(ref_.size()) + " are free (n_ctx " +
                std::to_string(n_ctx_) + ")");

  logits_.resize(n_out * (size_t)m_.cfg.n_vocab);
  size_t n_logits = 0;
  for (size_t b = 0; b < n; b += (size_t)n_batch_) {
    if (abort_ && abort_()) return false;
    const int64_t nb = (int64_t)std::min(n - b, (size_t)n_batch_);
    const int32_t* pos = &batch.pos[b];
    const int32_t* seq = &batch.seq[b];
    prepare_pages(pos, seq, nb);
    try {
      forward(&batch.token[b], pos, seq, &batch.want_logits[b], nb, n_logits);
    } catch (...) {
      // The micro-batch did not complete: its sequences keep their lengths and give back its pages.
      for (int64_t i = 0; i < nb; ++i) keep_pages(seqs_[(size_t)seq[i]], pages_for(seqs_[(size_t)seq[i]].len));
      throw;
    }
    for (int64_t i = 0; i < nb; ++i) seqs_[(size_t)seq[i]].len = pos[i] + 1;
  }
  n_logits_ = n_logits;
  return true;
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

// Causal attention of every batch token over its sequence's cache, in chunks of kAttnChunk
// positions (see there). A chunk covers one KV head for all the query heads sharing it, so each
// cached row is read once per token. Few tokens (generation) get one task per chunk, so that a long
// context spreads over the threads; many tokens get one task per (token, KV head). Both compute
// every chunk and merge them the same way, so the split does not change the result.
void ContextImpl::attention(int64_t layer, const int32_t* pos, const int32_t* seq, int64_t n) {
  const ModelConfig& c = m_.cfg;
  const int64_t hd = c.head_dim, group = c.n_head / c.n_head_kv, n_kv = c.n_head_kv, part = hd + 2;
  auto chunks_of = [&](int64_t i) { return pos[i] / kAttnChunk + 1; };
  // Rescales each chunk's results (at stride `stride`) to the overall maximum and normalises.
  auto merge = [&](const float* first, int64_t stride, int64_t n_chunks, int64_t i, int64_t kvh) {
    for (int64_t j = 0; j < group; ++j) {
      const float* pj = first + j * part;
      float mx = -INFINITY;
      for (int64_t ch = 0; ch < n_chunks; ++ch) mx = std::max(mx, pj[ch * stride]);
      float* dst = att_.data() + i * q_dim_ + (kvh * group + j) * hd;
      std::fill(dst, dst + hd, 0.f);
      double sum = 0;
      for (int64_t ch = 0; ch < n_chunks; ++ch) {
        const float* p = pj + ch * stride;
        const float w = std::exp(p[0] - mx);
        sum += (double)w * p[1];
        for (int64_t x = 0; x < hd; ++x) dst[x] += w * p[2 + x];
      }
      const float inv = (float)(1.0 / sum);
      for (int64_t x = 0; x < hd; ++x) dst[x] *= inv;
    }
  };
  auto query = [&](int64_t i, int64_t kvh) { return q_.data() + i * q_dim_ + kvh * group * hd; };

  if (n * n_kv >= 4 * (int64_t)pool_.size()) {
    pool_.parallel_for(n * n_kv, [&](int64_t task) {
      const int64_t i = task / n_kv, kvh = task % n_kv, n_chunks = chunks_of(i);
      thread_local std::vector<float> chunks;
      chunks.resize((size_t)(n_chunks * group * part));
      for (int64_t ch = 0; ch < n_chunks; ++ch)
        attention_chunk(layer, pos[i], seq[i], query(i, kvh), kvh, ch, chunks.data() + ch * group * part);
      merge(chunks.data(), group * part, n_chunks, i, kvh);
    });
    return;
  }
  // Chunk k of token i is (first[i] + k) in token order; each has n_kv KV heads' results.
  std::vector<int64_t> first((size_t)n + 1, 0);
  for (int64_t i = 0; i < n; ++i) first[(size_t)i + 1] = first[(size_t)i] + chunks_of(i);
  partial_.resize((size_t)(first[(size_t)n] * n_kv * group * part));
  pool_.parallel_for(first[(size_t)n] * n_kv, [&](int64_t task) {
    const int64_t chunk = task / n_kv, kvh = task % n_kv;
    const int64_t i = std::upper_bound(first.begin(), first.end(), chunk) - first.begin() - 1;
    attention_chunk(layer, pos[i], seq[i], query(i, kvh), kvh, chunk - first[(size_t)i],
                    partial_.data() + task * group * part);
  });
  auto merge_token = [&](int64_t i) {
    for (int64_t kvh = 0; kvh < n_kv; ++kvh)
      merge(partial_.data() + (first[(size_t)i] * n_kv + kvh) * group * part, n_kv * group * part, chunks_of(i), i, kvh);
  };
  if (n == 1) merge_token(0);
  else pool_.parallel_for(n, merge_token);
}

void ContextImpl::attention_chunk(int64_t layer, int64_t pos, int seq, const float* q, int64_t kvh, int64_t chunk,
                                  float* out) {
  const ModelConfig& c = m_.cfg;
  const int64_t hd = c.head_dim, group = c.n_head / c.n_head_kv, part = hd + 2;
  const float scale = 1.0f / std::sqrt((float)hd);
  const AttentionKernels& ak = attention_kernels();
  const int64_t t0 = chunk * kAttnChunk, len = std::min(pos + 1, t0 + kAttnChunk) - t0;
  const std::vector<int32_t>& pages = seqs_[(size_t)seq].pages;
  thread_local std::vector<float> scores, out_acc, piece;
  scores.resize((size_t)(group * len));
  out_acc.assign((size_t)(group * hd), 0.f);
  // The chunk's pages one after the other: keys and values of positions [t0 + off, t0 + off + n).
  auto for_pages = [&](auto&& fn) {
    for (int64_t off = 0; off < len; off += page_size_) {
      const int32_t page = pages[(size_t)((t0 + off) / page_size_)];
      fn(segment(page, layer, kvh, false), segment(page, layer, kvh, true), off, std::min<int64_t>(page_size_, len - off));
    }
  };
  // The kernels take a page's scores (or weights) as rows of n per query head, the chunk keeps rows
  // of len: pieces of a chunk spanning several pages go through `piece`. The scores of a position
  // and the running value sums do not depend on where a call starts, so the split changes nothing.
  const bool whole = len <= page_size_;
  for_pages([&](const uint8_t* k, const uint8_t*, int64_t off, int64_t n) {
    float* dst = scores.data();
    if (!whole) {
      piece.resize((size_t)(group * n));
      dst = piece.data();
    }
    switch (kv_type_) {
      case KvType::F32: {
        const float* kf = reinterpret_cast<const float*>(k);
        for (int64_t j = 0; j < group; ++j)
          for (int64_t t = 0; t < n; ++t) {
            float d = 0;
            for (int64_t x = 0; x < hd; ++x) d += q[j * hd + x] * kf[key_index(t, x, hd)];
            dst[j * n + t] = d * scale;
          }
        break;
      }
      case KvType::F16: ak.scores_f16(reinterpret_cast<const uint16_t*>(k), n, hd, q, group, scale, dst); break;
      case KvType::Q8_0: ak.scores_q8(k, n, hd, q, group, scale, dst); break;
    }
    if (!whole)
      for (int64_t j = 0; j < group; ++j) std::copy_n(piece.data() + j * n, n, scores.data() + j * len + off);
  });
  for (int64_t j = 0; j < group; ++j) {
    float* sj = scores.data() + j * len;
    const float mx = *std::max_element(sj, sj + len);
    out[j * part] = mx;
    out[j * part + 1] = ak.exp_sum(sj, len, mx);
  }
  for_pages([&](const uint8_t*, const uint8_t* v, int64_t off, int64_t n) {
    const float* w = scores.data();
    if (!whole) {
      piece.resize((size_t)(group * n));
      for (int64_t j = 0; j < group; ++j) std::copy_n(scores.data() + j * len + off, n, piece.data() + j * n);
      w = piece.data();
    }
    switch (kv_type_) {
      case KvType::F32: {
        const float* vf = reinterpret_cast<const float*>(v);
        for (int64_t j = 0; j < group; ++j)
          for (int64_t t = 0; t < n; ++t)
            for (int64_t x = 0; x < hd; ++x) out_acc[(size_t)(j * hd + x)] += w[j * n + t] * vf[t * hd + x];
        break;
      }
      case KvType::F16: ak.values_f16(reinterpret_cast<const uint16_t*>(v), n, hd, w, group, out_acc.data()); break;
      case KvType::Q8_0: ak.values_q8(v, n, hd, w, group, out_acc.data()); break;
    }
  });
  for (int64_t j = 0; j < group; ++j) std::copy_n(out_acc.data() + j * hd, hd, out + j * part + 2);
}

void ContextImpl::forward(const int32_t* tokens, const int32_t* pos, const int32_t* seq,
                          const uint8_t* want, int64_t n, size_t& n_logits) {
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
  float* dst = logits_.data() + n_logits * (size_t)c.n_vocab;
  linear_forward({{&m_.head, dst}}, out_.data(), (int64_t)rows.size(), qa_, pool_);
  n_logits += rows.size();
}

}  // namespace

KvPoolLayout kv_pool_layout(int n_ctx, int n_seq) {
  KvPoolLayout l;
  l.page_size = (int)kAttnChunk;
  while (l.page_size > kKeyTile && n_ctx / l.page_size < n_seq) l.page_size /= 2;
  l.n_pages = std::max((size_t)((n_ctx + l.page_size - 1) / l.page_size), (size_t)std::max(n_seq, 1));
  return l;
}

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
