// Compute probes for the AVX2 backend (bench --roofline): the instruction mix of its kernels on
// registers only, with enough independent accumulators to hide every latency, so the time is the
// core's issue rate for that mix. Written in assembly: a compiler hoists or merges products whose
// inputs do not change, which is the whole loop here.
#include <immintrin.h>

#include "kernels/kernels_internal.h"

namespace bitnet::kernels_impl::avx2 {

// The ternary step: vpmaddubsw (32 u8 x s8 products summed in pairs) + vpaddw into one of eight
// i16 accumulators; eight distinct code x activation pairs per iteration.
uint64_t probe_int8_macs(int64_t iters) {
#define BITNET_STEP(acc, codes, act) \
  "vpmaddubsw %%ymm" #act ", %%ymm" #codes ", %%ymm14\n\tvpaddw %%ymm14, %%ymm" #acc ", %%ymm" #acc "\n\t"
  int64_t n = iters;
  __asm__ volatile(
      "vpcmpeqb %%ymm8, %%ymm8, %%ymm8\n\t"
      "vpabsb %%ymm8, %%ymm9\n\t"
      "vpaddb %%ymm9, %%ymm9, %%ymm10\n\t"
      "vpxor %%ymm11, %%ymm11, %%ymm11\n\t"
      "vpaddb %%ymm10, %%ymm9, %%ymm12\n\t"
      "vpsubb %%ymm9, %%ymm11, %%ymm13\n\t"
      "vpxor %%ymm0, %%ymm0, %%ymm0\n\tvpxor %%ymm1, %%ymm1, %%ymm1\n\t"
      "vpxor %%ymm2, %%ymm2, %%ymm2\n\tvpxor %%ymm3, %%ymm3, %%ymm3\n\t"
      "vpxor %%ymm4, %%ymm4, %%ymm4\n\tvpxor %%ymm5, %%ymm5, %%ymm5\n\t"
      "vpxor %%ymm6, %%ymm6, %%ymm6\n\tvpxor %%ymm7, %%ymm7, %%ymm7\n\t"
      "1:\n\t"
      BITNET_STEP(0, 8, 12) BITNET_STEP(1, 9, 12) BITNET_STEP(2, 10, 12) BITNET_STEP(3, 11, 12)
      BITNET_STEP(4, 8, 13) BITNET_STEP(5, 9, 13) BITNET_STEP(6, 10, 13) BITNET_STEP(7, 11, 13)
      "dec %0\n\tjnz 1b\n\tvzeroupper"
      : "+r"(n)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "xmm12", "xmm13", "xmm14", "cc");
#undef BITNET_STEP
  return (uint64_t)iters * 8 * 32;
}

// The float head's step: vfmadd231ps into twelve accumulators (more than FMA latency x ports).
uint64_t probe_f32_fmas(int64_t iters) {
#define BITNET_FMA(acc) "vfmadd231ps %%ymm13, %%ymm12, %%ymm" #acc "\n\t"
  int64_t n = iters;
  __asm__ volatile(
      "vxorps %%ymm0, %%ymm0, %%ymm0\n\tvxorps %%ymm1, %%ymm1, %%ymm1\n\tvxorps %%ymm2, %%ymm2, %%ymm2\n\t"
      "vxorps %%ymm3, %%ymm3, %%ymm3\n\tvxorps %%ymm4, %%ymm4, %%ymm4\n\tvxorps %%ymm5, %%ymm5, %%ymm5\n\t"
      "vxorps %%ymm6, %%ymm6, %%ymm6\n\tvxorps %%ymm7, %%ymm7, %%ymm7\n\tvxorps %%ymm8, %%ymm8, %%ymm8\n\t"
      "vxorps %%ymm9, %%ymm9, %%ymm9\n\tvxorps %%ymm10, %%ymm10, %%ymm10\n\tvxorps %%ymm11, %%ymm11, %%ymm11\n\t"
      "vxorps %%ymm12, %%ymm12, %%ymm12\n\tvxorps %%ymm13, %%ymm13, %%ymm13\n\t"
      "1:\n\t"
      BITNET_FMA(0) BITNET_FMA(1) BITNET_FMA(2) BITNET_FMA(3) BITNET_FMA(4) BITNET_FMA(5)
      BITNET_FMA(6) BITNET_FMA(7) BITNET_FMA(8) BITNET_FMA(9) BITNET_FMA(10) BITNET_FMA(11)
      "dec %0\n\tjnz 1b\n\tvzeroupper"
      : "+r"(n)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "xmm12", "xmm13", "cc");
#undef BITNET_FMA
  return (uint64_t)iters * 12 * 8;
}

// The bandwidth probe's read: 256-bit loads into four independent sums, as the kernels stream
// weights (a loop of 64-bit loads measured 13.5-15 GB/s where this one reads 16-18 on one VM).
uint64_t probe_read_sum(const uint64_t* p, int64_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_add_epi64(a0, _mm256_loadu_si256((const __m256i*)(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_loadu_si256((const __m256i*)(p + i + 4)));
    a2 = _mm256_add_epi64(a2, _mm256_loadu_si256((const __m256i*)(p + i + 8)));
    a3 = _mm256_add_epi64(a3, _mm256_loadu_si256((const __m256i*)(p + i + 12)));
  }
  const __m256i a = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  uint64_t sum = (uint64_t)_mm256_extract_epi64(a, 0) + (uint64_t)_mm256_extract_epi64(a, 1) +
                 (uint64_t)_mm256_extract_epi64(a, 2) + (uint64_t)_mm256_extract_epi64(a, 3);
  for (; i < n; ++i) sum += p[i];
  return sum;
}

}  // namespace bitnet::kernels_impl::avx2
