// Tokenizer throughput on Moby-Dick (1.2 MB): LLaMA 3 byte-level BPE and LLaMA 2 SentencePiece.
// Counters: tokens/s and bytes/s of input text. Fixtures are found at ../shared/fixtures beside the
// repository or at $BITNET_FIXTURES.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bitnet/tokenizer.h"

namespace bitnet {
namespace {

std::filesystem::path fixture(const std::string& rel) {
  if (const char* env = std::getenv("BITNET_FIXTURES")) return std::filesystem::path(env) / rel;
  return std::filesystem::path(__FILE__).parent_path() / ".." / ".." / "shared" / "fixtures" / rel;
}

void bench_encode(benchmark::State& state, const char* tokenizer_rel) {
  const auto tok_path = fixture(tokenizer_rel), text_path = fixture("corpora/moby_dick.txt");
  if (!std::filesystem::exists(tok_path) || !std::filesystem::exists(text_path)) {
    state.SkipWithError("shared fixtures absent (../shared/fixtures or $BITNET_FIXTURES)");
    return;
  }
  const auto tok = Tokenizer::from_file(tok_path.string());
  std::ifstream in(text_path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  size_t tokens = 0;
  for (auto _ : state) {
    const auto ids = tok->encode(text, true, false);
    tokens += ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<int64_t>(text.size() * state.iterations()));
}

BENCHMARK_CAPTURE(bench_encode, llama3_bpe, "tokenizers/llama3_tokenizer.json")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(bench_encode, llama2_spm, "tokenizers/llama2_tokenizer.model")->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace bitnet
