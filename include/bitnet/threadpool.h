// A persistent pool of worker threads for data-parallel loops.
//
// parallel_for(n, fn) runs fn(i) for i in [0, n) across the caller and the workers and returns when
// all are done. Workers spin briefly on a generation counter before sleeping, because the engine
// issues many short loops per token and waking sleeping threads would dominate.
// Thread-safety: one thread at a time calls parallel_for (it is not reentrant from inside fn).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace bitnet {

class ThreadPool {
 public:
  // n_threads includes the calling thread; >= 1. When a thread cannot be created, joins those
  // already started and throws bitnet::Error "cannot create thread N of M: <reason>".
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Calls fn(task) for every task in [0, n_tasks); tasks are handed out dynamically. When a task
  // throws, no further tasks start, and the first exception is rethrown here once every thread
  // has left fn (the pool stays usable).
  void parallel_for(int64_t n_tasks, const std::function<void(int64_t)>& fn);

 private:
  void worker_loop();
  void run_tasks();
  void stop_workers();

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;       // workers wait here for a new loop
  std::condition_variable done_cv_;  // the caller waits here for the workers to finish
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> next_task_{0};
  std::atomic<int> pending_workers_{0};
  int64_t n_tasks_ = 0;
  const std::function<void(int64_t)>* fn_ = nullptr;
  bool stop_ = false;
  std::mutex error_mu_;
  std::exception_ptr error_;  // the first exception a task of the current loop threw
};

// Physical cores of this machine (falls back to hardware_concurrency).
int physical_core_count();

}  // namespace bitnet
