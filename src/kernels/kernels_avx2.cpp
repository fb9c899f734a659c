// AVX2 backend (with FMA and F16C). The ternary dot uses maddubs: unsigned codes (0..2) times
// signed activations give i16 pair sums, accumulated in i16 for a few blocks, then widened to i32
// with madd against ones.
#include <immintrin.h>

#include <cstring>

#include "kernels/kernels_x86_256.h"
#include "kernels/tq1_internal.h"

namespace bitnet::kernels_impl {
namespace {

// One maddubs output lane is at most 2 * 3 * 128 = 768 in magnitude (even for the unused code 3),
// a block adds 4 of them, so 8 blocks stay below 32768.
struct MaddubsDot {
  static constexpr int64_t kFlushBlocks = 8;
  static constexpr bool kCodesPerRow = true;
  [[gnu::always_inline]] static __m256i step(__m256i part, __m256i codes, __m256i act) {
    __m256i sum = _mm256_add_epi16(part, _mm256_maddubs_epi16(codes, act));
    // Keeps each sum in its register: GCC otherwise reassociates a block's four adds per accumulator
    // into trees whose temporaries spill (8-token GEMM 1.2-1.4x slower).
    __asm__("" : "+x"(sum));
    return sum;
  }
  [[gnu::always_inline]] static __m256i widen(__m256i acc, __m256i part) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(part, _mm256_set1_epi16(1)));
  }
};

// One token: the GEMV. Batches: tiles of 2 rows x 4 tokens, a batch's last 1-3 tokens in a tile of
// 2 x 1|2|4 over the same rows while they are in L1; a batch of 2 in tiles of 4 x 2. Measured on a
// Zen 3 (CPU time, 6912 x 2560) against 4 x 2 tiles everywhere: 4 tokens 1.5x, 8 and 16 tokens 1.4x.
void ternary_gemm_avx2(const TernaryGemmArgs& a) {
  if (a.n_tokens == 1) return ternary_gemv_256<MaddubsDot>(a);
  if (a.n_tokens == 2) return for_each_tile<4, 2>(a, ternary_tile_256<MaddubsDot, 4, 2>);
  for_each_tile<2, 4>(a, [](const TernaryGemmArgs& args, int64_t m, int rows, int64_t n, int tokens) {
    if (tokens == 1) ternary_tile_256<MaddubsDot, 2, 1>(args, m, rows, n, tokens);
    else if (tokens == 2) ternary_tile_256<MaddubsDot, 2, 2>(args, m, rows, n, tokens);
    else ternary_tile_256<MaddubsDot, 2, 4>(args, m, rows, n, tokens);
  });
}

inline float hsum_f32(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace

namespace avx2 {

void quantize_row_i8(const float* x, int64_t k, int64_t kp, int8_t* q, float* act_scale,
                     int32_t* act_sum) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m256 vmax = _mm256_setzero_ps();
  int64_t i = 0;
  // max_ps returns its second operand when either is NaN: NaN inputs leave vmax as it was.
  for (; i + 8 <= k; i += 8) vmax = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask), vmax);
  float lanes[8];
  _mm256_storeu_ps(lanes, vmax);
  float amax = 0.0f;
  for (float v : lanes) amax = amax < v ? v : amax;
  for (; i < k; ++i) {
    const float v = x[i] < 0 ? -x[i] : x[i];
    amax = amax < v ? v : amax;
  }
  const float sigma = quantize_sigma(amax);

  const __m256 vsigma = _mm256_set1_ps(sigma);
  const __m256i lo = _mm256_set1_epi32(-128), hi = _mm256_set1_epi32(127);
  const __m256i unshuffle = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  __m256i vsum = _mm256_setzero_si256();
  i = 0;
  for (; i + 32 <= k; i += 32) {
    __m256i v[4];
    for (int j = 0; j < 4; ++j) {  // cvtps rounds half to even, as nearbyint in the default mode
      const __m256 y = _mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * j), vsigma);
      v[j] = _mm256_cvtps_epi32(_mm256_and_ps(y, _mm256_cmp_ps(y, y, _CMP_ORD_Q)));  // NaN -> 0
      v[j] = _mm256_min_epi32(_mm256_max_epi32(v[j], lo), hi);
      vsum = _mm256_add_epi32(vsum, v[j]);
    }
    // packs works within 128-bit lanes; the permute restores element order.
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
    _mm256_storeu_si256((__m256i*)(q + i), _mm256_permutevar8x32_epi32(bytes, unshuffle));
  }
  int32_t sum = hsum_i32(vsum);
  for (; i < k; ++i) {
    q[i] = quantize_value(x[i], sigma);
    sum += q[i];
  }
  if (kp > k) std::memset(q + k, 0, (size_t)(kp - k));
  *act_scale = 1.0f / sigma;
  *act_sum = sum;
}

float dot_f32(const float* a, const float* b, int64_t n) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int j = 0; j < 4; ++j)
      acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8 * j), _mm256_loadu_ps(b + i + 8 * j), acc[j]);
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc[0]);
  const __m256 total = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
  return hsum_f32(total) + scalar::dot_f32(a + i, b + i, n - i);
}

float dot_f16_f32(const uint16_t* a, const float* b, int64_t n) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int j = 0; j < 4; ++j) {
      const __m256 av = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(a + i + 8 * j)));
      acc[j] = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + i + 8 * j), acc[j]);
    }
  for (; i + 8 <= n; i += 8)
    acc[0] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(a + i))), _mm256_loadu_ps(b + i), acc[0]);
  const __m256 total = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
  return hsum_f32(total) + scalar::dot_f16_f32(a + i, b + i, n - i);
}

void fp32_to_fp16_row(const float* in, uint16_t* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128((__m128i*)(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
  scalar::fp32_to_fp16_row(in + i, out + i, n - i);
}

void fp16_to_fp32_row(const uint16_t* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(in + i))));
  scalar::fp16_to_fp32_row(in + i, out + i, n - i);
}

void axpy_f16(float a, const uint16_t* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(x + i)));
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, xv, _mm256_loadu_ps(y + i)));
  }
  scalar::axpy_f16(a, x + i, y + i, n - i);
}

}  // namespace avx2

const Kernels kAvx2Kernels = {
    Isa::AVX2,         avx2::quantize_row_i8,  ternary_gemm_avx2, tq1_gemm_avx2, avx2::dot_f32,
    avx2::dot_f16_f32, avx2::fp32_to_fp16_row, avx2::fp16_to_fp32_row, avx2::axpy_f16,
};

}  // namespace bitnet::kernels_impl
