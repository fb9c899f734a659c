// Private to src/kernels: the per-backend tables, the scalar helpers the SIMD backends use for
// tails, and the row/token tiling shared by every ternary_gemm backend.
//
// This header is included by translation units compiled with different -m flags. Anything defined
// here must have internal linkage (static or an unnamed namespace): an inline function with
// external linkage could be emitted by the AVX-512 unit and picked by the linker for the scalar
// one, which would then crash on CPUs without AVX-512.
#pragma once
#include <cstdint>

#include "bitnet/kernels.h"

namespace bitnet::kernels_impl {

extern const Kernels kScalarKernels;
#if defined(__x86_64__)
extern const Kernels kAvx2Kernels;
extern const Kernels kAvxVnniKernels;
extern const Kernels kAvx512VnniKernels;
#endif
#if defined(__aarch64__)
extern const Kernels kNeonKernels;
extern const Kernels kNeonDotProdKernels;
#endif

// Scalar conversions (round to nearest even; NaN stays NaN with its payload's top bits, quietened),
// defined in kernels_scalar.cpp and used by SIMD backends for the elements after the last vector.
uint16_t fp32_to_fp16(float f);
float fp16_to_fp32(uint16_t h);
// q = clamp(nearbyint(x * sigma), -128, 127): the one rounding rule of quantize_row_i8.
int8_t quantize_value(float x, float sigma);
// 127 / max(amax, 1e-5): the one scale rule of quantize_row_i8.
float quantize_sigma(float amax);

namespace scalar {
void quantize_row_i8(const float* x, int64_t k, int64_t kp, int8_t* q, float* act_scale, int32_t* act_sum);
void ternary_gemm(const TernaryGemmArgs& a);
float dot_f32(const float* a, const float* b, int64_t n);
float dot_f16_f32(const uint16_t* a, const float* b, int64_t n);
void fp32_to_fp16_row(const float* in, uint16_t* out, int64_t n);
void fp16_to_fp32_row(const uint16_t* in, float* out, int64_t n);
void axpy_f16(float a, const uint16_t* x, float* y, int64_t n);
}  // namespace scalar

#if defined(__x86_64__)
// The 256-bit float and quantization kernels, shared by the AVX2 and AVX-VNNI tables (the
// AVX-VNNI CPUs have everything they need).
namespace avx2 {
void quantize_row_i8(const float* x, int64_t k, int64_t kp, int8_t* q, float* act_scale, int32_t* act_sum);
float dot_f32(const float* a, const float* b, int64_t n);
float dot_f16_f32(const uint16_t* a, const float* b, int64_t n);
void fp32_to_fp16_row(const float* in, uint16_t* out, int64_t n);
void fp16_to_fp32_row(const uint16_t* in, float* out, int64_t n);
void axpy_f16(float a, const uint16_t* x, float* y, int64_t n);
uint64_t probe_int8_macs(int64_t iters);
uint64_t probe_f32_fmas(int64_t iters);
uint64_t probe_read_sum(const uint64_t* p, int64_t n);
}  // namespace avx2
#endif

namespace {

// The table of a secondary kernel family (head, attention) that goes with main backend `isa`:
// the AVX-512 one, the AVX2 one (also for AVX-VNNI), else the scalar reference; nullptr when the
// main backend is unavailable. The x86 tables are null on other architectures.
template <class Table>
const Table* family_table_for(Isa isa, const Table& scalar, const Table* avx2, const Table* avx512) {
  if (!kernels_for(isa)) return nullptr;
  if (isa == Isa::AVX512VNNI && avx512) return avx512;
  if ((isa == Isa::AVX2 || isa == Isa::AVXVNNI) && avx2) return avx2;
  return &scalar;
}

// The one float epilogue of the ternary matmul; every backend calls it so outputs are bit-exact.
[[gnu::always_inline]] inline float ternary_output(int32_t raw, int32_t act_sum, float row_scale,
                                                   float act_scale) {
  return ((float)(raw - act_sum) * row_scale) * act_scale;
}

// Walks the m0..m1 x n_tokens output in tiles of Rows x Tokens and calls
// tile(args, m, rows, n, tokens) for each; a tile at the edge gets rows < Rows or tokens < Tokens
// and must compute only those (it may re-read valid rows/tokens in place of the missing ones).
// Row tiles are the outer loop so one tile's weights stay in L1 while every token passes over them.
template <int Rows, int Tokens, class Tile>
[[gnu::always_inline]] inline void for_each_tile(const TernaryGemmArgs& a, Tile tile) {
  for (int64_t m = a.m0; m < a.m1; m += Rows) {
    const int rows = (int)(a.m1 - m < Rows ? a.m1 - m : Rows);
    for (int64_t n = 0; n < a.n_tokens; n += Tokens) {
      const int tokens = (int)(a.n_tokens - n < Tokens ? a.n_tokens - n : Tokens);
      tile(a, m, rows, n, tokens);
    }
  }
}

}  // namespace
}  // namespace bitnet::kernels_impl
