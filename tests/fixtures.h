// Locating the shared test material (../shared/fixtures beside the repository). Tests that need
// it call BITNET_REQUIRE_FIXTURES() and are skipped with a message when it is absent. Also the
// small helpers several tests share.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "bitnet/error.h"

namespace bitnet::test {

inline std::filesystem::path fixtures_dir() {
  if (const char* env = std::getenv("BITNET_FIXTURES")) return env;
  return std::filesystem::path(BITNET_SOURCE_DIR) / ".." / "shared" / "fixtures";
}

inline std::filesystem::path fixture(const std::string& rel) { return fixtures_dir() / rel; }

// A scratch directory unique to the running test binary, created on demand.
inline std::filesystem::path scratch_dir() {
  auto dir = std::filesystem::path(BITNET_BINARY_DIR) / "test-scratch" /
             ::testing::UnitTest::GetInstance()->current_test_suite()->name();
  std::filesystem::create_directories(dir);
  return dir;
}

// The message of the bitnet::Error that call() throws; a test failure (and "") when it throws none.
template <class F>
std::string error_of(F&& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

}  // namespace bitnet::test

#define BITNET_REQUIRE_FIXTURE(rel)                                                        \
  do {                                                                                     \
    if (!std::filesystem::exists(::bitnet::test::fixture(rel)))                            \
      GTEST_SKIP() << "shared fixture absent: " << ::bitnet::test::fixture(rel).string()   \
                   << " (place ../shared/fixtures beside the repository to run this test)"; \
  } while (0)
