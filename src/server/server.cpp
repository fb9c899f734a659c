// The HTTP layer of `bitnet serve` on cpp-httplib: routing, API keys, body limit, error shapes,
// the per-request log line, streaming of engine tokens as server-sent events, and the read-only
// endpoints (/health, /props, /slots, /metrics, /v1/models, tokenizer and template helpers).
#include "server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "assets.h"
#include "bitnet/chat.h"
#include "bitnet/error.h"
#include "bitnet/log.h"
#include "connection.h"
#include "protocol.h"

namespace bitnet::server {
namespace {

using Clock = std::chrono::steady_clock;

// How often a request waiting for the engine looks whether its client has gone away.
constexpr auto kPollClient = std::chrono::milliseconds(100);

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Paths answered without an API key, as llama-server does (the page asks for the key itself).
bool is_public(const std::string& path) {
  return path == "/health" || path == "/v1/health" || path == "/v1/models" || path == "/models" || path == "/" ||
         find_asset(path) != nullptr;
}

// What the log line of the request being served on this thread reports. httplib serves a request
// (routing, handler, streaming, logger) on one thread.
struct RequestLog {
  Clock::time_point start;
  int n_prompt = -1, n_cached = 0, n_predicted = 0;
};
thread_local RequestLog t_log;

void set_json(httplib::Response& res, const json& j, int status = 200) {
  res.status = status;
  res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), "application/json; charset=utf-8");
}

void set_error(httplib::Response& res, int status, const std::string& message, const std::string& type = "") {
  HttpError e(status, message, type);
  set_json(res, error_body(status, message, e.type()), status);
  if (status == 503) res.set_header("Retry-After", "1");
}

// What the engine reports for one request, handed from its loop thread to the HTTP thread.
struct Channel {
  std::mutex m;
  std::condition_variable cv;
  std::deque<TokenEvent> tokens;
  std::optional<Completion> done;
};

}  // namespace

struct Server::Impl {
  ServerOptions opts;
  std::function<Loaded()> load;
  httplib::Server http;
  std::thread loader;
  std::atomic<bool> ready{false};
  std::atomic<bool> load_failed{false};
  int bound_port = -1;

  // Set once by the loader before `ready`; read-only afterwards.
  Loaded loaded;
  std::string template_name;

  Impl(ServerOptions o, std::function<Loaded()> l) : opts(std::move(o)), load(std::move(l)) {}

  // Engine::stop() must not run on two threads at once: a signal's stop() and run()'s return both
  // stop it, so the first does and the other waits for it.
  std::once_flag engine_stopped;
  void stop_engine() {
    std::call_once(engine_stopped, [this] {
      if (loaded.engine) loaded.engine->stop();
    });
  }

  const Model& model() const { return *loaded.model; }
  Engine& engine() { return *loaded.engine; }
  const Tokenizer& tok() const { return loaded.model->tokenizer(); }

  void load_in_background() {
    try {
      loaded = load();
      template_name = opts.chat_template;
      if (template_name.empty()) template_name = detect_chat_template(model().chat_template());
      if (template_name.empty()) {
        template_name = tok().model_name() == "gpt2" ? "llama3" : "llama2";
        log(LogLevel::Warn, "chat template: none recognised in the model, using '" + template_name +
                                "' (--chat-template to choose)\n");
      }
      apply_chat_template(template_name, {}, false);  // an unknown --chat-template fails here
      engine().start();
      ready = true;
      log(LogLevel::Info, "model loaded: " + opts.model_name + ", " + std::to_string(engine().n_slots()) + " slots of " +
                              std::to_string(engine().n_ctx_slot()) + " tokens, chat template '" + template_name +
                              "'; ready\n");
    } catch (const std::exception& e) {
      log(LogLevel::Error, std::string("error: ") + e.what() + "\n");
      load_failed = true;
      // httplib's stop() ends only a running listen loop: a load that fails at once (a refused
      // memory plan) could come before run() starts listening, and the server would never exit.
      while (!http.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      http.stop();
    }
  }

  // ---- generation -------------------------------------------------------------------------------

  std::vector<int32_t> prompt_tokens(const GenerationRequest& q) const {
    if (q.prompt_is_tokens) return q.prompt_tokens;
    std::string text = q.prompt;
    if (q.api == Api::Chat || q.api == Api::Responses) text = apply_chat_template(template_name, q.messages, true);
    std::vector<int32_t> tokens = tok().encode(text, tok().add_bos_default(), true);
    if (tokens.empty() && tok().bos() >= 0) tokens.push_back(tok().bos());
    if (tokens.empty()) throw HttpError(400, "the prompt is empty and the vocabulary has no BOS token");
    return tokens;
  }

  // Submits the request; its events arrive on the returned channel. Throws HttpError for what the
  // engine refuses (too long: 400, queue full: 503).
  std::pair<uint64_t, std::shared_ptr<Channel>> submit(const GenerationRequest& q) {
    Request r;
    r.prompt = prompt_tokens(q);
    r.sampling = q.sampling;
    r.n_predict = q.max_tokens;
    r.stop = q.stop;
    r.ignore_eos = q.ignore_eos;
    r.cache_prompt = q.cache_prompt;
    r.logprobs = q.logprobs >= 0;
    r.n_probs = std::max(q.logprobs, 0);
    auto ch = std::make_shared<Channel>();
    r.on_token = [ch](const TokenEvent& e) {
      std::lock_guard lock(ch->m);
      ch->tokens.push_back(e);
      ch->cv.notify_one();
    };
    r.on_done = [ch](const Completion& c) {
      std::lock_guard lock(ch->m);
      ch->done = c;
      ch->cv.notify_one();
    };
    t_log.n_prompt = (int)r.prompt.size();
    try {
      return {engine().submit(std::move(r)), ch};
    } catch (const SubmitError& e) {
      switch (e.kind()) {
        case SubmitError::Kind::QueueFull: throw HttpError(503, e.what());
        case SubmitError::Kind::Stopped: throw HttpError(503, e.what());
        case SubmitError::Kind::PromptTooLong: throw HttpError(400, e.what(), "exceed_context_size_error");
        case SubmitError::Kind::Invalid: throw HttpError(400, e.what());
      }
      throw;
    }
  }

  TokenOut token_out(const TokenEvent& e) const {
    TokenOut t;
    t.id = e.token;
    t.text = e.text;
    t.piece = tok().token_to_piece(e.token, true);
    t.logprob = e.logprob;
    for (const auto& a : e.top) t.top.push_back({tok().token_to_piece(a.token, true), a.logprob});
    return t;
  }

  GenerationResult result_of(const Completion& c) const {
    GenerationResult r;
    r.text = c.text;
    r.finish = c.reason == FinishReason::Length ? Finish::Length : Finish::Stop;
    r.stop_word = c.stop_word;
    r.n_prompt = c.n_prompt;
    r.n_cached = c.n_cached;
    r.n_predicted = c.n_predicted;
    r.prompt_ms = c.prompt_seconds * 1e3;
    r.predicted_ms = c.generation_seconds * 1e3;
    r.slot = c.slot;
    t_log.n_cached = c.n_cached;
    t_log.n_predicted = c.n_predicted;
    return r;
  }

  void generate(const httplib::Request& req, const GenerationRequest& q, const char* id_prefix, httplib::Response& res) {
    ReplyMeta meta{make_id(id_prefix), unix_time(), q.model.empty() ? opts.model_name : q.model};
    auto submitted = submit(q);
    const uint64_t id = submitted.first;
    std::shared_ptr<Channel> ch = submitted.second;
    // A client that goes away cancels its request, freeing the slot (or its place in the queue).
    auto client = std::make_shared<ClientConnection>(req);
    auto client_gone = [this, id, client] {
      if (!client->closed()) return false;
      engine().cancel(id);
      t_log.n_predicted = -1;  // the log line says so
      return true;
    };
    if (!q.stream) {
      std::vector<TokenOut> logprobs;
      std::unique_lock lock(ch->m);
      for (;;) {
        ch->cv.wait_for(lock, kPollClient, [&] { return !ch->tokens.empty() || ch->done; });
        for (const auto& e : ch->tokens)
          if (q.logprobs >= 0) logprobs.push_back(token_out(e));
        ch->tokens.clear();
        if (ch->done) break;
        lock.unlock();
        if (client_gone()) throw HttpError(499, "the client closed the connection");
        lock.lock();
      }
      const Completion c = *ch->done;
      lock.unlock();
      if (c.reason == FinishReason::Error) throw HttpError(500, c.error);
      if (c.reason == FinishReason::Cancelled) throw HttpError(503, "the request was cancelled: the server is stopping");
      GenerationResult r = result_of(c);
      r.tokens = std::move(logprobs);
      switch (q.api) {
        case Api::Chat: return set_json(res, chat_reply(meta, q, r));
        case Api::Completions: return set_json(res, completions_reply(meta, q, r));
        case Api::LlamaCompletion: return set_json(res, llama_completion_reply(meta, q, r));
        case Api::Responses: return set_json(res, responses_reply(meta, q, r));
      }
      return;
    }

    // Streaming: the provider runs on this connection's thread until the reply ends; a failed write
    // or a closed connection (the client went away) ends it early and cancels the request, freeing
    // its slot. While no tokens come (queued, long prefill) an SSE comment every sse_keepalive_s
    // keeps proxies and clients from timing the stream out.
    auto writer = std::make_shared<StreamWriter>(meta, q);
    auto started = std::make_shared<bool>(false);
    auto last_write = std::make_shared<Clock::time_point>(Clock::now());
    const auto keepalive = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opts.sse_keepalive_s));
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");  // nginx: pass events on at once
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, id, ch, writer, started, last_write, keepalive, client_gone,
         with_logprobs = q.logprobs >= 0](size_t, httplib::DataSink& sink) {
          std::string out;
          if (!*started) {
            *started = true;
            out = writer->begin();
          }
          std::deque<TokenEvent> events;
          std::optional<Completion> done;
          {
            std::unique_lock lock(ch->m);
            ch->cv.wait_for(lock, kPollClient, [&] { return !ch->tokens.empty() || ch->done; });
            events.swap(ch->tokens);
            done = ch->done;
          }
          for (const auto& e : events) {
            if (e.text.empty() && !with_logprobs) continue;
            out += writer->token(token_out(e));
          }
          if (done) {
            if (done->reason == FinishReason::Error) {
              out += sse(error_body(500, done->error, "server_error"));
            } else {
              if (!done->tail.empty()) out += writer->token(TokenOut{-1, done->tail, "", 0, {}});
              out += writer->end(result_of(*done));
            }
          } else if (out.empty()) {
            if (client_gone()) return false;
            if (keepalive.count() > 0 && Clock::now() - *last_write >= keepalive) out = ": keepalive\n\n";
          }
          if (!out.empty()) {
            if (!sink.write(out.data(), out.size())) {
              engine().cancel(id);     // the client went away: free its slot now
              t_log.n_predicted = -1;  // and say so in the log line
              return false;
            }
            *last_write = Clock::now();
          }
          if (done) sink.done();
          return true;
        },
        [this, id](bool success) {
          if (!success) engine().cancel(id);  // any other early end (server stopping)
        });
  }

  // ---- read-only endpoints ----------------------------------------------------------------------

  json model_meta() const {
    const ModelConfig& c = model().config();
    return {{"n_vocab", c.n_vocab},          {"n_ctx_train", c.n_ctx_train}, {"n_embd", c.n_embd},
            {"n_params", model().n_params()}, {"size", model().file_size()},  {"description", model().description()}};
  }

  json models() const {
    json m = {{"id", opts.model_name}, {"object", "model"}, {"created", unix_time()}, {"owned_by", "bitnet"}};
    if (ready) m["meta"] = model_meta();
    return {{"object", "list"}, {"data", json::array({m})}};
  }

  json props() {
    const SamplingParams s;
    json params = {{"n_predict", -1},           {"temperature", s.temp},
                   {"top_k", s.top_k},          {"top_p", s.top_p},
                   {"min_p", s.min_p},          {"repeat_penalty", s.repeat_penalty},
                   {"repeat_last_n", s.repeat_last_n}, {"presence_penalty", s.presence_penalty},
                   {"frequency_penalty", s.frequency_penalty}, {"seed", -1}};
    return {{"default_generation_settings", {{"n_ctx", engine().n_ctx_slot()}, {"params", params}}},
            {"total_slots", engine().n_slots()},
            {"model_alias", opts.model_name},
            {"model_path", opts.model_path},
            {"chat_template", template_name},
            {"modalities", {{"vision", false}, {"audio", false}}},
            {"build_info", "bitnet"}};
  }

  json slots() {
    EngineStats st = engine().stats();
    json out = json::array();
    for (const auto& s : st.slots)
      out.push_back({{"id", s.id},
                     {"id_task", s.request_id},
                     {"n_ctx", s.n_ctx},
                     {"is_processing", s.state != SlotState::Idle},
                     {"state", slot_state_name(s.state)},
                     {"n_cached", s.n_cached},
                     {"n_prompt_tokens", s.n_prompt},
                     {"n_prompt_tokens_processed", s.n_prompt_done},
                     {"n_decoded", s.n_predicted}});
    return out;
  }

  std::string metrics() {
    EngineStats st = engine().stats();
    std::ostringstream o;
    auto metric = [&](const char* name, const char* type, const char* help, double value) {
      o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n' << name << ' ' << value << '\n';
    };
    auto rate = [](double n, double s) { return s > 0 ? n / s : 0.0; };
    const double kv_ratio = st.kv_pages_total ? (double)st.kv_pages_used / (double)st.kv_pages_total : 0.0;
    uint64_t kv_tokens = 0;
    for (const auto& s : st.slots) kv_tokens += (uint64_t)s.n_cached;
    metric("llamacpp:prompt_tokens_total", "counter", "Number of prompt tokens processed.", (double)st.prompt_tokens_total);
    metric("llamacpp:prompt_seconds_total", "counter", "Prompt process time.", st.prompt_seconds_total);
    metric("llamacpp:tokens_predicted_total", "counter", "Number of generation tokens processed.",
           (double)st.generated_tokens_total);
    metric("llamacpp:tokens_predicted_seconds_total", "counter", "Predict process time.", st.generation_seconds_total);
    metric("llamacpp:n_decode_total", "counter", "Total number of llama_decode() calls.", (double)st.decode_calls);
    metric("llamacpp:n_busy_slots_per_decode", "counter", "Average number of busy slots per llama_decode() call.",
           rate((double)st.decoded_tokens_total, (double)st.decode_calls));
    metric("llamacpp:prompt_tokens_seconds", "gauge", "Average prompt throughput in tokens/s.",
           rate((double)st.prompt_tokens_total, st.prompt_seconds_total));
    metric("llamacpp:predicted_tokens_seconds", "gauge", "Average generation throughput in tokens/s.",
           rate((double)st.generated_tokens_total, st.generation_seconds_total));
    metric("llamacpp:kv_cache_usage_ratio", "gauge", "KV-cache usage. 1 means 100 percent usage.", kv_ratio);
    metric("llamacpp:kv_cache_tokens", "gauge", "KV-cache tokens.", (double)kv_tokens);
    metric("llamacpp:requests_processing", "gauge", "Number of requests processing.", st.requests_processing);
    metric("llamacpp:requests_deferred", "gauge", "Number of requests deferred.", st.requests_deferred);
    // The names Kubernetes inference routing reads (vLLM's), labelled with the model.
    const std::string label = "{model_name=\"" + opts.model_name + "\"}";
    auto vllm = [&](const char* name, const char* help, double value) {
      o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " gauge\n" << name << label << ' ' << value << '\n';
    };
    vllm("vllm:num_requests_waiting", "Number of requests waiting to be processed.", st.requests_deferred);
    vllm("vllm:num_requests_running", "Number of requests in model execution batches.", st.requests_processing);
    vllm("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", kv_ratio);
    return o.str();
  }

  // ---- routing ----------------------------------------------------------------------------------

  // Runs a handler, turning HttpError and library errors into the OpenAI error shape.
  template <typename F>
  httplib::Server::Handler wrap(F f) {
    return [f](const httplib::Request& req, httplib::Response& res) {
      try {
        f(req, res);
      } catch (const HttpError& e) {
        set_error(res, e.status(), e.what(), e.type());
      } catch (const Error& e) {
        set_error(res, 400, e.what());
      } catch (const std::bad_alloc&) {
        set_error(res, 500, "out of memory");
      } catch (const std::exception& e) {
        set_error(res, 500, e.what());
      }
    };
  }

  bool authorized(const httplib::Request& req) const {
    if (opts.api_keys.empty()) return true;
    std::string key = req.get_header_value("X-Api-Key");
    const std::string auth = req.get_header_value("Authorization");
    if (auth.rfind("Bearer ", 0) == 0) key = auth.substr(7);
    for (const auto& k : opts.api_keys)
      if (!key.empty() && key == k) return true;
    return false;
  }

  void routes() {
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      t_log = RequestLog{Clock::now()};
      if (req.method == "OPTIONS") {  // CORS preflight
        res.status = 204;
        return httplib::Server::HandlerResponse::Handled;
      }
      if (is_public(req.path)) return httplib::Server::HandlerResponse::Unhandled;
      if (!authorized(req)) {
        set_error(res, 401, "invalid or missing API key (send 'Authorization: Bearer KEY')");
        return httplib::Server::HandlerResponse::Handled;
      }
      if (!ready) {
        set_error(res, 503, "Loading model");
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                       httplib::Response& res) {
      if (!res.body.empty() || res.is_chunked_content_provider_) return httplib::Server::HandlerResponse::Unhandled;
      if (res.status == 413)
        set_error(res, 413, "the request body is larger than the limit of " + std::to_string(opts.max_body_bytes) +
                                " bytes (--body-limit)");
      else if (res.status == 404)
        set_error(res, 404, "no such endpoint: " + req.method + " " + req.path);
      else
        set_error(res, res.status, "HTTP error " + std::to_string(res.status));
      return httplib::Server::HandlerResponse::Handled;
    }));
    http.set_logger([](const httplib::Request& req, const httplib::Response& res) {
      const double s = std::chrono::duration<double>(Clock::now() - t_log.start).count();
      if (req.path == "/health" && res.status == 200) return;  // probes every few seconds
      std::string tokens;
      if (t_log.n_prompt >= 0) {
        tokens = " | prompt " + std::to_string(t_log.n_prompt) + " (cached " + std::to_string(t_log.n_cached) + ")";
        tokens += t_log.n_predicted >= 0 ? " | predicted " + std::to_string(t_log.n_predicted) : " | client disconnected";
      }
      char seconds[32];
      std::snprintf(seconds, sizeof seconds, "%.3f s", s);
      log(LogLevel::Info, "request: " + req.method + " " + req.path + " " + std::to_string(res.status) + tokens + " | " +
                              seconds + " | " + req.remote_addr + "\n");
    });

    auto health = [this](const httplib::Request&, httplib::Response& res) {
      if (ready) set_json(res, {{"status", "ok"}});
      else set_json(res, {{"status", "loading model"}}, 503);
    };
    http.Get("/health", health);
    http.Get("/v1/health", health);

    auto page = [](const httplib::Request& req, httplib::Response& res) {
      const Asset* a = find_asset(req.path == "/" ? "/index.html" : req.path);
      if (!a) return set_error(res, 404, "no such page: " + req.path);
      res.set_content(std::string(a->data, a->size), a->content_type);
    };
    http.Get("/", page);
    for (const Asset& a : assets()) http.Get(a.path, page);

    auto gen = [this](GenerationRequest (*parse)(const json&), const char* prefix) {
      return wrap([this, parse, prefix](const httplib::Request& req, httplib::Response& res) {
        generate(req, parse(parse_body(req.body)), prefix, res);
      });
    };
    http.Post("/v1/chat/completions", gen(parse_chat, "chatcmpl-"));
    http.Post("/chat/completions", gen(parse_chat, "chatcmpl-"));
    http.Post("/v1/completions", gen(parse_completions, "cmpl-"));
    http.Post("/completions", gen(parse_completions, "cmpl-"));
    http.Post("/completion", gen(parse_llama_completion, "cmpl-"));
    http.Post("/v1/responses", gen(parse_responses, "resp_"));

    auto list_models = wrap([this](const httplib::Request&, httplib::Response& res) { set_json(res, models()); });
    http.Get("/v1/models", list_models);
    http.Get("/models", list_models);
    http.Get("/props", wrap([this](const httplib::Request&, httplib::Response& res) { set_json(res, props()); }));
    http.Get("/slots", wrap([this](const httplib::Request&, httplib::Response& res) {
      if (!opts.slots) throw HttpError(501, "This server does not support slots endpoint. Start it without `--no-slots`");
      set_json(res, slots());
    }));
    http.Get("/metrics", wrap([this](const httplib::Request&, httplib::Response& res) {
      if (!opts.metrics) throw HttpError(501, "This server does not support metrics endpoint. Start it with `--metrics`");
      res.set_content(metrics(), "text/plain; version=0.0.4");
    }));

    http.Post("/tokenize", wrap([this](const httplib::Request& req, httplib::Response& res) {
      json b = parse_body(req.body);
      auto content = get_string(b, "content");
      if (!content) throw HttpError(400, "'content' is required and must be a string");
      const bool add_special = get_bool(b, "add_special").value_or(false);
      const bool parse_special = get_bool(b, "parse_special").value_or(true);
      const bool with_pieces = get_bool(b, "with_pieces").value_or(false);
      std::vector<int32_t> ids = tok().encode(*content, add_special && tok().add_bos_default(), parse_special);
      json tokens = json::array();
      for (int32_t id : ids) {
        if (with_pieces) tokens.push_back({{"id", id}, {"piece", tok().token_to_piece(id, true)}});
        else tokens.push_back(id);
      }
      set_json(res, {{"tokens", tokens}});
    }));
    http.Post("/detokenize", wrap([this](const httplib::Request& req, httplib::Response& res) {
      json b = parse_body(req.body);
      auto it = b.find("tokens");
      if (it == b.end() || !it->is_array()) throw HttpError(400, "'tokens' is required and must be an array of token ids");
      std::vector<int32_t> ids;
      for (const auto& t : *it) {
        if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tok().n_vocab())
          throw HttpError(400, "'tokens' must hold token ids in [0, " + std::to_string(tok().n_vocab()) + ")");
        ids.push_back(t.get<int32_t>());
      }
      set_json(res, {{"content", tok().decode(ids)}});
    }));
    http.Post("/apply-template", wrap([this](const httplib::Request& req, httplib::Response& res) {
      json b = parse_body(req.body);
      auto it = b.find("messages");
      if (it == b.end()) throw HttpError(400, "'messages' is required");
      set_json(res, {{"prompt", apply_chat_template(template_name, parse_messages(*it), true)}});
    }));
  }

  void configure() {
    http.set_payload_max_length(opts.max_body_bytes);
    http.set_read_timeout(opts.timeout_s);
    http.set_write_timeout(opts.timeout_s);
    http.set_default_headers({{"Access-Control-Allow-Origin", "*"},
                              {"Access-Control-Allow-Headers", "Authorization, Content-Type, X-Api-Key"},
                              {"Access-Control-Allow-Methods", "GET, POST, OPTIONS"},
                              {"Server", "bitnet"}});
    // One thread per open connection: every slot and queued request, plus room for probes.
    const size_t n_threads = (size_t)opts.max_queued + 64;
    http.new_task_queue = [n_threads] { return new httplib::ThreadPool(n_threads); };
    routes();
  }
};

Server::Server(ServerOptions options, std::function<Loaded()> load)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(load))) {
  impl_->configure();
}

Server::~Server() {
  stop();
  if (impl_->loader.joinable()) impl_->loader.join();
  impl_->stop_engine();
}

bool Server::bind() {
  const auto& o = impl_->opts;
  if (o.port == 0) {
    impl_->bound_port = impl_->http.bind_to_any_port(o.host);
  } else {
    impl_->bound_port = impl_->http.bind_to_port(o.host, o.port) ? o.port : -1;
  }
  if (impl_->bound_port <= 0) {
    log(LogLevel::Error, "error: cannot listen on " + o.host + ":" + std::to_string(o.port) +
                             " (address in use or not available)\n");
    return false;
  }
  return true;
}

int Server::port() const { return impl_->bound_port; }

bool Server::run() {
  log(LogLevel::Info, "server listening on http://" + impl_->opts.host + ":" + std::to_string(impl_->bound_port) +
                          " (loading the model)\n");
  impl_->loader = std::thread([this] { impl_->load_in_background(); });
  impl_->http.listen_after_bind();
  impl_->loader.join();
  impl_->stop_engine();
  return !impl_->load_failed;
}

void Server::stop() {
  impl_->http.stop();
  // Requests still running complete as cancelled, so that their connections end.
  if (impl_->ready) impl_->stop_engine();
}

}  // namespace bitnet::server
