// LM-head kernels: y = W x for a float matrix stored as F16, Q8_0 or Q6_K (ggml block layouts),
// over one token (GEMV, generation) or a few (GEMM), without dequantizing rows to a buffer.
//
// Activation formats. F16 heads take the float rows as they are. Quantized heads take each token's
// row quantized per block to int8 with one float scale (head_quantize_acts), the standard
// approximation for quantized heads (ggml's Q8_0 / Q8_K activations):
//   amax = max |x| over the block; d = amax / 127 (float);
//   q = clamp(nearbyint(x * (127 / amax)), -127, 127) (round to nearest even); an all-zero block
//   has d = 0, q = 0; a block holding Inf or NaN gets d = NaN, q = 0 (so its outputs are NaN).
//   Q8_0 heads: one HeadActQ8_0 per 32 values (a weight block's span).
//   Q6_K heads: one HeadActQ8K per 256 values, with sums[j] = sum of q[16j .. 16j+15]
//   (Q6_K stores codes 0..63 for values code - 32; the sums take the offset out per sub-block).
//
// Results. Per weight block the integer part is exact in every backend:
//   Q8_0: isum = sum_j w.qs[j] * a.q[j];                       y += (d_w * a.d) * isum
//   Q6_K: isum = sum_s scales[s] * sum_{i in s} (code_i - 32) * a.q[i];  y += (d_w * a.d) * isum
//   F16:  y = sum_i float(w_i) * x_i
// and the float scaling and summation over blocks is done in float; SIMD backends sum in a
// different order than the scalar reference (tests bound the difference by 2^-18 * sum |terms|).
#pragma once
#include <cstddef>
#include <cstdint>

#include "bitnet/kernels.h"

namespace bitnet {

enum class HeadType { F16, Q8_0, Q6_K };

constexpr int64_t kHeadQ8_0Block = 32;   // values per Q8_0 weight block and per HeadActQ8_0
constexpr int64_t kHeadQ6KBlock = 256;   // values per Q6_K weight block and per HeadActQ8K

struct HeadActQ8_0 {
  float d;
  int8_t q[32];
};

struct HeadActQ8K {
  float d;
  int16_t sums[16];
  int8_t q[256];
};

// Values per block of the head type (F16: 1).
int64_t head_block_values(HeadType type);
// Bytes one token's activations take: K floats for F16, K/32 HeadActQ8_0, K/256 HeadActQ8K.
size_t head_act_row_bytes(HeadType type, int64_t k);
// Converts one float row of K values into the type's activation format (head_act_row_bytes bytes
// at out; F16 copies the floats). Throws bitnet::Error unless K is a whole number of blocks.
void head_quantize_acts(HeadType type, const float* x, int64_t k, void* out);

struct HeadGemmArgs {
  const uint8_t* w;   // weight row m at w + m * row_bytes: K/32 Q8_0 blocks, K/256 Q6_K blocks or K f16
  size_t row_bytes;
  int64_t k;          // values per row, a whole number of blocks
  const void* acts;   // token t's activations at (const uint8_t*)acts + t * act_stride
  size_t act_stride;  // bytes
  int64_t n_tokens;
  float* y;           // token t's output for row m at y[t * y_stride + m]
  size_t y_stride;
  int64_t m0, m1;     // the rows this call computes
};

struct HeadKernels {
  Isa isa;
  void (*gemm_f16)(const HeadGemmArgs& a);
  void (*gemm_q8_0)(const HeadGemmArgs& a);
  void (*gemm_q6_k)(const HeadGemmArgs& a);
};

// The table matching kernels().isa (so BITNET_ISA applies): AVX-512 VNNI -> AVX-512 kernels,
// AVX2 / AVX-VNNI -> AVX2 kernels, anything else -> the scalar reference.
const HeadKernels& head_kernels();
// The head table for a backend, or nullptr when kernels_for(isa) is (not compiled in / CPU lacks it).
const HeadKernels* head_kernels_for(Isa isa);
// head_kernels()'s kernel for the type.
void head_gemm(HeadType type, const HeadGemmArgs& a);

}  // namespace bitnet
