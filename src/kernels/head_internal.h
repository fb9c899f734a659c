// Private to src/kernels: the per-backend LM-head tables and the ggml block layouts they read.
// Included by units compiled with different -m flags: everything defined here has internal linkage
// (see kernels_internal.h for why).
#pragma once
#include <cstdint>
#include <cstring>
#include <utility>

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#include "bitnet/head_kernels.h"

namespace bitnet::kernels_impl {

extern const HeadKernels kScalarHeadKernels;
#if defined(__x86_64__)
extern const HeadKernels kAvx2HeadKernels;
extern const HeadKernels kAvx512HeadKernels;
#endif

namespace {

// Q8_0 block: { f16 d; int8 qs[32]; }.
constexpr int kQ8_0Bytes = 34;
constexpr int kQ8_0Qs = 2;
// Q6_K block: { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; f16 d; } for 256 values. Each
// 128-value half h uses ql[64h..], qh[32h..] and scales[8h..]; its value l + 32k (l < 32, k < 4)
// has low 4 bits in ql[64h + l + 32(k & 1)] (low nibble for k < 2, high nibble for k >= 2), high
// 2 bits in qh[32h + l] at bit 2k, and sub-block scale scales[8h + 2k + l / 16] (that is,
// scales[i / 16] for value i of the block); value = code - 32.
constexpr int kQ6KBytes = 210;
constexpr int kQ6KQh = 128, kQ6KScales = 192, kQ6KD = 208;

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);  // little-endian hosts only, like the rest of the kernels
  return v;
}

#if defined(__x86_64__)
// Software prefetch this far ahead in the weight stream: measured on the 128256 x 2560 head
// (one thread), Q6_K GEMV ~11 ms without, ~8-10 ms with 8 KiB; F16 and Q8_0 unchanged within noise.
constexpr size_t kHeadPrefetchAhead = 8192;

// Prefetches the `lines` cache lines that start kHeadPrefetchAhead bytes past p.
[[gnu::always_inline]] inline void prefetch_ahead(const void* p, int lines) {
#pragma GCC unroll 8
  for (int l = 0; l < lines; ++l) _mm_prefetch((const char*)p + kHeadPrefetchAhead + 64 * l, _MM_HINT_T0);
}
#endif

inline const uint8_t* token_acts(const HeadGemmArgs& a, int64_t t) {
  return static_cast<const uint8_t*>(a.acts) + (size_t)t * a.act_stride;
}

// Calls tile(m, t0, tokens) for every row m in m0..m1 and every run of at most MaxTokens tokens;
// rows are the outer loop so a weight row stays in L1 while all tokens pass over it.
template <int MaxTokens, class Tile>
[[gnu::always_inline]] inline void for_each_row_tile(const HeadGemmArgs& a, Tile tile) {
  for (int64_t m = a.m0; m < a.m1; ++m)
    for (int64_t t = 0; t < a.n_tokens; t += MaxTokens)
      tile(m, t, (int)(a.n_tokens - t < MaxTokens ? a.n_tokens - t : MaxTokens));
}

// for_each_row_tile with the tile size as a compile-time constant: calls
// tile.template operator()<T>(m, t0) for T = tokens in the run, so SIMD tiles keep T accumulators
// in registers.
template <int MaxTokens, class Tile>
[[gnu::always_inline]] inline void for_each_fixed_tile(const HeadGemmArgs& a, Tile tile) {
  for_each_row_tile<MaxTokens>(a, [&](int64_t m, int64_t t0, int tokens) {
    [&]<int... T>(std::integer_sequence<int, T...>) {
      ((tokens == T + 1 ? tile.template operator()<T + 1>(m, t0) : void()), ...);
    }(std::make_integer_sequence<int, MaxTokens>());
  });
}

}  // namespace
}  // namespace bitnet::kernels_impl
