// Private to the two NEON backends: the unpacking helper they share and the plain-NEON kernels the
// dotprod table reuses. Internal linkage only (see kernels_internal.h for why).
#pragma once
#include <arm_neon.h>

#include "kernels/kernels_internal.h"

namespace bitnet::kernels_impl {

namespace neon {
void ternary_gemm(const TernaryGemmArgs& a);
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

}  // namespace
}  // namespace bitnet::kernels_impl
