// NEON TQ1_0 product: vmull/vmlal on digit codes (0..2) and activations, i16 partials folded
// into i32 with vpadal.
#include "kernels/tq1_neon_common.h"

namespace bitnet::kernels_impl {

// A step (one run of 32 codes) adds 4 products of at most 2 * 128 to an i16 lane: 30 steps (the
// tile counts 10 a block) stay below 32768.
void tq1_gemm_neon(const TernaryGemmArgs& a) { tq1_gemm_neon_with<MlalDot<3>>(a); }

}  // namespace bitnet::kernels_impl
