// Private to src/kernels: the per-backend attention tables and the loop structure the SIMD
// backends share (internal linkage only, see kernels_internal.h).
#pragma once
#include <cstddef>
#include <type_traits>

#include "bitnet/attention_kernels.h"

namespace bitnet::kernels_impl {

extern const AttentionKernels kScalarAttentionKernels;
#if defined(__x86_64__)
extern const AttentionKernels kAvx2AttentionKernels;
extern const AttentionKernels kAvx512AttentionKernels;
#endif

namespace {

constexpr int kQueryBlock = 4;  // query heads sharing one conversion of a key or value vector

// Calls fn(std::integral_constant<int, NQ>{}, j0) for each run of NQ <= kQueryBlock query heads
// starting at j0, so kernels keep NQ x (vectors) accumulators in registers.
template <class Fn>
[[gnu::always_inline]] inline void for_query_blocks(int64_t n_q, Fn&& fn) {
  for (int64_t j0 = 0; j0 < n_q; j0 += kQueryBlock) {
    switch (n_q - j0) {
      case 1: fn(std::integral_constant<int, 1>{}, j0); break;
      case 2: fn(std::integral_constant<int, 2>{}, j0); break;
      case 3: fn(std::integral_constant<int, 3>{}, j0); break;
      default: fn(std::integral_constant<int, 4>{}, j0); break;
    }
  }
}

// Values go in blocks of positions: the first column pass over a block brings its rows into L1
// for the other passes (and prefetches the next block's rows).
constexpr int64_t kValueBlock = 64;

// Calls columns(v_block, n, w_block, d0) for every block of kValueBlock value rows (row_bytes
// each) and every run of `width` output columns starting at d0 < hd.
template <class Columns>
[[gnu::always_inline]] inline void for_value_blocks(const uint8_t* v, int64_t n_pos, int64_t hd, size_t row_bytes,
                                                    const float* w, int64_t width, Columns&& columns) {
  for (int64_t t0 = 0; t0 < n_pos; t0 += kValueBlock) {
    const int64_t n = n_pos - t0 < kValueBlock ? n_pos - t0 : kValueBlock;
    for (int64_t d0 = 0; d0 < hd; d0 += width) columns(v + (size_t)t0 * row_bytes, n, w + t0, d0);
  }
}

}  // namespace
}  // namespace bitnet::kernels_impl
