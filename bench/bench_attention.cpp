// Attention microbenchmarks: one KV head of BitNet b1.58 2B4T (head_dim 128, a GQA group of 4
// query heads) over a cache of 4096 positions, one thread, for every backend this CPU runs. This is
// what one generated token costs per (layer, KV head) at depth 4096; bytes/s counts cache bytes.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bitnet/attention_kernels.h"

namespace bitnet {
namespace {

constexpr int64_t kHeadDim = 128, kGroup = 4, kPositions = 4096;

struct Inputs {
  std::vector<uint16_t> cache;  // kPositions x kHeadDim halves (key tiles or value rows: same bytes)
  std::vector<float> q, scores, out;
};

Inputs make_inputs() {
  Inputs in;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.f, 1.f);
  const Kernels& kn = kernels();
  std::vector<float> row(kHeadDim);
  in.cache.resize((size_t)(kPositions * kHeadDim));
  for (int64_t t = 0; t < kPositions; ++t) {
    for (auto& x : row) x = normal(rng);
    kn.fp32_to_fp16_row(row.data(), in.cache.data() + t * kHeadDim, kHeadDim);
  }
  for (int64_t i = 0; i < kGroup * kHeadDim; ++i) in.q.push_back(normal(rng));
  in.scores.assign((size_t)(kGroup * kPositions), 0.f);
  in.out.assign((size_t)(kGroup * kHeadDim), 0.f);
  return in;
}

void set_counters(benchmark::State& state) {
  state.counters["bytes/s"] = benchmark::Counter(
      (double)state.iterations() * kPositions * kHeadDim * 2, benchmark::Counter::kIsRate);
}

void bench_scores(benchmark::State& state, const AttentionKernels* ak) {
  Inputs in = make_inputs();
  for (auto _ : state) {
    ak->scores_f16(in.cache.data(), kPositions, kHeadDim, in.q.data(), kGroup, 0.088f, in.scores.data());
    benchmark::DoNotOptimize(in.scores.data());
  }
  set_counters(state);
}

void bench_values(benchmark::State& state, const AttentionKernels* ak) {
  Inputs in = make_inputs();
  for (auto& s : in.scores) s = 1.0f / kPositions;
  for (auto _ : state) {
    ak->values_f16(in.cache.data(), kPositions, kHeadDim, in.scores.data(), kGroup, in.out.data());
    benchmark::DoNotOptimize(in.out.data());
  }
  set_counters(state);
}

// The same over a Q8_0 cache (int8 + one f32 scale per 32 values; the key and value layouts have
// the same size, so one random buffer serves both).
void bench_q8(benchmark::State& state, const AttentionKernels* ak, bool values) {
  Inputs in = make_inputs();
  std::vector<uint8_t> cache((size_t)kPositions * q8_value_row_bytes(kHeadDim));
  std::mt19937 rng(2);
  for (size_t i = 0; i < cache.size(); i += 4) {
    const float scale = 0.01f;
    const uint32_t r = (uint32_t)rng();
    std::memcpy(&cache[i], &r, 4);
    if (i % q8_value_row_bytes(kHeadDim) >= (size_t)kHeadDim) std::memcpy(&cache[i], &scale, 4);  // sane scales
  }
  for (auto& s : in.scores) s = 1.0f / kPositions;
  for (auto _ : state) {
    if (values) ak->values_q8(cache.data(), kPositions, kHeadDim, in.scores.data(), kGroup, in.out.data());
    else ak->scores_q8(cache.data(), kPositions, kHeadDim, in.q.data(), kGroup, 0.088f, in.scores.data());
    benchmark::DoNotOptimize(in.out.data());
    benchmark::DoNotOptimize(in.scores.data());
  }
  state.counters["bytes/s"] =
      benchmark::Counter((double)state.iterations() * (double)cache.size(), benchmark::Counter::kIsRate);
}

void bench_exp_sum(benchmark::State& state, const AttentionKernels* ak) {
  std::vector<float> source((size_t)(kGroup * kPositions)), x(source.size());
  for (size_t i = 0; i < source.size(); ++i) source[i] = -(float)(i % 97) * 0.1f;
  for (auto _ : state) {
    x = source;  // exp_sum works in place
    benchmark::DoNotOptimize(ak->exp_sum(x.data(), (int64_t)x.size(), 0.f));
  }
  state.counters["values/s"] =
      benchmark::Counter((double)state.iterations() * (double)x.size(), benchmark::Counter::kIsRate);
}

int register_benchmarks() {
  for (Isa isa : available_isas()) {
    const AttentionKernels* ak = attention_kernels_for(isa);
    const std::string name = isa_name(isa);
    benchmark::RegisterBenchmark(("attention_scores_d4096/" + name).c_str(), bench_scores, ak);
    benchmark::RegisterBenchmark(("attention_values_d4096/" + name).c_str(), bench_values, ak);
    benchmark::RegisterBenchmark(("attention_exp_sum/" + name).c_str(), bench_exp_sum, ak);
    benchmark::RegisterBenchmark(("attention_scores_q8_d4096/" + name).c_str(), bench_q8, ak, false);
    benchmark::RegisterBenchmark(("attention_values_q8_d4096/" + name).c_str(), bench_q8, ak, true);
  }
  return 0;
}

const int registered = register_benchmarks();

}  // namespace
}  // namespace bitnet
