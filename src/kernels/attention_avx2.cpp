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

constexpr int kQueryBlock = 4;

void scores_f16(const uint16_t* k, int64_t n_pos, int64_t hd, const float* q, int64_t n_q, float scale,
                float* scores) {
  const int64_t vec_end = hd / 8 * 8;
  for (int64_t j0 = 0; j0 < n_q; j0 += kQueryBlock) {
    const int64_t nj = std::min<int64_t>(kQueryBlock, n_q - j0);
    for (int64_t t = 0; t < n_pos; ++t) {
      const uint16_t* row = k + t * hd;
      __m256 acc[kQueryBlock] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
      for (int64_t d = 0; d < vec_end; d += 8) {
        const __m256 kv = load_f16(row + d);
#pragma GCC unroll 4
        for (int j = 0; j < kQueryBlock; ++j)
          if (j < nj) acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(q + (j0 + j) * hd + d), kv, acc[j]);
      }
      for (int j = 0; j < nj; ++j) {
        float sum = hsum(acc[j]);
        for (int64_t d = vec_end; d < hd; ++d) sum += q[(j0 + j) * hd + d] * fp16_to_fp32(row[d]);
        scores[(j0 + j) * n_pos + t] = scale * sum;
      }
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

constexpr int kColumnBlock = 4;  // 8-lane output columns kept in registers

void values_f16(const uint16_t* v, int64_t n_pos, int64_t hd, const float* w, int64_t n_q, float* out) {
  const int64_t vec_end = hd / 8 * 8;
  for (int64_t j = 0; j < n_q; ++j) {
    float* o = out + j * hd;
    const float* wj = w + j * n_pos;
    int64_t d0 = 0;
    for (; d0 + 8 * kColumnBlock <= vec_end; d0 += 8 * kColumnBlock) {
      __m256 acc[kColumnBlock];
#pragma GCC unroll 4
      for (int c = 0; c < kColumnBlock; ++c) acc[c] = _mm256_loadu_ps(o + d0 + 8 * c);
      for (int64_t t = 0; t < n_pos; ++t) {
        const __m256 wt = _mm256_set1_ps(wj[t]);
        const uint16_t* row = v + t * hd + d0;
#pragma GCC unroll 4
        for (int c = 0; c < kColumnBlock; ++c) acc[c] = _mm256_fmadd_ps(wt, load_f16(row + 8 * c), acc[c]);
      }
#pragma GCC unroll 4
      for (int c = 0; c < kColumnBlock; ++c) _mm256_storeu_ps(o + d0 + 8 * c, acc[c]);
    }
    for (; d0 < vec_end; d0 += 8) {
      __m256 acc = _mm256_loadu_ps(o + d0);
      for (int64_t t = 0; t < n_pos; ++t) acc = _mm256_fmadd_ps(_mm256_set1_ps(wj[t]), load_f16(v + t * hd + d0), acc);
      _mm256_storeu_ps(o + d0, acc);
    }
    for (int64_t d = vec_end; d < hd; ++d)
      for (int64_t t = 0; t < n_pos; ++t) o[d] += wj[t] * fp16_to_fp32(v[t * hd + d]);
  }
}

}  // namespace

const AttentionKernels kAvx2AttentionKernels = {Isa::AVX2, scores_f16, exp_sum, values_f16};

}  // namespace bitnet::kernels_impl
