// NEON TQ1_0 product: vmull/vmlal on digit codes (0..2) and activations, i16 partials folded
// into i32 with vpadal.
#include "kernels/tq1_neon_common.h"

namespace bitnet::kernels_impl {

// A step adds 4 products of at most 2 * 128 to an i16 lane, a TQ1_0 block 10 steps: 3 blocks stay
// below 32768.
void tq1_gemm_neon(const TernaryGemmArgs& a) { tq1_gemm_neon_with<MlalDot<3>>(a); }

}  // namespace bitnet::kernels_impl
