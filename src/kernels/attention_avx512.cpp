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

constexpr int kQueryBlock = 4;  // query heads sharing one conversion of a key row

void scores_f16(const uint16_t* k, int64_t n_pos, int64_t hd, const float* q, int64_t n_q, float scale,
                float* scores) {
  for (int64_t j0 = 0; j0 < n_q; j0 += kQueryBlock) {
    const int64_t nj = std::min<int64_t>(kQueryBlock, n_q - j0);
    for (int64_t t = 0; t < n_pos; ++t) {
      const uint16_t* row = k + t * hd;
      __m512 acc[kQueryBlock] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
      for (int64_t d = 0; d < hd; d += 16) {
        const __mmask16 m = lanes(hd - d);
        const __m512 kv = load_f16(row + d, m);
#pragma GCC unroll 4
        for (int j = 0; j < kQueryBlock; ++j)
          if (j < nj) acc[j] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + (j0 + j) * hd + d), kv, acc[j]);
      }
      for (int j = 0; j < nj; ++j) scores[(j0 + j) * n_pos + t] = scale * _mm512_reduce_add_ps(acc[j]);
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

constexpr int kColumnBlock = 4;  // 16-lane columns of the output kept in registers

void values_f16(const uint16_t* v, int64_t n_pos, int64_t hd, const float* w, int64_t n_q, float* out) {
  for (int64_t j = 0; j < n_q; ++j) {
    float* o = out + j * hd;
    const float* wj = w + j * n_pos;
    for (int64_t d0 = 0; d0 < hd; d0 += 16 * kColumnBlock) {
      __mmask16 m[kColumnBlock];
      __m512 acc[kColumnBlock];
#pragma GCC unroll 4
      for (int c = 0; c < kColumnBlock; ++c) {
        m[c] = d0 + 16 * c < hd ? lanes(hd - d0 - 16 * c) : (__mmask16)0;
        acc[c] = _mm512_maskz_loadu_ps(m[c], o + d0 + 16 * c);
      }
      for (int64_t t = 0; t < n_pos; ++t) {
        const __m512 wt = _mm512_set1_ps(wj[t]);
        const uint16_t* row = v + t * hd + d0;
#pragma GCC unroll 4
        for (int c = 0; c < kColumnBlock; ++c) acc[c] = _mm512_fmadd_ps(wt, load_f16(row + 16 * c, m[c]), acc[c]);
      }
#pragma GCC unroll 4
      for (int c = 0; c < kColumnBlock; ++c) _mm512_mask_storeu_ps(o + d0 + 16 * c, m[c], acc[c]);
    }
  }
}

}  // namespace

const AttentionKernels kAvx512AttentionKernels = {Isa::AVX512VNNI, scores_f16, exp_sum, values_f16};

}  // namespace bitnet::kernels_impl
