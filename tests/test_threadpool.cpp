// ThreadPool: every task runs once, an exception thrown in a task (on any thread) reaches the
// caller after all threads left the loop, and a thread that cannot be created is reported in one
// line after the started ones are joined.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bitnet/error.h"
#include "bitnet/threadpool.h"

namespace bitnet {
namespace {

TEST(ThreadPool, RunsEveryTaskOnce) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> hits(1000);
  for (int round = 0; round < 20; ++round) pool.parallel_for(1000, [&](int64_t i) { hits[(size_t)i]++; });
  for (auto& h : hits) ASSERT_EQ(h.load(), 20);
}

TEST(ThreadPool, AWorkerExceptionReachesTheCallerAfterTheJoin) {
  ThreadPool pool(3);
  const std::thread::id caller = std::this_thread::get_id();
  for (int round = 0; round < 50; ++round) {
    std::atomic<int> running{0}, max_after_throw{0};
    std::atomic<bool> thrown{false};
    try {
      pool.parallel_for(64, [&](int64_t i) {
        running++;
        // Throw from a worker thread (the caller takes tasks too): the task that first runs off
        // the caller's thread throws; the others keep the loop busy for a moment.
        if (std::this_thread::get_id() != caller && !thrown.exchange(true)) {
          running--;
          throw std::runtime_error("task " + std::to_string(i) + " failed");
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        running--;
      });
      if (thrown) ADD_FAILURE() << "the exception was lost";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("failed"), std::string::npos);
      // parallel_for returned only after every thread left fn.
      EXPECT_EQ(running.load(), 0) << "rethrown while tasks were still running";
    }
  }
  // The pool stays usable.
  std::atomic<int> n{0};
  pool.parallel_for(100, [&](int64_t) { n++; });
  EXPECT_EQ(n.load(), 100);
}

TEST(ThreadPool, AnExceptionOnTheCallerThreadWaitsForTheWorkers) {
  ThreadPool pool(2);
  std::atomic<int> running{0};
  const std::thread::id caller = std::this_thread::get_id();
  EXPECT_THROW(pool.parallel_for(8,
                                 [&](int64_t) {
                                   running++;
                                   if (std::this_thread::get_id() == caller) {
                                     // Throw once a worker is inside a task too.
                                     const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
                                     while (running.load() < 2 && std::chrono::steady_clock::now() < deadline)
                                       std::this_thread::yield();
                                     running--;
                                     throw Error("caller task failed");
                                   }
                                   std::this_thread::sleep_for(std::chrono::milliseconds(20));
                                   running--;
                                 }),
               Error);
  EXPECT_EQ(running.load(), 0);
}

uint64_t virtual_memory_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmSize:", 0) == 0) return std::stoull(line.substr(7)) * 1024;
  return 0;
}

TEST(ThreadPool, ThreadCreationFailureIsAnErrorNotTerminate) {
  // Run as root a process limit (ulimit -u) does not apply: an address-space limit just above
  // what the process uses makes thread stacks (8 MiB each) fail to map after a few threads.
  EXPECT_EXIT(
      {
        const uint64_t limit = virtual_memory_bytes() + (40u << 20);
        struct rlimit rl {};
        rl.rlim_cur = rl.rlim_max = limit;
        ::setrlimit(RLIMIT_AS, &rl);
        try {
          ThreadPool pool(200);
        } catch (const Error& e) {
          std::fprintf(stderr, "%s\n", e.what());
          std::_Exit(3);
        }
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(3), "cannot create thread [0-9]+ of 200: Resource temporarily unavailable");
}

}  // namespace
}  // namespace bitnet
