// bitnet serve: the OpenAI- and llama-server-compatible HTTP server (src/server/), with
// llama-server's flags.
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>

#include "bitnet/error.h"
#include "commands.h"
#include "common_params.h"
#include "server/server.h"

namespace bitnet::cli {
namespace {

struct ServeOptions {
  EngineOptions engine;
  server::ServerOptions server;
  int n_parallel = 4;
};

std::vector<std::string> read_keys(const std::string& path) {
  std::vector<std::string> keys;
  std::istringstream in(read_text_file(path));
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) keys.push_back(line);
  }
  if (keys.empty()) throw Error("--api-key-file '" + path + "' holds no key");
  return keys;
}

void add_serve_options(OptionTable& t, ServeOptions& o) {
  t.section("model and engine");
  add_engine_options(t, o.engine);
  t.value({"-np", "--parallel"}, "N", "parallel slots: requests decoded together (default: 4); -c is shared by them",
          [&o](const std::string& v) { o.n_parallel = (int)parse_int("--parallel", v, 1, 256); });
  t.flag({"-cb", "--cont-batching"}, "continuous batching (always on; accepted for llama-server's scripts)", [] {});
  t.value({"--max-queue"}, "N", "requests that may wait for a slot; more get 503 (default: 64)",
          [&o](const std::string& v) { o.server.max_queued = (int)parse_int("--max-queue", v, 0, 1 << 16); });
  t.value({"--chat-template"}, "NAME", "built-in chat template (default: from the model)",
          [&o](const std::string& v) { o.server.chat_template = v; });
  t.section("HTTP");
  t.value({"--host"}, "ADDR", "address to listen on (default: 127.0.0.1)", [&o](const std::string& v) { o.server.host = v; });
  t.value({"--port"}, "N", "port to listen on (default: 8080; 0: any free port, logged)",
          [&o](const std::string& v) { o.server.port = (int)parse_int("--port", v, 0, 65535); });
  t.value({"--api-key"}, "KEY", "require this key (Authorization: Bearer KEY); repeatable or comma-separated",
          [&o](const std::string& v) {
            std::istringstream in(v);
            for (std::string k; std::getline(in, k, ',');)
              if (!k.empty()) o.server.api_keys.push_back(k);
          });
  t.value({"--api-key-file"}, "FNAME", "read keys from a file, one per line", [&o](const std::string& v) {
    for (auto& k : read_keys(v)) o.server.api_keys.push_back(k);
  });
  t.value({"-a", "--alias"}, "NAME", "model name reported to clients (default: the model's file name)",
          [&o](const std::string& v) { o.server.model_name = v; });
  t.value({"-to", "--timeout"}, "S", "socket read/write timeout in seconds (default: 600)",
          [&o](const std::string& v) { o.server.timeout_s = (int)parse_int("--timeout", v, 1, 1 << 20); });
  t.value({"--sse-keepalive"}, "S",
          "send an SSE comment line on a stream silent for S seconds (queued, long prompt); 0: never (default: 15)",
          [&o](const std::string& v) { o.server.sse_keepalive_s = parse_float("--sse-keepalive", v, 0, 86400); });
  t.value({"--body-limit"}, "BYTES", "largest request body accepted; larger get 413 (default: 8388608 = 8 MiB)",
          [&o](const std::string& v) { o.server.max_body_bytes = (size_t)parse_int("--body-limit", v, 1024, 1ll << 34); });
  t.flag({"--metrics"}, "enable GET /metrics (Prometheus text)", [&o] { o.server.metrics = true; });
  t.flag({"--slots"}, "enable GET /slots (default)", [&o] { o.server.slots = true; });
  t.flag({"--no-slots"}, "disable GET /slots", [&o] { o.server.slots = false; });
}

// Stops the server on SIGINT / SIGTERM: the signals are blocked in every thread and taken by a
// dedicated one, so the handler may call anything.
class SignalStopper {
 public:
  explicit SignalStopper(server::Server& s) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this, &s] {
      int sig = 0;
      sigwait(&set_, &sig);
      if (sig == SIGUSR1) return;  // our own wake-up at shutdown
      std::fprintf(stderr, "%s: shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
      s.stop();
    });
  }
  ~SignalStopper() {
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }

 private:
  sigset_t set_;
  std::thread thread_;
};

}  // namespace

int cmd_serve(int argc, char** argv) {
  ServeOptions o;
  OptionTable table("usage: bitnet serve -m MODEL.gguf [--host 127.0.0.1] [--port 8080] [-np 4] [-c N] [options]\n"
                    "  OpenAI API: /v1/chat/completions, /v1/completions, /v1/responses, /v1/models;\n"
                    "  llama-server: /completion, /tokenize, /detokenize, /apply-template, /health, /props, /slots,\n"
                    "  /metrics; a chat page at /. -c is the total context, shared by the -np slots.");
  add_serve_options(table, o);
  if (!table.parse_command(argc, argv)) return 0;
  require_model(o.engine);
  if (!std::filesystem::exists(o.engine.model_path)) throw Error("cannot open '" + o.engine.model_path + "'");
  o.server.model_path = o.engine.model_path;
  if (o.server.model_name.empty()) o.server.model_name = std::filesystem::path(o.engine.model_path).filename().string();

  o.engine.n_seq = o.n_parallel;
  EngineParams ep;
  ep.context = context_params(o.engine);
  ep.max_queued = o.server.max_queued;

  signal(SIGPIPE, SIG_IGN);  // a client that goes away must not end the server
  server::Server srv(o.server, [&o, ep] {
    server::Loaded l;
    l.model = load_model(o.engine, false);
    l.engine = std::make_unique<Engine>(*l.model, ep);
    return l;
  });
  if (!srv.bind()) return 1;
  SignalStopper stopper(srv);
  return srv.run() ? 0 : 1;
}

}  // namespace bitnet::cli
