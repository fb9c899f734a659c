// NEON dotprod backend (ARMv8.2 SDOT): the ternary dot sums four code x activation products into
// each i32 lane directly; codes 0..2 are used as signed bytes. Other kernels are the NEON ones.
#include <arm_neon.h>

#include <limits>

#include "kernels/kernels_neon_common.h"
#include "kernels/tq1_internal.h"

namespace bitnet::kernels_impl {
namespace {

struct SdotDot {
  using Partial = int32x4_t;
  // SDOT accumulates in i32: a lane gains at most 32 * 3 * 128 = 12288 per block, so a row of up to
  // 22M values cannot overflow and the partial sum never needs an early fold.
  static constexpr int64_t kFlushBlocks = std::numeric_limits<int64_t>::max();
  // i32 accumulators need no i16 partials beside them, which leaves registers for 4 x 4 tiles.
  static constexpr int kGemmRows = 4, kGemmTokens = 4;
  [[gnu::always_inline]] static Partial zero() { return vdupq_n_s32(0); }
  [[gnu::always_inline]] static Partial step(Partial p, const int8x16_t codes[2], int8x16_t a0, int8x16_t a1) {
    return vdotq_s32(vdotq_s32(p, codes[0], a0), codes[1], a1);
  }
  [[gnu::always_inline]] static int32x4_t widen(int32x4_t acc, Partial p) { return vaddq_s32(acc, p); }
};

}  // namespace

const Kernels kNeonDotProdKernels = {
    Isa::NEONDotProd,  neon::quantize_row_i8,  ternary_gemm_neon<SdotDot>, tq1_gemm_neon_dotprod, neon::dot_f32,
    neon::dot_f16_f32, neon::fp32_to_fp16_row, neon::fp16_to_fp32_row, neon::axpy_f16,
};

}  // namespace bitnet::kernels_impl
