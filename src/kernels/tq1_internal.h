// Private to src/kernels: what every TQ1_0 backend shares (the block layout, the scale epilogue,
// the activation order the SIMD backends read). Included by units compiled with different -m
// flags: internal linkage only (see kernels_internal.h for why).
//
// A TQ1_0 block stores value v's code c = t + 1 as a base-3 digit: byte x holds digits
// d0..d4 (d0 most significant) as ceil(D * 256 / 243), D = sum d_i 3^(4-i), so that digit n is
// ((x * 3^n) mod 256) * 3 >> 8. The SIMD backends walk the digits of a byte with
// m_0 = x, m_(n+1) = 3 m_n mod 256 (two byte adds) and read digit n as [m_n >= 86] + [m_n >= 171]
// (the same as 3 m_n >> 8).
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/kernels_internal.h"

namespace bitnet::kernels_impl {

void tq1_gemm_scalar(const TernaryGemmArgs& a);
#if defined(__x86_64__)
// Also the AVX-VNNI and AVX-512 tables' TQ1_0 product: kernels for those ISAs wait for a machine
// that can run their tests.
void tq1_gemm_avx2(const TernaryGemmArgs& a);
#endif
#if defined(__aarch64__)
void tq1_gemm_neon(const TernaryGemmArgs& a);
void tq1_gemm_neon_dotprod(const TernaryGemmArgs& a);
#endif

namespace {

// Byte offsets in a block: qs[0..31] (digits of values 32n + j), qs[32..47] (160 + 16n + j),
// qh[0..3] (240 + 4n + j, four digits and a zero one), then the f16 d.
constexpr int kTq1Qs1 = 32, kTq1Qh = 48, kTq1D = 52;

inline uint16_t tq1_d_bits(const uint8_t* row, int64_t block) {
  uint16_t d;
  std::memcpy(&d, row + block * (int64_t)kTq1BlockBytes + kTq1D, 2);  // little-endian hosts only
  return d;
}

// Row m's scale for the epilogue; also records (in a.scale_mismatch) a row whose blocks' d differ
// from its first block's, which costs one 2-byte compare per 256 values.
inline float tq1_row_scale(const TernaryGemmArgs& a, int64_t m) {
  const uint8_t* row = a.w + m * a.w_stride;
  if (a.row_scale) return a.row_scale[m];
  const uint16_t d0 = tq1_d_bits(row, 0);
  if (a.scale_mismatch) {
    uint16_t diff = 0;
    for (int64_t b = 1; b < a.kp / kTq1Block; ++b) diff |= (uint16_t)(tq1_d_bits(row, b) ^ d0);
    if (diff) __atomic_store_n(a.scale_mismatch, 1, __ATOMIC_RELAXED);
  }
  return fp16_to_fp32(d0) * a.scale_mul;
}

// The SIMD backends read activations rearranged to follow the digits, per group of up to 8
// blocks (2048 values; a last, shorter group is padded with zero activations):
// - [0, 1280): block i's qs[0..31], 160 bytes each: per digit n = 0..4, values 32n..32n+31;
// - [1280, 1920): blocks 2p and 2p+1's qs[32..47], 160 bytes per pair p: per digit n, block 2p's
//   values 160+16n..160+16n+15, then block 2p+1's;
// - [1920, 2048): the 8 blocks' qh: per digit n = 0..3, for each block i its values
//   240+4n..240+4n+3.
// So 32 weight bytes - one block's qs[0..31], two blocks' qs[32..47], or eight blocks' qh - line
// up with 32 arranged activations at every digit, with no byte wasted on full groups.
constexpr int64_t kTq1Group = 8, kTq1ActGroup = 2048;
constexpr int64_t kTq1ActPairs = 1280, kTq1ActQh = 1920;

// The arranged length of a row of k values (k a multiple of 256).
inline int64_t tq1_arranged_length(int64_t k) {
  return (k / kTq1Block + kTq1Group - 1) / kTq1Group * kTq1ActGroup;
}

inline void tq1_arrange_row(const int8_t* q, int64_t k, int8_t* out) {
  std::memset(out, 0, (size_t)tq1_arranged_length(k));
  for (int64_t b = 0; b < k / kTq1Block; ++b, q += kTq1Block) {
    int8_t* group = out + b / kTq1Group * kTq1ActGroup;
    const int64_t i = b % kTq1Group;
    for (int n = 0; n < 5; ++n) {
      std::memcpy(group + 160 * i + 32 * n, q + 32 * n, 32);
      std::memcpy(group + kTq1ActPairs + 160 * (i / 2) + 32 * n + 16 * (i % 2), q + 160 + 16 * n, 16);
      if (n < 4) std::memcpy(group + kTq1ActQh + 32 * n + 4 * i, q + 240 + 4 * n, 4);
    }
  }
}

// The call's activations in that order, in a per-thread buffer: a copy of `a` whose q and
// q_stride point at them (act_sum and act_scale are unchanged: the same values, reordered).
inline TernaryGemmArgs tq1_arranged(const TernaryGemmArgs& a) {
  thread_local std::vector<int8_t> buffer;
  const size_t stride = (size_t)tq1_arranged_length(a.kp);
  if (buffer.size() < stride * (size_t)a.n_tokens) buffer.resize(stride * (size_t)a.n_tokens);
  for (int64_t n = 0; n < a.n_tokens; ++n) tq1_arrange_row(a.q + n * a.q_stride, a.kp, buffer.data() + n * stride);
  TernaryGemmArgs out = a;
  out.q = buffer.data();
  out.q_stride = stride;
  return out;
}

}  // namespace
}  // namespace bitnet::kernels_impl
