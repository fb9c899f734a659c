// AVX2 TQ1_0 product (also used by the AVX-VNNI and AVX-512 tables). A block's codes are two
// ymm, qs[0..31] and [qs[32..47], qh, zeros], each lining up with 32 of the 64 arranged
// activations of a digit (see tq1_internal.h for the layout and the digit rule); maddubs on the
// digit codes (0..2) and activations gives i16 partials, folded into i32 every few blocks.
#include <immintrin.h>

#include "kernels/tq1_internal.h"

namespace bitnet::kernels_impl {
namespace {

// One maddubs lane is at most 2 * 2 * 128 = 512 in magnitude; a block adds 10 runs, so 6 blocks
// stay below 32768.
struct Tq1MaddubsDot {
  static constexpr int64_t kFlushBlocks = 6;
  static constexpr int kGemmRows = 4, kGemmTokens = 2;
  [[gnu::always_inline]] static __m256i step(__m256i part, __m256i codes, __m256i act) {
    return _mm256_add_epi16(part, _mm256_maddubs_epi16(codes, act));
  }
  [[gnu::always_inline]] static __m256i widen(__m256i acc, __m256i part) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(part, _mm256_set1_epi16(1)));
  }
};

// Digit codes 0..2 of every byte of m: [m >= 86] + [m >= 171], as signed compares of m - 128
// (m > 85 and m > 170), whose -1 masks are subtracted from 0.
[[gnu::always_inline]] inline __m256i tq1_digits_256(__m256i m) {
  const __m256i s = _mm256_xor_si256(m, _mm256_set1_epi8((char)0x80));
  const __m256i ge1 = _mm256_cmpgt_epi8(s, _mm256_set1_epi8((char)(85 ^ 0x80)));
  const __m256i ge2 = _mm256_cmpgt_epi8(s, _mm256_set1_epi8((char)(170 ^ 0x80)));
  return _mm256_sub_epi8(_mm256_sub_epi8(_mm256_setzero_si256(), ge1), ge2);
}

[[gnu::always_inline]] inline int32_t tq1_hsum_256(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// Dot: step(part, codes, act) adds one run's products into a partial sum, widen(acc, part) folds
// it into i32, kFlushBlocks blocks a partial may take.
template <class Dot, int Rows, int Tokens>
void tq1_tile_256(const TernaryGemmArgs& a, int64_t m, int rows, int64_t n, int tokens) {
  const uint8_t* w[Rows];
  const int8_t* q[Tokens];
  for (int r = 0; r < Rows; ++r) w[r] = a.w + (m + (r < rows ? r : rows - 1)) * a.w_stride;
  for (int t = 0; t < Tokens; ++t) q[t] = a.q + (n + (t < tokens ? t : tokens - 1)) * a.q_stride;
  __m256i acc[Rows][Tokens];
  for (int r = 0; r < Rows; ++r)
    for (int t = 0; t < Tokens; ++t) acc[r][t] = _mm256_setzero_si256();
  const int64_t n_blocks = a.kp / kTq1Block;
  for (int64_t b0 = 0; b0 < n_blocks; b0 += Dot::kFlushBlocks) {
    const int64_t b1 = n_blocks - b0 > Dot::kFlushBlocks ? b0 + Dot::kFlushBlocks : n_blocks;
    __m256i part[Rows][Tokens];
    for (int r = 0; r < Rows; ++r)
      for (int t = 0; t < Tokens; ++t) part[r][t] = _mm256_setzero_si256();
    for (int64_t b = b0; b < b1; ++b) {
      __m256i mv[Rows][2];
      for (int r = 0; r < Rows; ++r) {
        const uint8_t* block = w[r] + b * (int64_t)kTq1BlockBytes;
        int32_t qh;
        std::memcpy(&qh, block + kTq1Qh, 4);
        mv[r][0] = _mm256_loadu_si256((const __m256i*)block);
        mv[r][1] = _mm256_set_m128i(_mm_cvtsi32_si128(qh), _mm_loadu_si128((const __m128i*)(block + kTq1Qs1)));
      }
#pragma GCC unroll 5
      for (int d = 0; d < 5; ++d)
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          __m256i codes[Rows];
          for (int r = 0; r < Rows; ++r) {
            codes[r] = tq1_digits_256(mv[r][h]);
            mv[r][h] = _mm256_add_epi8(mv[r][h], _mm256_add_epi8(mv[r][h], mv[r][h]));
          }
          for (int t = 0; t < Tokens; ++t) {
            const __m256i act = _mm256_loadu_si256((const __m256i*)(q[t] + b * kTq1ActBlock + 64 * d + 32 * h));
            for (int r = 0; r < Rows; ++r) part[r][t] = Dot::step(part[r][t], codes[r], act);
          }
        }
    }
    for (int r = 0; r < Rows; ++r)
      for (int t = 0; t < Tokens; ++t) acc[r][t] = Dot::widen(acc[r][t], part[r][t]);
  }
  for (int r = 0; r < rows; ++r) {
    const float scale = tq1_row_scale(a, m + r);
    for (int t = 0; t < tokens; ++t)
      a.y[(n + t) * a.y_stride + m + r] =
          ternary_output(tq1_hsum_256(acc[r][t]), a.act_sum[n + t], scale, a.act_scale[n + t]);
  }
}

template <class Dot>
void tq1_gemm_256(const TernaryGemmArgs& args) {
  const TernaryGemmArgs a = tq1_arranged(args);
  if (a.n_tokens == 1)
    for_each_tile<1, 1>(a, tq1_tile_256<Dot, 1, 1>);
  else
    for_each_tile<Dot::kGemmRows, Dot::kGemmTokens>(a, tq1_tile_256<Dot, Dot::kGemmRows, Dot::kGemmTokens>);
}

}  // namespace

void tq1_gemm_avx2(const TernaryGemmArgs& a) { tq1_gemm_256<Tq1MaddubsDot>(a); }

}  // namespace bitnet::kernels_impl
