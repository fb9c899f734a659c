// Attention kernels over an f16 KV cache, for one KV head and the query heads that share it (GQA).
//
// The cache keeps each KV head's rows contiguous ([position][head_dim] f16), so one call streams a
// block of positions once for all the query heads of the group. Float results: SIMD backends sum in
// a different order than the scalar reference and use a polynomial exp (relative error < 2e-7);
// tests bound the difference.
#pragma once
#include <cstdint>

#include "bitnet/kernels.h"

namespace bitnet {

struct AttentionKernels {
  Isa isa;
  // scores[j * n_pos + t] = scale * sum_d q[j * hd + d] * k[t * hd + d], for j < n_q, t < n_pos.
  void (*scores_f16)(const uint16_t* k, int64_t n_pos, int64_t hd, const float* q, int64_t n_q,
                     float scale, float* scores);
  // x[i] = exp(x[i] - max) for i < n; returns their sum.
  float (*exp_sum)(float* x, int64_t n, float max);
  // out[j * hd + d] += sum_t w[j * n_pos + t] * v[t * hd + d], for j < n_q.
  void (*values_f16)(const uint16_t* v, int64_t n_pos, int64_t hd, const float* w, int64_t n_q,
                     float* out);
};

// The table matching kernels().isa (AVX-512 -> AVX-512, AVX2 / AVX-VNNI -> AVX2, else scalar).
const AttentionKernels& attention_kernels();
// The table for a backend, or nullptr when kernels_for(isa) is.
const AttentionKernels* attention_kernels_for(Isa isa);

}  // namespace bitnet
