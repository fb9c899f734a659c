// `bitnet serve`: an HTTP server speaking the OpenAI API and llama-server's endpoints over one
// Engine, plus a chat page. It listens first and loads the model in the background, so /health
// answers 503 while loading and 200 once requests can run.
//
// Threads: HTTP connections are served by a pool of threads; each generation request submits to
// the Engine (whose loop runs on its own thread) and waits for its tokens. run() blocks until
// stop() is called from another thread or a signal handler's thread.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bitnet/engine.h"

namespace bitnet::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                        // 0: any free port (the chosen one is logged)
  std::vector<std::string> api_keys;      // empty: no key needed
  std::string model_name;                 // reported as the model's id (--alias, else the file name)
  std::string model_path;
  std::string chat_template;              // built-in template name; empty: recognised from the model
  size_t max_body_bytes = 8u << 20;       // larger request bodies get 413
  int timeout_s = 600;                    // socket read/write timeout
  double sse_keepalive_s = 15;            // a stream silent this long gets an SSE comment; 0: never
  int max_queued = 64;                    // requests waiting for a slot before 503
  bool metrics = false;                   // GET /metrics (llama-server's --metrics)
  bool slots = true;                      // GET /slots
};

// What the background loader hands over: the model and an engine on it, not yet started.
struct Loaded {
  std::unique_ptr<Model> model;
  std::unique_ptr<Engine> engine;
};

class Server {
 public:
  // `load` runs on a background thread after the socket is bound; if it throws, the server logs
  // the error and run() returns false.
  Server(ServerOptions options, std::function<Loaded()> load);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the socket; returns false (after logging why) when it cannot.
  bool bind();
  int port() const;
  // Serves until stop() (or a failed load). Returns false if the model could not be loaded.
  bool run();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bitnet::server
