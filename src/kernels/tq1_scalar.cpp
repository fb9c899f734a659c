// Scalar reference of the TQ1_0 product: each block decoded digit by digit in value order, read
// to be checked rather than to be fast. The SIMD backends are tested against it.
#include "kernels/tq1_internal.h"

namespace bitnet::kernels_impl {

namespace {

// Digit n (0 = most significant) of a TQ1_0 byte.
int tq1_digit(uint8_t x, int n) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  return ((uint8_t)(x * kPow3[n]) * 3) >> 8;
}

// sum c * q over one block's 256 values (q: the block's activations in value order).
int32_t tq1_block_dot(const uint8_t* block, const int8_t* q) {
  int32_t sum = 0;
  for (int j = 0; j < 32; ++j)
    for (int n = 0; n < 5; ++n) sum += tq1_digit(block[j], n) * q[32 * n + j];
  for (int j = 0; j < 16; ++j)
    for (int n = 0; n < 5; ++n) sum += tq1_digit(block[kTq1Qs1 + j], n) * q[160 + 16 * n + j];
  for (int j = 0; j < 4; ++j)
    for (int n = 0; n < 4; ++n) sum += tq1_digit(block[kTq1Qh + j], n) * q[240 + 4 * n + j];
  return sum;
}

}  // namespace

void tq1_gemm_scalar(const TernaryGemmArgs& a) {
  for (int64_t m = a.m0; m < a.m1; ++m) {
    const uint8_t* row = a.w + m * a.w_stride;
    const float scale = tq1_row_scale(a, m);
    for (int64_t n = 0; n < a.n_tokens; ++n) {
      const int8_t* q = a.q + n * a.q_stride;
      int32_t raw = 0;
      for (int64_t b = 0; b < a.kp / kTq1Block; ++b)
        raw += tq1_block_dot(row + b * (int64_t)kTq1BlockBytes, q + b * kTq1Block);
      a.y[n * a.y_stride + m] = ternary_output(raw, a.act_sum[n], scale, a.act_scale[n]);
    }
  }
}

}  // namespace bitnet::kernels_impl
