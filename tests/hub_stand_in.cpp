#include "hub_stand_in.h"

#include <httplib.h>

#include <chrono>
#include <stdexcept>
#include <thread>

#include "hub/sha256.h"

namespace bitnet::testing {

namespace {

std::string sha256_hex(const std::string& data) {
  hub::Sha256 sha;
  sha.update(data.data(), data.size());
  return sha.hex_digest();
}

// An HTTP quoted string (built with += : GCC 12 warns falsely about "\"" + std::string).
std::string http_quoted(const std::string& s) {
  std::string out = "\"";
  out += s;
  out += '"';
  return out;
}

struct Server {
  httplib::Server http;
  std::thread thread;
  int port = 0;

  void start() {
    port = http.bind_to_any_port("127.0.0.1");
    if (port <= 0) throw std::runtime_error("stand-in hub: cannot bind 127.0.0.1");
    thread = std::thread([this] { http.listen_after_bind(); });
    while (!http.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void stop() {
    http.stop();
    if (thread.joinable()) thread.join();
  }
};

}  // namespace

struct StandInHub::Impl {
  mutable std::mutex mutex;
  std::map<std::string, StandInRepo> repos;
  std::vector<Request> log;
  Server hub, cdn;

  void record(const char* server, const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(mutex);
    log.push_back({server, req.method, req.path, req.get_header_value("Range"), req.get_header_value("Authorization")});
  }
  bool find(const std::string& id, StandInRepo& out) {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = repos.find(id);
    if (it == repos.end()) return false;
    out = it->second;
    return true;
  }
  std::string cdn_base() const { return "http://127.0.0.1:" + std::to_string(cdn.port); }

  // The Hub answers 401 for an unknown repository (it does not reveal private ones).
  static void not_found(httplib::Response& res) {
    res.status = 401;
    res.set_header("X-Error-Code", "RepositoryNotFound");
    res.set_content(R"({"error":"Repository not found"})", "application/json");
  }

  void model_info(const httplib::Request& req, httplib::Response& res) {
    record("hub", req);
    StandInRepo repo;
    if (!find(req.matches[1], repo)) return not_found(res);
    if (repo.down) {
      res.status = 503;
      return;
    }
    std::string rev = req.matches[2];
    if (rev != "main" && rev != repo.commit) {
      res.status = 404;
      res.set_header("X-Error-Code", "RevisionNotFound");
      res.set_content(R"({"error":"Invalid rev id: )" + rev + "\"}", "application/json");
      return;
    }
    std::string siblings;
    for (const auto& [name, content] : repo.files)
      siblings += std::string(siblings.empty() ? "" : ",") + R"({"rfilename":")" + name + "\"}";
    res.set_content(R"({"_id":"0","id":")" + repo.id + R"(","private":false,"gated":)" +
                        (repo.token.empty() ? "false" : "\"manual\"") + R"(,"sha":")" + repo.commit +
                        R"(","siblings":[)" + siblings + "]}",
                    "application/json");
  }

  void resolve(const httplib::Request& req, httplib::Response& res) {
    record("hub", req);
    StandInRepo repo;
    if (!find(req.matches[1], repo)) return not_found(res);
    std::string rev = req.matches[2], file = req.matches[3];
    if (!repo.token.empty() && req.get_header_value("Authorization") != "Bearer " + repo.token) {
      res.status = req.has_header("Authorization") ? 403 : 401;
      res.set_header("X-Error-Code", "GatedRepo");
      res.set_content(R"({"error":"Access to model )" + repo.id + R"( is restricted."})", "application/json");
      return;
    }
    auto it = repo.files.find(file);
    if ((rev != "main" && rev != repo.commit) || it == repo.files.end()) {
      res.status = 404;
      res.set_header("X-Error-Code", rev == "main" || rev == repo.commit ? "EntryNotFound" : "RevisionNotFound");
      return;
    }
    const std::string& content = it->second;
    res.set_header("X-Repo-Commit", repo.commit);
    std::string sha = sha256_hex(content);
    if (is_lfs(file)) {
      // The Hub's ETag of an LFS pointer is the pointer's git id; X-Linked-Etag is the content's sha256.
      res.set_header("ETag", http_quoted(sha256_hex("pointer " + sha).substr(0, 40)));
      res.set_header("X-Linked-Etag", http_quoted(sha));
      res.set_header("X-Linked-Size", std::to_string(content.size()));
      res.set_redirect(cdn_base() + "/cdn/" + repo.id + "/" + sha + "?X-Amz-Signature=stand-in", 302);
    } else {
      res.set_header("ETag", http_quoted(sha.substr(0, 40)));
      res.set_content(content, "application/octet-stream");
    }
  }

  void serve_cdn(const httplib::Request& req, httplib::Response& res) {
    record("cdn", req);
    if (req.has_header("Authorization")) {  // S3: "Only one auth mechanism allowed"
      res.status = 400;
      res.set_content("<Error><Code>InvalidArgument</Code></Error>", "application/xml");
      return;
    }
    std::string sha = req.matches[2];
    StandInRepo repo;
    std::string content;
    if (find(req.matches[1], repo))
      for (const auto& [name, c] : repo.files)
        if (is_lfs(name) && sha256_hex(c) == sha) content = c;
    if (content.empty()) {
      res.status = 404;
      return;
    }
    if (repo.corrupt && !content.empty()) content[content.size() / 2] ^= 0x20;
    auto data = std::make_shared<std::string>(std::move(content));
    // httplib applies the request's Range to the provider (offset, length) and answers 206.
    res.set_content_provider(
        data->size(), "application/octet-stream",
        [data, repo](size_t offset, size_t length, httplib::DataSink& sink) {
          size_t limit = repo.cut_after ? std::min(length, repo.cut_after) : length;
          constexpr size_t kChunk = 4096;
          for (size_t done = 0; done < limit;) {
            size_t n = std::min(kChunk, limit - done);
            if (!sink.write(data->data() + offset + done, n)) return false;
            done += n;
            if (repo.bytes_per_second)
              std::this_thread::sleep_for(std::chrono::microseconds(n * 1000000 / repo.bytes_per_second));
          }
          return limit == length;  // false closes the connection mid-body
        });
  }
};

StandInHub::StandInHub() : impl_(std::make_unique<Impl>()) {
  Impl* s = impl_.get();
  s->hub.http.Get(R"(/api/models/([^/]+/[^/]+)/revision/(.+))",
                  [s](const httplib::Request& q, httplib::Response& r) { s->model_info(q, r); });
  s->hub.http.Get(R"(/([^/]+/[^/]+)/resolve/([^/]+)/(.+))",
                  [s](const httplib::Request& q, httplib::Response& r) { s->resolve(q, r); });
  s->cdn.http.Get(R"(/cdn/([^/]+/[^/]+)/([0-9a-f]{64}))", [s](const httplib::Request& q, httplib::Response& r) { s->serve_cdn(q, r); });
  s->hub.start();
  s->cdn.start();
}

StandInHub::~StandInHub() {
  impl_->hub.stop();
  impl_->cdn.stop();
}

void StandInHub::add(StandInRepo repo) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->repos[repo.id] = std::move(repo);
}

std::string StandInHub::endpoint() const { return "http://127.0.0.1:" + std::to_string(impl_->hub.port); }

std::vector<StandInHub::Request> StandInHub::requests() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->log;
}

void StandInHub::clear_requests() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->log.clear();
}

bool StandInHub::is_lfs(const std::string& file) {
  for (const char* ext : {".gguf", ".safetensors", ".bin"})
    if (file.size() > std::string(ext).size() && file.ends_with(ext)) return true;
  return false;
}

}  // namespace bitnet::testing
