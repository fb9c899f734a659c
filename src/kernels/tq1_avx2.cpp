// AVX2 TQ1_0 product (also used by the AVX-VNNI and AVX-512 tables). Per group of 8 blocks a row
// is 13 ymm of codes - each block's qs[0..31], each pair's qs[32..47], the group's qh - lining up
// with the arranged activations (tq1_internal.h); maddubs on the digit codes (0..2) and
// activations gives i16 partials, folded into i32 twice per group.
#include <immintrin.h>

#include "kernels/tq1_internal.h"

namespace bitnet::kernels_impl {
namespace {

// The digit walk runs on s = m ^ 0x80 (m - 128 as a signed byte): 3 (m - 128) = 3m - 128 mod 256,
// so s follows m under s -> 3s, and the digit is [s > -43] + [s > 42] from two signed compares,
// whose -1 masks are subtracted from 0.
struct Tq1Digits {
  __m256i lo, hi;
  Tq1Digits() : lo(_mm256_set1_epi8(-43)), hi(_mm256_set1_epi8(42)) {
    // Opaque to GCC, which otherwise turns s > -43 into min(s, -42) == -42 (two instructions).
    asm("" : "+x"(lo), "+x"(hi));
  }
  [[gnu::always_inline]] __m256i operator()(__m256i s) const {
    const __m256i ge1 = _mm256_cmpgt_epi8(s, lo), ge2 = _mm256_cmpgt_epi8(s, hi);
    return _mm256_sub_epi8(_mm256_sub_epi8(_mm256_setzero_si256(), ge1), ge2);
  }
};

// Weights are prefetched this many row tiles ahead: a tile's rows are a few hundred bytes to a
// few KB, too short for the hardware prefetchers to ramp up on (2B4T generation: about 1.2x).
constexpr size_t kTq1PrefetchTiles = 4;

[[gnu::always_inline]] inline __m256i tq1_times3(__m256i s) { return _mm256_add_epi8(s, _mm256_add_epi8(s, s)); }

[[gnu::always_inline]] inline __m256i tq1_to_s(__m256i x) { return _mm256_xor_si256(x, _mm256_set1_epi8((char)0x80)); }

[[gnu::always_inline]] inline int32_t tq1_hsum_256(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// Rows x Tokens i16 partial sums and i32 totals. One maddubs lane is at most 2 * 2 * 128 = 512 in
// magnitude and a group adds 40 runs for the qs[0..31] part and 24 for the rest: folding after
// each part keeps a partial below 32768.
template <int Rows, int Tokens>
struct Tq1Sums {
  __m256i part[Rows][Tokens];
  // The i32 totals stay in memory: folds are rare, and the registers go to the partials.
  alignas(32) int32_t acc[Rows][Tokens][8] = {};
  Tq1Sums() {
    for (int r = 0; r < Rows; ++r)
      for (int t = 0; t < Tokens; ++t) part[r][t] = _mm256_setzero_si256();
  }
  [[gnu::always_inline]] void fold() {
    for (int r = 0; r < Rows; ++r)
      for (int t = 0; t < Tokens; ++t) {
        __m256i* total = (__m256i*)acc[r][t];
        _mm256_store_si256(total, _mm256_add_epi32(_mm256_load_si256(total), _mm256_madd_epi16(part[r][t], _mm256_set1_epi16(1))));
        part[r][t] = _mm256_setzero_si256();
      }
  }
  [[gnu::always_inline]] int32_t total(int r, int t) const { return tq1_hsum_256(_mm256_load_si256((const __m256i*)acc[r][t])); }
  // Digits 0..Digits-1 of s[r] (in the s form) against the activations at act[t].
  template <int Digits>
  [[gnu::always_inline]] void run(const Tq1Digits& digits, __m256i (&s)[Rows], const int8_t* const (&act)[Tokens]) {
#pragma GCC unroll 5
    for (int d = 0; d < Digits; ++d) {
      __m256i codes[Rows];
      for (int r = 0; r < Rows; ++r) {
        codes[r] = digits(s[r]);
        if (d + 1 < Digits) s[r] = tq1_times3(s[r]);
      }
      for (int t = 0; t < Tokens; ++t) {
        const __m256i a = _mm256_loadu_si256((const __m256i*)(act[t] + 32 * d));
        for (int r = 0; r < Rows; ++r) {
          part[r][t] = _mm256_add_epi16(part[r][t], _mm256_maddubs_epi16(codes[r], a));
          // Keeps GCC from reassociating the sum into a tree of all the products, which spills.
          asm("" : "+x"(part[r][t]));
        }
      }
    }
  }
};

// The qh bytes of blocks 0..nb-1 at `block` (nb <= 8), four per block, zeros after.
[[gnu::always_inline]] inline __m256i tq1_load_qh(const uint8_t* block, int64_t nb) {
  const auto qh = [block](int64_t i) {
    int32_t v;
    std::memcpy(&v, block + i * (int64_t)kTq1BlockBytes + kTq1Qh, 4);
    return v;
  };
  if (nb == kTq1Group) {
    const __m128i lo = _mm_insert_epi32(_mm_insert_epi32(_mm_insert_epi32(_mm_cvtsi32_si128(qh(0)), qh(1), 1), qh(2), 2), qh(3), 3);
    const __m128i hi = _mm_insert_epi32(_mm_insert_epi32(_mm_insert_epi32(_mm_cvtsi32_si128(qh(4)), qh(5), 1), qh(6), 2), qh(7), 3);
    return _mm256_set_m128i(hi, lo);
  }
  alignas(32) int32_t v[8] = {};
  for (int64_t i = 0; i < nb; ++i) v[i] = qh(i);
  return _mm256_load_si256((const __m256i*)v);
}

template <int Rows, int Tokens>
void tq1_tile_256(const TernaryGemmArgs& a, int64_t m, int rows, int64_t n, int tokens) {
  const uint8_t* w[Rows];
  const int8_t* q[Tokens];
  for (int r = 0; r < Rows; ++r) w[r] = a.w + (m + (r < rows ? r : rows - 1)) * a.w_stride;
  for (int t = 0; t < Tokens; ++t) q[t] = a.q + (n + (t < tokens ? t : tokens - 1)) * a.q_stride;
  const size_t ahead = kTq1PrefetchTiles * Rows * a.w_stride;
  const Tq1Digits digits;
  Tq1Sums<Rows, Tokens> sums;
  const int64_t n_blocks = a.kp / kTq1Block;
  for (int64_t g = 0; g < n_blocks; g += kTq1Group) {
    const int64_t nb = n_blocks - g < kTq1Group ? n_blocks - g : kTq1Group;
    const uint8_t* block[Rows];
    const int8_t* act[Tokens];
    for (int r = 0; r < Rows; ++r) block[r] = w[r] + g * (int64_t)kTq1BlockBytes;
    for (int t = 0; t < Tokens; ++t) act[t] = q[t] + g / kTq1Group * kTq1ActGroup;
    __m256i s[Rows];
    for (int64_t i = 0; i < nb; ++i) {
      for (int r = 0; r < Rows; ++r) {
        const uint8_t* codes = block[r] + i * (int64_t)kTq1BlockBytes;
        s[r] = tq1_to_s(_mm256_loadu_si256((const __m256i*)codes));
        // A block is shorter than a cache line: touching one line per block covers the stream.
        _mm_prefetch((const char*)(codes + ahead), _MM_HINT_T0);
      }
      const int8_t* at[Tokens];
      for (int t = 0; t < Tokens; ++t) at[t] = act[t] + 160 * i;
      sums.template run<5>(digits, s, at);
    }
    sums.fold();
    for (int64_t i = 0; i < nb; i += 2) {
      for (int r = 0; r < Rows; ++r) {
        const uint8_t* b0 = block[r] + i * (int64_t)kTq1BlockBytes + kTq1Qs1;
        const __m128i lo = _mm_loadu_si128((const __m128i*)b0);
        const __m128i hi = i + 1 < nb ? _mm_loadu_si128((const __m128i*)(b0 + kTq1BlockBytes)) : _mm_setzero_si128();
        s[r] = tq1_to_s(_mm256_set_m128i(hi, lo));
      }
      const int8_t* at[Tokens];
      for (int t = 0; t < Tokens; ++t) at[t] = act[t] + kTq1ActPairs + 80 * i;
      sums.template run<5>(digits, s, at);
    }
    for (int r = 0; r < Rows; ++r) s[r] = tq1_to_s(tq1_load_qh(block[r], nb));
    const int8_t* at[Tokens];
    for (int t = 0; t < Tokens; ++t) at[t] = act[t] + kTq1ActQh;
    sums.template run<4>(digits, s, at);
    sums.fold();
  }
  for (int r = 0; r < rows; ++r) {
    const float scale = tq1_row_scale(a, m + r);
    for (int t = 0; t < tokens; ++t)
      a.y[(n + t) * a.y_stride + m + r] =
          ternary_output(sums.total(r, t), a.act_sum[n + t], scale, a.act_scale[n + t]);
  }
}

}  // namespace

void tq1_gemm_avx2(const TernaryGemmArgs& args) {
  const TernaryGemmArgs a = tq1_arranged(args);
  if (a.n_tokens == 1)
    for_each_tile<4, 1>(a, tq1_tile_256<4, 1>);
  else
    for_each_tile<2, 4>(a, tq1_tile_256<2, 4>);
}

}  // namespace bitnet::kernels_impl
