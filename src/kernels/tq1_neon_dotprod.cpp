// NEON dotprod TQ1_0 product: SDOT on digit codes (0..2, as signed bytes) and activations.
#include <limits>

#include "kernels/tq1_neon_common.h"

namespace bitnet::kernels_impl {
namespace {

struct Tq1SdotDot {
  using Partial = int32x4_t;
  static constexpr int64_t kFlushBlocks = std::numeric_limits<int64_t>::max();
  static constexpr int kGemmRows = 4, kGemmTokens = 4;
  [[gnu::always_inline]] static Partial zero() { return vdupq_n_s32(0); }
  [[gnu::always_inline]] static Partial step(Partial p, const int8x16_t codes[2], int8x16_t a0, int8x16_t a1) {
    return vdotq_s32(vdotq_s32(p, codes[0], a0), codes[1], a1);
  }
  [[gnu::always_inline]] static int32x4_t widen(int32x4_t acc, Partial p) { return vaddq_s32(acc, p); }
};

}  // namespace

void tq1_gemm_neon_dotprod(const TernaryGemmArgs& a) { tq1_gemm_neon_with<Tq1SdotDot>(a); }

}  // namespace bitnet::kernels_impl
