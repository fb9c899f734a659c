// LM-head kernels for AVX2 (also used on AVX-VNNI CPUs): Q6_K and Q8_0 via vpmaddubsw + vpmaddwd,
// F16 via vcvtph2ps + FMA.
#include <immintrin.h>

#include "kernels/head_internal.h"

namespace bitnet {
namespace {

using namespace kernels_impl;

[[gnu::always_inline]] inline float f16_scalar(const uint8_t* p) { return _cvtsh_ss(load_u16(p)); }

[[gnu::always_inline]] inline float reduce_add(__m256 v) {
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

// ---- F16 ----

// R rows x T tokens: each 8-value chunk of a row is converted once for all T tokens, each token's
// chunk is loaded once for all R rows. Every (row, token) dot product has one accumulator summed in
// chunk order, then the scalar tail: the same operations whatever R and T, so a token's logits do
// not depend on the batch around it (batch invariance); the latency of the FMA chains is hidden by
// the R x T independent products instead.
template <int R, int T>
void f16_tile(const HeadGemmArgs& a, int64_t m, int64_t t0) {
  const uint16_t* row[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) row[r] = reinterpret_cast<const uint16_t*>(a.w + (size_t)(m + r) * a.row_bytes);
  const float* x[T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) x[t] = reinterpret_cast<const float*>(token_acts(a, t0 + t));
  __m256 acc[R][T];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= a.k; i += 8) {
    if (i % 32 == 0)  // one 64-byte line of each row per 32 values
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) prefetch_ahead(row[r] + i, 1);
    __m256 xs[T];
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) xs[t] = _mm256_loadu_ps(x[t] + i);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 w = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(row[r] + i)));
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_fmadd_ps(w, xs[t], acc[r][t]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      float total = reduce_add(acc[r][t]);
      for (int64_t j = i; j < a.k; ++j) total += _cvtsh_ss(row[r][j]) * x[t][j];
      a.y[(size_t)(t0 + t) * a.y_stride + m + r] = total;
    }
}

// Rows in groups of R (the rest one by one), each group over all tokens in tiles of T (the rest in
// one smaller tile).
template <int R, int T>
void f16_rows(const HeadGemmArgs& a) {
  auto tokens = [&]<int Rows>(int64_t m) {
    int64_t t = 0;
    for (; t + T <= a.n_tokens; t += T) f16_tile<Rows, T>(a, m, t);
    const int64_t left = a.n_tokens - t;
    if constexpr (T > 1)
      if (left > 0) {
        if constexpr (T > 3)
          if (left == 3) return f16_tile<Rows, 3>(a, m, t);
        if constexpr (T > 2)
          if (left == 2) return f16_tile<Rows, 2>(a, m, t);
        f16_tile<Rows, 1>(a, m, t);
      }
  };
  int64_t m = a.m0;
  for (; m + R <= a.m1; m += R) tokens.template operator()<R>(m);
  for (; m < a.m1; ++m) tokens.template operator()<1>(m);
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
  const __m256i ones = _mm256_set1_epi16(1);
  const int64_t blocks = a.k / kHeadQ8_0Block;
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = row + b * kQ8_0Bytes;
    prefetch_ahead(block, 1);
    const __m256i w = _mm256_loadu_si256((const __m256i*)(block + kQ8_0Qs));
    const __m256i w_abs = _mm256_abs_epi8(w);  // -128 -> 0x80, read as unsigned 128
    const float dw = f16_scalar(block);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      // sum w*q = sum |w| * (q with w's sign); pairs stay below 2 * 128 * 127 < 2^15
      const __m256i q = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i*)acts[t][b].q), w);
      const __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(w_abs, q), ones);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(dw * acts[t][b].d), acc[t]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) a.y[(size_t)(t0 + t) * a.y_stride + m] = reduce_add(acc[t]);
}

// ---- Q6_K ----

// Run j = 4h + k of a block (values 128h + 32k .. +31) spans sub-blocks 2j and 2j+1: this control
// puts scale 2j in bytes 0..7 and 2j+1 in bytes 8..15, which widen to the two 128-bit lanes.
[[gnu::always_inline]] inline __m128i run_scale_control(int j) {
  return _mm_set_epi64x(0x0101010101010101LL * (2 * j + 1), 0x0101010101010101LL * (2 * j));
}

template <int T>
void q6_k_tile(const HeadGemmArgs& a, int64_t m, int64_t t0) {
  const uint8_t* row = a.w + (size_t)m * a.row_bytes;
  const HeadActQ8K* acts[T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) acts[t] = reinterpret_cast<const HeadActQ8K*>(token_acts(a, t0 + t));
  __m256 acc[T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  const __m256i low_nibble = _mm256_set1_epi8(0x0f), high_bits = _mm256_set1_epi8(0x30);
  const int64_t blocks = a.k / kHeadQ6KBlock;
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = row + b * kQ6KBytes;
    prefetch_ahead(block, 4);
    const __m128i scales8 = _mm_loadu_si128((const __m128i*)(block + kQ6KScales));
    __m256i isum[T];
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      // codes carry +32: start from -32 * sum_s scale_s * sum(q over s)
      const __m256i offset = _mm256_madd_epi16(_mm256_cvtepi8_epi16(scales8),
                                               _mm256_loadu_si256((const __m256i*)acts[t][b].sums));
      isum[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(offset, 5));
    }
#pragma GCC unroll 8
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = _mm256_loadu_si256((const __m256i*)(block + 64 * h));
      const __m256i ql1 = _mm256_loadu_si256((const __m256i*)(block + 64 * h + 32));
      const __m256i qh = _mm256_loadu_si256((const __m256i*)(block + kQ6KQh + 32 * h));
      // value 32k + l: low nibble from ql0 (k even) / ql1 (k odd), high bits 2k..2k+1 of qh
      const __m256i code[4] = {
          _mm256_or_si256(_mm256_and_si256(ql0, low_nibble), _mm256_and_si256(_mm256_slli_epi16(qh, 4), high_bits)),
          _mm256_or_si256(_mm256_and_si256(ql1, low_nibble), _mm256_and_si256(_mm256_slli_epi16(qh, 2), high_bits)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low_nibble), _mm256_and_si256(qh, high_bits)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low_nibble),
                          _mm256_and_si256(_mm256_srli_epi16(qh, 2), high_bits)),
      };
#pragma GCC unroll 8
      for (int k = 0; k < 4; ++k) {
        const __m256i scale = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales8, run_scale_control(4 * h + k)));
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          const __m256i q = _mm256_loadu_si256((const __m256i*)(acts[t][b].q + 128 * h + 32 * k));
          isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(_mm256_maddubs_epi16(code[k], q), scale));
        }
      }
    }
    const float dw = f16_scalar(block + kQ6KD);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t)
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(dw * acts[t][b].d), acc[t]);
  }
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) a.y[(size_t)(t0 + t) * a.y_stride + m] = reduce_add(acc[t]);
}

// Tiles of at least 8 products (chains in flight) within the 16 registers: accumulators, the
// tokens' chunks and one converted row chunk.
void gemm_f16(const HeadGemmArgs& a) {
  switch (a.n_tokens) {
    case 1: return f16_rows<8, 1>(a);
    case 2: return f16_rows<4, 2>(a);
    case 3: return f16_rows<3, 3>(a);
    default: return f16_rows<2, 4>(a);
  }
}
void gemm_q8_0(const HeadGemmArgs& a) {
  for_each_fixed_tile<4>(a, [&]<int T>(int64_t m, int64_t t0) { q8_0_tile<T>(a, m, t0); });
}
void gemm_q6_k(const HeadGemmArgs& a) {
  for_each_fixed_tile<4>(a, [&]<int T>(int64_t m, int64_t t0) { q6_k_tile<T>(a, m, t0); });
}

}  // namespace

namespace kernels_impl {
const HeadKernels kAvx2HeadKernels = {Isa::AVX2, gemm_f16, gemm_q8_0, gemm_q6_k};
}

}  // namespace bitnet
