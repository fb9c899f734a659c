// bitnet logits: the logits of every position of a token sequence, as a float32 .npy matrix
// (n_tokens x n_vocab), for comparing the engine against a reference implementation.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <vector>

#include "bitnet/error.h"
#include "bitnet/model.h"
#include "commands.h"
#include "common_params.h"
#include "npy.h"
#include "util/files.h"

namespace bitnet::cli {

int cmd_logits(int argc, char** argv) {
  EngineOptions engine;
  engine.n_batch = 0;  // default: the whole sequence in one pass
  std::optional<std::vector<int64_t>> token_list;
  std::optional<std::string> prompt;
  bool add_bos = true, force = false;
  std::string out_path;

  OptionTable t("usage: bitnet logits -m MODEL.gguf (--tokens 1,2,3 | -p TEXT [--no-bos]) -o OUT.npy [options]");
  add_engine_options(t, engine);
  t.value({"--tokens"}, "LIST", "comma-separated token ids, used as given",
          [&](const std::string& v) { token_list = parse_int_list("--tokens", v, 0, INT32_MAX); });
  t.value({"-p", "--prompt"}, "TEXT", "text to tokenize (special tokens parsed)", [&](const std::string& v) { prompt = v; });
  t.flag({"--no-bos"}, "do not add BOS when tokenizing -p", [&] { add_bos = false; });
  t.value({"-o", "--output"}, "FILE", "output .npy file", [&](const std::string& v) { out_path = v; });
  t.flag({"--force"}, "overwrite the output file", [&] { force = true; });
  t.epilog("-b N splits the sequence into passes of N tokens; default: one pass.");
  if (!t.parse_command(argc, argv)) return 0;
  require_model(engine);
  if (out_path.empty()) throw Error("no output file given (-o OUT.npy)");
  check_output_path(out_path, force);
  if (token_list.has_value() == prompt.has_value()) throw Error("give the input as --tokens or as -p, one of them");

  std::unique_ptr<Model> model = load_model(engine, false);
  const Tokenizer& tok = model->tokenizer();
  std::vector<int32_t> tokens;
  if (token_list) {
    for (int64_t id : *token_list) tokens.push_back((int32_t)id);
  } else {
    tokens = tok.encode(*prompt, add_bos && tok.add_bos_default(), true);
  }
  if (tokens.empty()) throw Error("no tokens to evaluate");
  const int64_t n_vocab = model->config().n_vocab;
  for (int32_t id : tokens)
    if (id >= n_vocab) throw Error("token id " + std::to_string(id) + " is outside the vocabulary (" + std::to_string(n_vocab) + ")");

  const int n_tokens = (int)tokens.size();
  ContextParams cp = context_params(engine);
  if (cp.n_ctx == 0) cp.n_ctx = n_tokens;
  if (cp.n_ctx < n_tokens) throw Error("-c " + std::to_string(cp.n_ctx) + " is smaller than the " + std::to_string(n_tokens) + " tokens");
  const int pass = engine.n_batch > 0 ? std::min(engine.n_batch, n_tokens) : n_tokens;
  cp.n_batch = pass;
  std::unique_ptr<Context> ctx = Context::create(*model, cp);

  std::vector<float> logits((size_t)n_tokens * n_vocab);
  Stopwatch clock;
  for (int start = 0; start < n_tokens; start += pass) {
    const int end = std::min(n_tokens, start + pass);
    Batch batch;
    for (int i = start; i < end; ++i) batch.add(tokens[i], i, 0, true);
    ctx->decode(batch);
    for (int i = start; i < end; ++i)
      std::memcpy(&logits[(size_t)i * n_vocab], ctx->logits(i - start), n_vocab * sizeof(float));
  }
  const double seconds = clock.seconds();
  write_npy_f32(out_path, logits.data(), n_tokens, n_vocab, force);
  std::fprintf(stderr, "wrote %s: %d x %lld logits (%d tokens in %.3f s, %.1f tokens/s)\n", out_path.c_str(), n_tokens,
               (long long)n_vocab, n_tokens, seconds, seconds > 0 ? n_tokens / seconds : 0.0);
  return 0;
}

}  // namespace bitnet::cli
