// Private to the two NEON backends: the ternary tile they share (parameterised on the int8 dot
// step) and the plain-NEON kernels the dotprod table reuses. Internal linkage only (see kernels_internal.h for why).
#pragma once
#include <arm_neon.h>

#include <limits>

#include "kernels/kernels_internal.h"

namespace bitnet::kernels_impl {

namespace neon {
void quantize_row_i8(const float* x, int64_t k, int64_t kp, int8_t* q, float* act_scale, int32_t* act_sum);
float dot_f32(const float* a, const float* b, int64_t n);
float dot_f16_f32(const uint16_t* a, const float* b, int64_t n);
void fp32_to_fp16_row(const float* in, uint16_t* out, int64_t n);
void fp16_to_fp32_row(const uint16_t* in, float* out, int64_t n);
void axpy_f16(float a, const uint16_t* x, float* y, int64_t n);
}  // namespace neon

namespace {

// Codes of values 32*run .. 32*run+31 of a block from its 32 packed bytes (as two halves of 16),
// as signed bytes 0..2 (0..3 for the unused code).
[[gnu::always_inline]] inline void neon_unpack_run(const uint8x16_t packed[2], int run, int8x16_t out[2]) {
  const int8x16_t shift = vdupq_n_s8((int8_t)(2 * run - 6));  // negative: shift right
  const uint8x16_t mask = vdupq_n_u8(3);
  for (int h = 0; h < 2; ++h) out[h] = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(packed[h], shift), mask));
}

[[gnu::always_inline]] inline float32x4_t neon_load_f16(const uint16_t* p) {
  return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

// The int8 dot steps of the NEON ternary tiles (I2_S and TQ1_0), on codes (0..2 as signed bytes)
// and activations. MlalDot: vmull/vmlal widen each product to i16, vpadal folds pairs into i32;
// the caller gives how many blocks an i16 lane may take before it must be folded.
template <int64_t FlushBlocks>
struct MlalDot {
  using Partial = int16x8_t;
  static constexpr int64_t kFlushBlocks = FlushBlocks;
  static constexpr int kGemmRows = 2, kGemmTokens = 4;
  [[gnu::always_inline]] static Partial zero() { return vdupq_n_s16(0); }
  [[gnu::always_inline]] static Partial step(Partial p, const int8x16_t codes[2], int8x16_t a0, int8x16_t a1) {
    p = vmlal_s8(p, vget_low_s8(codes[0]), vget_low_s8(a0));
    p = vmlal_high_s8(p, codes[0], a0);
    p = vmlal_s8(p, vget_low_s8(codes[1]), vget_low_s8(a1));
    return vmlal_high_s8(p, codes[1], a1);
  }
  [[gnu::always_inline]] static int32x4_t widen(int32x4_t acc, Partial p) { return vpadalq_s16(acc, p); }
};

#if defined(__ARM_FEATURE_DOTPROD)
// SDOT accumulates in i32: a lane gains at most 32 * 3 * 128 = 12288 per block, so a row of up to
// 22M values cannot overflow and the partial sum never needs an early fold; i32 accumulators need
// no i16 partials beside them, which leaves registers for 4 x 4 tiles.
struct SdotDot {
  using Partial = int32x4_t;
  static constexpr int64_t kFlushBlocks = std::numeric_limits<int64_t>::max();
  static constexpr int kGemmRows = 4, kGemmTokens = 4;
  [[gnu::always_inline]] static Partial zero() { return vdupq_n_s32(0); }
  [[gnu::always_inline]] static Partial step(Partial p, const int8x16_t codes[2], int8x16_t a0, int8x16_t a1) {
    return vdotq_s32(vdotq_s32(p, codes[0], a0), codes[1], a1);
  }
  [[gnu::always_inline]] static int32x4_t widen(int32x4_t acc, Partial p) { return vaddq_s32(acc, p); }
};
#endif

// Computes rows x tokens outputs starting at (m, n); Rows x Tokens accumulators live in registers.
// Dot supplies the int8 step on codes (0..2, as signed bytes) and signed activations:
//   Partial, zero()                  the partial sum type and its zero,
//   step(part, codes, a0, a1)        adds the products of one run (two halves of 16) into it,
//   widen(acc, part) -> acc          folds a partial sum into the i32 accumulator,
//   kFlushBlocks                     blocks a partial sum may take before it must be folded.
template <class Dot, int Rows, int Tokens>
void ternary_tile_neon(const TernaryGemmArgs& a, int64_t m, int rows, int64_t n, int tokens) {
  using Partial = typename Dot::Partial;
  const uint8_t* w[Rows];
  const int8_t* q[Tokens];
  for (int r = 0; r < Rows; ++r) w[r] = a.w + (m + (r < rows ? r : rows - 1)) * a.w_stride;
  for (int t = 0; t < Tokens; ++t) q[t] = a.q + (n + (t < tokens ? t : tokens - 1)) * a.q_stride;
  int32x4_t acc[Rows][Tokens];
#pragma GCC unroll 16
  for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 16
    for (int t = 0; t < Tokens; ++t) acc[r][t] = vdupq_n_s32(0);

  const int64_t n_blocks = a.kp / kTernaryBlock;
  for (int64_t b0 = 0; b0 < n_blocks; b0 += Dot::kFlushBlocks) {
    const int64_t b1 = n_blocks - b0 > Dot::kFlushBlocks ? b0 + Dot::kFlushBlocks : n_blocks;
    Partial part[Rows][Tokens];
#pragma GCC unroll 16
    for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 16
      for (int t = 0; t < Tokens; ++t) part[r][t] = Dot::zero();
    for (int64_t b = b0; b < b1; ++b) {
      uint8x16_t packed[Rows][2];
#pragma GCC unroll 16
      for (int r = 0; r < Rows; ++r) {
        packed[r][0] = vld1q_u8(w[r] + b * 32);
        packed[r][1] = vld1q_u8(w[r] + b * 32 + 16);
      }
#pragma GCC unroll 4
      for (int run = 0; run < 4; ++run) {
        int8x16_t codes[Rows][2];
#pragma GCC unroll 16
        for (int r = 0; r < Rows; ++r) neon_unpack_run(packed[r], run, codes[r]);
#pragma GCC unroll 16
        for (int t = 0; t < Tokens; ++t) {
          const int8_t* act = q[t] + b * 128 + 32 * run;
          const int8x16_t a0 = vld1q_s8(act), a1 = vld1q_s8(act + 16);
#pragma GCC unroll 16
          for (int r = 0; r < Rows; ++r) part[r][t] = Dot::step(part[r][t], codes[r], a0, a1);
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
          ternary_output(vaddvq_s32(acc[r][t]), a.act_sum[n + t], a.row_scale[m + r], a.act_scale[n + t]);
}

// One token: four rows per tile; prefill: Dot::kGemmRows x Dot::kGemmTokens (as many rows as its
// accumulators leave registers for), named as in the x86 256-bit tile.
template <class Dot>
void ternary_gemm_neon(const TernaryGemmArgs& a) {
  if (a.n_tokens == 1)
    for_each_tile<4, 1>(a, ternary_tile_neon<Dot, 4, 1>);
  else
    for_each_tile<Dot::kGemmRows, Dot::kGemmTokens>(a, ternary_tile_neon<Dot, Dot::kGemmRows, Dot::kGemmTokens>);
}

}  // namespace
}  // namespace bitnet::kernels_impl
