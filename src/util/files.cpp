#include "util/files.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "bitnet/error.h"

namespace bitnet {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symlink";
  return "not a regular file";
}

// Copies s into a fixed buffer readable from a signal handler (truncated to fit).
template <size_t N>
void copy_truncated(char (&dst)[N], const std::string& s) {
  const size_t n = std::min(s.size(), N - 1);
  std::memcpy(dst, s.data(), n);
  dst[n] = '\0';
}

void write_stderr(const char* s) {
  for (size_t n = std::strlen(s); n > 0;) {
    const ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

// ---- temporaries removed on a fatal signal ------------------------------------------------------
// Fixed slots: the handler may only read memory that is never reallocated.

constexpr int kMaxTemps = 16;
struct TempSlot {
  std::atomic<bool> taken{false};  // reserved by a registering thread
  std::atomic<bool> live{false};   // path is complete and the file may exist
  char path[PATH_MAX];
};
TempSlot g_temps[kMaxTemps];

constexpr int kCleanupSignals[] = {SIGINT, SIGTERM, SIGHUP};
struct sigaction g_previous[3];
bool g_installed[3] = {};
std::mutex g_temps_mu;  // guards installing and restoring the handlers
int g_live_temps = 0;

void remove_temporaries() {
  for (TempSlot& s : g_temps)
    if (s.live.load(std::memory_order_acquire)) ::unlink(s.path);
}

void cleanup_handler(int sig) {
  const int saved_errno = errno;
  remove_temporaries();
  // Re-raise with the disposition that was there before (blocked until this handler returns).
  for (int i = 0; i < 3; ++i)
    if (kCleanupSignals[i] == sig) ::sigaction(sig, &g_previous[i], nullptr);
  ::raise(sig);
  errno = saved_errno;
}

int register_temp(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_temps_mu);
  for (int i = 0; i < kMaxTemps; ++i) {
    bool expected = false;
    if (!g_temps[i].taken.compare_exchange_strong(expected, true)) continue;
    copy_truncated(g_temps[i].path, path);
    g_temps[i].live.store(true, std::memory_order_release);
    if (g_live_temps++ == 0) {
      for (int s = 0; s < 3; ++s) {
        struct sigaction old {};
        ::sigaction(kCleanupSignals[s], nullptr, &old);
        g_installed[s] = old.sa_handler != SIG_IGN;  // an ignored signal (nohup) stays ignored
        if (!g_installed[s]) continue;
        struct sigaction sa {};
        sa.sa_handler = cleanup_handler;
        sigemptyset(&sa.sa_mask);
        ::sigaction(kCleanupSignals[s], &sa, &g_previous[s]);
      }
    }
    return i;
  }
  return -1;  // more than kMaxTemps at once: still removed on every other path
}

void unregister_temp(int slot) {
  if (slot < 0) return;
  std::lock_guard<std::mutex> lock(g_temps_mu);
  g_temps[slot].live.store(false, std::memory_order_release);
  g_temps[slot].taken.store(false, std::memory_order_release);
  if (--g_live_temps == 0)
    for (int s = 0; s < 3; ++s)
      if (g_installed[s]) ::sigaction(kCleanupSignals[s], &g_previous[s], nullptr);
}

// Blocks the cleanup signals in this thread for its lifetime, so that a temporary is never created
// without being registered.
class BlockCleanupSignals {
 public:
  BlockCleanupSignals() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : kCleanupSignals) sigaddset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~BlockCleanupSignals() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

 private:
  sigset_t old_;
};

// ---- mapped files named on SIGBUS ---------------------------------------------------------------

constexpr int kMaxMappings = 64;
struct MappingSlot {
  std::atomic<uintptr_t> begin{0};  // 0: free
  std::atomic<uintptr_t> end{0};
  char path[512];
};
MappingSlot g_maps[kMaxMappings];
struct sigaction g_previous_bus;
std::once_flag g_bus_once;

void bus_handler(int sig, siginfo_t* info, void* context) {
  const uintptr_t addr = reinterpret_cast<uintptr_t>(info->si_addr);
  for (MappingSlot& m : g_maps) {
    const uintptr_t begin = m.begin.load(std::memory_order_acquire);
    if (begin == 0 || addr < begin || addr >= m.end.load(std::memory_order_relaxed)) continue;
    remove_temporaries();
    write_stderr("error: ");
    write_stderr(m.path);
    write_stderr(": file changed or truncated while in use (replace model files atomically: write the "
                 "new file under another name, then rename it over the old one)\n");
    ::_exit(1);
  }
  // Not one of ours: hand it to whoever handled SIGBUS before (the default action crashes).
  if (g_previous_bus.sa_flags & SA_SIGINFO) {
    if (g_previous_bus.sa_sigaction) return g_previous_bus.sa_sigaction(sig, info, context);
  } else if (g_previous_bus.sa_handler != SIG_DFL && g_previous_bus.sa_handler != SIG_IGN) {
    return g_previous_bus.sa_handler(sig);
  }
  ::signal(SIGBUS, SIG_DFL);  // returning re-executes the access, which now ends the process
}

}  // namespace

int open_regular_file(const std::string& path, const char* what, struct stat* st_out) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below anyway.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw Error(path + ": cannot open " + what + ": " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error(path + ": cannot stat " + what + ": " + errno_text(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": " + what + " is " + file_kind(st.st_mode) + ", not a regular file");
  }
  if (st_out) *st_out = st;
  return fd;
}

std::string read_file_capped(const std::string& path, uint64_t max_bytes, const char* what) {
  const bool stdin_input = path == "-";
  const std::string name = stdin_input ? "standard input" : path;
  struct stat st {};
  const int fd = stdin_input ? STDIN_FILENO : open_regular_file(path, what, &st);
  auto too_large = [&] {
    return Error(name + ": " + what + " is larger than " + std::to_string(max_bytes >> 20) + " MiB");
  };
  std::string out;
  try {
    if (!stdin_input && (uint64_t)st.st_size > max_bytes) throw too_large();
    if (!stdin_input) out.reserve((size_t)st.st_size);
    char chunk[65536];
    for (;;) {
      const ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw Error(name + ": cannot read " + what + ": " + errno_text(errno));
      if (n == 0) break;
      if (out.size() + (size_t)n > max_bytes) throw too_large();
      out.append(chunk, (size_t)n);
    }
  } catch (...) {
    if (!stdin_input) ::close(fd);
    throw;
  }
  if (!stdin_input) ::close(fd);
  return out;
}

void register_mapped_file(const void* begin, size_t size, const std::string& path) {
  std::call_once(g_bus_once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = bus_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, &g_previous_bus);
  });
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  for (MappingSlot& m : g_maps) {
    if (m.begin.load(std::memory_order_relaxed) != 0) continue;
    copy_truncated(m.path, path);
    m.end.store(reinterpret_cast<uintptr_t>(begin) + size, std::memory_order_relaxed);
    m.begin.store(reinterpret_cast<uintptr_t>(begin), std::memory_order_release);
    return;
  }
}

void unregister_mapped_file(const void* begin) {
  for (MappingSlot& m : g_maps) {
    uintptr_t expected = reinterpret_cast<uintptr_t>(begin);
    if (m.begin.compare_exchange_strong(expected, 0)) return;
  }
}

void check_output_path(const std::string& path, bool overwrite) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw Error("output file '" + path + "': " + errno_text(errno));
  }
  if (S_ISLNK(st.st_mode) && ::stat(path.c_str(), &st) != 0)
    throw Error("output file '" + path + "' is a symlink whose target cannot be used (" + errno_text(errno) +
                "); refusing to write through it");
  if (!S_ISREG(st.st_mode))
    throw Error("output file '" + path + "' is " + file_kind(st.st_mode) + ", not a regular file; refusing to replace it");
  if (!overwrite) throw Error("output file '" + path + "' already exists (use --force to overwrite it)");
}

OutputFile::OutputFile(const std::string& path, bool overwrite) : path_(path), overwrite_(overwrite) {
  check_output_path(path, overwrite);
  target_ = path;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    // Write through the link: the file it names is replaced, the link stays.
    char* resolved = ::realpath(path.c_str(), nullptr);
    if (!resolved) throw Error("output file '" + path + "': cannot resolve the symlink: " + errno_text(errno));
    target_ = resolved;
    std::free(resolved);
  }
  // A replaced file keeps its permissions; a new one gets the usual 0666 less the umask.
  if (::stat(target_.c_str(), &st) == 0) {
    mode_ = st.st_mode & 07777;
  } else {
    const mode_t mask = ::umask(0);  // read it (no other thread creates files meanwhile in the CLI)
    ::umask(mask);
    mode_ = 0666 & ~mask;
  }
  const size_t slash = target_.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : target_.substr(0, slash == 0 ? 1 : slash);
  std::string name = target_ + ".XXXXXX.partial";
  BlockCleanupSignals blocked;
  fd_ = ::mkostemps(name.data(), 8, O_CLOEXEC);
  if (fd_ < 0) throw Error("output file '" + path + "': cannot create a temporary file in " + dir + ": " + errno_text(errno));
  temp_ = name;
  slot_ = register_temp(temp_);
  ::fchmod(fd_, mode_);
  buffer_.reserve(size_t{1} << 20);
}

OutputFile::~OutputFile() { discard(); }

void OutputFile::fail(const std::string& what, int err) {
  throw Error("output file '" + path_ + "': " + what + ": " + errno_text(err));
}

void OutputFile::flush_buffer() {
  const char* p = buffer_.data();
  for (size_t n = buffer_.size(); n > 0;) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("write failed", w < 0 ? errno : ENOSPC);
    p += w;
    n -= (size_t)w;
  }
  buffer_.clear();
}

void OutputFile::write(const void* data, size_t n) {
  if (fd_ < 0) throw Error("output file '" + path_ + "': write after commit");
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const size_t take = std::min(n, buffer_.capacity() - buffer_.size());
    buffer_.insert(buffer_.end(), p, p + take);
    p += take;
    n -= take;
    if (buffer_.size() == buffer_.capacity()) flush_buffer();
  }
}

void OutputFile::commit() {
  if (fd_ < 0) throw Error("output file '" + path_ + "': committed twice");
  try {
    publish();
  } catch (...) {  // finished either way: a failed commit leaves no temporary
    discard();
    throw;
  }
  temp_.clear();
  discard();
}

void OutputFile::discard() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_.empty()) ::unlink(temp_.c_str());
  temp_.clear();
  unregister_temp(slot_);
  slot_ = -1;
}

void OutputFile::publish() {
  flush_buffer();
  if (::fsync(fd_) != 0) fail("write failed", errno);
  const int closed = ::close(fd_);
  fd_ = -1;
  if (closed != 0) fail("write failed", errno);
  if (overwrite_) {
    struct stat st {};  // the target may have become something else while this was written
    if (::lstat(target_.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
      throw Error("output file '" + path_ + "' is now " + file_kind(st.st_mode) + ", not a regular file; refusing to replace it");
    if (::rename(temp_.c_str(), target_.c_str()) != 0) fail("cannot rename " + temp_ + " to it", errno);
  } else if (::renameat2(AT_FDCWD, temp_.c_str(), AT_FDCWD, target_.c_str(), RENAME_NOREPLACE) != 0) {
    int err = errno;
    if (err == EINVAL || err == ENOSYS || err == ENOTSUP) {  // file system without RENAME_NOREPLACE
      err = ::link(temp_.c_str(), target_.c_str()) == 0 ? 0 : errno;
      if (err == 0) ::unlink(temp_.c_str());
    }
    if (err == EEXIST)
      throw Error("output file '" + path_ + "' was created by someone else while this one was written; "
                  "not overwriting it (use --force to overwrite it)");
    if (err != 0) fail("cannot rename " + temp_ + " to it", err);
  }
}

}  // namespace bitnet
