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

inline __m256 load_i8(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)p)));
}

// Key tiles. tile<NQ> gives the dot products of NQ query heads with the 16 keys of one tile, as two
// 8-lane halves per head; S partial sums per head over interleaved dimensions keep 8 independent
// FMA chains in flight.
struct F16Keys {
  static size_t tile_bytes(int64_t hd) { return (size_t)(kKeyTile * hd * 2); }
  template <int NQ>
  static void tile(const uint8_t* tile_bytes, int64_t hd, const float* q, __m256 (&acc)[NQ][2]);
};
template <int NQ>
void F16Keys::tile(const uint8_t* tile_bytes, int64_t hd, const float* q, __m256 (&acc)[NQ][2]) {
  constexpr int S = NQ == 1 ? 4 : NQ == 2 ? 2 : 1;
  const auto* tile = reinterpret_cast<const uint16_t*>(tile_bytes);
  __m256 part[NQ][S][2];
  for (auto& a : part)
    for (auto& b : a) b[0] = b[1] = _mm256_setzero_ps();
  auto step = [&](int64_t dim, int s) {
    const uint16_t* p = tile + dim * kKeyTile;
    const __m256 lo = load_f16(p), hi = load_f16(p + 8);
#pragma GCC unroll 4
    for (int j = 0; j < NQ; ++j) {
      const __m256 qd = _mm256_set1_ps(q[j * hd + dim]);
      part[j][s][0] = _mm256_fmadd_ps(qd, lo, part[j][s][0]);
      part[j][s][1] = _mm256_fmadd_ps(qd, hi, part[j][s][1]);
    }
  };
  int64_t d = 0;
  for (; d + S <= hd; d += S)
#pragma GCC unroll 4
    for (int s = 0; s < S; ++s) step(d + s, s);
  for (; d < hd; ++d) step(d, 0);
  for (int j = 0; j < NQ; ++j) {
    acc[j][0] = part[j][0][0], acc[j][1] = part[j][0][1];
    for (int s = 1; s < S; ++s) acc[j][0] = _mm256_add_ps(acc[j][0], part[j][s][0]), acc[j][1] = _mm256_add_ps(acc[j][1], part[j][s][1]);
  }
}

// Q8_0 key tiles, per 32-dimension block: the block's dot products times its scales.
struct Q8Keys {
  static size_t tile_bytes(int64_t hd) { return q8_key_tile_bytes(hd); }
  template <int NQ>
  static void tile(const uint8_t* tile, int64_t hd, const float* q, __m256 (&acc)[NQ][2]);
};
template <int NQ>
void Q8Keys::tile(const uint8_t* tile, int64_t hd, const float* q, __m256 (&acc)[NQ][2]) {
  constexpr int S = NQ == 1 ? 2 : 1;
  const float* scales = reinterpret_cast<const float*>(tile + kKeyTile * hd);
  for (auto& x : acc) x[0] = x[1] = _mm256_setzero_ps();
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
      acc[j][0] = _mm256_fmadd_ps(lo, s_lo, acc[j][0]);
      acc[j][1] = _mm256_fmadd_ps(hi, s_hi, acc[j][1]);
    }
  }
}

// Every query-head block against every key tile.
template <class Keys>
void scores_tiles(const uint8_t* k, int64_t n_pos, int64_t hd, const float* q, int64_t n_q, float scale,
                  float* scores) {
  const __m256 vscale = _mm256_set1_ps(scale);
  for_query_blocks(n_q, [&](auto nq, int64_t j0) {
    constexpr int NQ = decltype(nq)::value;
    for (int64_t t = 0; t < n_pos; t += kKeyTile) {
      __m256 acc[NQ][2];
      Keys::template tile<NQ>(k + (size_t)(t / kKeyTile) * Keys::tile_bytes(hd), hd, q + j0 * hd, acc);
      const int64_t valid = std::min(kKeyTile, n_pos - t);
      for (int j = 0; j < NQ; ++j) {
        float* dst = scores + (j0 + j) * n_pos + t;
        if (valid == kKeyTile) {
          _mm256_storeu_ps(dst, _mm256_mul_ps(acc[j][0], vscale));
          _mm256_storeu_ps(dst + 8, _mm256_mul_ps(acc[j][1], vscale));
        } else {
          alignas(32) float tmp[kKeyTile];
          _mm256_store_ps(tmp, _mm256_mul_ps(acc[j][0], vscale));
          _mm256_store_ps(tmp + 8, _mm256_mul_ps(acc[j][1], vscale));
          std::copy_n(tmp, valid, dst);
        }
      }
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

inline void prefetch_bytes(const void* p, size_t bytes) {
  for (size_t b = 0; b < bytes; b += 64) _mm_prefetch((const char*)p + b, _MM_HINT_T0);
}

// Value rows as 8-lane vectors (whole vectors only: hd / 8 * 8 values): f16, or Q8_0 (int8 times
// the scale of its 32-value block; hd is then a multiple of 32).
struct F16Rows {
  static size_t row_bytes(int64_t hd) { return (size_t)hd * 2; }
  static __m256 load(const uint8_t* row, int64_t, int64_t d) { return load_f16(reinterpret_cast<const uint16_t*>(row) + d); }
  static float value(const uint8_t* row, int64_t, int64_t d) { return fp16_to_fp32(reinterpret_cast<const uint16_t*>(row)[d]); }
};
struct Q8Rows {
  static size_t row_bytes(int64_t hd) { return q8_value_row_bytes(hd); }
  static __m256 load(const uint8_t* row, int64_t hd, int64_t d) {
    return _mm256_mul_ps(load_i8(row + d), _mm256_set1_ps(reinterpret_cast<const float*>(row + hd)[d / kQ8Block]));
  }
  static float value(const uint8_t* row, int64_t hd, int64_t d) {
    return reinterpret_cast<const float*>(row + hd)[d / kQ8Block] * (float)(int8_t)row[d];
  }
};

// Weighted value rows for NQ query heads over up to C 8-lane columns starting at d0 (fewer at the
// end of the row): every value vector is converted once and feeds NQ accumulators.
template <class Rows, int NQ, int C>
void values_columns(const uint8_t* v, int64_t n, int64_t hd, const float* w, int64_t n_pos, float* out, int64_t d0) {
  const size_t row_bytes = Rows::row_bytes(hd);
  const int64_t nc = std::min<int64_t>(C, (hd / 8 * 8 - d0) / 8);
  __m256 acc[NQ][C];
  for (int j = 0; j < NQ; ++j)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[j][c] = c < nc ? _mm256_loadu_ps(out + j * hd + d0 + 8 * c) : _mm256_setzero_ps();
  for (int64_t t = 0; t < n; ++t) {
    const uint8_t* row = v + t * row_bytes;
    if (d0 == 0) prefetch_bytes(v + (t + kValueBlock) * row_bytes, row_bytes);
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      if (c >= nc) break;
      const __m256 kv = Rows::load(row, hd, d0 + 8 * c);
#pragma GCC unroll 4
      for (int j = 0; j < NQ; ++j) acc[j][c] = _mm256_fmadd_ps(_mm256_set1_ps(w[j * n_pos + t]), kv, acc[j][c]);
    }
  }
  for (int j = 0; j < NQ; ++j)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c)
      if (c < nc) _mm256_storeu_ps(out + j * hd + d0 + 8 * c, acc[j][c]);
}

template <class Rows>
void values_rows(const uint8_t* v, int64_t n_pos, int64_t hd, const float* w, int64_t n_q, float* out) {
  const int64_t vec_end = hd / 8 * 8;
  const size_t row_bytes = Rows::row_bytes(hd);
  for_query_blocks(n_q, [&](auto nq, int64_t j0) {
    constexpr int NQ = decltype(nq)::value, C = NQ == 1 ? 8 : NQ == 2 ? 4 : 2;
    for_value_blocks(v, n_pos, vec_end, row_bytes, w + j0 * n_pos, 8 * C,
                     [&](const uint8_t* vb, int64_t n, const float* wb, int64_t d0) {
                       values_columns<Rows, NQ, C>(vb, n, hd, wb, n_pos, out + j0 * hd, d0);
                     });
  });
  for (int64_t j = 0; j < n_q; ++j)  // the values after the last whole vector
    for (int64_t d = vec_end; d < hd; ++d)
      for (int64_t t = 0; t < n_pos; ++t) out[j * hd + d] += w[j * n_pos + t] * Rows::value(v + t * row_bytes, hd, d);
}

void values_f16(const uint16_t* v, int64_t n_pos, int64_t hd, const float* w, int64_t n_q, float* out) {
  values_rows<F16Rows>(reinterpret_cast<const uint8_t*>(v), n_pos, hd, w, n_q, out);
}
void values_q8(const uint8_t* v, int64_t n_pos, int64_t hd, const float* w, int64_t n_q, float* out) {
  values_rows<Q8Rows>(v, n_pos, hd, w, n_q, out);
}

}  // namespace

const AttentionKernels kAvx2AttentionKernels = {Isa::AVX2, scores_f16, exp_sum, values_f16, scores_q8, values_q8};

}  // namespace bitnet::kernels_impl
