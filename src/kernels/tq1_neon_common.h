// Private to the two NEON TQ1_0 products: the tile they share, parameterised on the int8 dot
// step (see tq1_internal.h for the layout and the digit rule; internal linkage only). A block's
// codes are two pairs of q registers, qs[0..31] and [qs[32..47], qh, zeros], each lining up with
// 32 of the 64 arranged activations of a digit.
#pragma once
#include <arm_neon.h>

#include "kernels/kernels_neon_common.h"
#include "kernels/tq1_internal.h"

namespace bitnet::kernels_impl {
namespace {

// Dot: Partial, zero(), step(part, codes[2], a0, a1), widen(acc, part), kFlushBlocks, kGemmRows,
// kGemmTokens, as the I2_S NEON tile's.
template <class Dot, int Rows, int Tokens>
void tq1_tile_neon(const TernaryGemmArgs& a, int64_t m, int rows, int64_t n, int tokens) {
  using Partial = typename Dot::Partial;
  const uint8_t* w[Rows];
  const int8_t* q[Tokens];
  for (int r = 0; r < Rows; ++r) w[r] = a.w + (m + (r < rows ? r : rows - 1)) * a.w_stride;
  for (int t = 0; t < Tokens; ++t) q[t] = a.q + (n + (t < tokens ? t : tokens - 1)) * a.q_stride;
  int32x4_t acc[Rows][Tokens];
  for (int r = 0; r < Rows; ++r)
    for (int t = 0; t < Tokens; ++t) acc[r][t] = vdupq_n_s32(0);
  const uint8x16_t ge1 = vdupq_n_u8(86), ge2 = vdupq_n_u8(171);
  const int64_t n_blocks = a.kp / kTq1Block;
  for (int64_t b0 = 0; b0 < n_blocks; b0 += Dot::kFlushBlocks) {
    const int64_t b1 = n_blocks - b0 > Dot::kFlushBlocks ? b0 + Dot::kFlushBlocks : n_blocks;
    Partial part[Rows][Tokens];
    for (int r = 0; r < Rows; ++r)
      for (int t = 0; t < Tokens; ++t) part[r][t] = Dot::zero();
    for (int64_t b = b0; b < b1; ++b) {
      uint8x16_t mv[Rows][2][2];
      for (int r = 0; r < Rows; ++r) {
        const uint8_t* block = w[r] + b * (int64_t)kTq1BlockBytes;
        uint32_t qh;
        std::memcpy(&qh, block + kTq1Qh, 4);
        mv[r][0][0] = vld1q_u8(block);
        mv[r][0][1] = vld1q_u8(block + 16);
        mv[r][1][0] = vld1q_u8(block + kTq1Qs1);
        mv[r][1][1] = vreinterpretq_u8_u32(vsetq_lane_u32(qh, vdupq_n_u32(0), 0));
      }
      for (int d = 0; d < 5; ++d)
        for (int h = 0; h < 2; ++h) {
          int8x16_t codes[Rows][2];
          for (int r = 0; r < Rows; ++r)
            for (int i = 0; i < 2; ++i) {
              uint8x16_t& x = mv[r][h][i];
              // The compare masks are -1 where true: digit = -(mask1 + mask2).
              codes[r][i] = vnegq_s8(vreinterpretq_s8_u8(vaddq_u8(vcgeq_u8(x, ge1), vcgeq_u8(x, ge2))));
              x = vaddq_u8(x, vaddq_u8(x, x));
            }
          for (int t = 0; t < Tokens; ++t) {
            const int8_t* act = q[t] + b * kTq1ActBlock + 64 * d + 32 * h;
            const int8x16_t a0 = vld1q_s8(act), a1 = vld1q_s8(act + 16);
            for (int r = 0; r < Rows; ++r) part[r][t] = Dot::step(part[r][t], codes[r], a0, a1);
          }
        }
    }
    for (int r = 0; r < Rows; ++r)
      for (int t = 0; t < Tokens; ++t) acc[r][t] = Dot::widen(acc[r][t], part[r][t]);
  }
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
