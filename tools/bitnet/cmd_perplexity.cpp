// bitnet perplexity: llama-perplexity's measure. The text is tokenized once (with BOS when the
// vocabulary adds it) and cut into chunks of n_ctx tokens; each chunk is evaluated from an empty
// cache with its first token replaced by BOS, and only its second half is scored (each token from
// position n_ctx/2 on predicts the next), so every scored token has at least n_ctx/2 of context.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "bitnet/error.h"
#include "bitnet/model.h"
#include "commands.h"
#include "common_params.h"

namespace bitnet::cli {
namespace {

// -log p(target) under softmax(logits), summed in double as llama.cpp does.
double negative_log_likelihood(const float* logits, int64_t n_vocab, int32_t target) {
  float max_logit = *std::max_element(logits, logits + n_vocab);
  double sum_exp = 0.0;
  for (int64_t i = 0; i < n_vocab; ++i) sum_exp += std::exp(logits[i] - max_logit);
  return -(logits[target] - max_logit - std::log(sum_exp));
}

}  // namespace

int cmd_perplexity(int argc, char** argv) {
  EngineOptions engine;
  engine.n_ctx = 512;
  std::string text_path;
  int n_chunks = -1;
  OptionTable t("usage: bitnet perplexity -m MODEL.gguf -f TEXT_FILE [-c N] [-b N] [--chunks N] [options]");
  add_engine_options(t, engine);
  t.value({"-f", "--file"}, "FNAME", "text to evaluate", [&](const std::string& v) { text_path = v; });
  t.value({"--chunks"}, "N", "evaluate at most N chunks (default: -1 = all)",
          [&](const std::string& v) { n_chunks = (int)parse_int("--chunks", v, -1, 1 << 30); });
  t.epilog("-c defaults to 512 here.");
  if (!t.parse_command(argc, argv)) return 0;
  require_model(engine);
  if (text_path.empty()) throw Error("no text file given (-f FILE)");
  const std::string text = read_text_file(text_path);

  std::unique_ptr<Model> model = load_model(engine);
  const Tokenizer& tok = model->tokenizer();
  const bool add_bos = tok.add_bos_default() && tok.bos() >= 0;
  ContextParams cp = context_params(engine);
  if (cp.n_ctx == 0) cp.n_ctx = (int)model->config().n_ctx_train;
  const int n_ctx = cp.n_ctx;
  if (n_ctx < 4) throw Error("-c " + std::to_string(n_ctx) + " is too small for perplexity");
  const int n_batch = std::min(engine.n_batch, n_ctx);
  cp.n_batch = n_batch;

  Stopwatch clock;
  std::vector<int32_t> tokens = tok.encode(text, add_bos, false);
  std::fprintf(stderr, "perplexity: tokenizing the input took %.2f s, %zu tokens\n", clock.seconds(), tokens.size());
  if (tokens.size() < 2 * (size_t)n_ctx)
    throw Error("'" + text_path + "' has " + std::to_string(tokens.size()) + " tokens; perplexity with a context of " +
                std::to_string(n_ctx) + " needs at least " + std::to_string(2 * n_ctx));

  std::unique_ptr<Context> ctx = Context::create(*model, cp);
  std::fprintf(stderr, "%s\n", system_info_line(ctx->threads().size()).c_str());
  const int max_chunks = (int)(tokens.size() / n_ctx);
  const int chunks = n_chunks < 0 ? max_chunks : std::min(n_chunks, max_chunks);
  const int64_t n_vocab = model->config().n_vocab;
  const int first = n_ctx / 2;
  std::fprintf(stderr, "perplexity: calculating perplexity over %d chunks, n_ctx=%d, batch_size=%d\n", chunks, n_ctx, n_batch);

  double nll = 0, nll2 = 0;
  int64_t count = 0;
  for (int c = 0; c < chunks; ++c) {
    Stopwatch chunk_clock;
    const size_t start = (size_t)c * n_ctx;
    ctx->seq_release(0);
    for (int b0 = 0; b0 < n_ctx; b0 += n_batch) {
      const int b1 = std::min(n_ctx, b0 + n_batch);
      Batch batch;
      // Logits are needed for positions first .. n_ctx-2, each predicting the token after it.
      for (int p = b0; p < b1; ++p) {
        int32_t id = (p == 0 && add_bos) ? tok.bos() : tokens[start + p];
        batch.add(id, p, 0, p >= first && p <= n_ctx - 2);
      }
      ctx->decode(batch);
      size_t j = 0;
      for (int p = b0; p < b1; ++p) {
        if (p < first || p > n_ctx - 2) continue;
        double v = negative_log_likelihood(ctx->logits(j++), n_vocab, tokens[start + p + 1]);
        nll += v;
        nll2 += v * v;
        ++count;
      }
    }
    if (c == 0) {
      double s = chunk_clock.seconds();
      std::fprintf(stderr, "perplexity: %.2f seconds per pass - ETA %.2f minutes\n", s, s * chunks / 60.0);
    }
    std::fprintf(stderr, "[%d]%.4f,", c + 1, std::exp(nll / count));
    std::fflush(stderr);
  }
  std::fprintf(stderr, "\n");

  const double mean = nll / count;
  const double ppl = std::exp(mean);
  const double variance = nll2 / count - mean * mean;
  if (variance > 0 && count > 1) {
    // Standard error of the mean log-likelihood, carried to PPL to first order.
    std::printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, std::sqrt(variance / (count - 1)) * ppl);
  } else {
    std::printf("Final estimate: PPL = %.4f\n", ppl);
    std::fprintf(stderr, "unexpected non-positive variance of log(prob)\n");
  }
  return 0;
}

}  // namespace bitnet::cli
