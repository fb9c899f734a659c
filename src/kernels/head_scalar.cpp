// LM-head scalar reference: the activation quantizer (used by every backend) and the GEMMs that
// define the results the SIMD backends must reproduce.
#include <cmath>
#include <string>

#include "bitnet/error.h"
#include "kernels/head_internal.h"
#include "kernels/kernels_internal.h"

namespace bitnet {
namespace {

using namespace kernels_impl;

// Quantizes one block of `count` values: d = amax / 127, q = nearbyint(x * 127 / amax).
float quantize_block(const float* x, int count, int8_t* q) {
  float amax = 0.0f;
  for (int i = 0; i < count; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  bool finite = std::isfinite(amax);
  for (int i = 0; i < count; ++i) finite = finite && !std::isnan(x[i]);  // fmax skips NaN
  if (!finite || amax == 0.0f) {
    for (int i = 0; i < count; ++i) q[i] = 0;
    return finite ? 0.0f : NAN;
  }
  const float inverse = 127.0f / amax;
  for (int i = 0; i < count; ++i) q[i] = (int8_t)std::fmin(127.0f, std::fmax(-127.0f, std::nearbyint(x[i] * inverse)));
  return amax / 127.0f;
}

// ---- the scalar reference GEMMs ----

void gemm_f16(const HeadGemmArgs& a) {
  for_each_row_tile<1>(a, [&](int64_t m, int64_t t, int) {
    const uint8_t* row = a.w + (size_t)m * a.row_bytes;
    const float* x = reinterpret_cast<const float*>(token_acts(a, t));
    float sum = 0.0f;
    for (int64_t i = 0; i < a.k; ++i) sum += fp16_to_fp32(load_u16(row + 2 * i)) * x[i];
    a.y[(size_t)t * a.y_stride + m] = sum;
  });
}

void gemm_q8_0(const HeadGemmArgs& a) {
  const int64_t blocks = a.k / kHeadQ8_0Block;
  for_each_row_tile<1>(a, [&](int64_t m, int64_t t, int) {
    const uint8_t* row = a.w + (size_t)m * a.row_bytes;
    const auto* acts = reinterpret_cast<const HeadActQ8_0*>(token_acts(a, t));
    float sum = 0.0f;
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* block = row + b * kQ8_0Bytes;
      int32_t isum = 0;
      for (int j = 0; j < 32; ++j) isum += (int8_t)block[kQ8_0Qs + j] * acts[b].q[j];
      sum += (fp16_to_fp32(load_u16(block)) * acts[b].d) * (float)isum;
    }
    a.y[(size_t)t * a.y_stride + m] = sum;
  });
}

// The 6-bit code (0..63) of value i of a Q6_K block, read as the layout comment in head_internal.h
// says; its sub-block (scale index) is i / 16.
int q6k_code(const uint8_t* block, int i) {
  const int h = i / 128, k = (i % 128) / 32, l = i % 32;
  const int low = (block[64 * h + l + 32 * (k & 1)] >> (4 * (k >> 1))) & 0x0f;
  const int high = (block[kQ6KQh + 32 * h + l] >> (2 * k)) & 3;
  return low | high << 4;
}

void gemm_q6_k(const HeadGemmArgs& a) {
  const int64_t blocks = a.k / kHeadQ6KBlock;
  for_each_row_tile<1>(a, [&](int64_t m, int64_t t, int) {
    const uint8_t* row = a.w + (size_t)m * a.row_bytes;
    const auto* acts = reinterpret_cast<const HeadActQ8K*>(token_acts(a, t));
    float sum = 0.0f;
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* block = row + b * kQ6KBytes;
      int32_t isum = 0;
      for (int s = 0; s < 16; ++s) {
        int32_t sub_sum = 0;
        for (int i = 16 * s; i < 16 * s + 16; ++i) sub_sum += (q6k_code(block, i) - 32) * acts[b].q[i];
        isum += (int8_t)block[kQ6KScales + s] * sub_sum;
      }
      sum += (fp16_to_fp32(load_u16(block + kQ6KD)) * acts[b].d) * (float)isum;
    }
    a.y[(size_t)t * a.y_stride + m] = sum;
  });
}

}  // namespace

namespace kernels_impl {
const HeadKernels kScalarHeadKernels = {Isa::Scalar, gemm_f16, gemm_q8_0, gemm_q6_k};
}

int64_t head_block_values(HeadType type) {
  switch (type) {
    case HeadType::F16: return 1;
    case HeadType::Q8_0: return kHeadQ8_0Block;
    case HeadType::Q6_K: return kHeadQ6KBlock;
  }
  throw Error("head_block_values: unknown head type " + std::to_string((int)type));
}

size_t head_act_row_bytes(HeadType type, int64_t k) {
  const int64_t blocks = k / head_block_values(type);
  switch (type) {
    case HeadType::F16: return (size_t)k * sizeof(float);
    case HeadType::Q8_0: return (size_t)blocks * sizeof(HeadActQ8_0);
    case HeadType::Q6_K: return (size_t)blocks * sizeof(HeadActQ8K);
  }
  throw Error("head_act_row_bytes: unknown head type " + std::to_string((int)type));
}

void head_quantize_acts(HeadType type, const float* x, int64_t k, void* out) {
  const int64_t block = head_block_values(type);
  if (k <= 0 || k % block != 0)
    throw Error("head_quantize_acts: row length " + std::to_string(k) + " is not a whole number of " +
                std::to_string(block) + "-value blocks");
  const int64_t blocks = k / block;
  switch (type) {
    case HeadType::F16:
      std::memcpy(out, x, (size_t)k * sizeof(float));
      return;
    case HeadType::Q8_0: {
      auto* acts = static_cast<HeadActQ8_0*>(out);
      for (int64_t b = 0; b < blocks; ++b) acts[b].d = quantize_block(x + b * block, (int)block, acts[b].q);
      return;
    }
    case HeadType::Q6_K: {
      auto* acts = static_cast<HeadActQ8K*>(out);
      for (int64_t b = 0; b < blocks; ++b) {
        acts[b].d = quantize_block(x + b * block, (int)block, acts[b].q);
        for (int j = 0; j < 16; ++j) {
          int sum = 0;
          for (int i = 0; i < 16; ++i) sum += acts[b].q[16 * j + i];
          acts[b].sums[j] = (int16_t)sum;
        }
      }
      return;
    }
  }
}

}  // namespace bitnet
