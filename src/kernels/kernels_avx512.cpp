// AVX-512 backend (F/BW/VL/DQ + VNNI): zmm vpdpbusd for the ternary dot, masked loads and stores
// for the tails of the float kernels.
//
// A block's 32 weight bytes are broadcast to both halves of a zmm and shifted per half, so each
// code vector lines up with 64 consecutive activations: activations are plain 64-byte loads.
#include <immintrin.h>

#include <algorithm>

// GCC 12's reduce/undefined-vector intrinsics trip its own uninitialised-use warnings.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/kernels_internal.h"
#include "kernels/tq1_internal.h"

namespace bitnet::kernels_impl {
namespace {

// Weights are prefetched this many bytes ahead of the row being read. The rows of one call are
// adjacent in memory, so this walks one stream a few microseconds ahead of the loads.
constexpr size_t kPrefetchBytes = 8192;

inline __mmask16 tail_mask16(int64_t left) { return (__mmask16)((1u << left) - 1); }

// The codes of one 128-value block as two zmm that line up with the block's activations in
// memory order: the block's 32 weight bytes broadcast to both halves and shifted per half by
// 6|4 (Half 0: values 0..63) or 2|0 (Half 1: values 64..127). No shuffle touches the activations.
template <int Half>
[[gnu::always_inline]] inline __m512i unpack_half(const uint8_t* w) {
  const __m512i shift = Half == 0 ? _mm512_inserti64x4(_mm512_set1_epi16(6), _mm256_set1_epi16(4), 1)
                                  : _mm512_inserti64x4(_mm512_set1_epi16(2), _mm256_setzero_si256(), 1);
  const __m512i packed = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)w));
  return _mm512_and_si512(_mm512_srlv_epi16(packed, shift), _mm512_set1_epi8(3));
}

// Sums of 16 lanes of each of four vectors, as four int32 in one xmm (a transposing reduction).
[[gnu::always_inline]] inline __m128i reduce4(__m512i a, __m512i b, __m512i c, __m512i d) {
  // 512 -> 256: pair a,b and c,d.
  const __m512i ab = _mm512_add_epi32(_mm512_shuffle_i64x2(a, b, 0x44), _mm512_shuffle_i64x2(a, b, 0xEE));
  const __m512i cd = _mm512_add_epi32(_mm512_shuffle_i64x2(c, d, 0x44), _mm512_shuffle_i64x2(c, d, 0xEE));
  // lanes: ab = a0..7 | b0..7 (partial sums), cd likewise; 256 -> 128 per source.
  const __m512i abcd = _mm512_add_epi32(_mm512_shuffle_i64x2(ab, cd, 0x88), _mm512_shuffle_i64x2(ab, cd, 0xDD));
  // abcd = a(4) | b(4) | c(4) | d(4); finish each 128-bit lane with two horizontal steps.
  __m512i s = _mm512_add_epi32(abcd, _mm512_shuffle_epi32(abcd, _MM_PERM_BADC));
  s = _mm512_add_epi32(s, _mm512_shuffle_epi32(s, _MM_PERM_CDAB));
  // lane 0 of each 128-bit part holds a, b, c, d.
  return _mm512_castsi512_si128(_mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), s));
}

// GEMV decode without shifts: the block's 32 bytes broadcast to both halves and masked per half,
// so each code keeps its bit position and is scaled by 64|16 (Half 0: values 0..63, zmm bytes
// 0..31|32..63) or 4|1 (Half 1). That is one ALU op per dpbusd instead of two, which matters
// because one token's GEMV is bound by these ops, not by memory. Products stay within range
// (codes <= 2, so at most 128 * 128 per byte pair); sums are scaled back by exact shifts.
template <int Half>
[[gnu::always_inline]] inline __m512i masked_half(const uint8_t* w) {
  const __m512i mask = Half == 0 ? _mm512_inserti64x4(_mm512_set1_epi8((char)0xC0), _mm256_set1_epi8(0x30), 1)
                                 : _mm512_inserti64x4(_mm512_set1_epi8(0x0C), _mm256_set1_epi8(0x03), 1);
  return _mm512_and_si512(_mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)w)), mask);
}
// Int32 lanes 0..7 of a Half's accumulator hold sums scaled by 64|4, lanes 8..15 by 16|1.
template <int Half>
[[gnu::always_inline]] inline __m512i unscale(__m512i acc) {
  const __m512i shift = Half == 0 ? _mm512_inserti64x4(_mm512_set1_epi32(6), _mm256_set1_epi32(4), 1)
                                  : _mm512_inserti64x4(_mm512_set1_epi32(2), _mm256_setzero_si256(), 1);
  return _mm512_srav_epi32(acc, shift);
}

// GEMV, one row over the whole of K: row after row, the loads walk the call's weights in address
// order, one stream the hardware prefetchers follow (the rows of one tile used to be four short
// streams). Four accumulators (two blocks of two halves) keep four dpbusd chains in flight.
[[gnu::always_inline]] inline __m512i gemv_row_sums(const TernaryGemmArgs& a, int64_t m) {
  const uint8_t* w = a.w + m * a.w_stride;
  const int8_t* q = a.q;
  __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
  __m512i acc2 = _mm512_setzero_si512(), acc3 = _mm512_setzero_si512();
  const int64_t n_blocks = a.kp / kTernaryBlock;
  int64_t b = 0;
  // Unrolled: a row of 2560 values is only 10 iterations, and the loop's own overhead showed.
#pragma GCC unroll 8
  for (; b + 2 <= n_blocks; b += 2) {
    _mm_prefetch((const char*)(w + b * 32 + kPrefetchBytes), _MM_HINT_T0);  // never faults
    acc0 = _mm512_dpbusd_epi32(acc0, masked_half<0>(w + b * 32), _mm512_loadu_si512(q + b * 128));
    acc1 = _mm512_dpbusd_epi32(acc1, masked_half<1>(w + b * 32), _mm512_loadu_si512(q + b * 128 + 64));
    acc2 = _mm512_dpbusd_epi32(acc2, masked_half<0>(w + b * 32 + 32), _mm512_loadu_si512(q + b * 128 + 128));
    acc3 = _mm512_dpbusd_epi32(acc3, masked_half<1>(w + b * 32 + 32), _mm512_loadu_si512(q + b * 128 + 192));
  }
  if (b < n_blocks) {
    acc0 = _mm512_dpbusd_epi32(acc0, masked_half<0>(w + b * 32), _mm512_loadu_si512(q + b * 128));
    acc1 = _mm512_dpbusd_epi32(acc1, masked_half<1>(w + b * 32), _mm512_loadu_si512(q + b * 128 + 64));
  }
  return _mm512_add_epi32(unscale<0>(_mm512_add_epi32(acc0, acc2)), unscale<1>(_mm512_add_epi32(acc1, acc3)));
}

void gemv(const TernaryGemmArgs& a) {
  int64_t m = a.m0;
  for (; m + 4 <= a.m1; m += 4) {  // four rows in turn, then one transposing reduction
    const __m512i s0 = gemv_row_sums(a, m), s1 = gemv_row_sums(a, m + 1), s2 = gemv_row_sums(a, m + 2),
                  s3 = gemv_row_sums(a, m + 3);
    int32_t sums[4];
    _mm_storeu_si128((__m128i*)sums, reduce4(s0, s1, s2, s3));
    for (int r = 0; r < 4; ++r)
      a.y[m + r] = ternary_output(sums[r], a.act_sum[0], a.row_scale[m + r], a.act_scale[0]);
  }
  for (; m < a.m1; ++m)
    a.y[m] = ternary_output(_mm512_reduce_add_epi32(gemv_row_sums(a, m)), a.act_sum[0], a.row_scale[m],
                            a.act_scale[0]);
}

// Half of one block for a tile: Rows code vectors, one activation vector at a time.
template <int Rows, int Tokens, int Half>
[[gnu::always_inline]] inline void gemm_half(const uint8_t* const* w, const int8_t* const* q, int64_t b,
                                             __m512i (&acc)[Rows][Tokens]) {
  __m512i codes[Rows];
#pragma GCC unroll 16
  for (int r = 0; r < Rows; ++r) codes[r] = unpack_half<Half>(w[r] + b * 32);
#pragma GCC unroll 16
  for (int t = 0; t < Tokens; ++t) {
    const __m512i act = _mm512_loadu_si512(q[t] + b * 128 + 64 * Half);
#pragma GCC unroll 16
    for (int r = 0; r < Rows; ++r) acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], codes[r], act);
  }
}

// GEMM tile of Rows x Tokens accumulators, all of them in registers.
template <int Rows, int Tokens>
void gemm_tile(const TernaryGemmArgs& a, int64_t m, int rows, int64_t n, int tokens) {
  const uint8_t* w[Rows];
  const int8_t* q[Tokens];
  for (int r = 0; r < Rows; ++r) w[r] = a.w + (m + (r < rows ? r : rows - 1)) * a.w_stride;
  for (int t = 0; t < Tokens; ++t) q[t] = a.q + (n + (t < tokens ? t : tokens - 1)) * a.q_stride;
  __m512i acc[Rows][Tokens];
#pragma GCC unroll 16
  for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 16
    for (int t = 0; t < Tokens; ++t) acc[r][t] = _mm512_setzero_si512();
  const int64_t n_blocks = a.kp / kTernaryBlock;
  for (int64_t b = 0; b < n_blocks; ++b) {
    gemm_half<Rows, Tokens, 0>(w, q, b, acc);
    gemm_half<Rows, Tokens, 1>(w, q, b, acc);
  }
  // Reduce with compile-time indices only, so the accumulators never need an address.
  int32_t sums[Tokens][Rows];
#pragma GCC unroll 16
  for (int t = 0; t < Tokens; ++t) {
    int r = 0;
#pragma GCC unroll 4
    for (; r + 4 <= Rows; r += 4)
      _mm_storeu_si128((__m128i*)&sums[t][r], reduce4(acc[r][t], acc[r + 1][t], acc[r + 2][t], acc[r + 3][t]));
#pragma GCC unroll 4
    for (; r < Rows; ++r) sums[t][r] = _mm512_reduce_add_epi32(acc[r][t]);
  }
  for (int t = 0; t < tokens; ++t)
    for (int r = 0; r < rows; ++r)
      a.y[(n + t) * a.y_stride + m + r] =
          ternary_output(sums[t][r], a.act_sum[n + t], a.row_scale[m + r], a.act_scale[n + t]);
}

// GEMM in 4 x 4 tiles (wider tiles spill on 32 zmm registers and measured slower), token tiles outside so a tile's activations stay in L1 while the call's weights (a few
// hundred KB) come from L2.
constexpr int kGemmRows = 4, kGemmTokens = 4;

void ternary_gemm(const TernaryGemmArgs& a) {
  if (a.n_tokens == 1) return gemv(a);
  for (int64_t n = 0; n < a.n_tokens; n += kGemmTokens) {
    const int tokens = (int)std::min<int64_t>(kGemmTokens, a.n_tokens - n);
    for (int64_t m = a.m0; m < a.m1; m += kGemmRows)
      gemm_tile<kGemmRows, kGemmTokens>(a, m, (int)std::min<int64_t>(kGemmRows, a.m1 - m), n, tokens);
  }
}

void quantize_row_i8(const float* x, int64_t k, int64_t kp, int8_t* q, float* act_scale, int32_t* act_sum) {
  __m512 vmax = _mm512_setzero_ps();
  for (int64_t i = 0; i < k; i += 16) {
    const __mmask16 lanes = k - i >= 16 ? (__mmask16)0xFFFF : tail_mask16(k - i);
    // max_ps returns its second operand when either is NaN: NaN inputs leave vmax as it was.
    vmax = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(lanes, x + i)), vmax);
  }
  const float sigma = quantize_sigma(_mm512_reduce_max_ps(vmax));

  const __m512 vsigma = _mm512_set1_ps(sigma);
  const __m512i lo = _mm512_set1_epi32(-128), hi = _mm512_set1_epi32(127);
  __m512i vsum = _mm512_setzero_si512();
  for (int64_t i = 0; i < kp; i += 16) {  // lanes past k load as 0 and quantize to 0
    const __mmask16 lanes = k - i >= 16 ? (__mmask16)0xFFFF : k > i ? tail_mask16(k - i) : 0;
    // cvtps rounds half to even, as nearbyint in the default mode.
    const __m512 y = _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, x + i), vsigma);
    __m512i v = _mm512_cvtps_epi32(_mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, y, _CMP_ORD_Q), y));  // NaN -> 0
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
    Isa::AVX512VNNI, quantize_row_i8,  ternary_gemm, tq1_gemm_avx2,     dot_f32,
    dot_f16_f32,     fp32_to_fp16_row, fp16_to_fp32_row, axpy_f16,
};

}  // namespace bitnet::kernels_impl
