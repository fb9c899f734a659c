// Formats: hand-built blocks decoded value by value, round trips, conversions and error paths.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "bitnet/error.h"
#include "bitnet/formats.h"

namespace bitnet {
namespace {

using Bytes = std::vector<uint8_t>;

float from_bits(uint32_t b) { return std::bit_cast<float>(b); }
uint32_t bits_of(float f) { return std::bit_cast<uint32_t>(f); }

void put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = (uint8_t)(v & 0xff);
  b[at + 1] = (uint8_t)(v >> 8);
}

// Expects `fn` to throw bitnet::Error whose message contains every one of `needles`.
template <typename Fn>
void expect_error(Fn fn, std::initializer_list<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "no bitnet::Error thrown";
  } catch (const Error& e) {
    for (const auto& needle : needles)
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what() << "\nmissing: " << needle;
  }
}

std::vector<int8_t> random_ternary(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int8_t> v(n);
  for (auto& t : v) t = (int8_t)((int)(rng() % 3) - 1);
  return v;
}

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// ---- fp16 / bf16 ---------------------------------------------------------------------------

TEST(Fp16, DecodesSpecialValues) {
  EXPECT_EQ(bits_of(fp16_to_fp32(0x0000)), 0x00000000u);
  EXPECT_EQ(bits_of(fp16_to_fp32(0x8000)), 0x80000000u);  // -0 keeps its sign
  EXPECT_EQ(fp16_to_fp32(0x3c00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xc000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x3555), 0.333251953125f);
  EXPECT_EQ(fp16_to_fp32(0x7bff), 65504.0f);
  EXPECT_EQ(fp16_to_fp32(0x0400), std::ldexp(1.0f, -14));        // smallest normal
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));        // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x03ff), std::ldexp(1023.0f, -24));     // largest subnormal
  EXPECT_EQ(fp16_to_fp32(0x8201), -std::ldexp(513.0f, -24));
  EXPECT_EQ(fp16_to_fp32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(fp16_to_fp32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7e00)));
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7c01)));  // signalling NaN stays NaN, not inf
}

TEST(Fp16, EncodesSpecialValuesAndRoundsToNearestEven) {
  EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3c00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xc000);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65519.99f), 0x7bff);  // below the tie between max and 2^16
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);   // the tie rounds to even: inf
  EXPECT_EQ(fp32_to_fp16(1e9f), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-1e9f), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xfc00);
  const uint16_t nan = fp32_to_fp16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  EXPECT_NE(fp32_to_fp16(from_bits(0x7f800001u)) & 0x03ff, 0);  // NaN with payload only in low bits
  // Ties in the normal range: 1 + 2^-11 is halfway between 0x3c00 and 0x3c01 -> even 0x3c00;
  // 1 + 3 * 2^-11 is halfway between 0x3c01 and 0x3c02 -> even 0x3c02.
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3c01);
  EXPECT_EQ(fp32_to_fp16(2.0f - std::ldexp(1.0f, -12)), 0x4000);  // rounding carries into the exponent
  // Subnormals: unit 2^-24. 2^-25 is the tie between 0 and 1 -> 0; 3 * 2^-25 ties 1 and 2 -> 2.
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-std::ldexp(1.0f, -25)), 0x8000);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25) * 1.0001f), 0x0001);
  EXPECT_EQ(fp32_to_fp16(3 * std::ldexp(1.0f, -25)), 0x0002);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1023.0f, -24)), 0x03ff);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1023.5f, -24)), 0x0400);  // tie -> even, the smallest normal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -14)), 0x0400);
  EXPECT_EQ(fp32_to_fp16(1e-30f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(from_bits(0x00000001u)), 0x0000);  // fp32 subnormal
}

TEST(Fp16, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_fp32((uint16_t)h);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(f)))) << h;
    } else {
      ASSERT_EQ(fp32_to_fp16(f), h) << "half 0x" << std::hex << h;
    }
  }
}

// Every float between two neighbouring halves must go to the nearer one, ties to the even one.
TEST(Fp16, RandomFloatsGoToTheNearestHalf) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) {
    const float f = from_bits(rng());
    if (std::isnan(f) || std::fabs(f) >= 65504.0f) continue;
    const uint16_t h = fp32_to_fp16(f);
    const double got = fp16_to_fp32(h);
    const double err = std::fabs((double)f - got);
    for (int step : {-1, 1}) {  // neighbours in magnitude; skip stepping across zero / into inf
      const int neighbour = (int)(h & 0x7fff) + step;
      if (neighbour < 0 || neighbour > 0x7bff) continue;
      const double other = fp16_to_fp32((uint16_t)((h & 0x8000) | neighbour));
      const double other_err = std::fabs((double)f - other);
      ASSERT_LE(err, other_err) << "f=" << f << " h=0x" << std::hex << h;
      if (err == other_err) {
        ASSERT_EQ(h & 1, 0) << "tie not to even, f=" << f;
      }
    }
  }
}

TEST(Bf16, ConversionsAndEdgeCases) {
  EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_fp32(0x4049), 3.140625f);
  EXPECT_EQ(bits_of(bf16_to_fp32(0x8000)), 0x80000000u);
  EXPECT_EQ(bf16_to_fp32(0x0001), from_bits(0x00010000u));  // subnormal
  EXPECT_EQ(bf16_to_fp32(0xff80), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(bf16_to_fp32(0x7fc0)));

  EXPECT_EQ(fp32_to_bf16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(3.14159265f), 0x4049);
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(fp32_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
  const uint16_t nan = fp32_to_bf16(from_bits(0x7f800001u));  // payload only in the dropped bits
  EXPECT_TRUE(std::isnan(bf16_to_fp32(nan)));
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds up past the largest bf16
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7f7f7fffu)), 0x7f7f);             // largest bf16, just below the tie
  // Ties: 0x3f808000 is halfway between 0x3f80 and 0x3f81 -> 0x3f80; 0x3f818000 -> 0x3f82.
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f808000u)), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f818000u)), 0x3f82);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f808001u)), 0x3f81);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x00018000u)), 0x0002);  // subnormal tie -> even
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16_to_fp32((uint16_t)h);
    if (!std::isnan(f)) {
      ASSERT_EQ(fp32_to_bf16(f), h);
    }
  }
}

TEST(FloatRows, F32F16Bf16RowsRoundTripWithinTheirPrecision) {
  const auto x = random_floats(96, 11, -100.0f, 100.0f);
  std::vector<float> back(x.size());
  Bytes row(x.size() * 4);
  quantize_row(TensorType::F32, x.data(), row.data(), (int64_t)x.size());
  dequantize_row(TensorType::F32, row.data(), back.data(), (int64_t)x.size());
  EXPECT_EQ(back, x);
  for (auto [t, rel] : {std::pair{TensorType::F16, std::ldexp(1.0f, -11)}, {TensorType::BF16, std::ldexp(1.0f, -8)}}) {
    quantize_row(t, x.data(), row.data(), (int64_t)x.size());
    dequantize_row(t, row.data(), back.data(), (int64_t)x.size());
    for (size_t i = 0; i < x.size(); ++i) EXPECT_LE(std::fabs(back[i] - x[i]), std::fabs(x[i]) * rel) << type_name(t);
  }
  // Byte order: F16 little endian.
  const float one_and_two[2] = {1.0f, -2.0f};
  quantize_row(TensorType::F16, one_and_two, row.data(), 2);
  EXPECT_EQ(Bytes(row.begin(), row.begin() + 4), (Bytes{0x00, 0x3c, 0x00, 0xc0}));
  quantize_row(TensorType::BF16, one_and_two, row.data(), 2);
  EXPECT_EQ(Bytes(row.begin(), row.begin() + 4), (Bytes{0x80, 0x3f, 0x00, 0xc0}));
}

// ---- Q8_0 / Q4_0 / Q6_K ----------------------------------------------------------------------

TEST(Q8_0, HandBuiltBlockDecodes) {
  Bytes block(34);
  put16(block, 0, 0x3800);  // d = 0.5
  const int8_t qs[32] = {-128, 127, 0, 1, -1, 2, -2, 100, -100, 3, 4, 5, 6, 7, 8, 9,
                         10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, -77};
  std::memcpy(block.data() + 2, qs, 32);
  float out[32];
  dequantize_row(TensorType::Q8_0, block.data(), out, 32);
  EXPECT_EQ(out[0], -64.0f);
  EXPECT_EQ(out[1], 63.5f);
  EXPECT_EQ(out[2], 0.0f);
  EXPECT_EQ(out[8], -50.0f);
  EXPECT_EQ(out[31], -38.5f);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(out[j], qs[j] * 0.5f);
}

TEST(Q8_0, QuantizesLikeTheGgmlReference) {
  // x = j - 16 (j = 0..31): amax 16, d = 16/127, q = round(x * 127 / 16), halves away from zero.
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = (float)(j - 16);
  Bytes block(34);
  quantize_row(TensorType::Q8_0, x, block.data(), 32);
  EXPECT_EQ(block[0] | (block[1] << 8), fp32_to_fp16(16.0f / 127.0f));
  EXPECT_EQ((int8_t)block[2 + 0], -127);   // -16
  EXPECT_EQ((int8_t)block[2 + 17], 8);     // 1 * 7.9375
  EXPECT_EQ((int8_t)block[2 + 18], 16);    // 2 * 7.9375 = 15.875
  EXPECT_EQ((int8_t)block[2 + 24], 64);    // 8 * 7.9375 = 63.5 -> away from zero
  EXPECT_EQ((int8_t)block[2 + 8], -64);    // -8 -> -63.5 -> away from zero
  EXPECT_EQ((int8_t)block[2 + 16], 0);
  // An all-zero block has d = 0 and zero codes.
  float zeros[32] = {};
  quantize_row(TensorType::Q8_0, zeros, block.data(), 32);
  EXPECT_EQ(block, Bytes(34, 0));
}

TEST(Q8_0, ErrorBoundOnRandomData) {
  const int64_t n = 32 * 64;
  auto x = random_floats(n, 3, -3.0f, 3.0f);
  Bytes row(row_nbytes(TensorType::Q8_0, n));
  std::vector<float> back(n);
  quantize_row(TensorType::Q8_0, x.data(), row.data(), n);
  dequantize_row(TensorType::Q8_0, row.data(), back.data(), n);
  for (int64_t b = 0; b < n / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    // Half a step of amax/127, plus the f16 rounding of d over up to 127 steps.
    const float bound = amax / 254.0f + amax * std::ldexp(1.0f, -11) * 1.01f;
    for (int j = 0; j < 32; ++j) ASSERT_LE(std::fabs(back[b * 32 + j] - x[b * 32 + j]), bound);
  }
}

TEST(Q4_0, HandBuiltBlockDecodes) {
  Bytes block(18);
  put16(block, 0, 0x4000);  // d = 2
  for (int j = 0; j < 16; ++j) block[2 + j] = (uint8_t)(j | ((15 - j) << 4));
  float out[32];
  dequantize_row(TensorType::Q4_0, block.data(), out, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], (j - 8) * 2.0f) << j;              // low nibbles: the first 16 values
    EXPECT_EQ(out[j + 16], (15 - j - 8) * 2.0f) << j;    // high nibbles: the last 16
  }
}

TEST(Q4_0, QuantizesLikeTheGgmlReference) {
  // Largest magnitude -4 at index 0 -> d = -4 / -8 = 0.5, code = trunc(x / 0.5 + 8.5) capped at 15.
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = -4.0f + 0.25f * (float)j;  // -4 .. 3.75
  x[31] = 3.9f;                                                   // 7.8 + 8.5 -> 16 -> capped 15
  Bytes block(18);
  quantize_row(TensorType::Q4_0, x, block.data(), 32);
  EXPECT_EQ(block[0] | (block[1] << 8), 0x3800);  // d = 0.5
  auto code = [&](int j) { return j < 16 ? block[2 + j] & 0x0f : block[2 + j - 16] >> 4; };
  EXPECT_EQ(code(0), 0);   // -8 + 8.5 = 0.5 -> 0
  EXPECT_EQ(code(1), 1);   // -7.5 + 8.5 = 1
  EXPECT_EQ(code(2), 1);   // -7 + 8.5 = 1.5 -> 1 (truncation)
  EXPECT_EQ(code(16), 8);  // 0 -> 8
  EXPECT_EQ(code(17), 9);  // 0.25 -> 0.5 + 8.5 = 9
  EXPECT_EQ(code(31), 15);
  // Largest magnitude positive: d is negative.
  float y[32] = {};
  y[5] = 8.0f;
  y[6] = -3.0f;
  quantize_row(TensorType::Q4_0, y, block.data(), 32);
  EXPECT_EQ(block[0] | (block[1] << 8), 0xbc00);  // d = -1
  float out[32];
  dequantize_row(TensorType::Q4_0, block.data(), out, 32);
  EXPECT_EQ(out[5], 8.0f);
  EXPECT_EQ(out[6], -3.0f);
  EXPECT_EQ(out[0], 0.0f);
}

TEST(Q4_0, ErrorBoundOnRandomData) {
  const int64_t n = 32 * 64;
  auto x = random_floats(n, 5);
  Bytes row(row_nbytes(TensorType::Q4_0, n));
  std::vector<float> back(n);
  quantize_row(TensorType::Q4_0, x.data(), row.data(), n);
  dequantize_row(TensorType::Q4_0, row.data(), back.data(), n);
  double sq = 0;
  for (int64_t b = 0; b < n / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    // Step amax/8; half a step except on the side opposite the maximum, whose top is capped at 7.
    const float step = amax / 8.0f * (1.0f + std::ldexp(1.0f, -10));
    for (int j = 0; j < 32; ++j) {
      const float err = std::fabs(back[b * 32 + j] - x[b * 32 + j]);
      ASSERT_LE(err, step);
      if (std::fabs(x[b * 32 + j]) < amax * 7.5f / 8.0f) {
        ASSERT_LE(err, step * 0.5f);
      }
      sq += err * err;
    }
  }
  EXPECT_LT(std::sqrt(sq / n), 0.04);  // uniform rounding error of a ~0.125 step: ~0.036
}

TEST(Q6_K, HandBuiltBlockDecodes) {
  Bytes block(210, 0);  // ql[128] qh[64] scales[16] d
  const size_t qh = 128, scales = 192;
  put16(block, 208, 0x3800);  // d = 0.5
  block[scales + 0] = 1;
  block[scales + 2] = 2;
  block[scales + 4] = (uint8_t)-3;
  block[scales + 6] = 4;
  block[scales + 9] = 5;
  // First half: ql[0] = 0x21 gives value 0 low bits 1 and value 64 low bits 2; ql[32] = 0x43 gives
  // value 32 low bits 3 and value 96 low bits 4; qh[0] = 0b11'10'01'00 gives high bits 0, 1, 2, 3
  // to values 0, 32, 64, 96.
  block[0] = 0x21;
  block[32] = 0x43;
  block[qh + 0] = 0b11100100;
  // Second half: value 128 + 17 from ql[64 + 17] low nibble and qh[32 + 17] bits 0-1: code 63.
  block[64 + 17] = 0x0f;
  block[qh + 32 + 17] = 0b11;
  std::vector<int> codes(256, 0);
  codes[0] = 1;            // 0x01 | 0 << 4
  codes[32] = 3 + 16;      // 0x03 | 1 << 4
  codes[64] = 2 + 32;      // 0x02 | 2 << 4
  codes[96] = 4 + 48;      // 0x04 | 3 << 4
  codes[128 + 17] = 63;
  // Scale j covers the 16 consecutive values 16j..16j+15.
  const int sub_scale[16] = {1, 0, 2, 0, -3, 0, 4, 0, 0, 5, 0, 0, 0, 0, 0, 0};
  float out[256];
  dequantize_row(TensorType::Q6_K, block.data(), out, 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(out[i], 0.5f * sub_scale[i / 16] * (codes[i] - 32)) << i;
  EXPECT_EQ(out[0], -15.5f);
  EXPECT_EQ(out[32], -13.0f);
  EXPECT_EQ(out[64], -3.0f);
  EXPECT_EQ(out[96], 40.0f);
  EXPECT_EQ(out[145], 77.5f);
}

TEST(Q6_K, QuantizeDequantizeErrorBound) {
  // Sub-blocks of magnitudes 1/16 .. 1 within each block, so the per-sub-block scales matter
  // (the int8 sub-block scales cover a range of about 127 between the sub-blocks of one block).
  const int64_t n = 256 * 16;
  auto x = random_floats(n, 9);
  std::mt19937 rng(10);
  for (int64_t s = 0; s < n / 16; ++s) {
    const float magnitude = std::ldexp(1.0f, -(int)(rng() % 5));
    for (int j = 0; j < 16; ++j) x[s * 16 + j] *= magnitude;
  }
  Bytes row(row_nbytes(TensorType::Q6_K, n));
  std::vector<float> back(n);
  quantize_row(TensorType::Q6_K, x.data(), row.data(), n);
  dequantize_row(TensorType::Q6_K, row.data(), back.data(), n);
  double worst_relative = 0, sq_err = 0, sq_x = 0;
  for (int64_t s = 0; s < n / 16; ++s) {
    float amax = 0;
    for (int j = 0; j < 16; ++j) amax = std::max(amax, std::fabs(x[s * 16 + j]));
    for (int j = 0; j < 16; ++j) {
      const double err = std::fabs(back[s * 16 + j] - x[s * 16 + j]);
      worst_relative = std::max(worst_relative, err / amax);
      sq_err += err * err / (amax * amax);
      sq_x += (double)x[s * 16 + j] * x[s * 16 + j] / (amax * amax);
    }
  }
  // 64 levels over [-amax, amax]: half a step is amax/64. The least-squares step trades a larger
  // worst case for a smaller mean error: measured on 2^20 values, worst 0.038 amax, relative RMS
  // error 0.0130 (a plain amax/32 step would give about 0.0147).
  EXPECT_LT(worst_relative, 0.05);
  EXPECT_LT(std::sqrt(sq_err / sq_x), 0.015);
  // Zeros stay zeros.
  std::vector<float> zeros(256, 0.0f);
  quantize_row(TensorType::Q6_K, zeros.data(), row.data(), 256);
  dequantize_row(TensorType::Q6_K, row.data(), back.data(), 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(back[i], 0.0f);
}

TEST(Q6_K, RepresentableDataIsExact) {
  // Sub-block j holds levels on the step d * k[j] with d = 2^-7 and the largest |k| = 127, each
  // with a value on level -32: the quantizer must find d, k and the levels exactly.
  const int k[16] = {127, 64, -100, 3, 1, -1, 127, 50, -127, 2, 99, -5, 7, 30, 0, 11};
  const float d = std::ldexp(1.0f, -7);
  std::vector<float> x(256);
  std::mt19937 rng(4);
  for (int s = 0; s < 16; ++s)
    for (int j = 0; j < 16; ++j) x[s * 16 + j] = d * (float)k[s] * (float)(j == 3 ? -32 : (int)(rng() % 64) - 32);
  Bytes row(210);
  std::vector<float> back(256);
  quantize_row(TensorType::Q6_K, x.data(), row.data(), 256);
  EXPECT_EQ(row[208] | (row[209] << 8), fp32_to_fp16(d));
  for (int s = 0; s < 16; ++s)
    if (k[s] != 0) {
      EXPECT_EQ((int8_t)row[192 + s], k[s]) << s;
    }
  dequantize_row(TensorType::Q6_K, row.data(), back.data(), 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(back[i], x[i]) << i;
}

TEST(Q6_K, QuantizerBytesArePinned) {
  // The quantizer's exact output bytes, over blocks of the kinds it meets (normal weights, sub-
  // blocks of very different magnitudes, zero and subnormal sub-blocks, values on exact half steps,
  // outliers): `bitnet dummy` promises byte-identical files for equal arguments across versions,
  // and a faster quantizer must not change a byte. Inputs come from splitmix64, not <random>'s
  // distributions, whose results differ between standard libraries.
  uint64_t state = 42;
  auto next = [&] {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  auto uniform = [&] { return (float)(next() >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f; };  // [-1, 1)
  constexpr int kBlocks = 64;
  std::vector<float> x(256 * kBlocks);
  for (int b = 0; b < kBlocks; ++b)
    for (int s = 0; s < 16; ++s) {
      float* v = x.data() + 256 * b + 16 * s;
      const int kind = (b + s * 7) % 8;
      const float magnitude = std::ldexp(1.0f, -(int)(next() % 13));
      for (int j = 0; j < 16; ++j) {
        const float u = uniform() + uniform() + uniform() + uniform();
        switch (kind) {
          case 0: case 1: case 2: v[j] = 0.02f * u; break;                                // like dummy heads
          case 3: v[j] = magnitude * u; break;                                             // mixed scales
          case 4: v[j] = s % 3 == 0 ? 0.0f : 1e-40f * u; break;                            // zero, subnormal
          case 5: v[j] = 0.5f * (float)((int)(next() % 65) - 32) * magnitude; break;       // half steps
          case 6: v[j] = j == (int)(next() % 16) ? 100.0f * u : 0.01f * u; break;          // outliers
          default: v[j] = b % 5 == 0 ? 1e-9f * u : -std::fabs(u) * magnitude; break;       // tiny, one-signed
        }
      }
    }
  Bytes row(row_nbytes(TensorType::Q6_K, x.size()));
  quantize_row(TensorType::Q6_K, x.data(), row.data(), (int64_t)x.size());
  uint64_t hash = 0xCBF29CE484222325ull;  // FNV-1a
  for (uint8_t byte : row) hash = (hash ^ byte) * 0x100000001B3ull;
  EXPECT_EQ(hash, 1123378026239128571ull);
}

TEST(BlockRows, RejectPartialBlocksAndUnreadableTypes) {
  float x[64] = {};
  Bytes row(1024);
  expect_error([&] { quantize_row(TensorType::Q8_0, x, row.data(), 48); }, {"48", "Q8_0", "32"});
  expect_error([&] { dequantize_row(TensorType::Q6_K, row.data(), x, 64); }, {"64", "Q6_K", "256"});
  expect_error([&] { dequantize_row(TensorType::I2_S, row.data(), x, 128); }, {"I2_S"});
  expect_error([&] { quantize_row(TensorType::TQ2_0, x, row.data(), 256); }, {"TQ2_0"});
  expect_error([&] { dequantize_row(TensorType::F32, row.data(), x, -4); }, {"-4"});
}

TEST(BlockRows, NonFiniteValuesQuantizeAsZeroInBlockTypes) {
  // NaN or Inf in a block would reach an undefined float -> int cast in the reference quantizers.
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> x(512), zeroed;
  for (float& v : x) v = normal(rng);
  x[3] = NAN, x[40] = INFINITY, x[300] = -INFINITY, x[301] = -NAN;
  zeroed = x;
  for (float& v : zeroed) v = std::isfinite(v) ? v : 0.0f;
  for (TensorType t : {TensorType::Q4_0, TensorType::Q8_0, TensorType::Q6_K}) {
    SCOPED_TRACE(type_name(t));
    Bytes got(row_nbytes(t, 512)), want(row_nbytes(t, 512));
    quantize_row(t, x.data(), got.data(), 512);
    quantize_row(t, zeroed.data(), want.data(), 512);
    EXPECT_EQ(got, want);
    EXPECT_TRUE(row_is_finite(t, got.data(), 512));
  }
  // row_is_finite reads the bits: an f16 NaN or Inf value, an f32 one, a NaN block scale.
  const uint16_t halves[3] = {0x3c00, 0x7c00, 0x0001};
  EXPECT_FALSE(row_is_finite(TensorType::F16, halves, 3));
  EXPECT_TRUE(row_is_finite(TensorType::F16, halves + 2, 1));
  // Every position of a row longer than the four-value words, for each exponent pattern (Inf,
  // NaN, the largest finite values next to them must pass).
  for (TensorType t : {TensorType::F16, TensorType::BF16}) {
    const bool f16 = t == TensorType::F16;
    std::vector<uint16_t> row(11, f16 ? 0x7bff : 0x7f7f);  // the largest finite magnitude
    row[1] = f16 ? 0xfbff : 0xff7f;
    EXPECT_TRUE(row_is_finite(t, row.data(), 11)) << type_name(t);
    for (uint16_t bad : {f16 ? 0x7c00 : 0x7f80, f16 ? 0xfe01 : 0xffc1}) {
      for (size_t i = 0; i < row.size(); ++i) {
        std::vector<uint16_t> with = row;
        with[i] = bad;
        EXPECT_FALSE(row_is_finite(t, with.data(), 11)) << type_name(t) << " at " << i;
        EXPECT_EQ(row_is_finite(t, with.data(), (int64_t)i), true) << type_name(t) << " before " << i;
      }
    }
  }
  const float floats[2] = {1.0f, NAN};
  EXPECT_TRUE(row_is_finite(TensorType::F32, floats, 1));
  EXPECT_FALSE(row_is_finite(TensorType::F32, floats, 2));
  Bytes q8(34, 0);
  put16(q8, 0, 0x7e00);
  EXPECT_FALSE(row_is_finite(TensorType::Q8_0, q8.data(), 32));
}

// ---- TQ2_0 -------------------------------------------------------------------------------------

// Independent TQ2_0 encoder, straight from the layout description: for each 128-value half h,
// byte 32h + m holds values 128h + m + 32n at bits 2n, code = t + 1; then f16 d.
Bytes encode_tq2_block_by_hand(const int8_t* t, uint16_t d) {
  Bytes block(66, 0);
  for (int i = 0; i < 256; ++i) {
    const int h = i / 128, m = i % 32, n = (i % 128) / 32;
    block[32 * h + m] |= (uint8_t)((t[i] + 1) << (2 * n));
  }
  put16(block, 64, d);
  return block;
}

TEST(TQ2_0, HandBuiltBlockDecodes) {
  std::vector<int8_t> t(256, 0);
  t[0] = -1, t[32] = 0, t[64] = 1, t[96] = -1;  // byte 0 = 0b00'10'01'00 = 0x24
  t[128 + 5] = 1, t[128 + 5 + 96] = 1;           // byte 37 = 0b10'01'01'10 = 0x96
  const Bytes block = encode_tq2_block_by_hand(t.data(), 0x3400);  // d = 0.25
  EXPECT_EQ(block[0], 0x24);
  EXPECT_EQ(block[37], 0x96);
  EXPECT_EQ(block[1], 0x55);  // four zeros: code 1 everywhere
  float out[256];
  dequantize_row(TensorType::TQ2_0, block.data(), out, 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(out[i], t[i] * 0.25f) << i;
  std::vector<int8_t> read(256);
  EXPECT_EQ(read_ternary_row(TensorType::TQ2_0, block.data(), 256, 1, 0, read.data(), "w"), 0.25f);
  EXPECT_EQ(read, t);
  // Our writer produces the same bytes.
  Bytes written(66);
  write_ternary_row(TensorType::TQ2_0, t.data(), 256, 0.25f, written.data());
  EXPECT_EQ(written, block);
}

TEST(TQ2_0, CodeThreeIsNotTernary) {
  std::vector<int8_t> t(256, 0);
  Bytes block = encode_tq2_block_by_hand(t.data(), 0x3c00);
  block[3] |= 0xc0;  // value 3 + 96 = 99 gets code 3
  float out[256];
  dequantize_row(TensorType::TQ2_0, block.data(), out, 256);
  EXPECT_EQ(out[99], 2.0f);  // ggml's dequantizer reads (3 - 1) * d
  std::vector<int8_t> read(256);
  expect_error([&] { read_ternary_row(TensorType::TQ2_0, block.data(), 256, 1, 0, read.data(), "blk.0.ffn_up.weight"); },
               {"blk.0.ffn_up.weight", "row 0", "99"});
}

// ---- TQ1_0 -------------------------------------------------------------------------------------

// Independent TQ1_0 encoder from the layout description: qs[m] (m < 32) holds values m + 32n of
// the first 160, qs[32 + m] (m < 16) values 160 + m + 16n, qh[j] values 240 + j + 4n (n < 4) and
// a zero trit; n = 0 is the most significant trit; a byte stores ceil(q * 256 / 243).
Bytes encode_tq1_block_by_hand(const int8_t* t, uint16_t d) {
  std::vector<std::vector<int>> byte_values(52);
  for (int m = 0; m < 32; ++m)
    for (int n = 0; n < 5; ++n) byte_values[m].push_back(m + 32 * n);
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 5; ++n) byte_values[32 + m].push_back(160 + m + 16 * n);
  for (int j = 0; j < 4; ++j)
    for (int n = 0; n < 4; ++n) byte_values[48 + j].push_back(240 + j + 4 * n);
  Bytes block(54, 0);
  for (int b = 0; b < 52; ++b) {
    int q = 0;
    for (int n = 0; n < 5; ++n) q = 3 * q + (n < (int)byte_values[b].size() ? t[byte_values[b][n]] + 1 : 0);
    block[b] = (uint8_t)((q * 256 + 242) / 243);
  }
  put16(block, 52, d);
  return block;
}

TEST(TQ1_0, HandBuiltBlockDecodes) {
  auto t = random_ternary(256, 21);
  // Byte 0 holds values 0, 32, 64, 96, 128: trits +1, 0, -1, +1, 0 -> codes 2 1 0 2 1 ->
  // q = 2*81 + 1*27 + 0*9 + 2*3 + 1 = 196 -> ceil(196 * 256 / 243) = ceil(206.48) = 207.
  t[0] = 1, t[32] = 0, t[64] = -1, t[96] = 1, t[128] = 0;
  // qh[0] holds values 240, 244, 248, 252, all +1: q = 2*81 + 2*27 + 2*9 + 2*3 + 0 = 240 -> 253.
  t[240] = t[244] = t[248] = t[252] = 1;
  const Bytes block = encode_tq1_block_by_hand(t.data(), 0x3c00);
  EXPECT_EQ(block[0], 207);
  EXPECT_EQ(block[48], 253);
  float out[256];
  dequantize_row(TensorType::TQ1_0, block.data(), out, 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(out[i], (float)t[i]) << i;
  std::vector<int8_t> read(256);
  EXPECT_EQ(read_ternary_row(TensorType::TQ1_0, block.data(), 256, 1, 0, read.data(), "w"), 1.0f);
  EXPECT_EQ(read, t);
  Bytes written(54);
  write_ternary_row(TensorType::TQ1_0, t.data(), 256, 1.0f, written.data());
  EXPECT_EQ(written, block);
}

TEST(TQ1_0, EveryFiveTritByteDecodes) {
  // For each base-3 number q < 243, the stored byte decodes to q's digits in values 0, 32, ..., 128.
  for (int q = 0; q < 243; ++q) {
    Bytes block(54, 0);
    block[0] = (uint8_t)((q * 256 + 242) / 243);
    for (int b = 1; b < 52; ++b) block[b] = (uint8_t)((121 * 256 + 242) / 243);  // 11111 base 3: all zeros
    put16(block, 52, 0x3c00);
    float out[256];
    dequantize_row(TensorType::TQ1_0, block.data(), out, 256);
    int digits = q;
    for (int n = 4; n >= 0; --n, digits /= 3) ASSERT_EQ(out[32 * n], (float)(digits % 3 - 1)) << "q=" << q;
    ASSERT_EQ(out[1], 0.0f);
  }
}

// ---- I2_S --------------------------------------------------------------------------------------

TEST(I2_S, HandBuiltBlockDecodes) {
  Bytes tensor(32 + 32, 0x55);  // 0x55: four codes 1 = four zeros
  tensor[0] = 0b10'01'00'11;    // values 0, 32, 64, 96: codes 2 1 0 3 -> +1 0 -1 0(unused code)
  tensor[5] = 0b00'00'00'10;    // values 5, 37, 69: -1; value 101: +1
  const float scale = 0.25f;
  std::memcpy(tensor.data() + 32, &scale, 4);
  std::memset(tensor.data() + 36, 0xab, 28);  // padding content is ignored
  std::vector<int8_t> expected(128, 0);
  expected[0] = 1, expected[64] = -1;
  expected[5] = -1, expected[37] = -1, expected[69] = -1, expected[101] = 1;
  std::vector<int8_t> read(128);
  EXPECT_EQ(read_ternary_row(TensorType::I2_S, tensor.data(), 128, 1, 0, read.data(), "w"), 0.25f);
  EXPECT_EQ(read, expected);

  // The encoder writes code 1 for the value read from code 3.
  Bytes encoded(32);
  encode_i2s(nullptr, 0, nullptr);  // nothing to encode (the converter's first rows of a group); UBSan checks
  encode_i2s(expected.data(), 128, encoded.data());
  EXPECT_EQ(encoded[0], 0b10'01'00'01);
  EXPECT_EQ(encoded[5], 0b00'00'00'10);
  EXPECT_EQ(encoded[1], 0x55);
}

TEST(I2_S, RowsStartAtRTimesNe0Over4AndShareTheTrailerScale) {
  const uint64_t ne0 = 256, ne1 = 3;
  Bytes tensor(tensor_nbytes(TensorType::I2_S, ne0, ne1), 0x55);
  ASSERT_EQ(tensor.size(), ne0 * ne1 / 4 + 32);
  tensor[1 * 64 + 32 + 7] = 0b10'01'01'01;  // row 1, second group, value 128 + 7: +1
  tensor[2 * 64 + 31] = 0b01'01'01'00;      // row 2, first group, value 31 + 96 = 127: -1
  const float scale = -1.5f;
  std::memcpy(tensor.data() + ne0 * ne1 / 4, &scale, 4);
  std::vector<int8_t> read(ne0);
  for (uint64_t r = 0; r < ne1; ++r) {
    EXPECT_EQ(read_ternary_row(TensorType::I2_S, tensor.data(), ne0, ne1, r, read.data(), "w"), -1.5f);
    std::vector<int8_t> expected(ne0, 0);
    if (r == 1) expected[135] = 1;
    if (r == 2) expected[127] = -1;
    EXPECT_EQ(read, expected) << "row " << r;
  }
}

TEST(I2_S, TrailerIsScaleThenZeros) {
  Bytes trailer(32, 0xff);
  encode_i2s_trailer(1.5f, trailer.data());
  Bytes expected(32, 0);
  expected[2] = 0xc0, expected[3] = 0x3f;  // 1.5f = 0x3fc00000 little endian
  EXPECT_EQ(trailer, expected);
}

// bitnet.cpp packs the flattened tensor, so a row may end inside a 128-value group (bitnet_b1_58-3B's
// FFN rows of 8640 values); only the tensor must be a multiple of 128.
TEST(I2_S, RowsOfAnyLengthAreReadFromTheFlattenedTensor) {
  const uint64_t ne0 = 96, ne1 = 4;
  const auto values = random_ternary(ne0 * ne1, 5);
  Bytes tensor(ne0 * ne1 / 4 + 32, 0);
  encode_i2s(values.data(), (int64_t)(ne0 * ne1), tensor.data());
  encode_i2s_trailer(0.5f, tensor.data() + ne0 * ne1 / 4);
  std::vector<int8_t> read(ne0);
  for (uint64_t r = 0; r < ne1; ++r) {
    EXPECT_EQ(read_ternary_row(TensorType::I2_S, tensor.data(), ne0, ne1, r, read.data(), "t"), 0.5f);
    EXPECT_TRUE(std::equal(read.begin(), read.end(), values.begin() + (std::ptrdiff_t)(r * ne0))) << "row " << r;
  }
  expect_error([&] { read_ternary_row(TensorType::I2_S, tensor.data(), 64, 1, 0, read.data(), "blk.3.attn_q.weight"); },
               {"blk.3.attn_q.weight", "64", "128"});
  std::vector<int8_t> odd(100, 0);
  expect_error([&] { encode_i2s(odd.data(), 100, tensor.data()); }, {"100", "128"});
}

// ---- all ternary formats -----------------------------------------------------------------------

TEST(Ternary, RoundTripsOverSeveralRows) {
  const uint64_t ne0 = 768, ne1 = 5;
  const auto values = random_ternary(ne0 * ne1, 33);
  std::vector<int8_t> read(ne0);
  // Odd scales, including ones f16 cannot hold exactly, and a negative one.
  const float scales[] = {0.3f, 1.0f / 3.0f, -0.0123f};
  for (TensorType t : {TensorType::TQ1_0, TensorType::TQ2_0}) {
    for (float scale : scales) {
      const uint64_t row_bytes = row_nbytes(t, ne0);
      Bytes tensor(tensor_nbytes(t, ne0, ne1));
      ASSERT_EQ(tensor.size(), row_bytes * ne1);
      for (uint64_t r = 0; r < ne1; ++r)
        write_ternary_row(t, values.data() + r * ne0, (int64_t)ne0, scale, tensor.data() + r * row_bytes);
      const float stored = fp16_to_fp32(fp32_to_fp16(scale));
      std::vector<float> deq(ne0);
      for (uint64_t r = 0; r < ne1; ++r) {
        EXPECT_EQ(read_ternary_row(t, tensor.data(), ne0, ne1, r, read.data(), "w"), stored);
        ASSERT_EQ(read, std::vector<int8_t>(values.begin() + r * ne0, values.begin() + (r + 1) * ne0))
            << type_name(t) << " row " << r;
        dequantize_row(t, tensor.data() + r * row_bytes, deq.data(), (int64_t)ne0);
        for (uint64_t i = 0; i < ne0; ++i) ASSERT_EQ(deq[i], values[r * ne0 + i] * stored);
      }
    }
  }
  Bytes tensor(tensor_nbytes(TensorType::I2_S, ne0, ne1));
  encode_i2s(values.data(), (int64_t)(ne0 * ne1), tensor.data());
  encode_i2s_trailer(0.3f, tensor.data() + ne0 * ne1 / 4);
  for (uint64_t r = 0; r < ne1; ++r) {
    EXPECT_EQ(read_ternary_row(TensorType::I2_S, tensor.data(), ne0, ne1, r, read.data(), "w"), 0.3f);
    ASSERT_EQ(read, std::vector<int8_t>(values.begin() + r * ne0, values.begin() + (r + 1) * ne0)) << "I2_S row " << r;
  }
}

TEST(Ternary, RowScaleMismatchIsAnErrorButAllZeroBlocksDoNotCount) {
  for (TensorType t : {TensorType::TQ1_0, TensorType::TQ2_0}) {
    const uint64_t ne0 = 512, ne1 = 2, row_bytes = row_nbytes(t, ne0), block_bytes = row_bytes / 2;
    auto values = random_ternary(ne0 * ne1, 8);
    Bytes tensor(row_bytes * ne1);
    for (uint64_t r = 0; r < ne1; ++r)
      write_ternary_row(t, values.data() + r * ne0, (int64_t)ne0, 0.5f, tensor.data() + r * row_bytes);
    put16(tensor, row_bytes + 2 * block_bytes - 2, 0x3c00);  // row 1, block 1: d = 1 instead of 0.5
    std::vector<int8_t> read(ne0);
    EXPECT_EQ(read_ternary_row(t, tensor.data(), ne0, ne1, 0, read.data(), "w"), 0.5f);
    expect_error([&] { read_ternary_row(t, tensor.data(), ne0, ne1, 1, read.data(), "blk.7.ffn_down.weight"); },
                 {"blk.7.ffn_down.weight", "row 1", type_name(t)});

    // Row 1, block 0 all zeros with d = 0: ignored, the row's scale is block 1's.
    std::fill(values.begin() + ne0, values.begin() + ne0 + 256, 0);
    write_ternary_row(t, values.data() + ne0, (int64_t)ne0, 0.5f, tensor.data() + row_bytes);
    put16(tensor, row_bytes + block_bytes - 2, 0x0000);
    EXPECT_EQ(read_ternary_row(t, tensor.data(), ne0, ne1, 1, read.data(), "w"), 0.5f);
    EXPECT_EQ(read, std::vector<int8_t>(values.begin() + ne0, values.end()));
  }
}

TEST(Ternary, WriterRejectsBadInput) {
  std::vector<int8_t> values(256, 0);
  values[10] = 2;
  Bytes row(66);
  expect_error([&] { write_ternary_row(TensorType::TQ2_0, values.data(), 256, 1.0f, row.data()); }, {"2", "10"});
  values[10] = 0;
  expect_error([&] { write_ternary_row(TensorType::TQ1_0, values.data(), 128, 1.0f, row.data()); }, {"128", "256"});
  expect_error([&] { write_ternary_row(TensorType::I2_S, values.data(), 256, 1.0f, row.data()); }, {"I2_S"});
  expect_error([&] { read_ternary_row(TensorType::TQ2_0, row.data(), 256, 1, 1, values.data(), "w"); }, {"'w'", "row 1"});
  expect_error([&] { read_ternary_row(TensorType::Q8_0, row.data(), 256, 1, 0, values.data(), "w"); }, {"Q8_0"});
}

// ---- type ids, names, sizes --------------------------------------------------------------------

TEST(TypeTraits, NamesParseAndPrint) {
  EXPECT_EQ(parse_type_name("q6_k"), TensorType::Q6_K);
  EXPECT_EQ(parse_type_name("I2_S"), TensorType::I2_S);
  EXPECT_EQ(parse_type_name("Bf16"), TensorType::BF16);
  EXPECT_EQ(parse_type_name("tq1_0"), TensorType::TQ1_0);
  for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q4_0, TensorType::Q8_0,
                       TensorType::Q6_K, TensorType::TQ1_0, TensorType::TQ2_0, TensorType::I2_S})
    EXPECT_EQ(parse_type_name(type_name(t)), t);
  EXPECT_STREQ(type_name(TensorType::TQ2_0), "TQ2_0");
  expect_error([] { parse_type_name("q5_k"); }, {"q5_k", "Q8_0", "I2_S"});
  expect_error([] { parse_type_name("tl1"); }, {"tl1"});  // TL1/TL2 are not offered
}

TEST(TypeTraits, ResolveTypeDependsOnTheFile) {
  EXPECT_EQ(resolve_type(8, false, "w"), TensorType::Q8_0);
  EXPECT_EQ(resolve_type(35, false, "w"), TensorType::TQ2_0);
  EXPECT_EQ(resolve_type(36, true, "w"), TensorType::I2_S);
  expect_error([] { resolve_type(36, false, "blk.0.attn_k.weight"); }, {"blk.0.attn_k.weight", "36", "BitNet"});
  expect_error([] { resolve_type(39, false, "w"); }, {"39"});
  expect_error([] { resolve_type(37, true, "w"); }, {"37"});
  expect_error([] { resolve_type(12, true, "w"); }, {"12"});
  EXPECT_TRUE(is_ternary(TensorType::I2_S));
  EXPECT_TRUE(is_ternary(TensorType::TQ1_0));
  EXPECT_FALSE(is_ternary(TensorType::Q8_0));
}

TEST(TypeTraits, TensorSizes) {
  EXPECT_EQ(tensor_nbytes(TensorType::I2_S, 2560, 6912), 2560ull * 6912 / 4 + 32);
  EXPECT_EQ(tensor_nbytes(TensorType::F32, 7, 3), 84u);
  EXPECT_EQ(tensor_nbytes(TensorType::BF16, 7, 3), 42u);
  EXPECT_EQ(tensor_nbytes(TensorType::Q8_0, 64, 3), 2u * 34 * 3);
  EXPECT_EQ(tensor_nbytes(TensorType::Q4_0, 64, 1), 36u);
  EXPECT_EQ(tensor_nbytes(TensorType::Q6_K, 512, 2), 2u * 210 * 2);
  EXPECT_EQ(tensor_nbytes(TensorType::TQ1_0, 2560, 1), 10u * 54);
  EXPECT_EQ(tensor_nbytes(TensorType::TQ2_0, 2560, 1), 10u * 66);
  EXPECT_EQ(row_nbytes(TensorType::TQ2_0, 512), 132u);
  EXPECT_EQ(block_size(TensorType::I2_S), 128);
  EXPECT_EQ(block_size(TensorType::Q6_K), 256);
  expect_error([] { tensor_nbytes(TensorType::Q8_0, 40, 1); }, {"40", "Q8_0"});
  expect_error([] { tensor_nbytes(TensorType::I2_S, 3, 7); }, {"21", "128"});
  expect_error([] { tensor_nbytes(TensorType::TL1, 256, 256); }, {"TL1", "not supported", "I2_S"});
  expect_error([] { tensor_nbytes(TensorType::TL2, 256, 256); }, {"TL2", "not supported"});
  expect_error([] { tensor_nbytes(TensorType::I2_S, 1ull << 40, 1ull << 40); }, {"overflow"});
  expect_error([] { tensor_nbytes(TensorType::F32, 1ull << 62, 16); }, {"overflow"});
}

}  // namespace
}  // namespace bitnet
