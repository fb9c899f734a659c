// NEON dotprod backend (ARMv8.2 SDOT): the ternary dot sums four code x activation products into
// each i32 lane directly; codes 0..2 are used as signed bytes. Other kernels are the NEON ones.
#include <arm_neon.h>

#include "kernels/kernels_neon_common.h"

namespace bitnet::kernels_impl {
namespace {

template <int Rows, int Tokens>
void ternary_tile(const TernaryGemmArgs& a, int64_t m, int rows, int64_t n, int tokens) {
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
  for (int64_t b = 0; b < n_blocks; ++b) {
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
        for (int r = 0; r < Rows; ++r) acc[r][t] = vdotq_s32(vdotq_s32(acc[r][t], codes[r][0], a0), codes[r][1], a1);
      }
    }
  }
  for (int t = 0; t < tokens; ++t)
    for (int r = 0; r < rows; ++r)
      a.y[(n + t) * a.y_stride + m + r] =
          ternary_output(vaddvq_s32(acc[r][t]), a.act_sum[n + t], a.row_scale[m + r], a.act_scale[n + t]);
}

void ternary_gemm(const TernaryGemmArgs& a) {
  if (a.n_tokens == 1)
    for_each_tile<4, 1>(a, ternary_tile<4, 1>);
  else
    for_each_tile<4, 4>(a, ternary_tile<4, 4>);
}

}  // namespace

const Kernels kNeonDotProdKernels = {
    Isa::NEONDotProd,  neon::quantize_row_i8,  ternary_gemm,           neon::dot_f32,
    neon::dot_f16_f32, neon::fp32_to_fp16_row, neon::fp16_to_fp32_row, neon::axpy_f16,
};

}  // namespace bitnet::kernels_impl
