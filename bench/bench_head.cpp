// LM-head microbenchmarks at BitNet b1.58 2B4T's tied head (128256 x 2560), one thread, for every
// head backend this CPU runs: F16, Q8_0 and Q6_K weights. One token (generation) streams the whole
// matrix from memory (it is larger than any cache); bytes/s counts weight bytes.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "bitnet/head_kernels.h"

namespace bitnet {
namespace {

constexpr int64_t kVocab = 128256, kEmbd = 2560;

size_t head_row_bytes(HeadType type, int64_t k) {
  switch (type) {
    case HeadType::F16: return (size_t)k * 2;
    case HeadType::Q8_0: return (size_t)k / 32 * 34;
    case HeadType::Q6_K: return (size_t)k / 256 * 210;
  }
  return 0;
}

uint64_t next_random(uint64_t& state) {  // xorshift64: fast fill of a 0.7 GB matrix
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

// Random rows with every block scale (and every f16 value) a finite small number.
std::vector<uint8_t> random_head(HeadType type, int64_t rows, int64_t k) {
  const size_t row_bytes = head_row_bytes(type, k);
  std::vector<uint8_t> w(rows * row_bytes);
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i + 8 <= w.size(); i += 8) {
    const uint64_t r = next_random(state);
    std::memcpy(&w[i], &r, 8);
  }
  const uint16_t small_f16 = 0x2000;  // 2^-7
  auto put = [&](size_t at) { std::memcpy(&w[at], &small_f16, 2); };
  if (type == HeadType::F16)
    for (size_t i = 0; i < w.size(); i += 2) w[i + 1] &= 0x3b;  // exponent below 15: |value| < 1
  else
    for (int64_t r = 0; r < rows; ++r)
      for (size_t b = 0; b < row_bytes; b += type == HeadType::Q8_0 ? 34 : 210)
        put(r * row_bytes + b + (type == HeadType::Q8_0 ? 0 : 208));
  return w;
}

void bench_head_gemm(benchmark::State& state, const HeadKernels* kn, HeadType type, int64_t n_tokens) {
  const std::vector<uint8_t> w = random_head(type, kVocab, kEmbd);
  std::vector<float> x(kEmbd);
  uint64_t seed = 1;
  for (float& v : x) v = (float)(int64_t)(next_random(seed) % 2001 - 1000) / 1000.0f;
  const size_t act_bytes = head_act_row_bytes(type, kEmbd);
  std::vector<uint8_t> acts(n_tokens * act_bytes);
  for (int64_t t = 0; t < n_tokens; ++t) head_quantize_acts(type, x.data(), kEmbd, &acts[t * act_bytes]);
  std::vector<float> y(n_tokens * kVocab);
  const HeadGemmArgs a{w.data(), head_row_bytes(type, kEmbd), kEmbd, acts.data(), act_bytes, n_tokens,
                       y.data(), (size_t)kVocab, 0, kVocab};
  auto gemm = type == HeadType::F16 ? kn->gemm_f16 : type == HeadType::Q8_0 ? kn->gemm_q8_0 : kn->gemm_q6_k;
  for (auto _ : state) {
    gemm(a);
    benchmark::DoNotOptimize(y.data());
  }
  const double iters = (double)state.iterations();
  state.counters["bytes/s"] = benchmark::Counter(iters * (double)w.size(), benchmark::Counter::kIsRate);
  state.counters["MACs/s"] =
      benchmark::Counter(iters * (double)(kVocab * kEmbd * n_tokens), benchmark::Counter::kIsRate);
}

// The engine's current F16 generation path, for comparison: the main table's dot_f16_f32 per row.
void bench_head_dot_rows(benchmark::State& state, const Kernels* kern) {
  const std::vector<uint8_t> w = random_head(HeadType::F16, kVocab, kEmbd);
  std::vector<float> x(kEmbd, 0.5f), y(kVocab);
  for (auto _ : state) {
    for (int64_t m = 0; m < kVocab; ++m)
      y[m] = kern->dot_f16_f32(reinterpret_cast<const uint16_t*>(&w[(size_t)m * kEmbd * 2]), x.data(), kEmbd);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["bytes/s"] = benchmark::Counter((double)state.iterations() * (double)w.size(), benchmark::Counter::kIsRate);
}

const bool registered = [] {
  std::vector<const HeadKernels*> seen;
  for (Isa isa : available_isas()) {
    const HeadKernels* kn = head_kernels_for(isa);
    if (!kn || std::find(seen.begin(), seen.end(), kn) != seen.end()) continue;
    seen.push_back(kn);
    benchmark::RegisterBenchmark((std::string("head_dot_f16_rows/") + isa_name(isa) + "/128256x2560").c_str(),
                                 bench_head_dot_rows, kernels_for(isa))
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    for (HeadType type : {HeadType::F16, HeadType::Q8_0, HeadType::Q6_K})
      for (int64_t n_tokens : {1, 2, 4, 8, 16}) {
        if (kn->isa == Isa::Scalar && n_tokens > 1) continue;  // seconds per call; GEMV is enough
        const char* type_name = type == HeadType::F16 ? "f16" : type == HeadType::Q8_0 ? "q8_0" : "q6_k";
        const std::string label = std::string("head_gemm/") + isa_name(kn->isa) + "/" + type_name +
                                  "/128256x2560/tokens:" + std::to_string(n_tokens);
        benchmark::RegisterBenchmark(label.c_str(), bench_head_gemm, kn, type, n_tokens)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
  }
  return true;
}();

}  // namespace
}  // namespace bitnet
