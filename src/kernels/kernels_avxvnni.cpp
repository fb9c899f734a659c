// AVX-VNNI backend: the ternary dot with VEX vpdpbusd (unsigned codes x signed activations, four
// products summed into each i32 lane, no saturation). Float kernels are the AVX2 ones.
#include <immintrin.h>

#include <limits>

#include "kernels/kernels_x86_256.h"
#include "kernels/tq1_internal.h"

namespace bitnet::kernels_impl {
namespace {

// vpdpbusd accumulates in i32 directly: a lane gains at most 16 * 3 * 128 = 6144 per block, so a
// row of up to 44M values cannot overflow and the partial sum never needs an early fold.
struct VnniDot {
  static constexpr int64_t kFlushBlocks = std::numeric_limits<int64_t>::max();
  static constexpr int kGemmRows = 2, kGemmTokens = 4;  // 64-token GEMM: ~175 G MAC/s vs ~145 with 4 x 2
  static constexpr bool kCodesPerRow = false;
  [[gnu::always_inline]] static __m256i step(__m256i part, __m256i codes, __m256i act) {
    return _mm256_dpbusd_avx_epi32(part, codes, act);
  }
  [[gnu::always_inline]] static __m256i widen(__m256i acc, __m256i part) { return _mm256_add_epi32(acc, part); }
};

}  // namespace

const Kernels kAvxVnniKernels = {
    Isa::AVXVNNI,      avx2::quantize_row_i8,  ternary_gemm_256<VnniDot>, tq1_gemm_avx2, avx2::dot_f32,
    avx2::dot_f16_f32, avx2::fp32_to_fp16_row, avx2::fp16_to_fp32_row, avx2::axpy_f16,
};

}  // namespace bitnet::kernels_impl
