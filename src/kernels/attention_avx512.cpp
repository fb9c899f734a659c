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

// Key tiles. tile<NQ> gives the dot products of NQ query heads with the 16 keys of one tile (one
// vector per dimension); S partial sums per head over interleaved dimensions keep about 8
// independent FMA chains in flight.
struct F16Keys {
  static size_t tile_bytes(int64_t hd) { return (size_t)(kKeyTile * hd * 2); }
  template <int NQ>
  static void tile(const uint8_t* tile_bytes, int64_t hd, const float* q, __m512 (&acc)[NQ]);
};
template <int NQ>
void F16Keys::tile(const uint8_t* tile_bytes, int64_t hd, const float* q, __m512 (&acc)[NQ]) {
  constexpr int S = NQ == 1 ? 8 : NQ == 2 ? 4 : 2;
  const auto* tile = reinterpret_cast<const uint16_t*>(tile_bytes);
  __m512 part[NQ][S];
  for (auto& p : part)
    for (auto& x : p) x = _mm512_setzero_ps();
  int64_t d = 0;
  for (; d + S <= hd; d += S)
#pragma GCC unroll 8
    for (int s = 0; s < S; ++s) {
      const __m512 kv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(tile + (d + s) * kKeyTile)));
#pragma GCC unroll 4
      for (int j = 0; j < NQ; ++j) part[j][s] = _mm512_fmadd_ps(_mm512_set1_ps(q[j * hd + d + s]), kv, part[j][s]);
    }
  for (; d < hd; ++d) {
    const __m512 kv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(tile + d * kKeyTile)));
    for (int j = 0; j < NQ; ++j) part[j][0] = _mm512_fmadd_ps(_mm512_set1_ps(q[j * hd + d]), kv, part[j][0]);
  }
  for (int j = 0; j < NQ; ++j) {
    acc[j] = part[j][0];
    for (int s = 1; s < S; ++s) acc[j] = _mm512_add_ps(acc[j], part[j][s]);
  }
}

inline __m512 load_i8(const uint8_t* p, __mmask16 m) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p)));
}

// Q8_0 key tiles, per 32-dimension block: the block's dot products times its scales.
struct Q8Keys {
  static size_t tile_bytes(int64_t hd) { return q8_key_tile_bytes(hd); }
  template <int NQ>
  static void tile(const uint8_t* tile, int64_t hd, const float* q, __m512 (&acc)[NQ]);
};
template <int NQ>
void Q8Keys::tile(const uint8_t* tile, int64_t hd, const float* q, __m512 (&acc)[NQ]) {
  constexpr int S = NQ == 1 ? 4 : 2;
  const float* scales = reinterpret_cast<const float*>(tile + kKeyTile * hd);
  for (auto& x : acc) x = _mm512_setzero_ps();
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
      acc[j] = _mm512_fmadd_ps(sum, sb, acc[j]);
    }
  }
}

// Every query-head block against every key tile.
template <class Keys>
void scores_tiles(const uint8_t* k, int64_t n_pos, int64_t hd, const float* q, int64_t n_q, float scale,
                  float* scores) {
  for_query_blocks(n_q, [&](auto nq, int64_t j0) {
    constexpr int NQ = decltype(nq)::value;
    for (int64_t t = 0; t < n_pos; t += kKeyTile) {
      __m512 acc[NQ];
      Keys::template tile<NQ>(k + (size_t)(t / kKeyTile) * Keys::tile_bytes(hd), hd, q + j0 * hd, acc);
      for (int j = 0; j < NQ; ++j)
        _mm512_mask_storeu_ps(scores + (j0 + j) * n_pos + t, lanes(n_pos - t), _mm512_mul_ps(acc[j], _mm512_set1_ps(scale)));
    }
  });
}

void scores_f16(const uint16_t* k, int64_t n_pos, int64_t hd, const float* q, int64_t n_q, float scale, float* scores) {
  scores_tiles<F16Keys>(reinterpret_cast<const uint8_t*>(k), n_pos, hd, q, n_q, scale, scores);
}
void scores_q8(const uint8_t* k, int64_t n_pos, int64_t hd, const float* q, int64_t n_q, float scale, float* scores) {
  scores_tiles<Q8Keys>(k, n_pos, hd, q, n_q, scale, scores);
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

inline void prefetch_bytes(const void* p, size_t bytes) {
  for (size_t b = 0; b < bytes; b += 64) _mm_prefetch((const char*)p + b, _MM_HINT_T0);
}

// Value rows as 16-lane vectors: f16, or Q8_0 (int8 times the scale of its 32-value block).
struct F16Rows {
  static size_t row_bytes(int64_t hd) { return (size_t)hd * 2; }
  static __m512 load(const uint8_t* row, int64_t, int64_t d, __mmask16 m) {
    return load_f16(reinterpret_cast<const uint16_t*>(row) + d, m);
  }
};
struct Q8Rows {
  static size_t row_bytes(int64_t hd) { return q8_value_row_bytes(hd); }
  static __m512 load(const uint8_t* row, int64_t hd, int64_t d, __mmask16 m) {
    return _mm512_mul_ps(load_i8(row + d, m), _mm512_set1_ps(reinterpret_cast<const float*>(row + hd)[d / kQ8Block]));
  }
};

// Weighted value rows for NQ query heads over C 16-lane columns starting at d0: every value vector
// is converted once and feeds NQ accumulators (C * NQ chains, at least 8).
template <class Rows, int NQ, int C>
void values_columns(const uint8_t* v, int64_t n, int64_t hd, const float* w, int64_t n_pos, float* out, int64_t d0) {
  const size_t row_bytes = Rows::row_bytes(hd);
  __mmask16 m[C];
  __m512 acc[NQ][C];
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) {
    m[c] = d0 + 16 * c < hd ? lanes(hd - d0 - 16 * c) : (__mmask16)0;
    for (int j = 0; j < NQ; ++j) acc[j][c] = _mm512_maskz_loadu_ps(m[c], out + j * hd + d0 + 16 * c);
  }
  for (int64_t t = 0; t < n; ++t) {
    const uint8_t* row = v + t * row_bytes;
    if (d0 == 0) prefetch_bytes(v + (t + kValueBlock) * row_bytes, row_bytes);
    __m512 kv[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) kv[c] = m[c] ? Rows::load(row, hd, d0 + 16 * c, m[c]) : _mm512_setzero_ps();
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

template <class Rows>
void values_rows(const uint8_t* v, int64_t n_pos, int64_t hd, const float* w, int64_t n_q, float* out) {
  for_query_blocks(n_q, [&](auto nq, int64_t j0) {
    constexpr int NQ = decltype(nq)::value, C = NQ == 1 ? 8 : 4;
    for_value_blocks(v, n_pos, hd, Rows::row_bytes(hd), w + j0 * n_pos, 16 * C,
                     [&](const uint8_t* vb, int64_t n, const float* wb, int64_t d0) {
                       values_columns<Rows, NQ, C>(vb, n, hd, wb, n_pos, out + j0 * hd, d0);
                     });
  });
}

void values_f16(const uint16_t* v, int64_t n_pos, int64_t hd, const float* w, int64_t n_q, float* out) {
  values_rows<F16Rows>(reinterpret_cast<const uint8_t*>(v), n_pos, hd, w, n_q, out);
}
void values_q8(const uint8_t* v, int64_t n_pos, int64_t hd, const float* w, int64_t n_q, float* out) {
  values_rows<Q8Rows>(v, n_pos, hd, w, n_q, out);
}

}  // namespace

const AttentionKernels kAvx512AttentionKernels = {Isa::AVX512VNNI, scores_f16, exp_sum, values_f16, scores_q8, values_q8};

}  // namespace bitnet::kernels_impl
