// NEON backend (ARMv8.0 Advanced SIMD). The ternary dot widens code x activation products to i16
// with vmull/vmlal (codes 0..2 read as signed bytes), and folds them into i32 with vpadal every few
// blocks. The half conversions use the base ARMv8 FCVTL/FCVTN (vcvt_f32_f16 / vcvt_f16_f32).
#include <arm_neon.h>

#include <cstring>

#include "kernels/kernels_neon_common.h"
#include "kernels/tq1_internal.h"

namespace bitnet::kernels_impl {

// An i16 lane gains 16 products of at most 3 * 128 per I2_S block, so 4 blocks stay below 32768.
constexpr int64_t kI2sFlushBlocks = 4;
namespace neon {

void quantize_row_i8(const float* x, int64_t k, int64_t kp, int8_t* q, float* act_scale, int32_t* act_sum) {
  float32x4_t vmax = vdupq_n_f32(0.0f);
  int64_t i = 0;
  // vmaxnm ignores NaN inputs (vmax would propagate them); below, vcvtn turns NaN into 0.
  for (; i + 4 <= k; i += 4) vmax = vmaxnmq_f32(vmax, vabsq_f32(vld1q_f32(x + i)));
  float amax = vmaxvq_f32(vmax);
  for (; i < k; ++i) {
    const float v = x[i] < 0 ? -x[i] : x[i];
    amax = amax < v ? v : amax;
  }
  const float sigma = quantize_sigma(amax);
  int32x4_t vsum = vdupq_n_s32(0);
  i = 0;
  for (; i + 8 <= k; i += 8) {
    // vcvtn rounds to nearest, ties to even, like nearbyint in the default mode; vqmovn saturates.
    const int32x4_t v0 = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + i), sigma));
    const int32x4_t v1 = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + i + 4), sigma));
    const int16x8_t h = vcombine_s16(vqmovn_s32(v0), vqmovn_s32(v1));
    const int8x8_t bytes = vqmovn_s16(h);
    vsum = vpadalq_s16(vsum, vmovl_s8(bytes));
    vst1_s8(q + i, bytes);
  }
  int32_t sum = vaddvq_s32(vsum);
  for (; i < k; ++i) {
    q[i] = quantize_value(x[i], sigma);
    sum += q[i];
  }
  if (kp > k) std::memset(q + k, 0, (size_t)(kp - k));
  *act_scale = 1.0f / sigma;
  *act_sum = sum;
}

float dot_f32(const float* a, const float* b, int64_t n) {
  float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 4; ++j) acc[j] = vfmaq_f32(acc[j], vld1q_f32(a + i + 4 * j), vld1q_f32(b + i + 4 * j));
  for (; i + 4 <= n; i += 4) acc[0] = vfmaq_f32(acc[0], vld1q_f32(a + i), vld1q_f32(b + i));
  const float32x4_t total = vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3]));
  return vaddvq_f32(total) + scalar::dot_f32(a + i, b + i, n - i);
}

float dot_f16_f32(const uint16_t* a, const float* b, int64_t n) {
  float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 4; ++j) acc[j] = vfmaq_f32(acc[j], neon_load_f16(a + i + 4 * j), vld1q_f32(b + i + 4 * j));
  for (; i + 4 <= n; i += 4) acc[0] = vfmaq_f32(acc[0], neon_load_f16(a + i), vld1q_f32(b + i));
  const float32x4_t total = vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3]));
  return vaddvq_f32(total) + scalar::dot_f16_f32(a + i, b + i, n - i);
}

void fp32_to_fp16_row(const float* in, uint16_t* out, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1_u16(out + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(in + i))));
  scalar::fp32_to_fp16_row(in + i, out + i, n - i);
}

void fp16_to_fp32_row(const uint16_t* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(out + i, neon_load_f16(in + i));
  scalar::fp16_to_fp32_row(in + i, out + i, n - i);
}

void axpy_f16(float a, const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), neon_load_f16(x + i), a));
  scalar::axpy_f16(a, x + i, y + i, n - i);
}

}  // namespace neon

const Kernels kNeonKernels = {
    Isa::NEON,         neon::quantize_row_i8,  ternary_gemm_neon<MlalDot<kI2sFlushBlocks>>, tq1_gemm_neon, neon::dot_f32,
    neon::dot_f16_f32, neon::fp32_to_fp16_row, neon::fp16_to_fp32_row, neon::axpy_f16,
};

}  // namespace bitnet::kernels_impl
