// Ternarising float weights (BitNet b1.58's absmean weight quantization), tensor by tensor with the
// rows read through a callback so that no tensor is held in memory whole. Pure functions.
#pragma once
#include <cstdint>
#include <functional>

namespace bitnet {

using FloatRowReader = std::function<void(int64_t row, float* out)>;

// The absmean quantizer as transformers' WeightQuant computes it: beta = mean |W| over the whole
// tensor, multiplier s = 1 / max(beta, 1e-5) in float, t = clamp(round(W * s), -1, 1), and the
// weight is t / s.
struct Absmean {
  float multiplier;  // s
  float scale;       // 1 / s: the ternary values' scale
};
Absmean absmean(int64_t rows, int64_t cols, const FloatRowReader& row);

// t = clamp(round-half-even(x * multiplier), -1, 1).
void ternarize_row(const float* x, int64_t n, float multiplier, int8_t* out);

// When every non-zero value of the tensor has one magnitude a (the tensor already is ternary
// values times a), returns a; otherwise (or for an all-zero tensor) 0.
float common_magnitude(int64_t rows, int64_t cols, const FloatRowReader& row);

}  // namespace bitnet
