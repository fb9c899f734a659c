// NEON dotprod backend (ARMv8.2 SDOT): the ternary dot sums four code x activation products into
// each i32 lane directly; codes 0..2 are used as signed bytes. Other kernels are the NEON ones.
#include <arm_neon.h>

#include "kernels/kernels_neon_common.h"
#include "kernels/tq1_internal.h"

namespace bitnet::kernels_impl {

const Kernels kNeonDotProdKernels = {
    Isa::NEONDotProd,  neon::quantize_row_i8,  ternary_gemm_neon<SdotDot>, tq1_gemm_neon_dotprod, neon::dot_f32,
    neon::dot_f16_f32, neon::fp32_to_fp16_row, neon::fp16_to_fp32_row, neon::axpy_f16,
};

}  // namespace bitnet::kernels_impl
