#include "bitnet/threadpool.h"

#include <fstream>
#include <set>
#include <string>
#include <system_error>
#include <utility>

#include "bitnet/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BITNET_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define BITNET_CPU_RELAX() asm volatile("yield")
#else
#define BITNET_CPU_RELAX() ((void)0)
#endif

namespace bitnet {

namespace {
// Iterations a thread spins before it sleeps. The engine issues a few hundred short loops per
// token; spinning this long covers the gap between two of them.
constexpr int kSpinIterations = 20000;

// One spin step. Every 64th step yields the core, so that when other processes hold the cores a
// spinning thread does not take the time slice of the thread it is waiting for.
inline void spin_pause(int i) {
  if ((i & 63) == 63) std::this_thread::yield();
  else BITNET_CPU_RELAX();
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  workers_.reserve((size_t)n_threads_ - 1);
  for (int i = 1; i < n_threads_; ++i) {
    try {
      workers_.emplace_back([this] { worker_loop(); });
    } catch (const std::system_error& e) {  // pids limit, ulimit -u, no memory for a stack
      stop_workers();
      throw Error("cannot create thread " + std::to_string(i + 1) + " of " + std::to_string(n_threads_) + ": " +
                  e.code().message());
    }
  }
}

ThreadPool::~ThreadPool() { stop_workers(); }

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void ThreadPool::run_tasks() {
  for (;;) {
    int64_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks_) break;
    try {
      (*fn_)(task);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu_);
      if (!error_) error_ = std::current_exception();
      next_task_.store(n_tasks_, std::memory_order_relaxed);  // hand out no further tasks
    }
  }
}

void ThreadPool::worker_loop() {
  // Generation 0 is the state at construction: a loop published before this thread got here
  // must still be seen as new.
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = seen;
    for (int spin = 0; spin < kSpinIterations; ++spin) {
      gen = generation_.load(std::memory_order_acquire);
      if (gen != seen) break;
      spin_pause(spin);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    if (stop_) return;
    run_tasks();
    if (pending_workers_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      done_cv_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t n_tasks, const std::function<void(int64_t)>& fn) {
  if (n_tasks <= 0) return;
  if (workers_.empty() || n_tasks == 1) {
    for (int64_t i = 0; i < n_tasks; ++i) fn(i);
    return;
  }
  fn_ = &fn;
  n_tasks_ = n_tasks;
  next_task_.store(0, std::memory_order_relaxed);
  pending_workers_.store((int)workers_.size(), std::memory_order_relaxed);
  {
    // Publishing under the mutex pairs with the sleeping workers' wait predicate.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  run_tasks();
  // Spin briefly for the workers' last tasks, then sleep: on a machine where other processes hold
  // the cores, spinning would keep a descheduled worker from finishing.
  bool done = false;
  for (int spin = 0; spin < kSpinIterations && !done; ++spin) {
    done = pending_workers_.load(std::memory_order_acquire) == 0;
    if (!done) spin_pause(spin);
  }
  if (!done) {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return pending_workers_.load(std::memory_order_acquire) == 0; });
  }
  // Every thread has left fn: the first exception any task threw goes to the caller.
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> lock(error_mu_);
    error = std::exchange(error_, nullptr);
  }
  if (error) std::rethrow_exception(error);
}

int physical_core_count() {
  // Count distinct (physical id, core id) pairs; hyper-threads share a core.
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, physical = "0";
  while (std::getline(cpuinfo, line)) {
    auto value = [&] { auto p = line.find(':'); return p == std::string::npos ? std::string() : line.substr(p + 2); };
    if (line.rfind("physical id", 0) == 0) physical = value();
    else if (line.rfind("core id", 0) == 0) cores.emplace(physical, value());
  }
  if (!cores.empty()) return (int)cores.size();
  unsigned n = std::thread::hardware_concurrency();
  return n ? (int)n : 1;
}

}  // namespace bitnet
