// NEON dotprod TQ1_0 product: SDOT on digit codes (0..2, as signed bytes) and activations.
#include "kernels/tq1_neon_common.h"

namespace bitnet::kernels_impl {

void tq1_gemm_neon_dotprod(const TernaryGemmArgs& a) { tq1_gemm_neon_with<SdotDot>(a); }

}  // namespace bitnet::kernels_impl
