// Attention kernels of every available backend against the scalar reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <random>
#include <vector>

#include "bitnet/attention_kernels.h"

namespace bitnet {
namespace {

uint16_t to_half(float f, const Kernels& kn) {
  uint16_t h;
  kn.fp32_to_fp16_row(&f, &h, 1);
  return h;
}

struct Data {
  std::vector<uint16_t> k, v;
  std::vector<float> q;
};

Data make_data(int64_t n_pos, int64_t hd, int64_t n_q, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  const Kernels& scalar = *kernels_for(Isa::Scalar);
  Data d;
  // Keys in tiles; the lanes of the last tile past n_pos hold NaN, which must not reach a score.
  const int64_t tiles = (n_pos + kKeyTile - 1) / kKeyTile;
  d.k.assign((size_t)(tiles * kKeyTile * hd), 0x7E00);
  for (int64_t t = 0; t < n_pos; ++t)
    for (int64_t x = 0; x < hd; ++x) d.k[(size_t)key_index(t, x, hd)] = to_half(normal(rng), scalar);
  for (int64_t i = 0; i < n_pos * hd; ++i) d.v.push_back(to_half(normal(rng), scalar));
  for (int64_t i = 0; i < n_q * hd; ++i) d.q.push_back(normal(rng));
  return d;
}

// Softmax-like weights in [0, 1) for values_*.
std::vector<float> attention_weights(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> w((size_t)n);
  for (auto& x : w) x = u(rng);
  return w;
}

const int64_t kPositions[] = {1, 7, 16, 100, 1025};
const int64_t kHeadDims[] = {13, 64, 72, 128};
const int64_t kQueries[] = {1, 3, 4, 5};

TEST(AttentionKernels, KeyTilesHoldEachPositionAndDimensionOnce) {
  for (int64_t hd : kHeadDims) {
    std::vector<int> seen((size_t)(3 * kKeyTile * hd), 0);
    for (int64_t t = 0; t < 3 * kKeyTile; ++t)
      for (int64_t x = 0; x < hd; ++x) ++seen[(size_t)key_index(t, x, hd)];
    EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), (long)seen.size()) << "hd " << hd;
    EXPECT_EQ(key_index(kKeyTile + 1, 2, hd), kKeyTile * hd + 2 * kKeyTile + 1);
  }
}

TEST(AttentionKernels, ScoresMatchScalar) {
  const AttentionKernels& ref = *attention_kernels_for(Isa::Scalar);
  for (Isa isa : available_isas()) {
    const AttentionKernels& kn = *attention_kernels_for(isa);
    SCOPED_TRACE(isa_name(isa));
    for (int64_t n_pos : kPositions)
      for (int64_t hd : kHeadDims)
        for (int64_t n_q : kQueries) {
          Data d = make_data(n_pos, hd, n_q, (uint32_t)(n_pos * 7 + hd * 3 + n_q));
          std::vector<float> want((size_t)(n_q * n_pos)), got(want.size());
          ref.scores_f16(d.k.data(), n_pos, hd, d.q.data(), n_q, 0.125f, want.data());
          kn.scores_f16(d.k.data(), n_pos, hd, d.q.data(), n_q, 0.125f, got.data());
          for (size_t i = 0; i < want.size(); ++i)
            ASSERT_NEAR(got[i], want[i], 1e-5 * 0.125 * 4 * hd) << "n_pos " << n_pos << " hd " << hd << " n_q " << n_q;
        }
  }
}

TEST(AttentionKernels, ExpSumMatchesStdExp) {
  for (Isa isa : available_isas()) {
    const AttentionKernels& kn = *attention_kernels_for(isa);
    SCOPED_TRACE(isa_name(isa));
    for (int64_t n : {1, 5, 16, 17, 1000}) {
      std::vector<float> x((size_t)n);
      std::mt19937 rng((uint32_t)n);
      std::uniform_real_distribution<float> u(-100.f, 3.f);
      for (auto& v : x) v = u(rng);
      const float max = *std::max_element(x.begin(), x.end());
      std::vector<float> got = x;
      const float sum = kn.exp_sum(got.data(), n, max);
      double want_sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double want = std::exp((double)(x[(size_t)i] - max));  // the difference rounds to float first, as in the kernels
        want_sum += want;
        ASSERT_NEAR(got[(size_t)i], want, 1e-6 * want + 1e-37) << "x " << x[(size_t)i] - max;
      }
      EXPECT_NEAR(sum, want_sum, 1e-6 * want_sum);
    }
  }
}

TEST(AttentionKernels, ValuesMatchScalar) {
  const AttentionKernels& ref = *attention_kernels_for(Isa::Scalar);
  for (Isa isa : available_isas()) {
    const AttentionKernels& kn = *attention_kernels_for(isa);
    SCOPED_TRACE(isa_name(isa));
    for (int64_t n_pos : kPositions)
      for (int64_t hd : kHeadDims)
        for (int64_t n_q : kQueries) {
          Data d = make_data(n_pos, hd, n_q, (uint32_t)(n_pos + hd + n_q));
          const std::vector<float> w = attention_weights(n_q * n_pos, (uint32_t)n_pos);
          std::vector<float> want((size_t)(n_q * hd), 0.5f), got = want;  // accumulates onto out
          ref.values_f16(d.v.data(), n_pos, hd, w.data(), n_q, want.data());
          kn.values_f16(d.v.data(), n_pos, hd, w.data(), n_q, got.data());
          for (size_t i = 0; i < want.size(); ++i)
            ASSERT_NEAR(got[i], want[i], 1e-5 * 4 * n_pos) << "n_pos " << n_pos << " hd " << hd << " n_q " << n_q;
        }
  }
}

// ---- Q8_0 cache ----

struct Q8Data {
  std::vector<uint8_t> k, v;    // key tiles and value rows in the Q8_0 layout
  std::vector<float> k_dq, v_dq;  // their dequantized values, [position][hd]
  std::vector<float> q;
};

Q8Data make_q8_data(int64_t n_pos, int64_t hd, int64_t n_q, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  Q8Data d;
  const int64_t tiles = (n_pos + kKeyTile - 1) / kKeyTile;
  d.k.assign(tiles * q8_key_tile_bytes(hd), 0x80);  // lanes past n_pos: -128 codes, NaN scales
  for (int64_t t = tiles * kKeyTile - 1; t >= n_pos; --t)
    for (int64_t b = 0; b < hd / kQ8Block; ++b) {
      const float nan = NAN;
      std::memcpy(&d.k[t / kKeyTile * q8_key_tile_bytes(hd) + kKeyTile * hd + (b * kKeyTile + t % kKeyTile) * 4], &nan, 4);
    }
  d.v.resize(n_pos * q8_value_row_bytes(hd));
  std::vector<float> row((size_t)hd), scales((size_t)(hd / kQ8Block));
  std::vector<int8_t> codes((size_t)hd);
  for (int64_t t = 0; t < n_pos; ++t) {
    for (auto& x : row) x = normal(rng);
    quantize_q8_blocks(row.data(), hd, codes.data(), scales.data());
    uint8_t* tile = &d.k[t / kKeyTile * q8_key_tile_bytes(hd)];
    for (int64_t x = 0; x < hd; ++x) {
      tile[x * kKeyTile + t % kKeyTile] = (uint8_t)codes[(size_t)x];
      d.k_dq.push_back(codes[(size_t)x] * scales[(size_t)(x / kQ8Block)]);
    }
    for (int64_t b = 0; b < hd / kQ8Block; ++b)
      std::memcpy(tile + kKeyTile * hd + (b * kKeyTile + t % kKeyTile) * 4, &scales[(size_t)b], 4);
    for (auto& x : row) x = normal(rng);
    uint8_t* vrow = &d.v[t * q8_value_row_bytes(hd)];
    quantize_q8_blocks(row.data(), hd, reinterpret_cast<int8_t*>(vrow), reinterpret_cast<float*>(vrow + hd));
    for (int64_t x = 0; x < hd; ++x)
      d.v_dq.push_back(reinterpret_cast<const int8_t*>(vrow)[x] * reinterpret_cast<const float*>(vrow + hd)[x / kQ8Block]);
  }
  for (int64_t i = 0; i < n_q * hd; ++i) d.q.push_back(normal(rng));
  return d;
}

const int64_t kQ8HeadDims[] = {32, 96, 128};

TEST(AttentionKernels, Q8BlocksRoundTripWithinHalfAStep) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.f, 2.f);
  std::vector<float> x(96);
  for (auto& v : x) v = normal(rng);
  std::fill(x.begin() + 32, x.begin() + 64, 0.f);  // an all-zero block
  std::vector<int8_t> q(96);
  std::vector<float> s(3);
  quantize_q8_blocks(x.data(), 96, q.data(), s.data());
  EXPECT_EQ(s[1], 0.f);
  for (int i = 0; i < 96; ++i) EXPECT_LE(std::fabs(q[(size_t)i] * s[(size_t)(i / 32)] - x[(size_t)i]), s[(size_t)(i / 32)] * 0.5f + 1e-7f);
}

TEST(AttentionKernels, Q8QuantizerMapsNaNToZero) {
  std::vector<float> x(64, 1.5f);
  x[3] = NAN;
  x[40] = -NAN;
  x[41] = -3.0f;
  std::vector<int8_t> q(64, 99);
  std::vector<float> s(2);
  quantize_q8_blocks(x.data(), 64, q.data(), s.data());
  EXPECT_EQ(q[3], 0);
  EXPECT_EQ(q[40], 0);
  EXPECT_EQ(s[0], 1.5f / 127.0f);  // NaN does not take part in the block's absmax
  EXPECT_EQ(s[1], 3.0f / 127.0f);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[41], -127);
}

TEST(AttentionKernels, Q8MatchesDequantizedFloatsAndScalar) {
  const AttentionKernels& ref = *attention_kernels_for(Isa::Scalar);
  for (int64_t n_pos : kPositions)
    for (int64_t hd : kQ8HeadDims)
      for (int64_t n_q : kQueries) {
        SCOPED_TRACE("n_pos " + std::to_string(n_pos) + " hd " + std::to_string(hd) + " n_q " + std::to_string(n_q));
        const Q8Data d = make_q8_data(n_pos, hd, n_q, (uint32_t)(n_pos * 5 + hd + n_q));
        const std::vector<float> w = attention_weights(n_q * n_pos, (uint32_t)n_pos);
        // The scalar reference against float64 on the dequantized cache.
        std::vector<float> scores((size_t)(n_q * n_pos)), out((size_t)(n_q * hd), 0.f);
        ref.scores_q8(d.k.data(), n_pos, hd, d.q.data(), n_q, 0.125f, scores.data());
        ref.values_q8(d.v.data(), n_pos, hd, w.data(), n_q, out.data());
        for (int64_t j = 0; j < n_q; ++j) {
          for (int64_t t = 0; t < n_pos; ++t) {
            double want = 0;
            for (int64_t x = 0; x < hd; ++x) want += (double)d.q[(size_t)(j * hd + x)] * d.k_dq[(size_t)(t * hd + x)];
            ASSERT_NEAR(scores[(size_t)(j * n_pos + t)], 0.125 * want, 1e-5 * hd);
          }
          for (int64_t x = 0; x < hd; ++x) {
            double want = 0;
            for (int64_t t = 0; t < n_pos; ++t) want += (double)w[(size_t)(j * n_pos + t)] * d.v_dq[(size_t)(t * hd + x)];
            ASSERT_NEAR(out[(size_t)(j * hd + x)], want, 1e-5 * 4 * n_pos);
          }
        }
        for (Isa isa : available_isas()) {
          const AttentionKernels& kn = *attention_kernels_for(isa);
          SCOPED_TRACE(isa_name(isa));
          std::vector<float> got_scores(scores.size()), got_out((size_t)(n_q * hd), 0.f);
          kn.scores_q8(d.k.data(), n_pos, hd, d.q.data(), n_q, 0.125f, got_scores.data());
          kn.values_q8(d.v.data(), n_pos, hd, w.data(), n_q, got_out.data());
          for (size_t i = 0; i < scores.size(); ++i) ASSERT_NEAR(got_scores[i], scores[i], 1e-5 * 0.125 * 4 * hd);
          for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(got_out[i], out[i], 1e-5 * 4 * n_pos);
        }
      }
}

}  // namespace
}  // namespace bitnet
