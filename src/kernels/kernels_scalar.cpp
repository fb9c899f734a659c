// Scalar reference backend: the definition every SIMD backend is tested against, written to be
// read rather than to be fast.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/kernels_internal.h"
#include "kernels/tq1_internal.h"

namespace bitnet {

// Block by block, each output byte from four values 32 apart: a loop the compiler vectorises
// (loading TQ1_0/TQ2_0 files repacks every weight through here).
void pack_ternary_row(const int8_t* t, int64_t k, uint8_t* out) {
  int8_t padded[kTernaryBlock];
  for (int64_t b = 0; b < ternary_padded_cols(k) / kTernaryBlock; ++b) {
    const int8_t* v = t + b * kTernaryBlock;
    if ((b + 1) * kTernaryBlock > k) {  // the last block of a row that is not whole blocks: pad with t = 0
      const int64_t n = k - b * kTernaryBlock;
      std::memcpy(padded, v, (size_t)n);
      std::memset(padded + n, 0, (size_t)(kTernaryBlock - n));
      v = padded;
    }
    uint8_t* o = out + b * 32;
    for (int j = 0; j < 32; ++j)
      o[j] = (uint8_t)((v[j] + 1) << 6 | (v[32 + j] + 1) << 4 | (v[64 + j] + 1) << 2 | (v[96 + j] + 1));
  }
}

namespace kernels_impl {

uint16_t fp32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  const uint32_t abs = x & 0x7FFFFFFF;
  if (abs > 0x7F800000) return (uint16_t)(sign | 0x7E00 | ((abs >> 13) & 0x3FF));  // NaN
  if (abs >= 0x477FF000) return (uint16_t)(sign | 0x7C00);  // >= 65520 rounds to infinity
  const uint32_t exp = abs >> 23, mant = abs & 0x7FFFFF;
  if (exp < 113) {  // below 2^-14: a half subnormal, in units of 2^-24
    if (exp < 102) return sign;  // below 2^-25: rounds to zero
    const uint32_t m = mant | 0x800000, shift = 126 - exp;  // 14..24
    uint32_t h = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) ++h;
    return (uint16_t)(sign | h);
  }
  uint32_t h = ((exp - 112) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;  // a carry into the exponent is correct
  return (uint16_t)(sign | h);
}

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF, x;
  if (exp == 0x1F) {
    x = sign | 0x7F800000 | (mant ? 0x400000 | (mant << 13) : 0);  // NaN is quietened
  } else if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {  // subnormal: normalise
      exp = 113;
      while (!(mant & 0x400)) {
        mant <<= 1;
        --exp;
      }
      x = sign | (exp << 23) | ((mant & 0x3FF) << 13);
    }
  } else {
    x = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

int8_t quantize_value(float x, float sigma) {
  const float r = std::nearbyint(x * sigma);
  return r == r ? (int8_t)std::clamp(r, -128.0f, 127.0f) : 0;  // NaN -> 0 (casting NaN is undefined)
}

float quantize_sigma(float amax) { return 127.0f / std::max(amax, 1e-5f); }

namespace scalar {

void quantize_row_i8(const float* x, int64_t k, int64_t kp, int8_t* q, float* act_scale,
                     int32_t* act_sum) {
  float amax = 0.0f;
  for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float sigma = quantize_sigma(amax);
  int32_t sum = 0;
  for (int64_t i = 0; i < k; ++i) {
    q[i] = quantize_value(x[i], sigma);
    sum += q[i];
  }
  for (int64_t i = k; i < kp; ++i) q[i] = 0;
  *act_scale = 1.0f / sigma;
  *act_sum = sum;
}

void ternary_gemm(const TernaryGemmArgs& a) {
  for (int64_t n = 0; n < a.n_tokens; ++n) {
    const int8_t* q = a.q + n * a.q_stride;
    for (int64_t m = a.m0; m < a.m1; ++m) {
      const uint8_t* w = a.w + m * a.w_stride;
      int32_t raw = 0;
      for (int64_t i = 0; i < a.kp; ++i) {
        const int64_t block = i / kTernaryBlock, j = i % kTernaryBlock;
        const int code = (w[block * 32 + j % 32] >> (6 - 2 * (j / 32))) & 3;
        raw += code * q[i];
      }
      a.y[n * a.y_stride + m] = ternary_output(raw, a.act_sum[n], a.row_scale[m], a.act_scale[n]);
    }
  }
}

float dot_f32(const float* a, const float* b, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float dot_f16_f32(const uint16_t* a, const float* b, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += fp16_to_fp32(a[i]) * b[i];
  return sum;
}

void fp32_to_fp16_row(const float* in, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_fp16(in[i]);
}

void fp16_to_fp32_row(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp16_to_fp32(in[i]);
}

// Fused multiply-add, as the SIMD backends do, so axpy is bit-exact across backends.
void axpy_f16(float a, const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::fma(a, fp16_to_fp32(x[i]), y[i]);
}

}  // namespace scalar

const Kernels kScalarKernels = {
    Isa::Scalar,           scalar::quantize_row_i8,  scalar::ternary_gemm, tq1_gemm_scalar,     scalar::dot_f32,
    scalar::dot_f16_f32,   scalar::fp32_to_fp16_row, scalar::fp16_to_fp32_row, scalar::axpy_f16,
};

}  // namespace kernels_impl
}  // namespace bitnet
