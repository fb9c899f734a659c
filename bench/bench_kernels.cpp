// Kernel microbenchmarks at BitNet b1.58 2B4T shapes, one set per backend this CPU runs.
// GEMV (one token) is memory bound: it cycles through enough weight copies to miss every cache,
// and its bytes/s counter is the weight bytes streamed. GEMM (64 tokens) is compute bound: one copy,
// MACs/s is the figure of merit.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bitnet/kernels.h"

namespace bitnet {
namespace {

constexpr size_t kColdPoolBytes = size_t(512) << 20;  // larger than any last-level cache here

std::vector<uint8_t> random_packed_matrix(int64_t m, int64_t k, std::mt19937& rng) {
  std::uniform_int_distribution<int> trit(-1, 1);
  const size_t stride = ternary_row_stride(k);
  std::vector<uint8_t> w(m * stride);
  std::vector<int8_t> t(k);
  for (int64_t r = 0; r < m; ++r) {
    for (int8_t& v : t) v = (int8_t)trit(rng);
    pack_ternary_row(t.data(), k, &w[r * stride]);
  }
  return w;
}

// The ternary product on an M x K matrix in the runtime layout, or with `tq1` in TQ1_0 blocks
// (random code bytes: every byte value is five valid digits).
void bench_ternary(benchmark::State& state, const Kernels* kern, int64_t m, int64_t k, int64_t n_tokens, bool tq1) {
  std::mt19937 rng(1);
  const size_t stride = tq1 ? tq1_row_bytes(k) : ternary_row_stride(k), matrix_bytes = m * stride;
  std::vector<uint8_t> one = random_packed_matrix(m, k, rng);
  if (tq1) {
    one.resize(matrix_bytes);
    std::uniform_int_distribution<int> byte(0, 255);
    for (uint8_t& b : one) b = (uint8_t)byte(rng);
    for (size_t block = 0; block < matrix_bytes / kTq1BlockBytes; ++block) {  // d = 0.5 everywhere
      one[block * kTq1BlockBytes + 52] = 0x00;
      one[block * kTq1BlockBytes + 53] = 0x38;
    }
  }
  // Copies of the matrix, so that a GEMV reads its weights from memory rather than a cache.
  const size_t copies = n_tokens == 1 ? std::max<size_t>(1, kColdPoolBytes / matrix_bytes) : 1;
  std::vector<uint8_t> pool(copies * matrix_bytes);
  for (size_t c = 0; c < copies; ++c) std::memcpy(&pool[c * matrix_bytes], one.data(), matrix_bytes);

  const int64_t kp = ternary_padded_cols(k);
  std::vector<float> x(k), row_scale(m, 0.5f), act_scale(n_tokens), y(n_tokens * m);
  std::vector<int8_t> q(n_tokens * kp);
  std::vector<int32_t> act_sum(n_tokens);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t n = 0; n < n_tokens; ++n) {
    for (float& v : x) v = normal(rng);
    kern->quantize_row_i8(x.data(), k, kp, &q[n * kp], &act_scale[n], &act_sum[n]);
  }
  size_t copy = 0;
  for (auto _ : state) {
    const TernaryGemmArgs a{&pool[copy * matrix_bytes], stride, tq1 ? nullptr : row_scale.data(), kp, q.data(), (size_t)kp,
                            act_scale.data(), act_sum.data(), n_tokens, y.data(), (size_t)m, 0, m};
    (tq1 ? kern->tq1_gemm : kern->ternary_gemm)(a);
    benchmark::DoNotOptimize(y.data());
    copy = (copy + 1) % copies;
  }
  const double iters = (double)state.iterations();
  state.counters["bytes/s"] = benchmark::Counter(iters * (double)(m * (tq1 ? stride : ternary_row_bytes(k))), benchmark::Counter::kIsRate);
  state.counters["MACs/s"] = benchmark::Counter(iters * (double)(m * k * n_tokens), benchmark::Counter::kIsRate);
}

void bench_quantize(benchmark::State& state, const Kernels* kern, int64_t k) {
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(k);
  for (float& v : x) v = normal(rng);
  const int64_t kp = ternary_padded_cols(k);
  std::vector<int8_t> q(kp);
  float scale;
  int32_t sum;
  for (auto _ : state) {
    kern->quantize_row_i8(x.data(), k, kp, q.data(), &scale, &sum);
    benchmark::DoNotOptimize(q.data());
  }
  state.counters["bytes/s"] = benchmark::Counter((double)state.iterations() * (double)k * 4, benchmark::Counter::kIsRate);
}

// The tied LM head of 2B4T: one dot product per vocabulary row over an f16 matrix of 656 MB.
void bench_head(benchmark::State& state, const Kernels* kern, int64_t rows, int64_t k) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(k), row(k);
  for (float& v : x) v = normal(rng);
  std::vector<uint16_t> head(rows * k);
  for (float& v : row) v = normal(rng) * 0.02f;
  for (int64_t r = 0; r < rows; ++r) kern->fp32_to_fp16_row(row.data(), &head[r * k], k);
  std::vector<float> logits(rows);
  for (auto _ : state) {
    for (int64_t r = 0; r < rows; ++r) logits[r] = kern->dot_f16_f32(&head[r * k], x.data(), k);
    benchmark::DoNotOptimize(logits.data());
  }
  const double iters = (double)state.iterations();
  state.counters["bytes/s"] = benchmark::Counter(iters * (double)(rows * k * 2), benchmark::Counter::kIsRate);
  state.counters["MACs/s"] = benchmark::Counter(iters * (double)(rows * k), benchmark::Counter::kIsRate);
}

struct Shape {
  int64_t m, k;
};

const bool registered = [] {
  const Shape shapes[] = {{2560, 2560}, {6912, 2560}, {2560, 6912}};
  for (Isa isa : available_isas()) {
    const Kernels* kern = kernels_for(isa);
    const std::string name = isa_name(isa);
    for (int64_t n_tokens : {1, 2, 4, 8, 16, 64})
      for (const Shape& s : shapes) {
        // The scalar reference at 64 tokens takes seconds per call; its GEMV is enough to compare.
        if (isa == Isa::Scalar && n_tokens > 1) continue;
        for (bool tq1 : {false, true}) {
          const std::string label = std::string(tq1 ? "tq1_gemm/" : "ternary_gemm/") + name + "/" + std::to_string(s.m) +
                                    "x" + std::to_string(s.k) + "/tokens:" + std::to_string(n_tokens);
          benchmark::RegisterBenchmark(label.c_str(), bench_ternary, kern, s.m, s.k, n_tokens, tq1)
              ->Unit(benchmark::kMicrosecond)
              ->UseRealTime();
        }
      }
    for (int64_t k : {2560, 6912})
      benchmark::RegisterBenchmark(("quantize_row_i8/" + name + "/" + std::to_string(k)).c_str(), bench_quantize, kern, k)
          ->Unit(benchmark::kNanosecond);
    benchmark::RegisterBenchmark(("dot_f16_f32_head/" + name + "/128256x2560").c_str(), bench_head, kern,
                                 int64_t(128256), int64_t(2560))
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  return true;
}();

}  // namespace
}  // namespace bitnet

BENCHMARK_MAIN();
