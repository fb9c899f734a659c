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
//   kGemmRows, kGemmTokens           the tile for batches.
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

// One token: four rows per tile; prefill: the tile shape the Dot step measured fastest with.
template <class Dot>
void ternary_gemm_256(const TernaryGemmArgs& a) {
  if (a.n_tokens == 1)
    for_each_tile<4, 1>(a, ternary_tile_256<Dot, 4, 1>);
  else
    for_each_tile<Dot::kGemmRows, Dot::kGemmTokens>(a, ternary_tile_256<Dot, Dot::kGemmRows, Dot::kGemmTokens>);
}

}  // namespace
}  // namespace bitnet::kernels_impl
