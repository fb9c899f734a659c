// bitnet [generate]: text completion (llama-cli's flags) and -cnv chat (bitnet.cpp's run_inference.py).
#include <editline/readline.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "bitnet/chat.h"
#include "bitnet/error.h"
#include "bitnet/model.h"
#include "bitnet/sampling.h"
#include "bitnet/tokenizer.h"
#include "commands.h"
#include "common_params.h"

namespace bitnet::cli {
namespace {

struct GenerateOptions {
  EngineOptions engine;
  std::optional<std::string> prompt;
  std::string prompt_file;
  int n_predict = -1;  // -1: until end of generation or a full context; -2: until the context is full
  SamplingParams sampling;
  bool escape = true;
  bool display_prompt = true;
  bool conversation = false;
  std::optional<std::string> system_prompt;
  std::string chat_template;
  std::vector<std::string> reverse_prompts;
  bool verbose = false;
  bool ignore_eos = false;
};

void add_generate_options(OptionTable& t, GenerateOptions& o) {
  t.section("model and engine");
  add_engine_options(t, o.engine);
  t.section("prompt");
  t.value({"-p", "--prompt"}, "TEXT", "prompt (with -cnv: the system prompt)", [&o](const std::string& v) { o.prompt = v; });
  t.value({"-f", "--file"}, "FNAME", "read the prompt from a file", [&o](const std::string& v) { o.prompt_file = v; });
  t.flag({"-e", "--escape"}, "process \\n, \\t, \\xNN... in the prompt (default: on)", [&o] { o.escape = true; });
  t.flag({"--no-escape"}, "take the prompt literally", [&o] { o.escape = false; });
  t.flag({"--no-display-prompt"}, "do not print the prompt before the continuation", [&o] { o.display_prompt = false; });
  t.section("generation");
  t.value({"-n", "--predict", "--n-predict"}, "N",
          "tokens to generate (default: -1 = until end of text or a full context, -2 = until the context is full)",
          [&o](const std::string& v) { o.n_predict = (int)parse_int("--n-predict", v, -2, 1 << 30); });
  t.flag({"--ignore-eos"}, "keep generating past end-of-generation tokens", [&o] { o.ignore_eos = true; });
  t.value({"-r", "--reverse-prompt"}, "TEXT", "stop when the output contains TEXT (repeatable)",
          [&o](const std::string& v) { o.reverse_prompts.push_back(v); });
  t.value({"-s", "--seed"}, "N", "random seed (default: -1 = random)", [&o](const std::string& v) {
    int64_t s = parse_int("--seed", v, -1, 0xFFFFFFFFll);
    o.sampling.seed = s < 0 ? 0xFFFFFFFFull : (uint64_t)s;
  });
  t.value({"--temp"}, "T", "temperature (default: 0.8; 0 = greedy)",
          [&o](const std::string& v) { o.sampling.temp = (float)parse_float("--temp", v); });
  t.value({"--top-k"}, "N", "top-k sampling (default: 40, 0 = off)",
          [&o](const std::string& v) { o.sampling.top_k = (int32_t)parse_int("--top-k", v, 0, 1 << 30); });
  t.value({"--top-p"}, "P", "top-p sampling (default: 0.95, 1.0 = off)",
          [&o](const std::string& v) { o.sampling.top_p = (float)parse_float("--top-p", v); });
  t.value({"--min-p"}, "P", "min-p sampling (default: 0.05, 0.0 = off)",
          [&o](const std::string& v) { o.sampling.min_p = (float)parse_float("--min-p", v); });
  t.value({"--repeat-penalty"}, "X", "repetition penalty (default: 1.0 = off)",
          [&o](const std::string& v) { o.sampling.repeat_penalty = (float)parse_float("--repeat-penalty", v); });
  t.value({"--repeat-last-n"}, "N", "tokens considered by the penalty (default: 64, 0 = off, -1 = context)",
          [&o](const std::string& v) { o.sampling.repeat_last_n = (int32_t)parse_int("--repeat-last-n", v, -1, 1 << 30); });
  t.section("chat");
  t.flag({"-cnv", "--conversation"}, "chat mode (-p becomes the system prompt)", [&o] { o.conversation = true; });
  t.flag({"-no-cnv", "--no-conversation"}, "no chat mode (default)", [&o] { o.conversation = false; });
  t.value({"-sys", "--system-prompt"}, "TEXT", "system prompt for chat mode", [&o](const std::string& v) { o.system_prompt = v; });
  t.value({"--chat-template"}, "NAME", "built-in chat template (default: from the model)",
          [&o](const std::string& v) { o.chat_template = v; });
  t.section("output");
  t.flag({"-v", "--verbose"}, "print model details", [&o] { o.verbose = true; });
}

// Tokens and seconds for a llama.cpp-style timing report.
struct Timings {
  int n_prompt = 0;
  double prompt_s = 0;
  int n_eval = 0;
  double eval_s = 0;
};

enum class Stop { EndOfGeneration, Limit, ContextFull, ReversePrompt };

// One sequence on a context. Remembers which tokens the KV cache holds so that a chat turn decodes
// only what is new.
class Session {
 public:
  Session(const Model& model, Context& ctx, const GenerateOptions& opts)
      : model_(model), ctx_(ctx), opts_(opts), sampler_(opts.sampling, model.tokenizer().n_vocab()) {}

  uint64_t seed() const { return sampler_.seed(); }

  int n_cached() const { return (int)cached_.size(); }

  // Makes the cache hold exactly `tokens` and leaves the logits of the last one ready. Decodes only
  // the part beyond the cached prefix; starts over when the cache holds something else. Returns
  // how many cached tokens were kept.
  size_t feed(const std::vector<int32_t>& tokens, Timings& t) {
    if (tokens.empty()) throw Error("nothing to decode: empty prompt and the vocabulary has no BOS token");
    size_t common = 0;
    while (common < cached_.size() && common < tokens.size() && cached_[common] == tokens[common]) ++common;
    // The last token must be decoded again for its logits; the cache cannot be cut back, so start over.
    if (common < cached_.size() || common == tokens.size()) {
      reset();
      common = 0;
    }
    append(std::vector<int32_t>(tokens.begin() + (ptrdiff_t)common, tokens.end()), t);
    return common;
  }

  // Decodes tokens after the cached ones; the logits of the last are ready afterwards.
  void append(const std::vector<int32_t>& tokens, Timings& t) {
    if (tokens.empty()) throw Error("nothing to decode: empty prompt and the vocabulary has no BOS token");
    if (cached_.size() + tokens.size() > (size_t)ctx_.n_ctx())
      throw Error("the prompt is " + std::to_string(cached_.size() + tokens.size()) +
                  " tokens, the context holds " + std::to_string(ctx_.n_ctx()) + " (-c)");
    Batch batch;
    for (size_t i = 0; i < tokens.size(); ++i) {
      batch.add(tokens[i], (int32_t)(cached_.size() + i), 0, i + 1 == tokens.size());
      sampler_.accept(tokens[i]);
    }
    Stopwatch clock;
    ctx_.decode(batch);
    t.prompt_s += clock.seconds();
    t.n_prompt += (int)batch.size();
    cached_.insert(cached_.end(), tokens.begin(), tokens.end());
    pending_.reset();
  }

  // Decodes the last generated token if generation stopped before decoding it (at -n or a reverse
  // prompt), so that the cache holds everything that was printed. False when the context is full.
  bool commit_pending(Timings& t) {
    if (!pending_) return true;
    if (n_cached() >= ctx_.n_ctx()) return false;
    decode_one(*pending_, t);
    return true;
  }

  // Samples from the ready logits until a stop condition; on_text receives valid UTF-8 as it comes.
  Stop generate(int n_predict, const std::function<void(const std::string&)>& on_text, std::string& generated,
                Timings& t) {
    const Tokenizer& tok = model_.tokenizer();
    StreamDecoder decoder(tok);
    int n_generated = 0;
    Stop stop = Stop::Limit;
    while (n_predict < 0 || n_generated < n_predict) {
      int32_t id = sampler_.sample(ctx_.logits(0));
      sampler_.accept(id);
      if (!opts_.ignore_eos && tok.is_eog(id)) {
        stop = Stop::EndOfGeneration;
        break;
      }
      ++n_generated;
      pending_ = id;
      std::string text = decoder.push(id);
      if (!text.empty()) {
        size_t before = generated.size();
        generated += text;
        on_text(text);
        if (contains_reverse_prompt(generated, before)) {
          stop = Stop::ReversePrompt;
          break;
        }
      }
      if (n_predict >= 0 && n_generated >= n_predict) break;
      if ((int)cached_.size() >= ctx_.n_ctx()) {
        stop = Stop::ContextFull;
        break;
      }
      decode_one(id, t);
    }
    std::string rest = decoder.flush();
    if (!rest.empty()) {
      generated += rest;
      on_text(rest);
    }
    return stop;
  }

  void reset() {
    ctx_.clear_sequence(0);
    cached_.clear();
    pending_.reset();
    sampler_.reset();
  }

 private:
  void decode_one(int32_t id, Timings& t) {
    Batch batch;
    batch.add(id, (int32_t)cached_.size(), 0, true);
    Stopwatch clock;
    ctx_.decode(batch);
    t.eval_s += clock.seconds();
    t.n_eval += 1;
    cached_.push_back(id);
    pending_.reset();
  }

  // Whether a reverse prompt ends in the text added since `before` (so each match is seen once).
  bool contains_reverse_prompt(const std::string& text, size_t before) const {
    for (const auto& r : opts_.reverse_prompts) {
      if (r.empty()) continue;
      size_t from = before >= r.size() ? before - r.size() + 1 : 0;
      if (text.find(r, from) != std::string::npos) return true;
    }
    return false;
  }

  const Model& model_;
  Context& ctx_;
  const GenerateOptions& opts_;
  Sampler sampler_;
  std::vector<int32_t> cached_;
  std::optional<int32_t> pending_;  // sampled and printed, not yet in the cache
};

void write_out(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

double per_second(int n, double s) { return s > 0 ? n / s : 0.0; }

void print_timings(double load_s, const Timings& t, double total_s) {
  auto line = [](const char* what, double s, int n, const char* unit) {
    std::fprintf(stderr, "bitnet_perf: %16s = %10.2f ms / %5d %s (%8.2f ms per token, %8.2f tokens per second)\n", what,
                 s * 1e3, n, unit, n ? s * 1e3 / n : 0.0, per_second(n, s));
  };
  std::fprintf(stderr, "\nbitnet_perf: %16s = %10.2f ms\n", "load time", load_s * 1e3);
  line("prompt eval time", t.prompt_s, t.n_prompt, "tokens");
  line("eval time", t.eval_s, t.n_eval, "runs  ");
  std::fprintf(stderr, "bitnet_perf: %16s = %10.2f ms / %5d tokens\n", "total time", total_s * 1e3, t.n_prompt + t.n_eval);
  std::fprintf(stderr, "bitnet_perf: %16s = %10.2f MiB\n", "peak memory", peak_rss_bytes() / 1048576.0);
}

void report_stop(Stop stop, const Context& ctx) {
  if (stop == Stop::EndOfGeneration) std::fprintf(stderr, "[end of text]\n");
  if (stop == Stop::ContextFull)
    std::fprintf(stderr, "context full (n_ctx = %d): stopping; use -c to enlarge it\n", ctx.n_ctx());
}

std::string chat_template_for(const Model& model, const GenerateOptions& o) {
  if (!o.chat_template.empty()) return o.chat_template;
  std::string name = detect_chat_template(model.chat_template());
  if (!name.empty()) return name;
  name = model.tokenizer().model_name() == "gpt2" ? "llama3" : "llama2";
  std::fprintf(stderr, "chat template: none recognised in the model, using '%s' (--chat-template to choose)\n",
               name.c_str());
  return name;
}

// Reads one line of user input: libedit with history on a terminal, plain lines from a pipe.
std::optional<std::string> read_user_line(bool tty) {
  if (tty) {
    char* raw = readline("> ");
    if (!raw) return std::nullopt;
    std::string line = raw;
    std::free(raw);
    if (!line.empty()) add_history(line.c_str());
    return line;
  }
  std::string line;
  if (!std::getline(std::cin, line)) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

int run_chat(const Model& model, Context& ctx, Session& session, const GenerateOptions& o) {
  const Tokenizer& tok = model.tokenizer();
  const std::string tmpl = chat_template_for(model, o);
  apply_chat_template(tmpl, {}, false);  // an unknown --chat-template fails here, before any input
  std::vector<ChatMessage> system;
  std::string sys = o.system_prompt ? *o.system_prompt : o.prompt.value_or("");
  if (o.escape) sys = process_escapes(sys);
  if (!sys.empty()) system.push_back({"system", sys});
  std::vector<ChatMessage> history = system;
  std::string in_cache;  // the text whose tokens the cache holds
  const bool tty = isatty(STDIN_FILENO);
  if (tty) std::fprintf(stderr, "chat mode (template '%s'): /clear starts over, /exit or Ctrl-D ends\n", tmpl.c_str());

  while (auto line = read_user_line(tty)) {
    if (*line == "/exit") break;
    if (*line == "/clear") {
      history = system;
      in_cache.clear();
      session.reset();
      std::fprintf(stderr, "[ conversation cleared ]\n");
      continue;
    }
    if (line->empty()) continue;
    history.push_back({"user", *line});
    const std::string rendered = apply_chat_template(tmpl, history, true);
    // Only the text after what the cache already holds is tokenized and decoded, as llama-cli
    // does; if the rendering no longer starts with it (a template that trims, /clear), start over.
    const bool extend = session.n_cached() > 0 && !in_cache.empty() && rendered.starts_with(in_cache);
    std::vector<int32_t> tokens = extend ? tok.encode(rendered.substr(in_cache.size()), false, true)
                                         : tok.encode(rendered, tok.add_bos_default(), true);
    const size_t total = (extend ? session.n_cached() : 0) + tokens.size();
    if (total >= (size_t)ctx.n_ctx()) {
      std::fprintf(stderr, "the conversation (%zu tokens) no longer fits the context (n_ctx = %d): /clear starts over\n",
                   total, ctx.n_ctx());
      history.pop_back();
      continue;
    }
    Timings t;
    size_t kept = session.n_cached();
    if (extend && !tokens.empty()) session.append(tokens, t);
    else kept = session.feed(tokens, t);
    if (o.verbose) std::fprintf(stderr, "[ %zu tokens kept in the cache, %d decoded ]\n", kept, t.n_prompt);
    std::string reply;
    Stop stop = session.generate(o.n_predict, write_out, reply, t);
    write_out("\n");
    if (stop == Stop::ContextFull) report_stop(stop, ctx);
    in_cache = session.commit_pending(t) ? rendered + reply : std::string();
    history.push_back({"assistant", reply});
    std::fprintf(stderr, "[ Prompt: %.1f t/s | Generation: %.1f t/s ]\n", per_second(t.n_prompt, t.prompt_s),
                 per_second(t.n_eval, t.eval_s));
  }
  return 0;
}

int run_completion(const Model& model, Context& ctx, Session& session, const GenerateOptions& o, Timings& t) {
  const Tokenizer& tok = model.tokenizer();
  std::string prompt = o.prompt.value_or("");
  if (!o.prompt_file.empty()) {
    prompt = read_text_file(o.prompt_file);
    if (!prompt.empty() && prompt.back() == '\n') prompt.pop_back();  // as llama.cpp reads -f
  }
  if (o.escape) prompt = process_escapes(prompt);
  std::vector<int32_t> tokens = tok.encode(prompt, tok.add_bos_default(), true);
  if (tokens.empty() && tok.bos() >= 0) tokens.push_back(tok.bos());
  if (o.display_prompt) write_out(prompt);
  session.feed(tokens, t);

  // SentencePiece marks a word start with a space; after an empty prompt that space is not text
  // (llama.cpp's detokenizer and llama2.c drop it too).
  bool strip_space = prompt.empty() && tok.model_name() == "llama";
  auto emit = [&](const std::string& text) {
    if (strip_space && !text.empty()) {
      strip_space = false;
      if (text[0] == ' ') return write_out(text.substr(1));
    }
    write_out(text);
  };
  std::string generated;
  Stop stop = session.generate(o.n_predict, emit, generated, t);
  write_out("\n");
  report_stop(stop, ctx);
  return 0;
}

}  // namespace

int cmd_generate(int argc, char** argv) {
  GenerateOptions o;
  OptionTable table("usage: bitnet -m MODEL.gguf [-p PROMPT | -f FILE] [options]\n"
                    "       bitnet -m MODEL.gguf -cnv [-p SYSTEM_PROMPT] [options]   (chat)");
  add_generate_options(table, o);
  std::vector<std::string> positional = table.parse(argc, argv);
  if (table.help_requested()) {
    std::printf("%s", table.help().c_str());
    return 0;
  }
  if (!positional.empty()) throw Error("unexpected argument '" + positional[0] + "' (see --help)");
  if (o.prompt && !o.prompt_file.empty()) throw Error("give the prompt with -p or -f, not both");
  for (auto& r : o.reverse_prompts)
    if (o.escape) r = process_escapes(r);
  require_model(o.engine);

  Stopwatch total;
  std::unique_ptr<Model> model = load_model(o.engine);
  std::unique_ptr<Context> ctx = Context::create(*model, context_params(o.engine));
  const double load_s = total.seconds();
  const int n_threads = ctx->threads().size();
  if (o.verbose) {
    const ModelConfig& c = model->config();
    std::fprintf(stderr,
                 "model: %s | %s | n_vocab = %lld | n_embd = %lld | n_layer = %lld | n_head = %lld | n_head_kv = %lld | "
                 "n_ff = %lld | n_ctx_train = %lld\n",
                 model->description().c_str(), c.arch_name.c_str(), (long long)c.n_vocab, (long long)c.n_embd,
                 (long long)c.n_layer, (long long)c.n_head, (long long)c.n_head_kv, (long long)c.n_ff,
                 (long long)c.n_ctx_train);
    std::fprintf(stderr, "context: n_ctx = %d | KV cache %.2f MiB (%s)\n", ctx->n_ctx(), ctx->kv_bytes() / 1048576.0,
                 kv_type_name(o.engine.kv_type()));
  }
  std::fprintf(stderr, "%s\n", system_info_line(n_threads).c_str());
  Session session(*model, *ctx, o);
  std::fprintf(stderr, "sampler seed: %llu\n", (unsigned long long)session.seed());

  if (o.conversation) return run_chat(*model, *ctx, session, o);
  Timings t;
  int rc = run_completion(*model, *ctx, session, o, t);
  print_timings(load_s, t, total.seconds());
  return rc;
}

}  // namespace bitnet::cli
