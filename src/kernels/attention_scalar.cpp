// Attention scalar reference and the backend choice.
#include <algorithm>
#include <cmath>

#include "kernels/attention_internal.h"
#include "kernels/kernels_internal.h"

namespace bitnet {

void quantize_q8_blocks(const float* x, int64_t n, int8_t* q, float* scales) {
  for (int64_t b = 0; b < n / kQ8Block; ++b) {
    float amax = 0;
    for (int64_t i = 0; i < kQ8Block; ++i) amax = std::max(amax, std::fabs(x[b * kQ8Block + i]));
    const float s = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0.0f;
    scales[b] = s;
    for (int64_t i = 0; i < kQ8Block; ++i) {
      const float r = std::nearbyint(x[b * kQ8Block + i] * inv);
      q[b * kQ8Block + i] = r == r ? (int8_t)std::clamp(r, -127.0f, 127.0f) : 0;  // NaN -> 0
    }
  }
}

namespace kernels_impl {
namespace {

void scores_f16(const uint16_t* k, int64_t n_pos, int64_t hd, const float* q, int64_t n_q, float scale,
                float* scores) {
  for (int64_t j = 0; j < n_q; ++j)
    for (int64_t t = 0; t < n_pos; ++t) {
      float sum = 0;
      for (int64_t d = 0; d < hd; ++d) sum += q[j * hd + d] * fp16_to_fp32(k[key_index(t, d, hd)]);
      scores[j * n_pos + t] = scale * sum;
    }
}

float exp_sum(float* x, int64_t n, float max) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - max));
  return sum;
}

void values_f16(const uint16_t* v, int64_t n_pos, int64_t hd, const float* w, int64_t n_q, float* out) {
  for (int64_t j = 0; j < n_q; ++j)
    for (int64_t t = 0; t < n_pos; ++t)
      for (int64_t d = 0; d < hd; ++d) out[j * hd + d] += w[j * n_pos + t] * fp16_to_fp32(v[t * hd + d]);
}

void scores_q8(const uint8_t* k, int64_t n_pos, int64_t hd, const float* q, int64_t n_q, float scale, float* scores) {
  for (int64_t j = 0; j < n_q; ++j)
    for (int64_t t = 0; t < n_pos; ++t) {
      const uint8_t* tile = k + t / kKeyTile * q8_key_tile_bytes(hd);
      const auto* codes = reinterpret_cast<const int8_t*>(tile);
      const auto* scales = reinterpret_cast<const float*>(tile + kKeyTile * hd);
      float sum = 0;
      for (int64_t b = 0; b < hd / kQ8Block; ++b) {
        float block = 0;
        for (int64_t d = b * kQ8Block; d < (b + 1) * kQ8Block; ++d) block += q[j * hd + d] * codes[d * kKeyTile + t % kKeyTile];
        sum += block * scales[b * kKeyTile + t % kKeyTile];
      }
      scores[j * n_pos + t] = scale * sum;
    }
}

void values_q8(const uint8_t* v, int64_t n_pos, int64_t hd, const float* w, int64_t n_q, float* out) {
  for (int64_t j = 0; j < n_q; ++j)
    for (int64_t t = 0; t < n_pos; ++t) {
      const uint8_t* row = v + t * q8_value_row_bytes(hd);
      const auto* codes = reinterpret_cast<const int8_t*>(row);
      const auto* scales = reinterpret_cast<const float*>(row + hd);
      for (int64_t d = 0; d < hd; ++d) out[j * hd + d] += w[j * n_pos + t] * (scales[d / kQ8Block] * codes[d]);
    }
}

}  // namespace

const AttentionKernels kScalarAttentionKernels = {Isa::Scalar, scores_f16, exp_sum, values_f16, scores_q8, values_q8};

}  // namespace kernels_impl

const AttentionKernels* attention_kernels_for(Isa isa) {
  using namespace kernels_impl;
#if defined(__x86_64__)
  return family_table_for(isa, kScalarAttentionKernels, &kAvx2AttentionKernels, &kAvx512AttentionKernels);
#else
  return family_table_for<AttentionKernels>(isa, kScalarAttentionKernels, nullptr, nullptr);
#endif
}

const AttentionKernels& attention_kernels() {
  static const AttentionKernels& chosen = *attention_kernels_for(kernels().isa);
  return chosen;
}

}  // namespace bitnet
