// Attention kernels over an f16 or Q8_0 KV cache, for one KV head and the query heads that share it
// (GQA).
//
// The cache keeps each KV head's positions contiguous, so one call streams a block of positions once
// for all the query heads of the group. Values are rows ([position][head_dim]); keys are tiles of
// kKeyTile positions stored dimension-major ([position / kKeyTile][head_dim][kKeyTile]), so that one
// vector holds one dimension of consecutive positions and scores need no horizontal sums.
// Q8_0 (head_dim a multiple of 32; each 32 values of a head's row share one f32 scale absmax / 127):
// a key tile (q8_key_tile_bytes) is int8 [head_dim][kKeyTile] then f32 scales
// [head_dim / 32][kKeyTile]; a value row (q8_value_row_bytes)
// is head_dim int8 then head_dim / 32 f32 scales.
// Float results: SIMD backends sum in a different order than the scalar reference and use a
// polynomial exp (relative error < 2e-7); tests bound the difference.
#pragma once
#include <cstdint>

#include "bitnet/kernels.h"

namespace bitnet {

constexpr int64_t kKeyTile = 16;
// Index of key dimension d of position t in a head's f16 (or f32) key tiles.
constexpr int64_t key_index(int64_t t, int64_t d, int64_t hd) {
  return (t / kKeyTile) * kKeyTile * hd + d * kKeyTile + t % kKeyTile;
}

constexpr int64_t kQ8Block = 32;
constexpr size_t q8_value_row_bytes(int64_t hd) { return (size_t)(hd + hd / kQ8Block * 4); }
// A tile's int8 values and scales take as many bytes as its positions' value rows.
constexpr size_t q8_key_tile_bytes(int64_t hd) { return (size_t)kKeyTile * q8_value_row_bytes(hd); }
// q[i] = nearbyint(x[i] / s), s = absmax / 127 of each block of 32 values (0 for an all-zero
// block): n values (a multiple of 32) into n int8 and n / 32 scales.
void quantize_q8_blocks(const float* x, int64_t n, int8_t* q, float* scales);

struct AttentionKernels {
  Isa isa;
  // scores[j * n_pos + t] = scale * sum_d q[j * hd + d] * k[key_index(t, d, hd)], for j < n_q,
  // t < n_pos. k starts at a tile; lanes of the last tile at or past n_pos are read but unused.
  void (*scores_f16)(const uint16_t* k, int64_t n_pos, int64_t hd, const float* q, int64_t n_q,
                     float scale, float* scores);
  // x[i] = exp(x[i] - max) for i < n; returns their sum.
  float (*exp_sum)(float* x, int64_t n, float max);
  // out[j * hd + d] += sum_t w[j * n_pos + t] * v[t * hd + d], for j < n_q.
  void (*values_f16)(const uint16_t* v, int64_t n_pos, int64_t hd, const float* w, int64_t n_q,
                     float* out);
  // The same over a Q8_0 cache (k: key tiles, v: value rows as above).
  void (*scores_q8)(const uint8_t* k, int64_t n_pos, int64_t hd, const float* q, int64_t n_q, float scale,
                    float* scores);
  void (*values_q8)(const uint8_t* v, int64_t n_pos, int64_t hd, const float* w, int64_t n_q, float* out);
};

// The table matching kernels().isa (AVX-512 -> AVX-512, AVX2 / AVX-VNNI -> AVX2, else scalar).
const AttentionKernels& attention_kernels();
// The table for a backend, or nullptr when kernels_for(isa) is.
const AttentionKernels* attention_kernels_for(Isa isa);

}  // namespace bitnet
