// Kernel tests: the scalar reference against hand-computed values and a float64 evaluation of the
// model math, and every backend this CPU runs against the scalar reference (bit-exact for integer
// and conversion kernels, within a stated tolerance for float dot products).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "bitnet/kernels.h"

namespace bitnet {
namespace {

const Kernels& scalar_kernels() { return *kernels_for(Isa::Scalar); }

// Every backend the CPU runs, announced on stdout so the log says which ones were checked.
std::vector<const Kernels*> backends_under_test() {
  std::vector<const Kernels*> out;
  std::string names;
  for (Isa isa : available_isas()) {
    out.push_back(kernels_for(isa));
    names += std::string(names.empty() ? "" : ", ") + isa_name(isa);
  }
  static std::string announced_for;
  const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  if (test != announced_for) std::cout << "[ checking ISAs: " << names << " ]\n";
  announced_for = test;
  return out;
}

uint32_t bits_of(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  return x;
}

float float_of(uint32_t x) {
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

// ---- dispatch ------------------------------------------------------------------------------

TEST(KernelDispatch, TablesAreCompleteAndNamed) {
  const std::vector<Isa> isas = available_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), Isa::Scalar);
  for (Isa isa : isas) {
    SCOPED_TRACE(isa_name(isa));
    const Kernels* k = kernels_for(isa);
    ASSERT_NE(k, nullptr);
    EXPECT_EQ(k->isa, isa);
    EXPECT_TRUE(k->quantize_row_i8 && k->ternary_gemm && k->tq1_gemm && k->dot_f32 && k->dot_f16_f32 &&
                k->fp32_to_fp16_row && k->fp16_to_fp32_row && k->axpy_f16);
  }
  std::cout << "[ features: " << cpu_features_line() << " ]\n";
  std::cout << "[ selected: " << isa_name(kernels().isa) << " ]\n";
}

TEST(KernelDispatch, SelectsBestOrRequested) {
  const char* wanted = std::getenv("BITNET_ISA");
  std::string requested = wanted ? wanted : "";
  const std::vector<Isa> isas = available_isas();
  Isa expected = isas.back();
  for (Isa isa : isas)
    if (requested == isa_name(isa)) expected = isa;
  EXPECT_EQ(kernels().isa, expected) << "selected " << isa_name(kernels().isa);
}

TEST(KernelDispatch, FeatureLineListsEveryFlag) {
  const std::string line = cpu_features_line();
  for (const char* flag : {"AVX = ", "AVX2 = ", "AVX512 = ", "AVX512_VNNI = ", "AVX_VNNI = ", "F16C = ",
                           "FMA = ", "NEON = ", "ARM_DOTPROD = "})
    EXPECT_NE(line.find(flag), std::string::npos) << flag << " missing in " << line;
#if defined(__aarch64__)
  EXPECT_NE(line.find("NEON = 1"), std::string::npos);
#endif
}

// ---- packing ---------------------------------------------------------------------------------

// The bandwidth probe's read must see every word, whatever the length's remainder.
TEST(KernelDispatch, ReadProbeSumsEveryWord) {
  std::vector<uint64_t> words(1000);
  for (size_t i = 0; i < words.size(); ++i) words[i] = (uint64_t)i * 0x9E3779B97F4A7C15ull;
  for (int64_t n : {0, 1, 3, 15, 16, 17, 31, 64, 999, 1000}) {
    uint64_t expected = 0;
    for (int64_t i = 0; i < n; ++i) expected += words[i];
    EXPECT_EQ(read_probe_sum(words.data(), n), expected) << "n = " << n;
  }
}

TEST(PackTernaryRow, MatchesHandComputedBytes) {
  // Block of 128: value j sits in byte j % 32 at bit 6 - 2 * (j / 32), as code t + 1.
  std::vector<int8_t> t(130, 0);
  t[0] = 1;     // byte 0, bits 7..6: code 2
  t[32] = -1;   // byte 0, bits 5..4: code 0
  t[64] = 1;    // byte 0, bits 3..2: code 2
  t[96] = -1;   // byte 0, bits 1..0: code 0
  t[33] = 1;    // byte 1, bits 5..4: code 2
  t[127] = -1;  // byte 31, bits 1..0: code 0
  t[128] = 1;   // second block, byte 32, bits 7..6
  t[129] = -1;  // second block, byte 33, bits 7..6
  ASSERT_EQ(ternary_row_bytes(130), 64u);
  std::vector<uint8_t> out(64, 0xAA);
  pack_ternary_row(t.data(), 130, out.data());
  std::vector<uint8_t> expected(64, 0x55);  // all codes 1 (t = 0, also the padding)
  expected[0] = 0b10'00'10'00;
  expected[1] = 0b01'10'01'01;
  expected[31] = 0b01'01'01'00;
  expected[32] = 0b10'01'01'01;
  expected[33] = 0b00'01'01'01;
  EXPECT_EQ(out, expected);
}

TEST(PackTernaryRow, SizesAndStrides) {
  EXPECT_EQ(ternary_padded_cols(1), 128);
  EXPECT_EQ(ternary_padded_cols(128), 128);
  EXPECT_EQ(ternary_padded_cols(129), 256);
  EXPECT_EQ(ternary_row_bytes(2560), 640u);
  EXPECT_EQ(ternary_row_stride(2560), 640u);
  EXPECT_EQ(ternary_row_stride(300), 128u);  // 96 bytes rounded up to 64
  EXPECT_EQ(ternary_row_stride(6912), 1728u);
}

// ---- quantize_row_i8 -------------------------------------------------------------------------

struct Quantized {
  std::vector<int8_t> q;
  float scale = 0;
  int32_t sum = 0;
};

Quantized quantize_with(const Kernels& k, const std::vector<float>& x, int64_t kp) {
  Quantized r;
  r.q.assign((size_t)kp + 16, 0x5A);  // guard bytes past kp must stay untouched
  k.quantize_row_i8(x.data(), (int64_t)x.size(), kp, r.q.data(), &r.scale, &r.sum);
  return r;
}

void expect_same_quantization(const std::vector<float>& x, int64_t kp) {
  const Quantized ref = quantize_with(scalar_kernels(), x, kp);
  for (int64_t i = (int64_t)x.size(); i < kp; ++i) ASSERT_EQ(ref.q[i], 0) << "padding at " << i;
  for (int64_t i = kp; i < kp + 16; ++i) ASSERT_EQ(ref.q[i], 0x5A) << "write past kp at " << i;
  for (const Kernels* k : backends_under_test()) {
    SCOPED_TRACE(isa_name(k->isa));
    const Quantized got = quantize_with(*k, x, kp);
    EXPECT_EQ(bits_of(got.scale), bits_of(ref.scale));
    EXPECT_EQ(got.sum, ref.sum);
    EXPECT_EQ(got.q, ref.q);
  }
}

TEST(QuantizeRowI8, ScalarFollowsTheDefinition) {
  // amax = 127 gives sigma = 1: ties round to even, and the scale is exactly 1.
  const std::vector<float> x = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.49f, -126.6f, 0.0f};
  const Quantized r = quantize_with(scalar_kernels(), x, 128);
  const std::vector<int8_t> expected = {127, 0, 2, 2, 0, -2, -2, 3, -127, 0};
  EXPECT_EQ(std::vector<int8_t>(r.q.begin(), r.q.begin() + 10), expected);
  EXPECT_EQ(r.scale, 1.0f);
  EXPECT_EQ(r.sum, 127 + 2 + 2 - 2 - 2 + 3 - 127);
}

TEST(QuantizeRowI8, ScalarAllZeroRowUsesTheFloor) {
  const std::vector<float> x(300, 0.0f);
  const Quantized r = quantize_with(scalar_kernels(), x, 384);
  EXPECT_EQ(r.sum, 0);
  EXPECT_EQ(r.scale, 1.0f / (127.0f / 1e-5f));
  for (int i = 0; i < 384; ++i) ASSERT_EQ(r.q[i], 0);
}

TEST(QuantizeRowI8, BackendsMatchScalarOnRandomRows) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int64_t k : {1, 7, 31, 32, 33, 127, 128, 129, 255, 300, 1000, 2560, 6912}) {
    SCOPED_TRACE("k = " + std::to_string(k));
    std::vector<float> x(k);
    for (float& v : x) v = normal(rng);
    expect_same_quantization(x, ternary_padded_cols(k));
    expect_same_quantization(x, k);      // no padding
    expect_same_quantization(x, k + 3);  // padding that is not a multiple of anything
  }
}

TEST(QuantizeRowI8, NaNQuantizesToZeroOnEveryBackend) {
  // NaN activations (a NaN weight in a norm, say) must not reach an undefined float -> int8 cast:
  // each NaN becomes 0, and the rest quantizes as if the NaNs were zeros.
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (int64_t k : {1, 9, 40, 300}) {
    SCOPED_TRACE("k = " + std::to_string(k));
    std::vector<float> x(k), zeroed;
    for (float& v : x) v = normal(rng);
    for (int64_t i = 0; i < k; i += 7) x[(size_t)i] = i % 2 ? -NAN : NAN;  // both signs, vector body and tail
    zeroed = x;
    for (float& v : zeroed) v = v == v ? v : 0.0f;
    const int64_t kp = ternary_padded_cols(k);
    const Quantized want = quantize_with(scalar_kernels(), zeroed, kp);
    for (const Kernels* kern : backends_under_test()) {
      SCOPED_TRACE(isa_name(kern->isa));
      const Quantized got = quantize_with(*kern, x, kp);
      EXPECT_EQ(got.q, want.q);
      EXPECT_EQ(got.sum, want.sum);
      EXPECT_EQ(bits_of(got.scale), bits_of(want.scale));
    }
  }
}

TEST(QuantizeRowI8, BackendsMatchScalarOnEdgeRows) {
  std::vector<std::vector<float>> rows;
  rows.push_back(std::vector<float>(257, 0.0f));         // all zero
  rows.push_back(std::vector<float>(257, -0.0f));        // negative zeros
  std::vector<float> huge(257, 1.0f);
  huge[100] = 3.0e38f;                                   // one huge value, the rest round to 0
  rows.push_back(huge);
  std::vector<float> ties(254);                          // amax 127: x * sigma is x, many exact .5
  for (size_t i = 0; i < ties.size(); ++i) ties[i] = -127.0f + 0.5f * (float)i;
  ties.push_back(127.0f);
  rows.push_back(ties);
  std::vector<float> denormals(100);
  for (size_t i = 0; i < denormals.size(); ++i) denormals[i] = float_of((uint32_t)(i * 977 + 1)) * (i % 2 ? -1.f : 1.f);
  rows.push_back(denormals);                             // all below the 1e-5 floor: all q are 0
  std::vector<float> mixed = denormals;
  mixed[3] = 1e-5f;
  mixed[50] = -2e-5f;
  rows.push_back(mixed);
  std::vector<float> extremes = {-1.0f, 1.0f, -0.99f, 0.999f};  // -1 -> -127, never -128
  rows.push_back(extremes);
  for (size_t r = 0; r < rows.size(); ++r) {
    SCOPED_TRACE("edge row " + std::to_string(r));
    expect_same_quantization(rows[r], ternary_padded_cols((int64_t)rows[r].size()));
  }
  const Quantized z = quantize_with(scalar_kernels(), rows[4], 128);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(z.q[i], 0);
  const Quantized e = quantize_with(scalar_kernels(), rows[6], 128);
  EXPECT_EQ(e.q[0], -127);
  EXPECT_EQ(e.q[1], 127);
}

// ---- ternary_gemm ----------------------------------------------------------------------------

// A random problem in the runtime layout, with the unpacked ternary values kept for references.
struct TernaryProblem {
  int64_t m = 0, k = 0, kp = 0, n_tokens = 0;
  std::vector<int8_t> t;       // m x k
  std::vector<uint8_t> w;      // m rows at ternary_row_stride(k)
  std::vector<float> row_scale;
  std::vector<int8_t> q;       // n_tokens x q_stride, zero padded
  size_t q_stride = 0;
  std::vector<float> act_scale;
  std::vector<int32_t> act_sum;

  TernaryProblem(int64_t m_, int64_t k_, int64_t n_, std::mt19937& rng, int8_t fixed_t = 2, int fixed_q = 999)
      : m(m_), k(k_), kp(ternary_padded_cols(k_)), n_tokens(n_) {
    std::uniform_int_distribution<int> trit(-1, 1), byte(-128, 127);
    std::uniform_real_distribution<float> scale(0.01f, 2.0f);
    t.resize(m * k);
    for (int8_t& v : t) v = fixed_t != 2 ? fixed_t : (int8_t)trit(rng);
    const size_t stride = ternary_row_stride(k);
    w.assign(m * stride, 0xFF);  // bytes between rows must not matter
    for (int64_t r = 0; r < m; ++r) pack_ternary_row(&t[r * k], k, &w[r * stride]);
    row_scale.resize(m);
    for (float& s : row_scale) s = scale(rng);
    q_stride = (size_t)kp + 64;  // a stride that is not kp
    q.assign(n_tokens * q_stride, 0);
    act_scale.resize(n_tokens);
    act_sum.assign(n_tokens, 0);
    for (int64_t n = 0; n < n_tokens; ++n) {
      for (int64_t i = 0; i < k; ++i) {
        const int v = fixed_q != 999 ? fixed_q : byte(rng);
        q[n * q_stride + i] = (int8_t)v;
        act_sum[n] += v;
      }
      act_scale[n] = scale(rng) / 127.0f;
    }
  }

  // Runs rows m0..m1 and returns the y buffer (y_stride m + 5; rows outside m0..m1 hold a sentinel).
  std::vector<float> run(const Kernels& kern, int64_t m0, int64_t m1, size_t* y_stride) const {
    *y_stride = (size_t)m + 5;
    std::vector<float> y(n_tokens * *y_stride, -7.25f);
    TernaryGemmArgs a{w.data(), ternary_row_stride(k), row_scale.data(), kp, q.data(), q_stride,
                      act_scale.data(), act_sum.data(), n_tokens, y.data(), *y_stride, m0, m1};
    kern.ternary_gemm(a);
    return y;
  }
};

void expect_bit_exact_gemm(const TernaryProblem& p, int64_t m0, int64_t m1,
                           const std::vector<const Kernels*>& backends) {
  size_t y_stride;
  const std::vector<float> ref = p.run(scalar_kernels(), m0, m1, &y_stride);
  for (const Kernels* kern : backends) {
    SCOPED_TRACE(std::string(isa_name(kern->isa)) + " M=" + std::to_string(p.m) + " K=" + std::to_string(p.k) +
                 " N=" + std::to_string(p.n_tokens) + " rows " + std::to_string(m0) + ".." + std::to_string(m1));
    const std::vector<float> got = p.run(*kern, m0, m1, &y_stride);
    for (size_t i = 0; i < ref.size(); ++i)
      if (bits_of(got[i]) != bits_of(ref[i])) {
        ADD_FAILURE() << "token " << i / y_stride << " row " << i % y_stride << ": " << got[i] << " vs scalar "
                      << ref[i];
        return;
      }
  }
}

TEST(TernaryGemm, BackendsBitExactOnOddShapes) {
  const std::vector<const Kernels*> backends = backends_under_test();
  std::mt19937 rng(42);
  for (int64_t k : {1, 31, 127, 128, 129, 255, 300, 1000, 2560, 6912})
    for (int64_t m : {1, 3, 5, 17, 67})
      for (int64_t n : {1, 2, 3, 4, 5, 7, 8, 9, 16, 17}) {
        const TernaryProblem p(m, k, n, rng);
        expect_bit_exact_gemm(p, 0, m, backends);
        if (m > 2) expect_bit_exact_gemm(p, 1, m - 1, backends);  // a sub-range not starting at 0
        if (m > 5) expect_bit_exact_gemm(p, m / 3, m / 3 + 5, backends);
      }
}

// The engine's token blocks (up to 64 tokens) over several row and token tiles with remainders,
// an odd block count (K = 384) and row ranges that start inside a tile.
TEST(TernaryGemm, BackendsBitExactOnTokenBlocks) {
  const std::vector<const Kernels*> backends = backends_under_test();
  std::mt19937 rng(11);
  for (int64_t k : {384, 2560})
    for (int64_t n : {6, 31, 64, 65}) {
      const TernaryProblem p(37, k, n, rng);
      expect_bit_exact_gemm(p, 0, 37, backends);
      expect_bit_exact_gemm(p, 3, 30, backends);
    }
}

TEST(TernaryGemm, ScalarWritesOnlyItsRows) {
  std::mt19937 rng(7);
  const TernaryProblem p(17, 300, 3, rng);
  for (const Kernels* kern : backends_under_test()) {
    SCOPED_TRACE(isa_name(kern->isa));
    size_t y_stride;
    const std::vector<float> y = p.run(*kern, 5, 11, &y_stride);
    for (int64_t n = 0; n < 3; ++n)
      for (size_t r = 0; r < y_stride; ++r)
        if (r < 5 || r >= 11) EXPECT_EQ(y[n * y_stride + r], -7.25f) << "token " << n << " row " << r;
  }
}

TEST(TernaryGemm, BackendsBitExactAtExtremeSums) {
  // All +1 weights times all -128 (or 127) activations: the largest sums a row can reach.
  const std::vector<const Kernels*> backends = backends_under_test();
  std::mt19937 rng(3);
  for (int8_t t : {-1, 1})
    for (int qv : {-128, 127}) {
      const TernaryProblem p(9, 6912, 5, rng, t, qv);
      expect_bit_exact_gemm(p, 0, 9, backends);
      size_t y_stride;
      const std::vector<float> y = p.run(scalar_kernels(), 0, 9, &y_stride);
      const float expected = ((float)(t * qv * 6912) * p.row_scale[2]) * p.act_scale[1];
      EXPECT_EQ(y[1 * y_stride + 2], expected);
    }
}

// The scalar ternary_gemm after scalar quantize_row_i8 against a float64 evaluation of the
// W1.58A8 formula computed from its definition.
TEST(TernaryGemm, ScalarMatchesFloat64Formula) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const Kernels& k = scalar_kernels();
  for (int64_t K : {1, 127, 300, 2560}) {
    SCOPED_TRACE("K = " + std::to_string(K));
    const int64_t M = 13, N = 3;
    TernaryProblem p(M, K, N, rng);  // weights, scales and strides; activations are redone below
    std::vector<std::vector<float>> x(N, std::vector<float>(K));
    for (auto& row : x)
      for (float& v : row) v = normal(rng) * 4.0f;
    x[1][K / 2] = 50.0f;  // an outlier, as real activations have
    for (int64_t n = 0; n < N; ++n)
      k.quantize_row_i8(x[n].data(), K, p.kp, &p.q[n * p.q_stride], &p.act_scale[n], &p.act_sum[n]);
    size_t y_stride;
    const std::vector<float> y = p.run(k, 0, M, &y_stride);
    for (int64_t n = 0; n < N; ++n) {
      double amax = 0;
      for (float v : x[n]) amax = std::max(amax, std::fabs((double)v));
      const double sigma = 127.0 / std::max(amax, 1e-5);
      std::vector<double> qd(K);
      int near_ties = 0;  // float and double products may round a near-tie differently
      for (int64_t i = 0; i < K; ++i) {
        const double v = x[n][i] * sigma;
        qd[i] = std::clamp(std::nearbyint(v), -128.0, 127.0);
        if (std::fabs(std::fabs(v - std::trunc(v)) - 0.5) < 1e-4) ++near_ties;
      }
      for (int64_t m = 0; m < M; ++m) {
        double dot = 0, l1 = 0;
        for (int64_t i = 0; i < K; ++i) {
          dot += p.t[m * K + i] * qd[i];
          l1 += std::fabs(p.t[m * K + i] * qd[i]);
        }
        const double s = p.row_scale[m];
        const double expected = dot * s / sigma;
        const double tolerance = 1e-5 * std::fabs(expected) + near_ties * s / sigma + 1e-6 * l1 * s / sigma;
        EXPECT_NEAR(y[n * y_stride + m], expected, tolerance) << "token " << n << " row " << m;
      }
    }
  }
}

// ---- tq1_gemm --------------------------------------------------------------------------------

// One TQ1_0 block from 256 codes (t + 1), written from the format's definition: byte j of a
// section holds the section's values first + j + n * bytes (n = 0 most significant digit) as
// ceil(D * 256 / 243); the qh section's four digits are followed by a zero digit.
void encode_tq1_block(const int8_t* t, uint16_t d_bits, uint8_t* out) {
  struct Section { int first_byte, bytes, first_value, digits; };
  for (const Section s : {Section{0, 32, 0, 5}, Section{32, 16, 160, 5}, Section{48, 4, 240, 4}})
    for (int j = 0; j < s.bytes; ++j) {
      int number = 0;
      for (int n = 0; n < 5; ++n) number = number * 3 + (n < s.digits ? t[s.first_value + j + n * s.bytes] + 1 : 0);
      out[s.first_byte + j] = (uint8_t)((number * 256 + 242) / 243);
    }
  std::memcpy(out + 52, &d_bits, 2);
}

float half_to_float(uint16_t bits) {
  float f;
  scalar_kernels().fp16_to_fp32_row(&bits, &f, 1);
  return f;
}

// A TernaryProblem (K a multiple of 256) whose weights are also written as TQ1_0 rows, each with
// its own block scale d; rows are row_bytes apart with no padding, as in a file.
struct Tq1Problem : TernaryProblem {
  std::vector<uint8_t> tq1;
  std::vector<uint16_t> d_bits;
  float scale_mul = 1.f;

  Tq1Problem(int64_t m_, int64_t k_, int64_t n_, std::mt19937& rng, int8_t fixed_t = 2, int fixed_q = 999)
      : TernaryProblem(m_, k_, n_, rng, fixed_t, fixed_q) {
    std::uniform_int_distribution<int> bits(0x2800, 0x3FFF);  // 2^-5 .. 2
    const size_t row_bytes = tq1_row_bytes(k);
    tq1.resize(m * row_bytes);  // exact size, as at the end of a mapping: an overread shows under the sanitizers
    d_bits.resize(m);
    for (int64_t r = 0; r < m; ++r) {
      d_bits[r] = (uint16_t)bits(rng);
      row_scale[r] = half_to_float(d_bits[r]) * scale_mul;
      for (int64_t b = 0; b < k / kTq1Block; ++b)
        encode_tq1_block(&t[r * k + b * kTq1Block], d_bits[r], &tq1[r * row_bytes + b * kTq1BlockBytes]);
    }
  }

  std::vector<float> run_tq1(const Kernels& kern, int64_t m0, int64_t m1, size_t* y_stride, const float* scales = nullptr,
                             int* mismatch = nullptr) const {
    *y_stride = (size_t)m + 5;
    std::vector<float> y(n_tokens * *y_stride, -7.25f);
    TernaryGemmArgs a{tq1.data(), tq1_row_bytes(k), scales, kp, q.data(), q_stride,
                      act_scale.data(), act_sum.data(), n_tokens, y.data(), *y_stride, m0, m1, scale_mul, mismatch};
    kern.tq1_gemm(a);
    return y;
  }
};

void expect_same_bits(const std::vector<float>& got, const std::vector<float>& ref, size_t y_stride, const std::string& what) {
  for (size_t i = 0; i < ref.size(); ++i)
    if (bits_of(got[i]) != bits_of(ref[i])) {
      ADD_FAILURE() << what << ": token " << i / y_stride << " row " << i % y_stride << ": " << got[i] << " vs " << ref[i];
      return;
    }
}

// The scalar TQ1_0 product equals the scalar product of the same values in the runtime layout
// (an independent decoding path), and every backend equals the scalar one bit for bit, with the
// row scales from the blocks and given explicitly.
TEST(Tq1Gemm, BackendsBitExactOnOddShapes) {
  const std::vector<const Kernels*> backends = backends_under_test();
  std::mt19937 rng(17);
  // K in blocks: 1, 2, 3, 5, 7, 8, 10, 15, 27 (the SIMD backends take groups of 8 blocks: every
  // length of a last group, an exact group, full groups and a tail).
  for (int64_t k : {256, 512, 768, 1280, 1792, 2048, 2560, 3840, 6912})
    for (int64_t m : {1, 3, 5, 17, 37})
      for (int64_t n : {1, 2, 3, 5, 8, 17, 65}) {
        if (k > 2560 && n > 8) continue;  // the long rows are covered at small batches
        const Tq1Problem p(m, k, n, rng);
        for (auto [m0, m1] : {std::pair<int64_t, int64_t>{0, m}, {m > 2 ? 1 : 0, m > 2 ? m - 1 : m}}) {
          const std::string where = "M=" + std::to_string(m) + " K=" + std::to_string(k) + " N=" + std::to_string(n) +
                                    " rows " + std::to_string(m0) + ".." + std::to_string(m1);
          size_t y_stride;
          const std::vector<float> ref = p.run_tq1(scalar_kernels(), m0, m1, &y_stride);
          expect_same_bits(ref, p.run(scalar_kernels(), m0, m1, &y_stride), y_stride, "scalar TQ1_0 vs runtime layout " + where);
          for (const Kernels* kern : backends) {
            const std::string name = std::string(isa_name(kern->isa)) + " " + where;
            expect_same_bits(p.run_tq1(*kern, m0, m1, &y_stride), ref, y_stride, name);
            expect_same_bits(p.run_tq1(*kern, m0, m1, &y_stride, p.row_scale.data()), ref, y_stride, name + " given scales");
          }
        }
      }
}

TEST(Tq1Gemm, BackendsBitExactAtExtremeSums) {
  const std::vector<const Kernels*> backends = backends_under_test();
  std::mt19937 rng(5);
  for (int8_t t : {-1, 1})
    for (int qv : {-128, 127}) {
      const Tq1Problem p(6, 45568, 2, rng, t, qv);  // the 100B shape's longest row
      size_t y_stride;
      const std::vector<float> ref = p.run_tq1(scalar_kernels(), 0, 6, &y_stride);
      const float expected = ((float)((int64_t)t * qv * 45568) * p.row_scale[2]) * p.act_scale[1];
      EXPECT_EQ(ref[1 * y_stride + 2], expected);
      for (const Kernels* kern : backends)
        for (int64_t n : {1, 2}) {
          Tq1Problem one = p;
          one.n_tokens = n;
          std::vector<float> want(ref.begin(), ref.begin() + n * y_stride);
          expect_same_bits(one.run_tq1(*kern, 0, 6, &y_stride), want, y_stride, isa_name(kern->isa));
        }
    }
}

// Code bytes no encoder writes (the format has 243 of the 256 values) still have digits by the
// definition ((x * 3^n) mod 256) * 3 >> 8; every backend reads them as the scalar one does.
TEST(Tq1Gemm, BackendsBitExactOnArbitraryBytes) {
  std::mt19937 rng(29);
  for (int64_t k : {768, 2560}) {
    Tq1Problem p(7, k, 5, rng);
    std::uniform_int_distribution<int> byte(0, 255);
    for (int64_t r = 0; r < p.m; ++r)
      for (int64_t b = 0; b < k / kTq1Block; ++b)
        for (int i = 0; i < 52; ++i) p.tq1[r * tq1_row_bytes(k) + b * kTq1BlockBytes + i] = (uint8_t)byte(rng);
    for (int64_t n : {1, 5}) {
      Tq1Problem one = p;
      one.n_tokens = n;
      size_t y_stride;
      const std::vector<float> ref = one.run_tq1(scalar_kernels(), 0, p.m, &y_stride);
      for (const Kernels* kern : backends_under_test())
        expect_same_bits(one.run_tq1(*kern, 0, p.m, &y_stride), ref, y_stride,
                         std::string(isa_name(kern->isa)) + " K=" + std::to_string(k) + " N=" + std::to_string(n));
    }
  }
}

TEST(Tq1Gemm, ScaleMulAndMismatchFlag) {
  std::mt19937 rng(23);
  Tq1Problem p(9, 1024, 3, rng);
  p.scale_mul = 0.75f;
  for (int64_t r = 0; r < p.m; ++r) p.row_scale[r] = half_to_float(p.d_bits[r]) * 0.75f;
  for (const Kernels* kern : backends_under_test()) {
    SCOPED_TRACE(isa_name(kern->isa));
    size_t y_stride;
    int mismatch = 0;
    expect_same_bits(p.run_tq1(*kern, 0, 9, &y_stride, nullptr, &mismatch), p.run(scalar_kernels(), 0, 9, &y_stride),
                     y_stride, "scale_mul");
    EXPECT_EQ(mismatch, 0);
    Tq1Problem bad = p;
    bad.tq1[4 * tq1_row_bytes(1024) + 2 * kTq1BlockBytes + 52] ^= 1;  // row 4, block 2: another d
    bad.run_tq1(*kern, 0, 4, &y_stride, nullptr, &mismatch);
    EXPECT_EQ(mismatch, 0) << "rows 0..4 do not include row 4";
    bad.run_tq1(*kern, 3, 6, &y_stride, nullptr, &mismatch);
    EXPECT_EQ(mismatch, 1);
    mismatch = 0;
    bad.run_tq1(*kern, 3, 6, &y_stride, bad.row_scale.data(), &mismatch);
    EXPECT_EQ(mismatch, 0) << "with explicit scales the blocks' d are not read";
  }
}

// ---- float kernels ---------------------------------------------------------------------------

const int64_t kFloatLengths[] = {0, 1, 7, 8, 15, 16, 17, 31, 33, 64, 100, 1000, 2560, 4097};

TEST(FloatKernels, DotF32WithinTolerance) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const Kernels* kern : backends_under_test()) {
    SCOPED_TRACE(isa_name(kern->isa));
    for (int64_t n : kFloatLengths) {
      std::vector<float> a(n), b(n);
      for (float& v : a) v = normal(rng);
      for (float& v : b) v = normal(rng);
      double exact = 0, magnitude = 0;
      for (int64_t i = 0; i < n; ++i) {
        exact += (double)a[i] * b[i];
        magnitude += std::fabs((double)a[i] * b[i]);
      }
      // Tolerance: 1e-5 of sum |a_i b_i| (any summation order of n float adds stays well inside).
      EXPECT_NEAR(kern->dot_f32(a.data(), b.data(), n), exact, 1e-5 * magnitude + 1e-30) << "n = " << n;
    }
  }
}

std::vector<uint16_t> random_halves(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> f(n);
  for (float& v : f) v = normal(rng);
  std::vector<uint16_t> h(n);
  scalar_kernels().fp32_to_fp16_row(f.data(), h.data(), n);
  return h;
}

TEST(FloatKernels, DotF16F32WithinTolerance) {
  std::mt19937 rng(6);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const Kernels* kern : backends_under_test()) {
    SCOPED_TRACE(isa_name(kern->isa));
    for (int64_t n : kFloatLengths) {
      const std::vector<uint16_t> a = random_halves(n, rng);
      std::vector<float> af(n), b(n);
      scalar_kernels().fp16_to_fp32_row(a.data(), af.data(), n);
      for (float& v : b) v = normal(rng);
      double exact = 0, magnitude = 0;
      for (int64_t i = 0; i < n; ++i) {
        exact += (double)af[i] * b[i];
        magnitude += std::fabs((double)af[i] * b[i]);
      }
      EXPECT_NEAR(kern->dot_f16_f32(a.data(), b.data(), n), exact, 1e-5 * magnitude + 1e-30) << "n = " << n;
    }
  }
}

TEST(FloatKernels, ScalarHalfConversionsKnownValues) {
  const Kernels& k = scalar_kernels();
  const std::vector<std::pair<float, uint16_t>> cases = {
      {1.0f, 0x3C00}, {-2.0f, 0xC000}, {65504.0f, 0x7BFF}, {0.0f, 0x0000}, {-0.0f, 0x8000},
      {std::ldexp(1.0f, -14), 0x0400}, {std::ldexp(1.0f, -24), 0x0001}, {std::ldexp(1023.0f, -24), 0x03FF},
      {std::numeric_limits<float>::infinity(), 0x7C00}, {0.333251953125f, 0x3555},
  };
  for (auto [f, h] : cases) {
    uint16_t got;
    k.fp32_to_fp16_row(&f, &got, 1);
    EXPECT_EQ(got, h) << f;
    float back;
    k.fp16_to_fp32_row(&h, &back, 1);
    EXPECT_EQ(bits_of(back), bits_of(f)) << std::hex << h;
  }
  // Rounding to nearest even, overflow to infinity, underflow to zero and subnormals.
  const std::vector<std::pair<float, uint16_t>> rounding = {
      {1.0f + std::ldexp(1.0f, -11), 0x3C00},                          // tie, to even
      {1.0f + 3 * std::ldexp(1.0f, -11), 0x3C02},                      // tie, to even (up)
      {1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20), 0x3C01},  // just above the tie
      {65519.0f, 0x7BFF}, {65520.0f, 0x7C00}, {1e10f, 0x7C00}, {-1e10f, 0xFC00},
      {std::ldexp(1.0f, -25), 0x0000},                                 // tie between 0 and 2^-24
      {std::ldexp(1.5f, -25), 0x0001}, {std::ldexp(3.0f, -25), 0x0002},  // 1.5 * 2^-24 ties to 2
      {std::ldexp(1.0f, -26), 0x0000}, {1e-45f, 0x0000},
      {std::ldexp(2047.0f, -25), 0x0400},                              // rounds up into the normals
  };
  for (auto [f, h] : rounding) {
    uint16_t got;
    k.fp32_to_fp16_row(&f, &got, 1);
    EXPECT_EQ(got, h) << std::hexfloat << f;
  }
}

TEST(FloatKernels, HalfToFloatBitExactOnAllHalves) {
  std::vector<uint16_t> all(65536);
  for (int i = 0; i < 65536; ++i) all[i] = (uint16_t)i;
  std::vector<float> ref(65536);
  scalar_kernels().fp16_to_fp32_row(all.data(), ref.data(), 65536);
  // Every finite half survives the round trip through the scalar converters.
  std::vector<uint16_t> back(65536);
  scalar_kernels().fp32_to_fp16_row(ref.data(), back.data(), 65536);
  for (int i = 0; i < 65536; ++i) {
    if (std::isnan(ref[i])) continue;
    ASSERT_EQ(back[i], all[i]) << std::hex << i;
  }
  for (const Kernels* kern : backends_under_test()) {
    SCOPED_TRACE(isa_name(kern->isa));
    for (int64_t n : {65536, 65535, 13}) {
      std::vector<float> got(n + 1, 1234.5f);
      kern->fp16_to_fp32_row(all.data(), got.data(), n);
      ASSERT_EQ(got[n], 1234.5f) << "write past n";
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(bits_of(got[i]), bits_of(ref[i])) << std::hex << "half 0x" << i;
    }
  }
}

TEST(FloatKernels, FloatToHalfBitExact) {
  std::mt19937 rng(8);
  std::vector<float> x;
  std::uniform_int_distribution<uint32_t> any(0, 0xFFFFFFFFu);
  for (int i = 0; i < 200000; ++i) {
    const float f = float_of(any(rng));
    if (!std::isnan(f)) x.push_back(f);
  }
  // Dense coverage of the half range (normal, subnormal, overflow and exact ties).
  for (uint32_t b = 0x33000000; b < 0x47800000 + 0x100000; b += 0x1001) x.push_back(float_of(b));
  for (uint32_t b = 0x38000000; b < 0x38800000; b += 0x1000) x.push_back(float_of(b | 0x80000000));
  for (uint16_t h = 0; h < 0x7C00; ++h) {  // the exact tie above every finite half, both signs
    uint16_t pair[2] = {h, (uint16_t)(h + 1)};
    float f[2];
    scalar_kernels().fp16_to_fp32_row(pair, f, 2);
    x.push_back((f[0] + f[1]) / 2);  // 12 significant bits: exact in float
    x.push_back(-(f[0] + f[1]) / 2);
  }
  x.push_back(std::numeric_limits<float>::infinity());
  x.push_back(-std::numeric_limits<float>::infinity());
  const int64_t n = (int64_t)x.size();
  std::vector<uint16_t> ref(n);
  scalar_kernels().fp32_to_fp16_row(x.data(), ref.data(), n);
  for (const Kernels* kern : backends_under_test()) {
    SCOPED_TRACE(isa_name(kern->isa));
    std::vector<uint16_t> got(n + 1, 0x1234);
    kern->fp32_to_fp16_row(x.data(), got.data(), n - 5);  // an odd length
    kern->fp32_to_fp16_row(x.data() + n - 5, got.data() + n - 5, 5);
    ASSERT_EQ(got[n], 0x1234) << "write past n";
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[i], ref[i]) << std::hexfloat << x[i];
  }
}

TEST(FloatKernels, NaNStaysNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const Kernels* kern : backends_under_test()) {
    SCOPED_TRACE(isa_name(kern->isa));
    uint16_t h = 0;
    kern->fp32_to_fp16_row(&nan, &h, 1);
    EXPECT_EQ(h & 0x7C00, 0x7C00);
    EXPECT_NE(h & 0x3FF, 0);
    float f = 0;
    const uint16_t hn = 0x7E01;
    kern->fp16_to_fp32_row(&hn, &f, 1);
    EXPECT_TRUE(std::isnan(f));
  }
}

TEST(FloatKernels, AxpyF16BitExact) {
  // Every backend uses a fused multiply-add, the scalar reference included.
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t n : kFloatLengths) {
    const std::vector<uint16_t> x = random_halves(n, rng);
    std::vector<float> y0(n + 1);
    for (float& v : y0) v = normal(rng);
    const float a = normal(rng);
    std::vector<float> ref = y0;
    scalar_kernels().axpy_f16(a, x.data(), ref.data(), n);
    std::vector<float> xf(n);
    scalar_kernels().fp16_to_fp32_row(x.data(), xf.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(ref[i], std::fma(a, xf[i], y0[i]));
    for (const Kernels* kern : backends_under_test()) {
      SCOPED_TRACE(std::string(isa_name(kern->isa)) + " n = " + std::to_string(n));
      std::vector<float> got = y0;
      kern->axpy_f16(a, x.data(), got.data(), n);
      for (int64_t i = 0; i <= n; ++i) ASSERT_EQ(bits_of(got[i]), bits_of(ref[i])) << i;
    }
  }
}

}  // namespace
}  // namespace bitnet
