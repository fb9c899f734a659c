// AVX-512 backend (F/BW/VL/DQ + VNNI): zmm vpdpbusd for the ternary dot, masked loads and stores
// for the tails of the float kernels.
//
// A 64-byte weight load covers two consecutive 128-value blocks, so a zmm of codes for run r holds
// values 32r..32r+31 of block b (low half) and of block b+1 (high half); the matching activation
// vector is assembled from the two 32-byte runs of those blocks.
#include <immintrin.h>

// GCC 12's reduce/undefined-vector intrinsics trip its own uninitialised-use warnings.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/kernels_internal.h"

namespace bitnet::kernels_impl {
namespace {

// Weights are prefetched this many row tiles ahead: the rows of one tile are only a few hundred
// bytes long, too short for the hardware stream prefetchers to ramp up on their own.
constexpr int64_t kPrefetchTiles = 4;

inline __mmask16 tail_mask16(int64_t left) { return (__mmask16)((1u << left) - 1); }

// One step over blocks b and b+1 (Pair) or block b alone (the last of an odd count, whose high
// half of codes loads as zero so the high half of the activations does not matter).
template <int Rows, int Tokens, bool Pair>
[[gnu::always_inline]] inline void ternary_step(const uint8_t* const* w, const int8_t* const* q, int64_t b, size_t ahead,
                                                __m512i (&acc)[Rows][Tokens]) {
  const __m512i mask = _mm512_set1_epi8(3);
  __m512i packed[Rows];
#pragma GCC unroll 16
  for (int r = 0; r < Rows; ++r) {
    if constexpr (Pair) {
      packed[r] = _mm512_loadu_si512(w[r] + b * 32);
      _mm_prefetch((const char*)(w[r] + ahead + b * 32), _MM_HINT_T0);
    } else {
      packed[r] = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i*)(w[r] + b * 32)));
    }
  }
#pragma GCC unroll 4
  for (int run = 0; run < 4; ++run) {  // values 32*run .. 32*run+31 of each block
    __m512i codes[Rows];
#pragma GCC unroll 16
    for (int r = 0; r < Rows; ++r) codes[r] = _mm512_and_si512(_mm512_srli_epi16(packed[r], 6 - 2 * run), mask);
#pragma GCC unroll 16
    for (int t = 0; t < Tokens; ++t) {
      const __m256i first = _mm256_loadu_si256((const __m256i*)(q[t] + b * 128 + 32 * run));
      __m512i act;
      if constexpr (Pair)
        act = _mm512_inserti64x4(_mm512_castsi256_si512(first),
                                 _mm256_loadu_si256((const __m256i*)(q[t] + (b + 1) * 128 + 32 * run)), 1);
      else
        act = _mm512_zextsi256_si512(first);
#pragma GCC unroll 16
      for (int r = 0; r < Rows; ++r) acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], codes[r], act);
    }
  }
}

template <int Rows, int Tokens>
void ternary_tile(const TernaryGemmArgs& a, int64_t m, int rows, int64_t n, int tokens) {
  const uint8_t* w[Rows];
  const int8_t* q[Tokens];
  for (int r = 0; r < Rows; ++r) w[r] = a.w + (m + (r < rows ? r : rows - 1)) * a.w_stride;
  for (int t = 0; t < Tokens; ++t) q[t] = a.q + (n + (t < tokens ? t : tokens - 1)) * a.q_stride;
  const size_t ahead = kPrefetchTiles * Rows * a.w_stride;
  __m512i acc[Rows][Tokens];
#pragma GCC unroll 16
  for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 16
    for (int t = 0; t < Tokens; ++t) acc[r][t] = _mm512_setzero_si512();

  const int64_t n_blocks = a.kp / kTernaryBlock;
  int64_t b = 0;
  for (; b + 2 <= n_blocks; b += 2) ternary_step<Rows, Tokens, true>(w, q, b, ahead, acc);
  if (b < n_blocks) ternary_step<Rows, Tokens, false>(w, q, b, ahead, acc);

  for (int t = 0; t < tokens; ++t)
    for (int r = 0; r < rows; ++r)
      a.y[(n + t) * a.y_stride + m + r] = ternary_output(_mm512_reduce_add_epi32(acc[r][t]), a.act_sum[n + t],
                                                         a.row_scale[m + r], a.act_scale[n + t]);
}

void ternary_gemm(const TernaryGemmArgs& a) {
  if (a.n_tokens == 1)
    for_each_tile<4, 1>(a, ternary_tile<4, 1>);
  else
    for_each_tile<4, 4>(a, ternary_tile<4, 4>);
}

void quantize_row_i8(const float* x, int64_t k, int64_t kp, int8_t* q, float* act_scale, int32_t* act_sum) {
  __m512 vmax = _mm512_setzero_ps();
  for (int64_t i = 0; i < k; i += 16) {
    const __mmask16 lanes = k - i >= 16 ? (__mmask16)0xFFFF : tail_mask16(k - i);
    vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_maskz_loadu_ps(lanes, x + i)));
  }
  const float sigma = quantize_sigma(_mm512_reduce_max_ps(vmax));

  const __m512 vsigma = _mm512_set1_ps(sigma);
  const __m512i lo = _mm512_set1_epi32(-128), hi = _mm512_set1_epi32(127);
  __m512i vsum = _mm512_setzero_si512();
  for (int64_t i = 0; i < kp; i += 16) {  // lanes past k load as 0 and quantize to 0
    const __mmask16 lanes = k - i >= 16 ? (__mmask16)0xFFFF : k > i ? tail_mask16(k - i) : 0;
    // cvtps rounds half to even, as nearbyint in the default mode.
    __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, x + i), vsigma));
    v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
    vsum = _mm512_add_epi32(vsum, v);
    const __mmask16 out_lanes = kp - i >= 16 ? (__mmask16)0xFFFF : tail_mask16(kp - i);
    _mm_mask_storeu_epi8(q + i, out_lanes, _mm512_cvtsepi32_epi8(v));
  }
  *act_scale = 1.0f / sigma;
  *act_sum = _mm512_reduce_add_epi32(vsum);
}

// Sums a[i] * b[i] with b floats and a loaded and widened by Load(pointer, lane mask).
template <class Elem, class Load>
[[gnu::always_inline]] inline float dot_with(const Elem* a, const float* b, int64_t n, Load load) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j)
      acc[j] = _mm512_fmadd_ps(load(a + i + 16 * j, (__mmask16)0xFFFF), _mm512_loadu_ps(b + i + 16 * j), acc[j]);
  for (; i < n; i += 16) {
    const __mmask16 lanes = n - i >= 16 ? (__mmask16)0xFFFF : tail_mask16(n - i);
    acc[0] = _mm512_fmadd_ps(load(a + i, lanes), _mm512_maskz_loadu_ps(lanes, b + i), acc[0]);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

inline __m512 load_f32(const float* p, __mmask16 lanes) { return _mm512_maskz_loadu_ps(lanes, p); }
inline __m512 load_f16(const uint16_t* p, __mmask16 lanes) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lanes, p));
}

float dot_f32(const float* a, const float* b, int64_t n) { return dot_with(a, b, n, load_f32); }
float dot_f16_f32(const uint16_t* a, const float* b, int64_t n) { return dot_with(a, b, n, load_f16); }

void fp32_to_fp16_row(const float* in, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 lanes = n - i >= 16 ? (__mmask16)0xFFFF : tail_mask16(n - i);
    const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(lanes, in + i), _MM_FROUND_TO_NEAREST_INT);
    _mm256_mask_storeu_epi16(out + i, lanes, h);
  }
}

void fp16_to_fp32_row(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 lanes = n - i >= 16 ? (__mmask16)0xFFFF : tail_mask16(n - i);
    _mm512_mask_storeu_ps(out + i, lanes, load_f16(in + i, lanes));
  }
}

void axpy_f16(float a, const uint16_t* x, float* y, int64_t n) {
  const __m512 va = _mm512_set1_ps(a);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 lanes = n - i >= 16 ? (__mmask16)0xFFFF : tail_mask16(n - i);
    _mm512_mask_storeu_ps(y + i, lanes, _mm512_fmadd_ps(va, load_f16(x + i, lanes), _mm512_maskz_loadu_ps(lanes, y + i)));
  }
}

}  // namespace

const Kernels kAvx512VnniKernels = {
    Isa::AVX512VNNI, quantize_row_i8,  ternary_gemm,     dot_f32,
    dot_f16_f32,     fp32_to_fp16_row, fp16_to_fp32_row, axpy_f16,
};

}  // namespace bitnet::kernels_impl
