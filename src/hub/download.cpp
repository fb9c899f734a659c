#include "download.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "bitnet/error.h"
#include "bitnet/log.h"
#include "http.h"
#include "sha256.h"

namespace bitnet::hub {

namespace {

namespace fs = std::filesystem;

// Attempts per download before giving up (huggingface_hub retries 5 times too).
constexpr int kMaxAttempts = 5;

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

std::string duration(double seconds) {
  long s = (long)(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

// Download progress through the log sink: a redrawn bar (bytes, speed, ETA) when stderr is a
// terminal, else one line per 10% so that logs stay readable.
class Progress {
 public:
  Progress(std::string label, uint64_t total, uint64_t start, bool enabled)
      : label_(std::move(label)), total_(total), start_bytes_(start), enabled_(enabled && total > 0),
        tty_(isatty(STDERR_FILENO)), last_decile_((int)(start * 10 / (total ? total : 1))),
        begin_(std::chrono::steady_clock::now()), last_draw_(begin_) {}

  void update(uint64_t done, bool final = false) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    double elapsed = std::chrono::duration<double>(now - begin_).count();
    // Bytes of this session (a server that ignored Range restarted the file below start_bytes_).
    double speed = elapsed > 0 && done > start_bytes_ ? (double)(done - start_bytes_) / elapsed : 0;
    int percent = (int)(done * 100 / total_);
    if (tty_) {
      if (!final && now - last_draw_ < std::chrono::milliseconds(100)) return;
      last_draw_ = now;
      constexpr int kWidth = 24;
      int fill = (int)(done * kWidth / total_);
      std::string bar = std::string(fill, '#') + std::string(kWidth - fill, '.');
      std::string eta = speed > 0 && done < total_ ? "ETA " + duration((double)(total_ - done) / speed) : "";
      log_printf(LogLevel::Info, "\r%s [%s] %3d%% %s / %s %s/s %s\033[K%s", label_.c_str(), bar.c_str(), percent,
                 human_bytes((double)done).c_str(), human_bytes((double)total_).c_str(), human_bytes(speed).c_str(),
                 eta.c_str(), final ? "\n" : "");
    } else {
      int decile = (int)(done * 10 / total_);
      if (decile <= last_decile_) return;
      last_decile_ = decile;
      log_printf(LogLevel::Info, "pull: %s: %d%% (%s of %s, %s/s)\n", label_.c_str(), decile * 10,
                 human_bytes((double)done).c_str(), human_bytes((double)total_).c_str(), human_bytes(speed).c_str());
    }
  }

 private:
  std::string label_;
  uint64_t total_, start_bytes_;
  bool enabled_, tty_;
  int last_decile_;
  std::chrono::steady_clock::time_point begin_, last_draw_;
};

// An open file descriptor, closed on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

std::string errno_text() { return std::strerror(errno); }

// "bytes START-END/TOTAL" -> START, or -1.
long long content_range_start(const std::string& value) {
  if (value.rfind("bytes ", 0) != 0) return -1;
  char* end = nullptr;
  long long start = std::strtoll(value.c_str() + 6, &end, 10);
  return end && *end == '-' ? start : -1;
}

}  // namespace

std::string access_denied_message(const std::string& repo, long status, bool sent_token) {
  std::string code = "(HTTP " + std::to_string(status) + ")";
  if (sent_token)
    return "access to " + repo + " denied " + code +
           ": the repository is gated or private and the token given (HF_TOKEN or the token file) has no "
           "access to it; accept its terms on its Hub page or set HF_TOKEN to a token that has access";
  return "access to " + repo + " denied " + code +
         ": the repository is gated or private (or does not exist); set HF_TOKEN to an access token of an "
         "account that may read it (https://huggingface.co/settings/tokens)";
}

void download_blob(const RemoteBlob& blob, const RepoCache& cache, bool progress) {
  const fs::path target = cache.blob(blob.etag);
  if (fs::exists(target)) return;
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) throw Error("cannot create '" + target.parent_path().string() + "': " + ec.message());
  const fs::path lock_path = cache.lock(blob.etag);
  fs::create_directories(lock_path.parent_path(), ec);
  if (ec) throw Error("cannot create '" + lock_path.parent_path().string() + "': " + ec.message());

  // One process appends to {etag}.incomplete at a time; the others wait, then find the blob.
  Fd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666));
  if (lock.fd < 0) throw Error("cannot open '" + lock_path.string() + "': " + errno_text());
  if (::flock(lock.fd, LOCK_EX | LOCK_NB) != 0) {
    log_printf(LogLevel::Info, "pull: waiting for another process downloading %s\n", blob.label.c_str());
    if (::flock(lock.fd, LOCK_EX) != 0) throw Error("cannot lock '" + lock_path.string() + "': " + errno_text());
  }
  if (fs::exists(target)) return;

  const std::string partial = target.string() + ".incomplete";
  Fd out(::open(partial.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666));
  if (out.fd < 0) throw Error("cannot open '" + partial + "': " + errno_text());
  struct stat st {};
  if (::fstat(out.fd, &st) != 0) throw Error("cannot stat '" + partial + "': " + errno_text());
  uint64_t have = (uint64_t)st.st_size;
  auto restart = [&] {
    if (::ftruncate(out.fd, 0) != 0) throw Error("cannot truncate '" + partial + "': " + errno_text());
    have = 0;
  };
  if (have > blob.size) restart();
  if (have > 0 && have < blob.size)
    log_printf(LogLevel::Info, "pull: resuming %s at %llu of %llu bytes\n", blob.label.c_str(), (unsigned long long)have,
                 (unsigned long long)blob.size);

  Progress bar(blob.label, blob.size, have, progress);
  for (int attempt = 1; have < blob.size; ++attempt) {
    HttpRequest request;
    request.url = blob.url;
    request.headers = blob.headers;
    request.follow_redirects = true;
    if (have > 0) request.headers.push_back("Range: bytes=" + std::to_string(have) + "-");
    HttpResponse response;
    bool first_chunk = true;
    int write_errno = 0;
    const uint64_t before = have;
    request.sink = [&](const char* data, size_t size) {
      if (first_chunk) {
        first_chunk = false;
        // A server that ignores Range answers 200 with the whole content; a 206 must start where we are.
        if (response.status == 200 && have > 0) restart();
        if (response.status == 206 && content_range_start(response.header("content-range")) != (long long)have) {
          write_errno = EPROTO;
          return false;
        }
      }
      if (have + size > blob.size) {
        write_errno = EFBIG;
        return false;
      }
      for (size_t done = 0; done < size;) {
        ssize_t n = ::write(out.fd, data + done, size - done);
        if (n < 0) {
          if (errno == EINTR) continue;
          write_errno = errno;
          return false;
        }
        done += (size_t)n;
      }
      have += size;
      bar.update(have);
      return true;
    };
    TransportError error;
    bool ok = http_perform(request, response, error);
    if (!ok && error.sink_failed) {
      if (write_errno == EPROTO) throw Error("the server answered a Range request for " + blob.label + " with the wrong bytes (Content-Range '" + response.header("content-range") + "')");
      if (write_errno == EFBIG) {
        restart();
        throw Error("the server sent more than the " + std::to_string(blob.size) + " bytes announced for " + blob.label + "; the download was discarded");
      }
      throw Error("cannot write '" + partial + "': " + std::strerror(write_errno));
    }
    if (ok && (response.status == 401 || response.status == 403))
      throw Error(access_denied_message(blob.repo, response.status, !blob.headers.empty()));
    if (ok && response.status == 416 && have > 0) {
      restart();  // our partial file does not fit what the server has: start over
      continue;
    }
    if (ok && response.status / 100 != 2)
      throw Error("HTTP " + std::to_string(response.status) + " downloading " + blob.label + " from " + blob.url);
    if (have >= blob.size) break;
    // The connection ended early: resume where it stopped, at once if bytes came, else after a pause.
    std::string why = ok ? "the connection closed early" : error.message;
    if (attempt >= kMaxAttempts)
      throw Error("download of " + blob.label + " stopped at " + std::to_string(have) + " of " + std::to_string(blob.size) +
                  " bytes (" + why + "); run the command again to resume");
    log_printf(LogLevel::Warn, "pull: %s: %s at %llu of %llu bytes; resuming\n", blob.label.c_str(), why.c_str(),
                 (unsigned long long)have, (unsigned long long)blob.size);
    if (have == before) std::this_thread::sleep_for(std::chrono::seconds(attempt));
  }
  bar.update(have, true);

  // LFS etags are the sha256 of the content (git blob ids of small files are not checked).
  const bool lfs = blob.etag.size() == 64 && blob.etag.find_first_not_of("0123456789abcdef") == std::string::npos;
  if (lfs) {
    std::string actual = sha256_file(partial);
    if (actual != blob.etag) {
      ::unlink(partial.c_str());
      throw Error("sha256 mismatch for " + blob.label + " from " + blob.repo + ": expected " + blob.etag + ", got " +
                  actual + "; the download was discarded");
    }
  }
  if (::fsync(out.fd) != 0) throw Error("cannot write '" + partial + "': " + errno_text());
  if (::rename(partial.c_str(), target.c_str()) != 0)
    throw Error("cannot rename '" + partial + "' to '" + target.string() + "': " + errno_text());
}

}  // namespace bitnet::hub
