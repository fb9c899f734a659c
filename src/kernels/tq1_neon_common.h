// Private to the two NEON TQ1_0 products: the tile they share, parameterised on the int8 dot
// step (see tq1_internal.h for the group layout and the digit rule; internal linkage only). The
// 32 code bytes of a run - a block's qs[0..31], two blocks' qs[32..47], a group's qh - are two q
// registers lining up with 32 arranged activations at every digit.
#pragma once
#include <arm_neon.h>

#include "kernels/kernels_neon_common.h"
#include "kernels/tq1_internal.h"

namespace bitnet::kernels_impl {
namespace {

// The digit codes (0..2, as signed bytes) of the 32 code bytes x[0..1], which step to the next
// digit (x -> 3x mod 256). The compare masks are -1 where true: digit = -(mask1 + mask2).
[[gnu::always_inline]] inline void tq1_neon_digits(uint8x16_t x[2], int8x16_t codes[2]) {
  for (int i = 0; i < 2; ++i) {
    codes[i] = vnegq_s8(vreinterpretq_s8_u8(vaddq_u8(vcgeq_u8(x[i], vdupq_n_u8(86)), vcgeq_u8(x[i], vdupq_n_u8(171)))));
    x[i] = vaddq_u8(x[i], vaddq_u8(x[i], x[i]));
  }
}

// Dot: Partial, zero(), step(part, codes[2], a0, a1), widen(acc, part), kFlushBlocks, kGemmRows,
// kGemmTokens, as the I2_S NEON tile's. A partial takes at most one group (8 blocks) between
// folds, and fewer when Dot::kFlushBlocks says so.
template <class Dot, int Rows, int Tokens>
void tq1_tile_neon(const TernaryGemmArgs& a, int64_t m, int rows, int64_t n, int tokens) {
  using Partial = typename Dot::Partial;
  const uint8_t* w[Rows];
  const int8_t* q[Tokens];
  for (int r = 0; r < Rows; ++r) w[r] = a.w + (m + (r < rows ? r : rows - 1)) * a.w_stride;
  for (int t = 0; t < Tokens; ++t) q[t] = a.q + (n + (t < tokens ? t : tokens - 1)) * a.q_stride;
  int32x4_t acc[Rows][Tokens];
  Partial part[Rows][Tokens];
  for (int r = 0; r < Rows; ++r)
    for (int t = 0; t < Tokens; ++t) {
      acc[r][t] = vdupq_n_s32(0);
      part[r][t] = Dot::zero();
    }
  // Steps since the last fold; a step adds one run of 32 codes (a block has 5 qs[0..31] runs, a
  // pair of blocks 5 qs[32..47] runs, a group 4 qh runs).
  int64_t steps = 0;
  const int64_t max_steps = Dot::kFlushBlocks < kTq1Group ? Dot::kFlushBlocks * 10 : kTq1Group * 10;
  const auto fold_before = [&](int64_t next) {
    if (steps + next <= max_steps) return;
    for (int r = 0; r < Rows; ++r)
      for (int t = 0; t < Tokens; ++t) {
        acc[r][t] = Dot::widen(acc[r][t], part[r][t]);
        part[r][t] = Dot::zero();
      }
    steps = 0;
  };
  // Digits 0..digits-1 of x[r] against the activations at act[t].
  const auto run = [&](uint8x16_t (&x)[Rows][2], const int8_t* const (&act)[Tokens], int digits) {
    fold_before(digits);
    for (int d = 0; d < digits; ++d) {
      int8x16_t codes[Rows][2];
      for (int r = 0; r < Rows; ++r) tq1_neon_digits(x[r], codes[r]);
      for (int t = 0; t < Tokens; ++t) {
        const int8x16_t a0 = vld1q_s8(act[t] + 32 * d), a1 = vld1q_s8(act[t] + 32 * d + 16);
        for (int r = 0; r < Rows; ++r) part[r][t] = Dot::step(part[r][t], codes[r], a0, a1);
      }
    }
    steps += digits;
  };
  const int64_t n_blocks = a.kp / kTq1Block;
  for (int64_t g = 0; g < n_blocks; g += kTq1Group) {
    const int64_t nb = n_blocks - g < kTq1Group ? n_blocks - g : kTq1Group;
    const uint8_t* block[Rows];
    for (int r = 0; r < Rows; ++r) block[r] = w[r] + g * (int64_t)kTq1BlockBytes;
    const int8_t* group[Tokens];
    for (int t = 0; t < Tokens; ++t) group[t] = q[t] + g / kTq1Group * kTq1ActGroup;
    uint8x16_t x[Rows][2];
    const int8_t* act[Tokens];
    for (int64_t i = 0; i < nb; ++i) {
      for (int r = 0; r < Rows; ++r) {
        const uint8_t* p = block[r] + i * (int64_t)kTq1BlockBytes;
        x[r][0] = vld1q_u8(p);
        x[r][1] = vld1q_u8(p + 16);
      }
      for (int t = 0; t < Tokens; ++t) act[t] = group[t] + 160 * i;
      run(x, act, 5);
    }
    for (int64_t i = 0; i < nb; i += 2) {
      for (int r = 0; r < Rows; ++r) {
        const uint8_t* p = block[r] + i * (int64_t)kTq1BlockBytes + kTq1Qs1;
        x[r][0] = vld1q_u8(p);
        x[r][1] = i + 1 < nb ? vld1q_u8(p + kTq1BlockBytes) : vdupq_n_u8(0);
      }
      for (int t = 0; t < Tokens; ++t) act[t] = group[t] + kTq1ActPairs + 80 * i;
      run(x, act, 5);
    }
    for (int r = 0; r < Rows; ++r) {
      uint32_t qh[8] = {};
      for (int64_t i = 0; i < nb; ++i) std::memcpy(&qh[i], block[r] + i * (int64_t)kTq1BlockBytes + kTq1Qh, 4);
      x[r][0] = vreinterpretq_u8_u32(vld1q_u32(qh));
      x[r][1] = vreinterpretq_u8_u32(vld1q_u32(qh + 4));
    }
    for (int t = 0; t < Tokens; ++t) act[t] = group[t] + kTq1ActQh;
    run(x, act, 4);
  }
  for (int r = 0; r < Rows; ++r)
    for (int t = 0; t < Tokens; ++t) acc[r][t] = Dot::widen(acc[r][t], part[r][t]);
  for (int r = 0; r < rows; ++r) {
    const float scale = tq1_row_scale(a, m + r);
    for (int t = 0; t < tokens; ++t)
      a.y[(n + t) * a.y_stride + m + r] = ternary_output(vaddvq_s32(acc[r][t]), a.act_sum[n + t], scale, a.act_scale[n + t]);
  }
}

template <class Dot>
void tq1_gemm_neon_with(const TernaryGemmArgs& args) {
  const TernaryGemmArgs a = tq1_arranged(args);
  if (a.n_tokens == 1)
    for_each_tile<2, 1>(a, tq1_tile_neon<Dot, 2, 1>);
  else
    for_each_tile<Dot::kGemmRows, Dot::kGemmTokens>(a, tq1_tile_neon<Dot, Dot::kGemmRows, Dot::kGemmTokens>);
}

}  // namespace
}  // namespace bitnet::kernels_impl
