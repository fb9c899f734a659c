// Private to the AVX2 and AVX-VNNI backends: the 256-bit ternary tile they share, parameterised on
// the int8 dot step (the one thing the two ISAs do differently). Internal linkage only (see
// kernels_internal.h for why).
#pragma once
#include <immintrin.h>

#include "kernels/kernels_internal.h"

namespace bitnet::kernels_impl {
namespace {

// Weights are prefetched this many row tiles ahead: the rows of one tile are only a few hundred
// bytes long, too short for the hardware stream prefetchers to ramp up on their own.
constexpr int64_t kPrefetchTiles = 4;

[[gnu::always_inline]] inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// Computes rows x tokens outputs starting at (m, n); Rows x Tokens accumulators live in registers.
// Dot supplies the int8 step on unsigned codes (0..2) and signed activations:
//   step(part, codes, act) -> part   adds the products of one run into a partial sum,
//   widen(acc, part) -> acc          folds a partial sum into the i32 accumulator,
//   kFlushBlocks                     blocks a partial sum may take before it must be folded,
//   kCodesPerRow                     decode order (below).
// With kCodesPerRow, each row's codes are decoded right before its Tokens steps, which read their
// activations straight from memory: one code register live instead of Rows, and no accumulator
// spills (measured on Zen 3 AVX2: 1.4x at 8 and 16 tokens). Otherwise all rows' codes are decoded
// first and each activation vector is loaded once for the Rows steps that use it.
template <class Dot, int Rows, int Tokens>
void ternary_tile_256(const TernaryGemmArgs& a, int64_t m, int rows, int64_t n, int tokens) {
  const uint8_t* w[Rows];
  const int8_t* q[Tokens];
  for (int r = 0; r < Rows; ++r) w[r] = a.w + (m + (r < rows ? r : rows - 1)) * a.w_stride;
  for (int t = 0; t < Tokens; ++t) q[t] = a.q + (n + (t < tokens ? t : tokens - 1)) * a.q_stride;
  const size_t ahead = kPrefetchTiles * Rows * a.w_stride;
  const __m256i mask = _mm256_set1_epi8(3);
  __m256i acc[Rows][Tokens];
#pragma GCC unroll 16
  for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 16
    for (int t = 0; t < Tokens; ++t) acc[r][t] = _mm256_setzero_si256();

  const int64_t n_blocks = a.kp / kTernaryBlock;
  for (int64_t b0 = 0; b0 < n_blocks; b0 += Dot::kFlushBlocks) {
    const int64_t b1 = n_blocks - b0 > Dot::kFlushBlocks ? b0 + Dot::kFlushBlocks : n_blocks;
    __m256i part[Rows][Tokens];
#pragma GCC unroll 16
    for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 16
      for (int t = 0; t < Tokens; ++t) part[r][t] = _mm256_setzero_si256();
    for (int64_t b = b0; b < b1; ++b) {
      __m256i packed[Rows];
#pragma GCC unroll 16
      for (int r = 0; r < Rows; ++r) {
        packed[r] = _mm256_loadu_si256((const __m256i*)(w[r] + b * 32));
        _mm_prefetch((const char*)(w[r] + ahead + b * 32), _MM_HINT_T0);
      }
#pragma GCC unroll 4
      for (int run = 0; run < 4; ++run) {  // values 32*run .. 32*run+31 of the block
        if constexpr (Dot::kCodesPerRow) {
#pragma GCC unroll 16
          for (int r = 0; r < Rows; ++r) {
            const __m256i codes = _mm256_and_si256(_mm256_srli_epi16(packed[r], 6 - 2 * run), mask);
#pragma GCC unroll 16
            for (int t = 0; t < Tokens; ++t)
              part[r][t] = Dot::step(part[r][t], codes, _mm256_loadu_si256((const __m256i*)(q[t] + b * 128 + 32 * run)));
          }
        } else {
          __m256i codes[Rows];
#pragma GCC unroll 16
          for (int r = 0; r < Rows; ++r)
            codes[r] = _mm256_and_si256(_mm256_srli_epi16(packed[r], 6 - 2 * run), mask);
#pragma GCC unroll 16
          for (int t = 0; t < Tokens; ++t) {
            const __m256i act = _mm256_loadu_si256((const __m256i*)(q[t] + b * 128 + 32 * run));
#pragma GCC unroll 16
            for (int r = 0; r < Rows; ++r) part[r][t] = Dot::step(part[r][t], codes[r], act);
          }
        }
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 16
      for (int t = 0; t < Tokens; ++t) acc[r][t] = Dot::widen(acc[r][t], part[r][t]);
  }
  for (int t = 0; t < tokens; ++t)
    for (int r = 0; r < rows; ++r)
      a.y[(n + t) * a.y_stride + m + r] =
          ternary_output(hsum_i32(acc[r][t]), a.act_sum[n + t], a.row_scale[m + r], a.act_scale[n + t]);
}

// GEMV (one token), row after row over the whole of K, so that the loads walk the call's weights in
// address order (one stream the prefetchers follow; four interleaved rows measured slower). One
// shift serves two runs of a block: a code is read in place at bits 1-0 (scale 1) or 3-2 (scale 4)
// of the byte or of the byte shifted right by 4, and the two scales are summed apart,
// raw = sum1 + sum4 / 4 (exact: sum4 is a sum of multiples of 4): 5 ALU ops per block to decode
// instead of 8.
constexpr size_t kGemvPrefetchBytes = 8192;

template <class Dot>
void ternary_gemv_256(const TernaryGemmArgs& a) {
  // A scale-4 partial grows 4x faster: flush after half the blocks.
  constexpr int64_t kFlush = Dot::kFlushBlocks / 2 > 0 ? Dot::kFlushBlocks / 2 : 1;
  const __m256i low = _mm256_set1_epi8(0x03), high = _mm256_set1_epi8(0x0C);
  const int64_t n_blocks = a.kp / kTernaryBlock;
  for (int64_t m = a.m0; m < a.m1; ++m) {
    const uint8_t* w = a.w + m * a.w_stride;
    __m256i acc1 = _mm256_setzero_si256(), acc4 = _mm256_setzero_si256();
    for (int64_t b0 = 0; b0 < n_blocks; b0 += kFlush) {
      const int64_t b1 = n_blocks - b0 > kFlush ? b0 + kFlush : n_blocks;
      __m256i p1a = _mm256_setzero_si256(), p4a = p1a, p1b = p1a, p4b = p1a;
#pragma GCC unroll 4
      for (int64_t b = b0; b < b1; ++b) {
        const int8_t* q = a.q + b * kTernaryBlock;
        const __m256i packed = _mm256_loadu_si256((const __m256i*)(w + b * 32));
        if (b % 2 == 0) _mm_prefetch((const char*)(w + b * 32 + kGemvPrefetchBytes), _MM_HINT_T0);
        const __m256i shifted = _mm256_srli_epi16(packed, 4);  // bits 7-6 to 3-2, 5-4 to 1-0
        p4a = Dot::step(p4a, _mm256_and_si256(shifted, high), _mm256_loadu_si256((const __m256i*)q));
        p1a = Dot::step(p1a, _mm256_and_si256(shifted, low), _mm256_loadu_si256((const __m256i*)(q + 32)));
        p4b = Dot::step(p4b, _mm256_and_si256(packed, high), _mm256_loadu_si256((const __m256i*)(q + 64)));
        p1b = Dot::step(p1b, _mm256_and_si256(packed, low), _mm256_loadu_si256((const __m256i*)(q + 96)));
      }
      acc1 = Dot::widen(Dot::widen(acc1, p1a), p1b);
      acc4 = Dot::widen(Dot::widen(acc4, p4a), p4b);
    }
    a.y[m] = ternary_output(hsum_i32(acc1) + hsum_i32(acc4) / 4, a.act_sum[0], a.row_scale[m], a.act_scale[0]);
  }
}

// One token: ternary_gemv_256; batches: Dot::kGemmRows x Dot::kGemmTokens tiles (the AVX-VNNI
// backend; the AVX2 one picks its tiles per batch size, see kernels_avx2.cpp).
template <class Dot>
void ternary_gemm_256(const TernaryGemmArgs& a) {
  if (a.n_tokens == 1)
    ternary_gemv_256<Dot>(a);
  else
    for_each_tile<Dot::kGemmRows, Dot::kGemmTokens>(a, ternary_tile_256<Dot, Dot::kGemmRows, Dot::kGemmTokens>);
}

}  // namespace
}  // namespace bitnet::kernels_impl
