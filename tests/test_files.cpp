// util/files.h: refusing special files as inputs, capped reads, outputs published atomically
// without ever replacing a non-regular file, temporaries removed on every failure path and on
// SIGINT/SIGTERM, and a truncated mapped file reported in one line instead of a SIGBUS crash.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <vector>

#include "bitnet/error.h"
#include "bitnet/gguf.h"
#include "fixtures.h"
#include "util/files.h"

namespace bitnet {
namespace {

namespace fs = std::filesystem;

std::string scratch(const std::string& name) {
  const fs::path p = test::scratch_dir() / name;
  fs::remove_all(p);
  return p.string();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

using test::error_of;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Files in dir other than the given ones (leftover temporaries).
std::vector<std::string> other_files(const std::string& dir, const std::vector<std::string>& expected) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (std::find(expected.begin(), expected.end(), name) == expected.end()) out.push_back(name);
  }
  return out;
}

// ---- inputs -------------------------------------------------------------------------------------

TEST(InputFiles, SpecialFilesAreRefusedWithoutBlocking) {
  const std::string dir = scratch("inputs");
  fs::create_directories(dir);
  const std::string fifo = dir + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Opening a FIFO without O_NONBLOCK would wait for a writer forever: run it with a deadline.
  auto pending = std::async(std::launch::async, [&] { return error_of([&] { read_file_capped(fifo, 1 << 20, "text file"); }); });
  ASSERT_EQ(pending.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "blocked on a FIFO";
  std::string msg = pending.get();
  EXPECT_TRUE(contains(msg, fifo) && contains(msg, "FIFO") && contains(msg, "not a regular file")) << msg;
  msg = error_of([&] { gguf::File::open(fifo); });
  EXPECT_TRUE(contains(msg, "FIFO")) << msg;

  msg = error_of([&] { read_file_capped(dir, 1 << 20, "tokenizer file"); });
  EXPECT_TRUE(contains(msg, dir + ": tokenizer file is a directory")) << msg;
  msg = error_of([&] { read_file_capped("/dev/zero", 1 << 20, "text file"); });
  EXPECT_TRUE(contains(msg, "character device")) << msg;
  msg = error_of([&] { read_file_capped(dir + "/missing.txt", 1 << 20, "text file"); });
  EXPECT_TRUE(contains(msg, "cannot open text file: No such file or directory")) << msg;
}

TEST(InputFiles, ReadsAreCapped) {
  const std::string path = scratch("cap.txt");
  write_text(path, std::string(5000, 'x'));
  EXPECT_EQ(read_file_capped(path, 5000, "text file").size(), 5000u);
  const std::string msg = error_of([&] { read_file_capped(path, 4999, "text file"); });
  EXPECT_TRUE(contains(msg, path) && contains(msg, "larger than")) << msg;
}

// ---- outputs ------------------------------------------------------------------------------------

TEST(OutputFile, PublishesOnlyOnCommitAndRemovesTheTemporaryOtherwise) {
  const std::string dir = scratch("publish");
  fs::create_directories(dir);
  const std::string path = dir + "/out.bin";
  {
    OutputFile out(path, false);
    out.write("abc", 3);
    EXPECT_FALSE(fs::exists(path));
    EXPECT_EQ(other_files(dir, {}).size(), 1u) << "one temporary beside the target";
  }  // abandoned: nothing published, nothing left
  EXPECT_TRUE(other_files(dir, {}).empty());
  OutputFile out(path, false);
  std::vector<char> big((3 << 20) + 5, 'y');  // more than the buffer
  out.write("abc", 3);
  out.write(big.data(), big.size());
  out.commit();
  EXPECT_EQ(read_text(path), "abc" + std::string(big.begin(), big.end()));
  EXPECT_TRUE(other_files(dir, {"out.bin"}).empty());
}

TEST(OutputFile, TemporaryNamesAreUniqueAndLeaveOtherFilesAlone) {
  const std::string dir = scratch("unique");
  fs::create_directories(dir);
  const std::string path = dir + "/x.gguf";
  write_text(path + ".partial", "someone else's");  // the name the writer once used
  OutputFile a(path, true), b(path, true);
  a.write("A", 1);
  b.write("B", 1);
  EXPECT_EQ(other_files(dir, {"x.gguf.partial"}).size(), 2u);
  a.commit();
  b.commit();  // --force: the later one wins
  EXPECT_EQ(read_text(path), "B");
  EXPECT_EQ(read_text(path + ".partial"), "someone else's");
  EXPECT_TRUE(other_files(dir, {"x.gguf", "x.gguf.partial"}).empty());
}

TEST(OutputFile, WithoutOverwriteTheSecondWriterLosesAtomically) {
  const std::string dir = scratch("race");
  fs::create_directories(dir);
  const std::string path = dir + "/out.npy";
  OutputFile first(path, false), second(path, false);  // both started while the name was free
  first.write("first", 5);
  second.write("second", 6);
  second.commit();
  const std::string msg = error_of([&] { first.commit(); });
  EXPECT_TRUE(contains(msg, "created by someone else") && contains(msg, "--force")) << msg;
  EXPECT_EQ(read_text(path), "second");
  EXPECT_TRUE(other_files(dir, {"out.npy"}).empty());
  const std::string exists = error_of([&] { OutputFile again(path, false); });
  EXPECT_TRUE(contains(exists, "already exists (use --force")) << exists;
}

TEST(OutputFile, NonRegularTargetsAreNeverReplaced) {
  const std::string dir = scratch("special");
  fs::create_directories(dir);
  const std::string fifo = dir + "/fifo", sub = dir + "/sub";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  fs::create_directories(sub);
  for (const std::string& target : {fifo, sub, std::string("/dev/null")}) {
    SCOPED_TRACE(target);
    const std::string msg = error_of([&] { OutputFile out(target, true); });
    EXPECT_TRUE(contains(msg, "not a regular file; refusing to replace it")) << msg;
    EXPECT_TRUE(contains(error_of([&] { check_output_path(target, true); }), "not a regular file"));
  }
  struct stat st {};
  ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_TRUE(fs::is_directory(sub));
  EXPECT_TRUE(other_files(dir, {"fifo", "sub"}).empty()) << "no temporary (or sub.partial) left";

  // A symlink to a FIFO is refused too; a dangling one is not written through.
  fs::create_symlink(fifo, dir + "/to-fifo");
  EXPECT_TRUE(contains(error_of([&] { OutputFile out(dir + "/to-fifo", true); }), "not a regular file"));
  fs::create_symlink(dir + "/nowhere", dir + "/dangling");
  EXPECT_TRUE(contains(error_of([&] { OutputFile out(dir + "/dangling", true); }), "symlink"));
  EXPECT_FALSE(fs::exists(dir + "/nowhere"));
}

TEST(OutputFile, WritesThroughASymlinkToItsTarget) {
  const std::string dir = scratch("symlink");
  fs::create_directories(dir + "/real");
  write_text(dir + "/real/model.gguf", "old");
  ::chmod((dir + "/real/model.gguf").c_str(), 0640);
  fs::create_symlink("real/model.gguf", dir + "/link.gguf");
  EXPECT_TRUE(contains(error_of([&] { OutputFile out(dir + "/link.gguf", false); }), "already exists"));
  OutputFile out(dir + "/link.gguf", true);
  out.write("new", 3);
  out.commit();
  EXPECT_TRUE(fs::is_symlink(dir + "/link.gguf")) << "the link itself must stay";
  EXPECT_EQ(read_text(dir + "/real/model.gguf"), "new");
  EXPECT_EQ(fs::status(dir + "/real/model.gguf").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  EXPECT_TRUE(other_files(dir + "/real", {"model.gguf"}).empty());
}

TEST(OutputFile, AFailedWriteLeavesTheOldFileAndNoTemporary) {
  const std::string dir = scratch("fail");
  fs::create_directories(dir);
  const std::string path = dir + "/out.npy";
  write_text(path, "precious");
  EXPECT_EXIT(
      {
        // A file size limit makes the writes fail as a full disk would (EFBIG instead of ENOSPC).
        ::signal(SIGXFSZ, SIG_IGN);
        struct rlimit limit {};
        limit.rlim_cur = limit.rlim_max = 1 << 20;
        ::setrlimit(RLIMIT_FSIZE, &limit);
        try {
          OutputFile out(path, true);
          std::vector<char> data(4 << 20, 'z');
          out.write(data.data(), data.size());
          out.commit();
        } catch (const Error& e) {
          std::fprintf(stderr, "%s\n", e.what());
          std::_Exit(3);
        }
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(3), "write failed: File too large");
  EXPECT_EQ(read_text(path), "precious");
  EXPECT_TRUE(other_files(dir, {"out.npy"}).empty());
}

TEST(OutputFile, SignalsRemoveTheTemporaryThenEndTheProcess) {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    SCOPED_TRACE(strsignal(sig));
    const std::string dir = scratch("signal");
    fs::create_directories(dir);
    EXPECT_EXIT(
        {
          ::signal(sig, SIG_DFL);  // as in a terminal (a background job of a script ignores SIGINT)
          OutputFile out(dir + "/big.gguf", false);
          out.write("partial", 7);
          ::raise(sig);
          std::_Exit(0);  // not reached
        },
        ::testing::KilledBySignal(sig), "");
    EXPECT_TRUE(other_files(dir, {}).empty()) << "temporary left behind";
  }
  // The handler is there only while an OutputFile lives; an ignored signal stays ignored.
  const auto handler = [](int sig) {
    struct sigaction sa {};
    ::sigaction(sig, nullptr, &sa);
    return sa.sa_handler;
  };
  auto* const old_hup = ::signal(SIGHUP, SIG_IGN);
  auto* const old_term = ::signal(SIGTERM, SIG_DFL);
  {
    OutputFile out(scratch("handlers.bin"), true);
    EXPECT_NE(handler(SIGTERM), SIG_DFL);
    EXPECT_EQ(handler(SIGHUP), SIG_IGN);
  }
  EXPECT_EQ(handler(SIGTERM), SIG_DFL);
  ::signal(SIGHUP, old_hup);
  ::signal(SIGTERM, old_term);
}

// ---- mapped files -------------------------------------------------------------------------------

TEST(MappedFiles, TruncationWhileMappedIsOneLineNamingTheFile) {
  const std::string path = scratch("truncated.gguf");
  gguf::Writer w;
  w.add_tensor("big", {1 << 20}, 0, 4u << 20);  // 4 MiB of F32 zeros
  w.write_header(path);
  std::vector<float> zeros(1 << 20, 0.0f);
  w.write_data(zeros.data(), zeros.size() * 4);
  w.finish();
  EXPECT_EXIT(
      {
        auto file = gguf::File::open(path);
        ::truncate(path.c_str(), 4096);  // as `cp new.gguf model.gguf` does while the model runs
        const uint8_t* data = file->tensors()[0].data;
        uint8_t sum = 0;
        for (size_t i = 0; i < (4u << 20); i += 4096) sum = (uint8_t)(sum + *(volatile const uint8_t*)&data[i]);
        std::printf("%d\n", sum);
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(1), "error: .*truncated.gguf: file changed or truncated while in use .*rename");
}

}  // namespace
}  // namespace bitnet
