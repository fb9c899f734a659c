// AVX-VNNI backend: the ternary dot with VEX vpdpbusd (unsigned codes x signed activations, four
// products summed into each i32 lane, no saturation). Float kernels are the AVX2 ones.
#include <immintrin.h>

#include "kernels/kernels_internal.h"

namespace bitnet::kernels_impl {
namespace {

// Weights are prefetched this many row tiles ahead: the rows of one tile are only a few hundred
// bytes long, too short for the hardware stream prefetchers to ramp up on their own.
constexpr int64_t kPrefetchTiles = 4;

inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

template <int Rows, int Tokens>
void ternary_tile(const TernaryGemmArgs& a, int64_t m, int rows, int64_t n, int tokens) {
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
  for (int64_t b = 0; b < n_blocks; ++b) {
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
        for (int r = 0; r < Rows; ++r) acc[r][t] = _mm256_dpbusd_avx_epi32(acc[r][t], codes[r], act);
      }
    }
  }
  for (int t = 0; t < tokens; ++t)
    for (int r = 0; r < rows; ++r)
      a.y[(n + t) * a.y_stride + m + r] =
          ternary_output(hsum_i32(acc[r][t]), a.act_sum[n + t], a.row_scale[m + r], a.act_scale[n + t]);
}

void ternary_gemm(const TernaryGemmArgs& a) {
  if (a.n_tokens == 1)
    for_each_tile<4, 1>(a, ternary_tile<4, 1>);
  else
    for_each_tile<2, 4>(a, ternary_tile<2, 4>);
}

}  // namespace

const Kernels kAvxVnniKernels = {
    Isa::AVXVNNI,      avx2::quantize_row_i8,  ternary_gemm,           avx2::dot_f32,
    avx2::dot_f16_f32, avx2::fp32_to_fp16_row, avx2::fp16_to_fp32_row, avx2::axpy_f16,
};

}  // namespace bitnet::kernels_impl
