// NEON TQ1_0 product: vmull/vmlal on digit codes (0..2) and activations, i16 partials folded
// into i32 with vpadal.
#include "kernels/tq1_neon_common.h"

namespace bitnet::kernels_impl {
namespace {

struct Tq1MlalDot {
  using Partial = int16x8_t;
  // A step adds 4 products of at most 2 * 128 to an i16 lane, a block 10 steps: 3 blocks stay
  // below 32768.
  static constexpr int64_t kFlushBlocks = 3;
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

}  // namespace

void tq1_gemm_neon(const TernaryGemmArgs& a) { tq1_gemm_neon_with<Tq1MlalDot>(a); }

}  // namespace bitnet::kernels_impl
