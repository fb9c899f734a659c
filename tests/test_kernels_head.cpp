// LM-head kernels: the activation quantizer against its stated rule, the scalar reference against
// a float64 evaluation of blocks built by an independent encoder, and every backend against the
// scalar reference (bit-exact where all partial sums are exact in float, else within 2^-18 of the
// sum of absolute terms).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bitnet/error.h"
#include "bitnet/head_kernels.h"

namespace bitnet {
namespace {

// ---- an independent encoder for the ggml blocks -------------------------------------------

uint16_t f16_bits(float f) {  // exact for the values used here (normal f16 numbers)
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const int exponent = (int)((x >> 23) & 0xff) - 127 + 15;
  EXPECT_TRUE(exponent > 0 && exponent < 31 && (x & 0x1fff) == 0) << f;
  return (uint16_t)(((x >> 16) & 0x8000) | (exponent << 10) | ((x >> 13) & 0x3ff));
}

// A weight row with its values known as integers: value i = d[i / block] * scale[i / 16] * level[i]
// (Q8_0 has no sub-block scale: scale = 1).
struct QuantRow {
  std::vector<float> d;
  std::vector<int> scale, level;
  std::vector<uint8_t> bytes;
  double value(int64_t i, int64_t block) const { return (double)d[i / block] * scale[i / 16] * level[i]; }
};

// A random f16 scale: mantissa with 4 bits, exponent in a narrow range, so f16_bits is exact.
float random_scale(std::mt19937& rng, float base) {
  std::uniform_int_distribution<int> mant(8, 15), expo(-3, 3);
  return std::ldexp((float)mant(rng) / 8.0f, expo(rng)) * base;
}

void put_f16(uint8_t* p, float f) {
  const uint16_t h = f16_bits(f);
  std::memcpy(p, &h, 2);
}

QuantRow encode_q8_0(int64_t k, std::mt19937& rng, int max_level) {
  QuantRow r;
  std::uniform_int_distribution<int> lvl(-max_level - 1, max_level);
  r.scale.assign(k / 16, 1);
  r.bytes.assign(k / 32 * 34, 0);
  for (int64_t b = 0; b < k / 32; ++b) {
    r.d.push_back(random_scale(rng, 1.0f / 64));
    put_f16(&r.bytes[b * 34], r.d.back());
    for (int j = 0; j < 32; ++j) {
      r.level.push_back(std::max(-128, lvl(rng)));
      r.bytes[b * 34 + 2 + j] = (uint8_t)(int8_t)r.level.back();
    }
  }
  return r;
}

// Q6_K: for value i = 128h + 32k + l, code = level + 32; bits 0..3 go to ql[64h + 32(k % 2) + l]
// (low nibble for k < 2, high nibble otherwise), bits 4..5 to qh[32h + l] at bit 2k.
QuantRow encode_q6_k(int64_t k, std::mt19937& rng, int max_scale) {
  QuantRow r;
  std::uniform_int_distribution<int> lvl(-32, 31), scl(-max_scale, max_scale);
  r.bytes.assign(k / 256 * 210, 0);
  for (int64_t b = 0; b < k / 256; ++b) {
    uint8_t* block = &r.bytes[b * 210];
    r.d.push_back(random_scale(rng, 1.0f / 1024));
    put_f16(block + 208, r.d.back());
    for (int s = 0; s < 16; ++s) {
      r.scale.push_back(scl(rng));
      block[192 + s] = (uint8_t)(int8_t)r.scale.back();
    }
    for (int i = 0; i < 256; ++i) {
      const int level = lvl(rng), code = level + 32;
      r.level.push_back(level);
      const int h = i / 128, kk = (i % 128) / 32, l = i % 32;
      block[64 * h + 32 * (kk % 2) + l] |= (uint8_t)((code & 15) << (kk < 2 ? 0 : 4));
      block[128 + 32 * h + l] |= (uint8_t)((code >> 4) << (2 * kk));
    }
  }
  return r;
}

// ---- activations -------------------------------------------------------------------------

std::vector<float> random_floats(int64_t n, std::mt19937& rng, float sigma = 1.0f) {
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}

// The dequantized activation value i of a token in the head's format.
double act_value(HeadType type, const std::vector<uint8_t>& acts, int64_t i) {
  if (type == HeadType::Q8_0) {
    const auto* a = reinterpret_cast<const HeadActQ8_0*>(acts.data()) + i / 32;
    return (double)a->d * a->q[i % 32];
  }
  const auto* a = reinterpret_cast<const HeadActQ8K*>(acts.data()) + i / 256;
  return (double)a->d * a->q[i % 256];
}

TEST(HeadActs, QuantizerFollowsItsRule) {
  std::mt19937 rng(1);
  for (HeadType type : {HeadType::Q8_0, HeadType::Q6_K}) {
    const int64_t block = head_block_values(type), k = 2560;
    std::vector<float> x = random_floats(k, rng);
    for (int64_t i = 0; i < block; ++i) x[i] = 0.0f;  // an all-zero block
    std::vector<uint8_t> acts(head_act_row_bytes(type, k));
    head_quantize_acts(type, x.data(), k, acts.data());
    for (int64_t b = 0; b < k / block; ++b) {
      float amax = 0.0f;
      for (int64_t i = b * block; i < (b + 1) * block; ++i) amax = std::max(amax, std::fabs(x[i]));
      const float d = type == HeadType::Q8_0 ? reinterpret_cast<const HeadActQ8_0*>(acts.data())[b].d
                                             : reinterpret_cast<const HeadActQ8K*>(acts.data())[b].d;
      EXPECT_EQ(d, amax / 127.0f);
      for (int64_t i = b * block; i < (b + 1) * block; ++i) {
        const int q = (int)std::lround(act_value(type, acts, i) / (d == 0 ? 1.0 : d));
        const float expected = amax == 0 ? 0.0f : std::nearbyint(x[i] * (127.0f / amax));
        ASSERT_EQ(q, (int)expected) << "value " << i;
        ASSERT_LE(std::abs(q), 127);
      }
    }
    if (type == HeadType::Q6_K) {
      const auto* a = reinterpret_cast<const HeadActQ8K*>(acts.data());
      for (int64_t b = 0; b < k / 256; ++b)
        for (int j = 0; j < 16; ++j) {
          int sum = 0;
          for (int i = 0; i < 16; ++i) sum += a[b].q[16 * j + i];
          ASSERT_EQ(a[b].sums[j], sum);
        }
    }
  }
}

TEST(HeadActs, RoundsHalfToEvenAndHandlesSpecials) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;  // scale 1: q = nearbyint(x)
  x[1] = 0.5f, x[2] = 1.5f, x[3] = 2.5f, x[4] = -63.5f, x[5] = -127.0f;
  HeadActQ8_0 a;
  head_quantize_acts(HeadType::Q8_0, x.data(), 32, &a);
  EXPECT_EQ(a.d, 1.0f);
  EXPECT_EQ(a.q[0], 127);
  EXPECT_EQ(a.q[1], 0);
  EXPECT_EQ(a.q[2], 2);
  EXPECT_EQ(a.q[3], 2);
  EXPECT_EQ(a.q[4], -64);
  EXPECT_EQ(a.q[5], -127);
  x[6] = NAN;
  head_quantize_acts(HeadType::Q8_0, x.data(), 32, &a);
  EXPECT_TRUE(std::isnan(a.d));
  for (int8_t q : a.q) EXPECT_EQ(q, 0);
  x[6] = INFINITY;
  head_quantize_acts(HeadType::Q8_0, x.data(), 32, &a);
  EXPECT_TRUE(std::isnan(a.d));
  EXPECT_THROW(head_quantize_acts(HeadType::Q8_0, x.data(), 31, &a), Error);
  EXPECT_THROW(head_quantize_acts(HeadType::Q6_K, x.data(), 32, &a), Error);
  EXPECT_EQ(head_act_row_bytes(HeadType::Q6_K, 512), 2 * sizeof(HeadActQ8K));
  EXPECT_EQ(head_act_row_bytes(HeadType::Q8_0, 512), 16 * sizeof(HeadActQ8_0));
  EXPECT_EQ(head_act_row_bytes(HeadType::F16, 512), 512 * sizeof(float));
}

// ---- a head problem: rows of weights, n tokens of activations ---------------------------------

struct Problem {
  HeadType type;
  int64_t rows, k, n;
  std::vector<uint8_t> w;
  size_t row_bytes;
  std::vector<uint8_t> acts;  // n rows of act_stride bytes
  size_t act_stride;
  std::vector<double> reference;  // float64 dot of dequantized weights and activations, [t][m]
  std::vector<double> magnitude;  // sum of |terms|, [t][m]
};

// Weights from the independent encoder; activations quantized from random floats, or, with
// exact_scales, random small q with d = 1 so that every partial sum is an exact float.
Problem make_problem(HeadType type, int64_t rows, int64_t k, int64_t n, uint32_t seed, bool exact_scales = false) {
  std::mt19937 rng(seed);
  Problem p{type, rows, k, n, {}, 0, {}, 0, {}, {}};
  std::vector<std::vector<double>> wv(rows, std::vector<double>(k));
  for (int64_t m = 0; m < rows; ++m) {
    if (type == HeadType::F16) {
      const std::vector<float> row = random_floats(k, rng, 0.05f);
      for (int64_t i = 0; i < k; ++i) {
        // a multiple of 2^-13 below 0.25 in magnitude has at most 11 significant bits: f16-exact
        const float rounded = std::ldexp(std::nearbyint(std::ldexp(std::clamp(row[i], -0.24f, 0.24f), 13)), -13);
        wv[m][i] = rounded;
        uint16_t h = rounded == 0.0f ? 0 : f16_bits(rounded);
        p.w.insert(p.w.end(), (uint8_t*)&h, (uint8_t*)&h + 2);
      }
      continue;
    }
    const int64_t block = head_block_values(type);
    QuantRow r = type == HeadType::Q8_0 ? encode_q8_0(k, rng, exact_scales ? 15 : 127)
                                        : encode_q6_k(k, rng, exact_scales ? 4 : 127);
    if (exact_scales) {  // d = 1 in every weight block
      for (size_t b = 0; b < r.d.size(); ++b) {
        r.d[b] = 1.0f;
        put_f16(&r.bytes[b * (r.bytes.size() / r.d.size()) + (type == HeadType::Q8_0 ? 0 : 208)], 1.0f);
      }
    }
    for (int64_t i = 0; i < k; ++i) wv[m][i] = r.value(i, block);
    p.w.insert(p.w.end(), r.bytes.begin(), r.bytes.end());
  }
  p.row_bytes = p.w.size() / rows;
  p.act_stride = head_act_row_bytes(type, k) + 12;  // not a multiple of anything, on purpose
  p.acts.assign(n * p.act_stride, 0);
  std::vector<std::vector<double>> av(n, std::vector<double>(k));
  for (int64_t t = 0; t < n; ++t) {
    uint8_t* dst = &p.acts[t * p.act_stride];
    if (exact_scales && type != HeadType::F16) {
      std::uniform_int_distribution<int> small(-15, 15);
      std::vector<float> x(k);
      for (float& v : x) v = (float)small(rng);
      head_quantize_acts(type, x.data(), k, dst);
      const int64_t block = head_block_values(type);
      for (int64_t b = 0; b < k / block; ++b) {
        if (type == HeadType::Q8_0) {
          auto* a = reinterpret_cast<HeadActQ8_0*>(dst) + b;
          a->d = 1.0f;
          for (int j = 0; j < 32; ++j) a->q[j] = (int8_t)x[b * 32 + j];
        } else {
          auto* a = reinterpret_cast<HeadActQ8K*>(dst) + b;
          a->d = 1.0f;
          for (int j = 0; j < 256; ++j) a->q[j] = (int8_t)x[b * 256 + j];
          for (int s = 0; s < 16; ++s) {
            int sum = 0;
            for (int j = 0; j < 16; ++j) sum += a->q[16 * s + j];
            a->sums[s] = (int16_t)sum;
          }
        }
      }
    } else {
      const std::vector<float> x = random_floats(k, rng);
      head_quantize_acts(type, x.data(), k, dst);
    }
    std::vector<uint8_t> copy(dst, dst + head_act_row_bytes(type, k));
    for (int64_t i = 0; i < k; ++i)
      av[t][i] = type == HeadType::F16 ? (double)reinterpret_cast<const float*>(copy.data())[i] : act_value(type, copy, i);
  }
  for (int64_t t = 0; t < n; ++t)
    for (int64_t m = 0; m < rows; ++m) {
      double sum = 0, magnitude = 0;
      for (int64_t i = 0; i < k; ++i) {
        sum += wv[m][i] * av[t][i];
        magnitude += std::fabs(wv[m][i] * av[t][i]);
      }
      p.reference.push_back(sum);
      p.magnitude.push_back(magnitude);
    }
  return p;
}

// Runs the kernel over rows m0..m1 of the problem; y outside those rows keeps a sentinel.
std::vector<float> run(const HeadKernels& kn, const Problem& p, int64_t m0, int64_t m1) {
  const size_t y_stride = (size_t)p.rows + 3;
  std::vector<float> y(p.n * y_stride, -12345.0f);
  const HeadGemmArgs a{p.w.data(), p.row_bytes, p.k, p.acts.data(), p.act_stride, p.n, y.data(), y_stride, m0, m1};
  switch (p.type) {
    case HeadType::F16: kn.gemm_f16(a); break;
    case HeadType::Q8_0: kn.gemm_q8_0(a); break;
    case HeadType::Q6_K: kn.gemm_q6_k(a); break;
  }
  return y;
}

const char* type_label(HeadType t) { return t == HeadType::F16 ? "F16" : t == HeadType::Q8_0 ? "Q8_0" : "Q6_K"; }

std::vector<const HeadKernels*> head_backends() {
  std::vector<const HeadKernels*> out;
  for (Isa isa : available_isas()) {
    const HeadKernels* kn = head_kernels_for(isa);
    EXPECT_NE(kn, nullptr) << isa_name(isa);
    if (kn && std::find(out.begin(), out.end(), kn) == out.end()) out.push_back(kn);
  }
  return out;
}

constexpr HeadType kTypes[] = {HeadType::F16, HeadType::Q8_0, HeadType::Q6_K};

TEST(HeadGemm, ScalarMatchesFloat64Dequantization) {
  const HeadKernels& scalar = *head_kernels_for(Isa::Scalar);
  for (HeadType type : kTypes)
    for (int64_t k : {256, 512, 2560}) {
      SCOPED_TRACE(std::string(type_label(type)) + " K=" + std::to_string(k));
      const Problem p = make_problem(type, 5, k, 3, 7 + (uint32_t)k);
      const std::vector<float> y = run(scalar, p, 0, p.rows);
      for (int64_t t = 0; t < p.n; ++t)
        for (int64_t m = 0; m < p.rows; ++m) {
          const size_t i = t * p.rows + m;
          ASSERT_NEAR(y[t * (p.rows + 3) + m], p.reference[i], 1e-6 * p.magnitude[i] + 1e-30) << "t=" << t << " m=" << m;
        }
    }
}

TEST(HeadGemm, BackendsMatchScalar) {
  const HeadKernels& scalar = *head_kernels_for(Isa::Scalar);
  for (const HeadKernels* kn : head_backends())
    for (HeadType type : kTypes)
      for (int64_t k : {77, 256, 512, 2560, 2563})
        for (int64_t n : {1, 2, 3, 4, 5, 7, 8, 16}) {
          if (k % head_block_values(type) != 0) continue;  // F16 rows of any length
          SCOPED_TRACE(std::string(isa_name(kn->isa)) + " " + type_label(type) + " K=" + std::to_string(k) +
                       " n=" + std::to_string(n));
          const int64_t rows = 13, m0 = 2, m1 = 11;  // odd row counts, a sub-range
          const Problem p = make_problem(type, rows, k, n, (uint32_t)(k * 31 + n));
          const std::vector<float> expected = run(scalar, p, m0, m1), y = run(*kn, p, m0, m1);
          for (int64_t t = 0; t < n; ++t)
            for (int64_t m = 0; m < rows + 3; ++m) {
              const size_t at = t * (rows + 3) + m;
              if (m < m0 || m >= m1) {
                ASSERT_EQ(y[at], -12345.0f) << "wrote outside its rows: t=" << t << " m=" << m;
                continue;
              }
              ASSERT_NEAR(y[at], expected[at], std::ldexp(p.magnitude[t * rows + m], -18)) << "t=" << t << " m=" << m;
            }
        }
}

// A token's outputs are bit-identical whether it is computed alone, in any sub-batch or in the
// whole batch, over any row range (the engine's batch invariance rests on this).
TEST(HeadGemm, TokenResultsDoNotDependOnTheBatch) {
  for (const HeadKernels* kn : head_backends())
    for (HeadType type : kTypes)
      for (int64_t k : {256, 2560, 2563}) {
        if (k % head_block_values(type) != 0) continue;
        SCOPED_TRACE(std::string(isa_name(kn->isa)) + " " + type_label(type) + " K=" + std::to_string(k));
        const int64_t rows = 37, n = 16;
        const Problem p = make_problem(type, rows, k, n, (uint32_t)(k * 7 + 1));
        const std::vector<float> whole = run(*kn, p, 0, rows);
        for (int64_t first = 0; first < n; first += 3)
          for (int64_t count : {1, 2, 3, 5}) {
            if (first + count > n) continue;
            const int64_t m0 = first % 5, m1 = rows - first % 3;
            std::vector<float> y((size_t)(count * rows), -1.0f);
            const HeadGemmArgs a{p.w.data(), p.row_bytes, p.k, p.acts.data() + first * p.act_stride, p.act_stride,
                                 count, y.data(), (size_t)rows, m0, m1};
            switch (type) {
              case HeadType::F16: kn->gemm_f16(a); break;
              case HeadType::Q8_0: kn->gemm_q8_0(a); break;
              case HeadType::Q6_K: kn->gemm_q6_k(a); break;
            }
            for (int64_t t = 0; t < count; ++t)
              for (int64_t m = m0; m < m1; ++m) {
                const float got = y[(size_t)(t * rows + m)], want = whole[(size_t)((first + t) * (rows + 3) + m)];
                ASSERT_EQ(std::memcmp(&got, &want, sizeof(float)), 0)
                    << "token " << first + t << " row " << m << " in a batch of " << count << ": " << got << " vs " << want;
              }
          }
      }
}

// With unit scales and small values every partial sum is an exactly representable integer, so any
// difference would be an integer error, not rounding: backends must then agree bit for bit.
TEST(HeadGemm, IntegerPartsAreExact) {
  const HeadKernels& scalar = *head_kernels_for(Isa::Scalar);
  for (const HeadKernels* kn : head_backends())
    for (HeadType type : {HeadType::Q8_0, HeadType::Q6_K})
      for (int64_t k : {256, 2560})
        for (int64_t n : {1, 4, 5}) {
          SCOPED_TRACE(std::string(isa_name(kn->isa)) + " " + type_label(type) + " K=" + std::to_string(k) +
                       " n=" + std::to_string(n));
          const Problem p = make_problem(type, 7, k, n, (uint32_t)(k + n), /*exact_scales=*/true);
          const std::vector<float> expected = run(scalar, p, 0, p.rows), y = run(*kn, p, 0, p.rows);
          for (int64_t t = 0; t < n; ++t)
            for (int64_t m = 0; m < p.rows; ++m) {
              ASSERT_EQ(y[t * (p.rows + 3) + m], expected[t * (p.rows + 3) + m]) << "t=" << t << " m=" << m;
              ASSERT_EQ(expected[t * (p.rows + 3) + m], p.reference[t * p.rows + m]);
            }
        }
}

TEST(HeadGemm, DispatchFollowsMainTable) {
  const HeadKernels& chosen = head_kernels();
  EXPECT_EQ(&chosen, head_kernels_for(kernels().isa));
  for (Isa isa : available_isas()) {
    const HeadKernels* kn = head_kernels_for(isa);
    ASSERT_NE(kn, nullptr);
    EXPECT_TRUE(kn->gemm_f16 && kn->gemm_q8_0 && kn->gemm_q6_k);
  }
}

}  // namespace
}  // namespace bitnet
