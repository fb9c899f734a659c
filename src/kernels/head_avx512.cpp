// LM-head kernels for AVX-512 VNNI: Q6_K via vpmaddubsw + vpdpwssd with per-lane sub-block scales,
// Q8_0 via vpdpbusd on |w| and sign-transferred activations, F16 via vcvtph2ps + FMA.
// GCC 12's AVX-512 intrinsics build their "undefined" operands from self-initialized variables,
// which -Wall reports as uninitialized at every inlined use; the values are never read.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "kernels/head_internal.h"

namespace bitnet {
namespace {

using namespace kernels_impl;

[[gnu::always_inline]] inline float f16_scalar(const uint8_t* p) { return _cvtsh_ss(load_u16(p)); }

// ---- F16 ----

// T tokens over one f16 row: each 16-value chunk is converted once and used by every token.
template <int T>
void f16_tile(const HeadGemmArgs& a, int64_t m, int64_t t0) {
  // Independent accumulators per token, to hide FMA latency. The same count for every T, so that a
  // token's sum runs in one order whether it is computed alone or in a tile (batch invariance).
  constexpr int U = 4;
  const auto* row = reinterpret_cast<const uint16_t*>(a.w + (size_t)m * a.row_bytes);
  const float* x[T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) x[t] = reinterpret_cast<const float*>(token_acts(a, t0 + t));
  __m512 acc[T][U];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t)
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) acc[t][u] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 * U <= a.k; i += 16 * U) {
    prefetch_ahead(row + i, U / 2);  // 32 * U bytes per step
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) {
      const __m512 w = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(row + i + 16 * u)));
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) acc[t][u] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x[t] + i + 16 * u), acc[t][u]);
    }
  }
  for (; i + 16 <= a.k; i += 16) {
    const __m512 w = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(row + i)));
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[t][0] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x[t] + i), acc[t][0]);
  }
  if (i < a.k) {
    const __mmask16 tail = (__mmask16)((1u << (a.k - i)) - 1);
    const __m512 w = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail, row + i));
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[t][0] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(tail, x[t] + i), acc[t][0]);
  }
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) {
    __m512 sum = acc[t][0];
#pragma GCC unroll 8
    for (int u = 1; u < U; ++u) sum = _mm512_add_ps(sum, acc[t][u]);
    a.y[(size_t)(t0 + t) * a.y_stride + m] = _mm512_reduce_add_ps(sum);
  }
}

// ---- Q8_0 ----

template <int T>
void q8_0_tile(const HeadGemmArgs& a, int64_t m, int64_t t0) {
  const uint8_t* row = a.w + (size_t)m * a.row_bytes;
  const HeadActQ8_0* acts[T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) acts[t] = reinterpret_cast<const HeadActQ8_0*>(token_acts(a, t0 + t));
  __m256 acc[T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  const int64_t blocks = a.k / kHeadQ8_0Block;
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = row + b * kQ8_0Bytes;
    prefetch_ahead(block, 1);
    const __m256i w = _mm256_loadu_si256((const __m256i*)(block + kQ8_0Qs));
    const __m256i w_abs = _mm256_abs_epi8(w);  // -128 -> 0x80, read as unsigned 128
    const float dw = f16_scalar(block);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      // sum w*q = sum |w| * (q with w's sign), in vpdpbusd's unsigned x signed form
      const __m256i q = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i*)acts[t][b].q), w);
      const __m256i dot = _mm256_dpbusd_epi32(_mm256_setzero_si256(), w_abs, q);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(dw * acts[t][b].d), acc[t]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) {
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc[t]), _mm256_extractf128_ps(acc[t], 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    a.y[(size_t)(t0 + t) * a.y_stride + m] = _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
  }
}

// ---- Q6_K ----

// Word w of the permutation for code vector g (see below) picks scale 4g + w/8.
alignas(64) constexpr int16_t kScaleIndex[4][32] = {
#define BITNET_ROW(g)                                                                                  \
  {4 * g, 4 * g, 4 * g, 4 * g, 4 * g, 4 * g, 4 * g, 4 * g, 4 * g + 1, 4 * g + 1, 4 * g + 1, 4 * g + 1, \
   4 * g + 1, 4 * g + 1, 4 * g + 1, 4 * g + 1, 4 * g + 2, 4 * g + 2, 4 * g + 2, 4 * g + 2, 4 * g + 2, \
   4 * g + 2, 4 * g + 2, 4 * g + 2, 4 * g + 3, 4 * g + 3, 4 * g + 3, 4 * g + 3, 4 * g + 3, 4 * g + 3, \
   4 * g + 3, 4 * g + 3}
    BITNET_ROW(0), BITNET_ROW(1), BITNET_ROW(2), BITNET_ROW(3)
#undef BITNET_ROW
};

// The 256 codes of a block as 4 vectors: code[2h] holds half h's k = 0 and k = 1 runs (values
// 128h + 0..63), code[2h+1] its k = 2 and k = 3 runs (values 128h + 64..127). So code[g] lines up
// with activations q[64g .. 64g+63], and its 128-bit lane i holds exactly sub-block 4g + i.
struct Q6Codes {
  __m512i code[4];
  __m512i scale[4];  // int16 sub-block scale for each word of the maddubs product of code[g]
};

[[gnu::always_inline]] inline Q6Codes decode_q6k(const uint8_t* block) {
  const __m512i low_nibble = _mm512_set1_epi8(0x0f), high_bits = _mm512_set1_epi8(0x30);
  // qh's bits 2k..2k+1 moved to bits 4..5: k = 0/1 shift left by 4/2, k = 2/3 right by 0/2.
  const __m512i shift_k01 = _mm512_set_epi64(2, 2, 2, 2, 4, 4, 4, 4);
  const __m512i shift_k23 = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0);
  Q6Codes c;
#pragma GCC unroll 8
  for (int h = 0; h < 2; ++h) {
    const __m512i ql = _mm512_loadu_si512(block + 64 * h);
    const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(block + kQ6KQh + 32 * h)));
    const __m512i lo = _mm512_and_si512(ql, low_nibble);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(ql, 4), low_nibble);
    // (a | (b & c)) = ternary-logic 0xF8
    c.code[2 * h] = _mm512_ternarylogic_epi32(lo, _mm512_sllv_epi64(qh, shift_k01), high_bits, 0xF8);
    c.code[2 * h + 1] = _mm512_ternarylogic_epi32(hi, _mm512_srlv_epi64(qh, shift_k23), high_bits, 0xF8);
  }
  const __m512i scales =
      _mm512_zextsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(block + kQ6KScales))));
#pragma GCC unroll 8
  for (int g = 0; g < 4; ++g) c.scale[g] = _mm512_permutexvar_epi16(_mm512_load_si512(kScaleIndex[g]), scales);
  return c;
}

template <int T>
void q6_k_tile(const HeadGemmArgs& a, int64_t m, int64_t t0) {
  const uint8_t* row = a.w + (size_t)m * a.row_bytes;
  const HeadActQ8K* acts[T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) acts[t] = reinterpret_cast<const HeadActQ8K*>(token_acts(a, t0 + t));
  __m512 acc[T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  const int64_t blocks = a.k / kHeadQ6KBlock;
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = row + b * kQ6KBytes;
    prefetch_ahead(block, 4);
    const Q6Codes c = decode_q6k(block);
    const __m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(block + kQ6KScales)));
    const float dw = f16_scalar(block + kQ6KD);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const HeadActQ8K& act = acts[t][b];
      __m512i isum = _mm512_setzero_si512();
#pragma GCC unroll 8
      for (int g = 0; g < 4; ++g) {
        const __m512i products = _mm512_maddubs_epi16(c.code[g], _mm512_loadu_si512(act.q + 64 * g));
        isum = _mm512_dpwssd_epi32(isum, products, c.scale[g]);
      }
      // codes carry +32: subtract 32 * sum_s scale_s * sum(q over s)
      const __m256i offset = _mm256_madd_epi16(scales16, _mm256_loadu_si256((const __m256i*)act.sums));
      isum = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(_mm256_slli_epi32(offset, 5)));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(dw * act.d), acc[t]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) a.y[(size_t)(t0 + t) * a.y_stride + m] = _mm512_reduce_add_ps(acc[t]);
}

void gemm_f16(const HeadGemmArgs& a) {
  // 4 tokens x 4 accumulators of the 32 registers
  for_each_fixed_tile<4>(a, [&]<int T>(int64_t m, int64_t t0) { f16_tile<T>(a, m, t0); });
}
void gemm_q8_0(const HeadGemmArgs& a) {
  for_each_fixed_tile<4>(a, [&]<int T>(int64_t m, int64_t t0) { q8_0_tile<T>(a, m, t0); });
}
void gemm_q6_k(const HeadGemmArgs& a) {
  for_each_fixed_tile<4>(a, [&]<int T>(int64_t m, int64_t t0) { q6_k_tile<T>(a, m, t0); });
}

}  // namespace

namespace kernels_impl {
const HeadKernels kAvx512HeadKernels = {Isa::AVX512VNNI, gemm_f16, gemm_q8_0, gemm_q6_k};
}

}  // namespace bitnet
