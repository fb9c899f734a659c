#include "convert/ternarize.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace bitnet {

Absmean absmean(int64_t rows, int64_t cols, const FloatRowReader& row) {
  std::vector<float> x((size_t)cols);
  double sum = 0;
  for (int64_t r = 0; r < rows; ++r) {
    row(r, x.data());
    double row_sum = 0;
    for (float v : x) row_sum += std::fabs((double)v);
    sum += row_sum;
  }
  const float beta = std::max((float)(sum / ((double)rows * (double)cols)), 1e-5f);
  const float s = 1.0f / beta;
  return {s, 1.0f / s};
}

void ternarize_row(const float* x, int64_t n, float multiplier, int8_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = (int8_t)std::clamp(std::nearbyint(x[i] * multiplier), -1.0f, 1.0f);
}

float common_magnitude(int64_t rows, int64_t cols, const FloatRowReader& row) {
  std::vector<float> x((size_t)cols);
  float a = 0;
  for (int64_t r = 0; r < rows; ++r) {
    row(r, x.data());
    for (float v : x) {
      const float m = std::fabs(v);
      if (m == 0) continue;
      if (a == 0) a = m;
      else if (m != a) return 0;
    }
  }
  return a;
}

}  // namespace bitnet
