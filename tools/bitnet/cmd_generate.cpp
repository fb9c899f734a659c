// bitnet [generate]: text completion (llama-cli's flags) and -cnv chat (bitnet.cpp's run_inference.py),
// both as requests to the engine (one slot).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <clocale>
#include <condition_variable>
#include <cstdio>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bitnet/chat.h"
#include "bitnet/engine.h"
#include "bitnet/error.h"
#include "bitnet/model.h"
#include "bitnet/sampling.h"
#include "bitnet/tokenizer.h"
#include "chat_input.h"
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
  bool context_shift = false;
  int n_keep = 0;  // -1: the whole prompt
  bool single_turn = false;
  bool simple_io = false;
};

constexpr double kInf = std::numeric_limits<double>::infinity();
std::string chat_template_list();

void add_generate_options(OptionTable& t, GenerateOptions& o) {
  t.section("model and engine");
  add_engine_options(t, o.engine);
  t.section("prompt");
  t.value({"-p", "--prompt"}, "TEXT", "prompt (with -cnv: the system prompt)", [&o](const std::string& v) { o.prompt = v; });
  t.value({"-f", "--file"}, "FNAME", "read the prompt from a file (with -cnv: the system prompt)",
          [&o](const std::string& v) { o.prompt_file = v; });
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
          [&o](const std::string& v) { o.sampling.temp = (float)parse_float("--temp", v, 0, kInf); });
  t.value({"--top-k"}, "N", "top-k sampling (default: 40, 0 = off)",
          [&o](const std::string& v) { o.sampling.top_k = (int32_t)parse_int("--top-k", v, 0, 1 << 30); });
  t.value({"--top-p"}, "P", "top-p sampling (default: 0.95, 1.0 = off)",
          [&o](const std::string& v) { o.sampling.top_p = (float)parse_float("--top-p", v, 0, 1); });
  t.value({"--min-p"}, "P", "min-p sampling (default: 0.05, 0.0 = off)",
          [&o](const std::string& v) { o.sampling.min_p = (float)parse_float("--min-p", v, 0, 1); });
  t.value({"--repeat-penalty"}, "X", "repetition penalty (default: 1.0 = off)",
          [&o](const std::string& v) { o.sampling.repeat_penalty = (float)parse_float("--repeat-penalty", v, 0, kInf, true); });
  t.value({"--repeat-last-n"}, "N", "tokens considered by the penalties (default: 64, 0 = off, -1 = context)",
          [&o](const std::string& v) { o.sampling.repeat_last_n = (int32_t)parse_int("--repeat-last-n", v, -1, 1 << 30); });
  t.value({"--presence-penalty"}, "X", "subtracted from the logit of a token in the window (default: 0.0 = off)",
          [&o](const std::string& v) { o.sampling.presence_penalty = (float)parse_float("--presence-penalty", v, -2, 2); });
  t.value({"--frequency-penalty"}, "X", "subtracted once per occurrence in the window (default: 0.0 = off)",
          [&o](const std::string& v) { o.sampling.frequency_penalty = (float)parse_float("--frequency-penalty", v, -2, 2); });
  t.flag({"--context-shift"}, "when the context is full, drop half of the tokens after --keep and go on",
         [&o] { o.context_shift = true; });
  t.flag({"--no-context-shift"}, "stop when the context is full (default)", [&o] { o.context_shift = false; });
  t.value({"--keep"}, "N", "prompt tokens kept by a context shift (default: 0, -1 = all)",
          [&o](const std::string& v) { o.n_keep = (int)parse_int("--keep", v, -1, 1 << 30); });
  t.section("chat");
  t.flag({"-cnv", "--conversation"}, "chat mode (-p becomes the system prompt)", [&o] { o.conversation = true; });
  t.flag({"-no-cnv", "--no-conversation"}, "no chat mode (default)", [&o] { o.conversation = false; });
  t.flag({"-i", "--interactive"}, "interactive: the chat mode here (same as -cnv)", [&o] { o.conversation = true; });
  t.flag({"-st", "--single-turn"}, "chat: answer one message, then exit", [&o] { o.single_turn = true; });
  t.flag({"--simple-io"}, "chat: read plain lines (no line editing or history)", [&o] { o.simple_io = true; });
  t.value({"-sys", "--system-prompt"}, "TEXT", "system prompt for chat mode", [&o](const std::string& v) { o.system_prompt = v; });
  t.value({"--chat-template"}, "NAME", "built-in chat template: " + chat_template_list() + " (default: from the model)",
          [&o](const std::string& v) { o.chat_template = v; });
  t.section("output");
  t.flag({"-v", "--verbose"}, "print model details", [&o] { o.verbose = true; });
  t.flag({"--log-disable"}, "no informational lines on stderr (progress, system info); warnings and errors stay",
         [] { set_info_enabled(false); });
  t.flag({"--color"}, "accepted for compatibility and ignored",
         [] { note_ignored("--color", "the output is not colored here"); });
  t.flag({"--no-warmup"}, "accepted for compatibility and ignored",
         [] { note_ignored("--no-warmup", "generation does no warmup run here"); });
}

std::string chat_template_list() {
  std::string names;
  for (const auto& n : chat_template_names()) names += (names.empty() ? "" : ", ") + n;
  return names;
}

// Chat-only options given without chat mode do nothing: say so.
void warn_chat_only(const GenerateOptions& o) {
  if (o.conversation) return;
  std::vector<std::string> given;
  if (o.system_prompt) given.push_back("-sys");
  if (!o.chat_template.empty()) given.push_back("--chat-template");
  if (o.single_turn) given.push_back("-st");
  if (o.simple_io) given.push_back("--simple-io");
  for (const auto& name : given) warn(name + " only applies to chat mode (-cnv); ignored");
}

// Tokens and seconds for a llama.cpp-style timing report, summed over the requests of a run.
struct Timings {
  int n_prompt = 0;  // prompt tokens decoded (cached ones not counted)
  double prompt_s = 0;
  int n_eval = 0;    // generated tokens decoded
  double eval_s = 0;
  void add(const Completion& c) {
    n_prompt += c.n_prompt - c.n_cached;
    prompt_s += c.prompt_seconds;
    n_eval += c.n_gen_decoded;
    eval_s += c.generation_seconds;
  }
};

// Ctrl-C: the first stops the request in progress (or leaves the chat prompt); a second one
// before the first was handled ends the program, as the default action would.
std::atomic<int> g_interrupts{0};

extern "C" void on_interrupt(int) {
  if (g_interrupts.fetch_add(1) >= 1) _exit(130);
}

void catch_interrupts() {
  struct sigaction sa = {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a read at the chat prompt returns
  sigaction(SIGINT, &sa, nullptr);
}

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

// The engine's request for these options; a random seed (-s -1) is drawn here so that it can be
// printed and every chat turn uses the same one.
Request base_request(const GenerateOptions& o, uint64_t seed) {
  Request r;
  r.sampling = o.sampling;
  r.sampling.seed = seed;
  r.n_predict = o.n_predict < 0 ? -1 : o.n_predict;
  r.stop = o.reverse_prompts;
  r.ignore_eos = o.ignore_eos;
  r.context_shift = o.context_shift;
  return r;
}

// Runs one request on the engine's thread and waits for it; Ctrl-C cancels it. `before_start`
// runs after the request was accepted and before any of its tokens can be printed.
Completion run_request(Engine& engine, Request r, const std::function<void()>& before_start = {}) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Completion> done;
  r.on_done = [&](const Completion& c) {
    std::lock_guard<std::mutex> lock(mu);
    done = c;
    cv.notify_all();
  };
  g_interrupts = 0;
  const uint64_t id = engine.submit(std::move(r));
  if (before_start) before_start();
  engine.start();
  std::unique_lock<std::mutex> lock(mu);
  while (!cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return done.has_value(); })) {
    if (g_interrupts > 0) {
      engine.cancel(id);
      g_interrupts = 0;
    }
  }
  if (done->reason == FinishReason::Error) throw Error(done->error);
  return *done;
}

// What ends a reply besides its text: the stop string (shown, as llama-cli shows a reverse
// prompt) and a notice on stderr.
void finish_output(const Completion& c, const std::function<void(const std::string&)>& emit, int n_ctx) {
  emit(c.tail);
  if (c.reason == FinishReason::Stop) emit(c.stop_word);
  write_out("\n");
  if (c.reason == FinishReason::Eos) std::fprintf(stderr, "[end of text]\n");
  if (c.reason == FinishReason::Cancelled) std::fprintf(stderr, "[ interrupted ]\n");
  if (c.context_full)
    std::fprintf(stderr, "context full (n_ctx = %d): stopping; use -c to enlarge it or --context-shift\n", n_ctx);
  if (c.n_context_shifts > 0)
    std::fprintf(stderr, "[ context shifted %d time(s): the oldest tokens after --keep were dropped ]\n",
                 c.n_context_shifts);
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

// Drops the oldest exchange after the system messages (a user message and the replies up to the
// next user message). False when only the newest user message is left.
bool drop_oldest_turn(std::vector<ChatMessage>& history) {
  auto first = std::find_if(history.begin(), history.end(), [](const ChatMessage& m) { return m.role != "system"; });
  auto next_user = std::find_if(first + (first != history.end()), history.end(),
                                [](const ChatMessage& m) { return m.role == "user"; });
  if (next_user == history.end()) return false;
  history.erase(first, next_user);
  return true;
}

const char* kChatHelp =
    "  /help, /?            this list\n"
    "  /clear               start a new conversation (the system prompt stays)\n"
    "  /exit, /bye, /quit   leave (as Ctrl-D or Ctrl-C at an empty prompt)\n"
    "  a line ending in \\   continues on the next line\n"
    "  \"\"\" ... \"\"\"          a message of several lines\n"
    "  Ctrl-C               stops the reply\n";

int run_chat(const Model& model, Engine& engine, const GenerateOptions& o, uint64_t seed, Timings& total) {
  const Tokenizer& tok = model.tokenizer();
  const std::string tmpl = chat_template_for(model, o);
  apply_chat_template(tmpl, {}, false);  // an unknown --chat-template fails here, before any input
  std::vector<ChatMessage> system;
  std::string sys = o.system_prompt                ? *o.system_prompt
                    : !o.prompt_file.empty() ? read_text_file(o.prompt_file)
                                             : o.prompt.value_or("");
  if (!o.prompt_file.empty() && !o.system_prompt && !sys.empty() && sys.back() == '\n') sys.pop_back();
  if (o.escape) sys = process_escapes(sys);
  if (!sys.empty()) system.push_back({"system", sys});
  std::vector<ChatMessage> history = system;
  const size_t n_keep_system = system.empty() ? 0 : tok.encode(apply_chat_template(tmpl, system, false), tok.add_bos_default(), true).size();
  // The conversation as the last request left it in the engine's slot: its text and tokens. A
  // new turn that extends this text reuses these tokens (the model sees the tokens it generated,
  // as in llama-cli); otherwise the whole rendering is tokenized and the engine reuses the
  // longest common prefix.
  std::string cached_text;
  std::vector<int32_t> cached_tokens;
  const int n_ctx = engine.n_ctx_slot();
  const int reserve = std::max(1, std::min(o.n_predict > 0 ? o.n_predict : n_ctx / 4, n_ctx / 4));
  ChatInput input(o.simple_io);
  if (input.terminal())
    std::fprintf(stderr, "chat mode (template '%s'): /help lists the commands, /exit or Ctrl-D ends\n", tmpl.c_str());

  for (;;) {
    g_interrupts = 0;
    std::optional<std::string> message = input.read_message(g_interrupts);
    if (!message) {
      if (input.terminal()) write_out("\n");
      break;
    }
    const std::string command = trim(*message);
    if (command == "/exit" || command == "/bye" || command == "/quit") break;
    if (command == "/help" || command == "/?") {
      std::fprintf(stderr, "%s", kChatHelp);
      continue;
    }
    if (command == "/clear") {
      history = system;
      std::fprintf(stderr, "[ conversation cleared ]\n");
      continue;
    }
    if (command.empty()) continue;
    if (o.verbose)
      std::fprintf(stderr, "[ message: %zu bytes, %zu line(s) ]\n", message->size(),
                   (size_t)std::count(message->begin(), message->end(), '\n') + 1);
    history.push_back({"user", *message});

    std::string rendered;
    std::vector<int32_t> tokens;
    int dropped = 0;
    for (;;) {
      rendered = apply_chat_template(tmpl, history, true);
      if (!cached_text.empty() && rendered.starts_with(cached_text)) {
        tokens = cached_tokens;
        for (int32_t t : tok.encode(rendered.substr(cached_text.size()), false, true)) tokens.push_back(t);
      } else {
        tokens = tok.encode(rendered, tok.add_bos_default(), true);
      }
      if (tokens.size() + (size_t)reserve <= (size_t)n_ctx) break;
      if (!drop_oldest_turn(history)) break;
      ++dropped;
    }
    if (dropped > 0)
      std::fprintf(stderr, "[ context full (n_ctx = %d): dropped the %d oldest turn(s), the system prompt stays ]\n",
                   n_ctx, dropped);
    if (tokens.size() + (size_t)reserve > (size_t)n_ctx) {
      std::fprintf(stderr, "this message (%zu tokens with the system prompt) leaves no room in the context (n_ctx = %d)\n",
                   tokens.size(), n_ctx);
      history.pop_back();
      continue;
    }
    Request r = base_request(o, seed);
    r.prompt = tokens;
    r.n_keep = (int)n_keep_system;  // a context shift keeps the system prompt
    r.on_token = [](const TokenEvent& e) { write_out(e.text); };
    const Completion c = run_request(engine, std::move(r));
    finish_output(c, write_out, n_ctx);
    if (o.verbose) std::fprintf(stderr, "[ %d tokens reused from the cache, %d decoded ]\n", c.n_cached, c.n_prompt - c.n_cached);
    history.push_back({"assistant", c.text});
    // A reply cut at a stop string no longer matches its tokens.
    if (c.reason != FinishReason::Stop) {
      cached_text = rendered + c.text;
      cached_tokens = tokens;
      cached_tokens.insert(cached_tokens.end(), c.tokens.begin(), c.tokens.end());
    } else {
      cached_text.clear();
    }
    total.add(c);
    std::fprintf(stderr, "[ Prompt: %.1f t/s | Generation: %.1f t/s ]\n",
                 per_second(c.n_prompt - c.n_cached, c.prompt_seconds), per_second(c.n_gen_decoded, c.generation_seconds));
    if (o.single_turn) break;
  }
  return 0;
}

int run_completion(const Model& model, Engine& engine, const GenerateOptions& o, uint64_t seed, Timings& t) {
  const Tokenizer& tok = model.tokenizer();
  std::string prompt = o.prompt.value_or("");
  if (!o.prompt_file.empty()) {
    prompt = read_text_file(o.prompt_file);
    if (!prompt.empty() && prompt.back() == '\n') prompt.pop_back();  // as llama.cpp reads -f
  }
  if (o.escape) prompt = process_escapes(prompt);
  std::vector<int32_t> tokens = tok.encode(prompt, tok.add_bos_default(), true);
  if (tokens.empty() && tok.bos() >= 0) tokens.push_back(tok.bos());
  if (tokens.empty()) throw Error("nothing to decode: empty prompt and the vocabulary has no BOS token");

  Request r = base_request(o, seed);
  r.prompt = tokens;
  // llama.cpp's --keep: tokens after the BOS; -1 or more than the prompt: all of it.
  const size_t bos = tok.add_bos_default() && tokens[0] == tok.bos() ? 1 : 0;
  r.n_keep = o.n_keep < 0 || (size_t)o.n_keep + bos > tokens.size() ? (int)tokens.size() : o.n_keep + (int)bos;
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
  r.on_token = [&](const TokenEvent& e) { emit(e.text); };
  const Completion c = run_request(engine, std::move(r), [&] {
    if (o.display_prompt) write_out(prompt);
  });
  finish_output(c, emit, engine.n_ctx_slot());
  t.add(c);
  return 0;
}

}  // namespace

int cmd_generate(int argc, char** argv) {
  GenerateOptions o;
  OptionTable table("usage: bitnet -m MODEL.gguf [-p PROMPT | -f FILE] [options]\n"
                    "       bitnet -m MODEL.gguf -cnv [-p SYSTEM_PROMPT] [options]   (chat)");
  add_generate_options(table, o);
  if (!table.parse_command(argc, argv)) return 0;
  if (o.prompt && !o.prompt_file.empty()) throw Error("give the prompt with -p or -f, not both");
  for (auto& r : o.reverse_prompts)
    if (o.escape) r = process_escapes(r);
  require_model(o.engine);
  warn_chat_only(o);

  Stopwatch total;
  std::unique_ptr<Model> model = load_model(o.engine);
  EngineParams ep;
  ep.context = context_params(o.engine);
  Engine engine(*model, ep);
  const double load_s = total.seconds();
  if (o.verbose) {
    const ModelConfig& c = model->config();
    std::fprintf(stderr,
                 "model: %s | %s | n_vocab = %lld | n_embd = %lld | n_layer = %lld | n_head = %lld | n_head_kv = %lld | "
                 "n_ff = %lld | n_ctx_train = %lld\n",
                 model->description().c_str(), c.arch_name.c_str(), (long long)c.n_vocab, (long long)c.n_embd,
                 (long long)c.n_layer, (long long)c.n_head, (long long)c.n_head_kv, (long long)c.n_ff,
                 (long long)c.n_ctx_train);
    std::fprintf(stderr, "context: n_ctx = %d | KV cache %.2f MiB (%s)\n", engine.n_ctx_slot(),
                 engine.stats().kv_bytes / 1048576.0, kv_type_name(o.engine.kv_type()));
  }
  uint64_t seed = o.sampling.seed;
  if (seed == 0xFFFFFFFF) seed = std::random_device{}() & 0x7FFFFFFF;
  if (info_enabled()) {
    std::fprintf(stderr, "%s\n", system_info_line(engine.n_threads()).c_str());
    std::fprintf(stderr, "sampler seed: %llu\n", (unsigned long long)seed);
  }

  catch_interrupts();
  Timings t;
  int rc = o.conversation ? run_chat(*model, engine, o, seed, t) : run_completion(*model, engine, o, seed, t);
  engine.stop();
  print_timings(load_s, t, total.seconds());
  return rc;
}

}  // namespace bitnet::cli
