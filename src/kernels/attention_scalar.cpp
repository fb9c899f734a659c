// Attention scalar reference and the backend choice.
#include <cmath>

#include "kernels/attention_internal.h"
#include "kernels/kernels_internal.h"

namespace bitnet {
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

}  // namespace

const AttentionKernels kScalarAttentionKernels = {Isa::Scalar, scores_f16, exp_sum, values_f16};

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
