// Attention kernels, AVX2 + F16C + FMA: 8 lanes, scalar tails, exp by range reduction and a
// degree-6 polynomial scaled through the exponent bits.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/attention_internal.h"
#include "kernels/kernels_internal.h"

namespace bitnet::kernels_impl {
namespace {

inline __m256 load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// exp(x) for x <= 0; clamped at -87 so that 2^n stays a normal float.
inline __m256 exp_ps(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i pow2n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(pow2n));
}

constexpr int kQueryBlock = 4;  // query heads sharing one conversion of a key or value vector

// Scores of NQ query heads against one key tile (16 positions = two 8-lane halves per dimension).
// S partial sums per head over interleaved dimensions keep 8 independent FMA chains in flight.
template <int NQ>
void scores_tile(const uint16_t* tile, int64_t hd, const float* q, float scale, float* scores, int64_t n_pos,
                 int64_t valid) {
  constexpr int S = NQ == 1 ? 4 : NQ == 2 ? 2 : 1;
  __m256 acc[NQ][S][2];
  for (auto& a : acc)
    for (auto& b : a) b[0] = b[1] = _mm256_setzero_ps();
  int64_t d = 0;
  auto step = [&](int64_t dim, int s) {
    const uint16_t* p = tile + dim * kKeyTile;
    const __m256 lo = load_f16(p), hi = load_f16(p + 8);
#pragma GCC unroll 4
    for (int j = 0; j < NQ; ++j) {
      const __m256 qd = _mm256_set1_ps(q[j * hd + dim]);
      acc[j][s][0] = _mm256_fmadd_ps(qd, lo, acc[j][s][0]);
      acc[j][s][1] = _mm256_fmadd_ps(qd, hi, acc[j][s][1]);
    }
  };
  for (; d + S <= hd; d += S)
#pragma GCC unroll 4
    for (int s = 0; s < S; ++s) step(d + s, s);
  for (; d < hd; ++d) step(d, 0);
  const __m256 vscale = _mm256_set1_ps(scale);
  for (int j = 0; j < NQ; ++j) {
    __m256 lo = acc[j][0][0], hi = acc[j][0][1];
    for (int s = 1; s < S; ++s) lo = _mm256_add_ps(lo, acc[j][s][0]), hi = _mm256_add_ps(hi, acc[j][s][1]);
    float* dst = scores + j * n_pos;
    if (valid == kKeyTile) {
      _mm256_storeu_ps(dst, _mm256_mul_ps(lo, vscale));
      _mm256_storeu_ps(dst + 8, _mm256_mul_ps(hi, vscale));
    } else {
      alignas(32) float tmp[kKeyTile];
      _mm256_store_ps(tmp, _mm256_mul_ps(lo, vscale));
      _mm256_store_ps(tmp + 8, _mm256_mul_ps(hi, vscale));
      std::copy_n(tmp, valid, dst);
    }
  }
}

template <int NQ>
void scores_block(const uint16_t* k, int64_t n_pos, int64_t hd, const float* q, float scale, float* scores) {
  for (int64_t t = 0; t < n_pos; t += kKeyTile)
    scores_tile<NQ>(k + t * hd, hd, q, scale, scores + t, n_pos, std::min(kKeyTile, n_pos - t));
}

void scores_f16(const uint16_t* k, int64_t n_pos, int64_t hd, const float* q, int64_t n_q, float scale,
                float* scores) {
  for (int64_t j0 = 0; j0 < n_q; j0 += kQueryBlock) {
    const float* qj = q + j0 * hd;
    float* sj = scores + j0 * n_pos;
    switch (std::min<int64_t>(kQueryBlock, n_q - j0)) {
      case 1: scores_block<1>(k, n_pos, hd, qj, scale, sj); break;
      case 2: scores_block<2>(k, n_pos, hd, qj, scale, sj); break;
      case 3: scores_block<3>(k, n_pos, hd, qj, scale, sj); break;
      default: scores_block<4>(k, n_pos, hd, qj, scale, sj); break;
    }
  }
}

float exp_sum(float* x, int64_t n, float max) {
  const __m256 vmax = _mm256_set1_ps(max);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
    _mm256_storeu_ps(x + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  float sum = hsum(acc);
  for (; i < n; ++i) sum += (x[i] = std::exp(x[i] - max));
  return sum;
}

// Values go in blocks of positions: the first column pass over a block brings its rows into L1 for
// the other passes and prefetches the next block's rows.
constexpr int64_t kValueBlock = 64;
inline void prefetch_bytes(const void* p, size_t bytes) {
  for (size_t b = 0; b < bytes; b += 64) _mm_prefetch((const char*)p + b, _MM_HINT_T0);
}

// Weighted value rows for NQ query heads over C full 8-lane columns starting at d0: every value
// vector is converted once and feeds NQ accumulators.
template <int NQ, int C>
void values_columns(const uint16_t* v, int64_t n, int64_t hd, const float* w, int64_t n_pos, float* out,
                    int64_t d0) {
  __m256 acc[NQ][C];
  for (int j = 0; j < NQ; ++j)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[j][c] = _mm256_loadu_ps(out + j * hd + d0 + 8 * c);
  for (int64_t t = 0; t < n; ++t) {
    const uint16_t* row = v + t * hd + d0;
    if (d0 == 0) prefetch_bytes(v + (t + kValueBlock) * hd, (size_t)hd * 2);
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const __m256 kv = load_f16(row + 8 * c);
#pragma GCC unroll 4
      for (int j = 0; j < NQ; ++j) acc[j][c] = _mm256_fmadd_ps(_mm256_set1_ps(w[j * n_pos + t]), kv, acc[j][c]);
    }
  }
  for (int j = 0; j < NQ; ++j)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) _mm256_storeu_ps(out + j * hd + d0 + 8 * c, acc[j][c]);
}

template <int NQ, int C>
void values_block(const uint16_t* v, int64_t n_pos, int64_t hd, const float* w, float* out) {
  const int64_t vec_end = hd / 8 * 8;
  for (int64_t t0 = 0; t0 < n_pos; t0 += kValueBlock) {
    const int64_t n = std::min(kValueBlock, n_pos - t0);
    int64_t d0 = 0;
    for (; d0 + 8 * C <= vec_end; d0 += 8 * C) values_columns<NQ, C>(v + t0 * hd, n, hd, w + t0, n_pos, out, d0);
    for (; d0 < vec_end; d0 += 8) values_columns<NQ, 1>(v + t0 * hd, n, hd, w + t0, n_pos, out, d0);
  }
  for (int j = 0; j < NQ; ++j)
    for (int64_t d = vec_end; d < hd; ++d)
      for (int64_t t = 0; t < n_pos; ++t) out[j * hd + d] += w[j * n_pos + t] * fp16_to_fp32(v[t * hd + d]);
}

void values_f16(const uint16_t* v, int64_t n_pos, int64_t hd, const float* w, int64_t n_q, float* out) {
  for (int64_t j0 = 0; j0 < n_q; j0 += kQueryBlock) {
    const float* wj = w + j0 * n_pos;
    float* oj = out + j0 * hd;
    switch (std::min<int64_t>(kQueryBlock, n_q - j0)) {
      case 1: values_block<1, 8>(v, n_pos, hd, wj, oj); break;
      case 2: values_block<2, 4>(v, n_pos, hd, wj, oj); break;
      case 3: values_block<3, 2>(v, n_pos, hd, wj, oj); break;
      default: values_block<4, 2>(v, n_pos, hd, wj, oj); break;
    }
  }
}

// ---- Q8_0 cache ----

inline __m256 load_i8(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)p)));
}

// As scores_tile, per 32-dimension block: the block's dot products, then times its scales.
template <int NQ>
void scores_tile_q8(const uint8_t* tile, int64_t hd, const float* q, float scale, float* scores, int64_t n_pos,
                    int64_t valid) {
  constexpr int S = NQ == 1 ? 2 : 1;
  const float* scales = reinterpret_cast<const float*>(tile + kKeyTile * hd);
  __m256 total[NQ][2];
  for (auto& x : total) x[0] = x[1] = _mm256_setzero_ps();
  for (int64_t b = 0; b < hd / kQ8Block; ++b) {
    __m256 part[NQ][S][2];
    for (auto& p : part)
      for (auto& x : p) x[0] = x[1] = _mm256_setzero_ps();
    for (int64_t d = b * kQ8Block; d < (b + 1) * kQ8Block; d += S)
#pragma GCC unroll 2
      for (int s = 0; s < S; ++s) {
        const uint8_t* p = tile + (d + s) * kKeyTile;
        const __m256 lo = load_i8(p), hi = load_i8(p + 8);
#pragma GCC unroll 4
        for (int j = 0; j < NQ; ++j) {
          const __m256 qd = _mm256_set1_ps(q[j * hd + d + s]);
          part[j][s][0] = _mm256_fmadd_ps(qd, lo, part[j][s][0]);
          part[j][s][1] = _mm256_fmadd_ps(qd, hi, part[j][s][1]);
        }
      }
    const __m256 s_lo = _mm256_loadu_ps(scales + b * kKeyTile), s_hi = _mm256_loadu_ps(scales + b * kKeyTile + 8);
    for (int j = 0; j < NQ; ++j) {
      __m256 lo = part[j][0][0], hi = part[j][0][1];
      for (int s = 1; s < S; ++s) lo = _mm256_add_ps(lo, part[j][s][0]), hi = _mm256_add_ps(hi, part[j][s][1]);
      total[j][0] = _mm256_fmadd_ps(lo, s_lo, total[j][0]);
      total[j][1] = _mm256_fmadd_ps(hi, s_hi, total[j][1]);
    }
  }
  const __m256 vscale = _mm256_set1_ps(scale);
  for (int j = 0; j < NQ; ++j) {
    alignas(32) float tmp[kKeyTile];
    _mm256_store_ps(tmp, _mm256_mul_ps(total[j][0], vscale));
    _mm256_store_ps(tmp + 8, _mm256_mul_ps(total[j][1], vscale));
    std::copy_n(tmp, valid, scores + j * n_pos);
  }
}

template <int NQ>
void scores_block_q8(const uint8_t* k, int64_t n_pos, int64_t hd, const float* q, float scale, float* scores) {
  for (int64_t t = 0; t < n_pos; t += kKeyTile)
    scores_tile_q8<NQ>(k + t / kKeyTile * q8_key_tile_bytes(hd), hd, q, scale, scores + t, n_pos,
                       std::min(kKeyTile, n_pos - t));
}

void scores_q8(const uint8_t* k, int64_t n_pos, int64_t hd, const float* q, int64_t n_q, float scale, float* scores) {
  for (int64_t j0 = 0; j0 < n_q; j0 += kQueryBlock) {
    const float* qj = q + j0 * hd;
    float* sj = scores + j0 * n_pos;
    switch (std::min<int64_t>(kQueryBlock, n_q - j0)) {
      case 1: scores_block_q8<1>(k, n_pos, hd, qj, scale, sj); break;
      case 2: scores_block_q8<2>(k, n_pos, hd, qj, scale, sj); break;
      case 3: scores_block_q8<3>(k, n_pos, hd, qj, scale, sj); break;
      default: scores_block_q8<4>(k, n_pos, hd, qj, scale, sj); break;
    }
  }
}

// As values_columns over C 8-lane columns (hd is a multiple of 32, so columns are whole).
template <int NQ, int C>
void values_columns_q8(const uint8_t* v, int64_t n, int64_t hd, const float* w, int64_t n_pos, float* out,
                       int64_t d0) {
  const size_t row_bytes = q8_value_row_bytes(hd);
  __m256 acc[NQ][C];
  for (int j = 0; j < NQ; ++j)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[j][c] = _mm256_loadu_ps(out + j * hd + d0 + 8 * c);
  for (int64_t t = 0; t < n; ++t) {
    const uint8_t* row = v + t * row_bytes;
    const float* scales = reinterpret_cast<const float*>(row + hd);
    if (d0 == 0) prefetch_bytes(v + (t + kValueBlock) * row_bytes, row_bytes);
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const __m256 kv = _mm256_mul_ps(load_i8(row + d0 + 8 * c), _mm256_set1_ps(scales[(d0 + 8 * c) / kQ8Block]));
#pragma GCC unroll 4
      for (int j = 0; j < NQ; ++j) acc[j][c] = _mm256_fmadd_ps(_mm256_set1_ps(w[j * n_pos + t]), kv, acc[j][c]);
    }
  }
  for (int j = 0; j < NQ; ++j)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) _mm256_storeu_ps(out + j * hd + d0 + 8 * c, acc[j][c]);
}

template <int NQ, int C>
void values_block_q8(const uint8_t* v, int64_t n_pos, int64_t hd, const float* w, float* out) {
  const size_t row_bytes = q8_value_row_bytes(hd);
  for (int64_t t0 = 0; t0 < n_pos; t0 += kValueBlock) {
    const int64_t n = std::min(kValueBlock, n_pos - t0);
    for (int64_t d0 = 0; d0 < hd; d0 += 8 * C) values_columns_q8<NQ, C>(v + t0 * row_bytes, n, hd, w + t0, n_pos, out, d0);
  }
}

void values_q8(const uint8_t* v, int64_t n_pos, int64_t hd, const float* w, int64_t n_q, float* out) {
  for (int64_t j0 = 0; j0 < n_q; j0 += kQueryBlock) {
    const float* wj = w + j0 * n_pos;
    float* oj = out + j0 * hd;
    switch (std::min<int64_t>(kQueryBlock, n_q - j0)) {  // C columns divide the 4 of a 32-value block
      case 1: values_block_q8<1, 4>(v, n_pos, hd, wj, oj); break;
      case 2: values_block_q8<2, 4>(v, n_pos, hd, wj, oj); break;
      case 3: values_block_q8<3, 2>(v, n_pos, hd, wj, oj); break;
      default: values_block_q8<4, 2>(v, n_pos, hd, wj, oj); break;
    }
  }
}

}  // namespace

const AttentionKernels kAvx2AttentionKernels = {Isa::AVX2, scores_f16, exp_sum, values_f16, scores_q8, values_q8};

}  // namespace bitnet::kernels_impl
