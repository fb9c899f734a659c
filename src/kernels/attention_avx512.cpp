// Attention kernels, AVX-512: 16 lanes, masked tails, exp by range reduction and a degree-6
// polynomial scaled with vscalefps.
// GCC 12 warns falsely about its own AVX-512 headers ("__Y may be used uninitialized").
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>

#include "kernels/attention_internal.h"

namespace bitnet::kernels_impl {
namespace {

inline __mmask16 lanes(int64_t remaining) {
  return remaining >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << remaining) - 1);
}
inline __m512 load_f16(const uint16_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }

// exp(x) for x <= 0; below -88 the result is 0 or a denormal, as the caller's weights allow.
inline __m512 exp_ps(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

constexpr int kQueryBlock = 4;  // query heads sharing one conversion of a key or value vector

// Scores of NQ query heads against one key tile (16 positions, one vector per dimension). S partial
// sums per head over interleaved dimensions keep about 8 independent FMA chains in flight.
template <int NQ>
void scores_tile(const uint16_t* tile, int64_t hd, const float* q, float scale, float* scores, int64_t n_pos,
                 __mmask16 m) {
  constexpr int S = NQ == 1 ? 8 : NQ == 2 ? 4 : 2;
  __m512 acc[NQ][S];
  for (auto& a : acc)
    for (auto& x : a) x = _mm512_setzero_ps();
  int64_t d = 0;
  for (; d + S <= hd; d += S)
#pragma GCC unroll 8
    for (int s = 0; s < S; ++s) {
      const __m512 kv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(tile + (d + s) * kKeyTile)));
#pragma GCC unroll 4
      for (int j = 0; j < NQ; ++j) acc[j][s] = _mm512_fmadd_ps(_mm512_set1_ps(q[j * hd + d + s]), kv, acc[j][s]);
    }
  for (; d < hd; ++d) {
    const __m512 kv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(tile + d * kKeyTile)));
    for (int j = 0; j < NQ; ++j) acc[j][0] = _mm512_fmadd_ps(_mm512_set1_ps(q[j * hd + d]), kv, acc[j][0]);
  }
  for (int j = 0; j < NQ; ++j) {
    __m512 sum = acc[j][0];
    for (int s = 1; s < S; ++s) sum = _mm512_add_ps(sum, acc[j][s]);
    _mm512_mask_storeu_ps(scores + j * n_pos, m, _mm512_mul_ps(sum, _mm512_set1_ps(scale)));
  }
}

template <int NQ>
void scores_block(const uint16_t* k, int64_t n_pos, int64_t hd, const float* q, float scale, float* scores) {
  for (int64_t t = 0; t < n_pos; t += kKeyTile)
    scores_tile<NQ>(k + t * hd, hd, q, scale, scores + t, n_pos, lanes(n_pos - t));
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
  const __m512 vmax = _mm512_set1_ps(max);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(n - i);
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmax));
    _mm512_mask_storeu_ps(x + i, m, e);
    sum = _mm512_mask_add_ps(sum, m, sum, e);
  }
  return _mm512_reduce_add_ps(sum);
}

// Values go in blocks of positions: the first column pass over a block brings its rows into L1 for
// the other passes and prefetches the next block's rows.
constexpr int64_t kValueBlock = 64;
inline void prefetch_bytes(const void* p, size_t bytes) {
  for (size_t b = 0; b < bytes; b += 64) _mm_prefetch((const char*)p + b, _MM_HINT_T0);
}

// Weighted value rows for NQ query heads over C 16-lane columns starting at d0: every value vector
// is converted once and feeds NQ accumulators (C * NQ chains, at least 8).
template <int NQ, int C>
void values_columns(const uint16_t* v, int64_t n, int64_t hd, const float* w, int64_t n_pos, float* out,
                    int64_t d0) {
  __mmask16 m[C];
  __m512 acc[NQ][C];
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) {
    m[c] = d0 + 16 * c < hd ? lanes(hd - d0 - 16 * c) : (__mmask16)0;
    for (int j = 0; j < NQ; ++j) acc[j][c] = _mm512_maskz_loadu_ps(m[c], out + j * hd + d0 + 16 * c);
  }
  for (int64_t t = 0; t < n; ++t) {
    const uint16_t* row = v + t * hd + d0;
    if (d0 == 0) prefetch_bytes(v + (t + kValueBlock) * hd, (size_t)hd * 2);
    __m512 kv[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) kv[c] = load_f16(row + 16 * c, m[c]);
#pragma GCC unroll 4
    for (int j = 0; j < NQ; ++j) {
      const __m512 wt = _mm512_set1_ps(w[j * n_pos + t]);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[j][c] = _mm512_fmadd_ps(wt, kv[c], acc[j][c]);
    }
  }
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c)
    for (int j = 0; j < NQ; ++j) _mm512_mask_storeu_ps(out + j * hd + d0 + 16 * c, m[c], acc[j][c]);
}

template <int NQ, int C>
void values_block(const uint16_t* v, int64_t n_pos, int64_t hd, const float* w, float* out) {
  for (int64_t t0 = 0; t0 < n_pos; t0 += kValueBlock) {
    const int64_t n = std::min(kValueBlock, n_pos - t0);
    for (int64_t d0 = 0; d0 < hd; d0 += 16 * C) values_columns<NQ, C>(v + t0 * hd, n, hd, w + t0, n_pos, out, d0);
  }
}

void values_f16(const uint16_t* v, int64_t n_pos, int64_t hd, const float* w, int64_t n_q, float* out) {
  for (int64_t j0 = 0; j0 < n_q; j0 += kQueryBlock) {
    const float* wj = w + j0 * n_pos;
    float* oj = out + j0 * hd;
    switch (std::min<int64_t>(kQueryBlock, n_q - j0)) {
      case 1: values_block<1, 8>(v, n_pos, hd, wj, oj); break;
      case 2: values_block<2, 4>(v, n_pos, hd, wj, oj); break;
      case 3: values_block<3, 4>(v, n_pos, hd, wj, oj); break;
      default: values_block<4, 4>(v, n_pos, hd, wj, oj); break;
    }
  }
}

// ---- Q8_0 cache ----

inline __m512 load_i8(const uint8_t* p, __mmask16 m) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p)));
}

// As scores_tile, per 32-dimension block: the block's dot products, then times its scales.
template <int NQ>
void scores_tile_q8(const uint8_t* tile, int64_t hd, const float* q, float scale, float* scores, int64_t n_pos,
                    __mmask16 m) {
  constexpr int S = NQ == 1 ? 4 : 2;
  const float* scales = reinterpret_cast<const float*>(tile + kKeyTile * hd);
  __m512 total[NQ];
  for (auto& x : total) x = _mm512_setzero_ps();
  for (int64_t b = 0; b < hd / kQ8Block; ++b) {
    __m512 part[NQ][S];
    for (auto& p : part)
      for (auto& x : p) x = _mm512_setzero_ps();
    for (int64_t d = b * kQ8Block; d < (b + 1) * kQ8Block; d += S)
#pragma GCC unroll 4
      for (int s = 0; s < S; ++s) {
        const __m512 kv = load_i8(tile + (d + s) * kKeyTile, (__mmask16)0xFFFF);
#pragma GCC unroll 4
        for (int j = 0; j < NQ; ++j) part[j][s] = _mm512_fmadd_ps(_mm512_set1_ps(q[j * hd + d + s]), kv, part[j][s]);
      }
    const __m512 sb = _mm512_loadu_ps(scales + b * kKeyTile);
    for (int j = 0; j < NQ; ++j) {
      __m512 sum = part[j][0];
      for (int s = 1; s < S; ++s) sum = _mm512_add_ps(sum, part[j][s]);
      total[j] = _mm512_fmadd_ps(sum, sb, total[j]);
    }
  }
  for (int j = 0; j < NQ; ++j) _mm512_mask_storeu_ps(scores + j * n_pos, m, _mm512_mul_ps(total[j], _mm512_set1_ps(scale)));
}

template <int NQ>
void scores_block_q8(const uint8_t* k, int64_t n_pos, int64_t hd, const float* q, float scale, float* scores) {
  for (int64_t t = 0; t < n_pos; t += kKeyTile)
    scores_tile_q8<NQ>(k + t / kKeyTile * q8_key_tile_bytes(hd), hd, q, scale, scores + t, n_pos, lanes(n_pos - t));
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

// As values_columns: each column's int8 values converted and scaled once, then one FMA per query.
template <int NQ, int C>
void values_columns_q8(const uint8_t* v, int64_t n, int64_t hd, const float* w, int64_t n_pos, float* out,
                       int64_t d0) {
  const size_t row_bytes = q8_value_row_bytes(hd);
  __mmask16 m[C];
  __m512 acc[NQ][C];
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) {
    m[c] = d0 + 16 * c < hd ? (__mmask16)0xFFFF : (__mmask16)0;  // hd is a multiple of 32
    for (int j = 0; j < NQ; ++j) acc[j][c] = _mm512_maskz_loadu_ps(m[c], out + j * hd + d0 + 16 * c);
  }
  for (int64_t t = 0; t < n; ++t) {
    const uint8_t* row = v + t * row_bytes;
    const float* scales = reinterpret_cast<const float*>(row + hd);
    if (d0 == 0) prefetch_bytes(v + (t + kValueBlock) * row_bytes, row_bytes);
    __m512 kv[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c)
      kv[c] = m[c] ? _mm512_mul_ps(load_i8(row + d0 + 16 * c, m[c]), _mm512_set1_ps(scales[(d0 + 16 * c) / kQ8Block]))
                   : _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int j = 0; j < NQ; ++j) {
      const __m512 wt = _mm512_set1_ps(w[j * n_pos + t]);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[j][c] = _mm512_fmadd_ps(wt, kv[c], acc[j][c]);
    }
  }
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c)
    for (int j = 0; j < NQ; ++j) _mm512_mask_storeu_ps(out + j * hd + d0 + 16 * c, m[c], acc[j][c]);
}

template <int NQ, int C>
void values_block_q8(const uint8_t* v, int64_t n_pos, int64_t hd, const float* w, float* out) {
  const size_t row_bytes = q8_value_row_bytes(hd);
  for (int64_t t0 = 0; t0 < n_pos; t0 += kValueBlock) {
    const int64_t n = std::min(kValueBlock, n_pos - t0);
    for (int64_t d0 = 0; d0 < hd; d0 += 16 * C)
      values_columns_q8<NQ, C>(v + t0 * row_bytes, n, hd, w + t0, n_pos, out, d0);
  }
}

void values_q8(const uint8_t* v, int64_t n_pos, int64_t hd, const float* w, int64_t n_q, float* out) {
  for (int64_t j0 = 0; j0 < n_q; j0 += kQueryBlock) {
    const float* wj = w + j0 * n_pos;
    float* oj = out + j0 * hd;
    switch (std::min<int64_t>(kQueryBlock, n_q - j0)) {
      case 1: values_block_q8<1, 8>(v, n_pos, hd, wj, oj); break;
      case 2: values_block_q8<2, 4>(v, n_pos, hd, wj, oj); break;
      case 3: values_block_q8<3, 4>(v, n_pos, hd, wj, oj); break;
      default: values_block_q8<4, 4>(v, n_pos, hd, wj, oj); break;
    }
  }
}

}  // namespace

const AttentionKernels kAvx512AttentionKernels = {Isa::AVX512VNNI, scores_f16, exp_sum, values_f16, scores_q8, values_q8};

}  // namespace bitnet::kernels_impl
