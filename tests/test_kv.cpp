// The paged KV cache and its sequence operations, and batch invariance: a sequence's logits are
// bit-identical however its tokens are batched with other sequences', cut back, copied or aborted.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>

#include "bitnet/log.h"
#include "bitnet/model.h"
#include "fixtures.h"
#include "random_model.h"

namespace bitnet {
namespace {

using namespace test;

std::string write_random_model(const std::string& name, const Spec& s, uint32_t seed) {
  const std::string path = (scratch_dir() / (name + ".gguf")).string();
  write_model(make_model(s, seed), path);
  return path;
}

std::vector<int32_t> some_tokens(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = (int32_t)(rng() % 300);  // Spec's vocabulary
  return t;
}

using Logits = std::vector<float>;

Logits logits_of(const Context& ctx, size_t j, int64_t n_vocab) { return Logits(ctx.logits(j), ctx.logits(j) + n_vocab); }

bool bit_identical(const Logits& a, const Logits& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::unique_ptr<Context> make_context(const Model& model, int n_ctx, int n_seq, KvType kv, int threads, int n_batch = 512) {
  ContextParams cp;
  cp.n_ctx = n_ctx;
  cp.n_seq = n_seq;
  cp.kv_type = kv;
  cp.n_threads = threads;
  cp.n_batch = n_batch;
  return Context::create(model, cp);
}

// Logits at every position of `tokens` decoded from scratch in one batch, in a context of its own.
std::vector<Logits> cold(const Model& model, const std::vector<int32_t>& tokens, KvType kv) {
  auto ctx = make_context(model, 1024, 1, kv, 1);
  Batch b;
  for (size_t i = 0; i < tokens.size(); ++i) b.add(tokens[i], (int32_t)i, 0, true);
  EXPECT_TRUE(ctx->decode(b));
  std::vector<Logits> out;
  for (size_t i = 0; i < tokens.size(); ++i) out.push_back(logits_of(*ctx, i, model.config().n_vocab));
  return out;
}

// Decodes tokens[from, to) of sequence s in one batch and checks each position's logits against `want`.
void decode_and_compare(Context& ctx, int s, const std::vector<int32_t>& tokens, size_t from, size_t to,
                        const std::vector<Logits>& want, const std::string& what) {
  Batch b;
  for (size_t p = from; p < to; ++p) b.add(tokens[p], (int32_t)p, s, true);
  ASSERT_TRUE(ctx.decode(b));
  const int64_t V = (int64_t)want[0].size();
  for (size_t p = from; p < to; ++p)
    ASSERT_TRUE(bit_identical(logits_of(ctx, p - from, V), want[p])) << what << ": sequence " << s << " position " << p;
}

// Four sequences with prompts of different lengths, admitted at different steps: each step
// decodes one batch holding a prompt chunk of each sequence still reading its prompt and one token
// of each generating sequence (as a continuous-batching server does). Every position's logits
// must be bit-identical to decoding that sequence alone.
void check_batched_matches_alone(const std::string& path, KvType kv) {
  auto model = Model::load(path, LoadOptions{2, "", false});
  struct Job {
    std::vector<int32_t> tokens;
    size_t prompt, start_step, chunk, done = 0;
  };
  // The long prompt crosses attention chunks (256) and, with 128-position pages, page boundaries;
  // that sequence generates alone at the end (single-token batches past 256 positions).
  std::vector<Job> jobs = {{some_tokens(30, 1), 5, 0, 5},
                           {some_tokens(60, 2), 40, 0, 16},
                           {some_tokens(140, 3), 120, 2, 50},
                           {some_tokens(340, 4), 300, 3, 128}};
  std::vector<std::vector<Logits>> alone;
  for (const Job& j : jobs) alone.push_back(cold(*model, j.tokens, kv));
  // n_ctx 2048 for 16 sequences: 128-position pages (the cold runs have 256), odd micro-batches.
  auto ctx = make_context(*model, 2048, 16, kv, 2, 37);
  for (size_t step = 0;; ++step) {
    Batch b;
    std::vector<std::pair<size_t, size_t>> entries;  // (job, position)
    for (size_t k = 0; k < jobs.size(); ++k) {
      Job& j = jobs[k];
      if (step < j.start_step || j.done == j.tokens.size()) continue;
      const size_t n = j.done < j.prompt ? std::min(j.chunk, j.prompt - j.done) : 1;
      for (size_t p = j.done; p < j.done + n; ++p) {
        b.add(j.tokens[p], (int32_t)p, (int32_t)(3 * k), true);  // sequence ids need not be dense
        entries.push_back({k, p});
      }
      j.done += n;
    }
    if (b.size() == 0) break;
    ASSERT_TRUE(ctx->decode(b));
    for (size_t e = 0; e < entries.size(); ++e) {
      const auto [k, p] = entries[e];
      ASSERT_TRUE(bit_identical(logits_of(*ctx, e, model->config().n_vocab), alone[k][p]))
          << kv_type_name(kv) << " cache, step " << step << ": job " << k << " position " << p << " (batch of " << b.size() << ")";
    }
  }
  for (size_t k = 0; k < jobs.size(); ++k) EXPECT_EQ(ctx->seq_length((int)(3 * k)), (int)jobs[k].tokens.size());
}

TEST(KvBatch, SequencesDecodedTogetherMatchAloneBitForBit) {
  Spec s;
  s.ctx = 1024;
  const std::string path = write_random_model("batch-i2s", s, 41);
  for (KvType kv : {KvType::F16, KvType::F32, KvType::Q8_0}) check_batched_matches_alone(path, kv);
}

TEST(KvBatch, FloatHeadsAndFloatModelsAreBatchInvariant) {
  // Tied heads stored as F16, Q8_0 and Q6_K use the head GEMM kernels (one token: GEMV); a float
  // llama model runs every linear as a float matrix.
  for (TensorType head : {TensorType::F16, TensorType::Q8_0, TensorType::Q6_K}) {
    Spec s;
    s.ctx = 1024;
    s.embd_type = head;
    check_batched_matches_alone(write_random_model(std::string("batch-head-") + type_name(head), s, 43), KvType::F16);
  }
  Spec s;
  s.ctx = 1024;
  s.arch = "llama";
  s.type = TensorType::F32;
  check_batched_matches_alone(write_random_model("batch-llama-f32", s, 47), KvType::F16);
}

class KvCache : public ::testing::Test {
 protected:
  void SetUp() override {
    Spec s;
    s.ctx = 1024;
    // One file per test: ctest runs the tests of this suite in parallel processes.
    path_ = write_random_model(::testing::UnitTest::GetInstance()->current_test_info()->name(), s, 53);
    model_ = Model::load(path_, LoadOptions{2, "", false});
    V_ = model_->config().n_vocab;
  }
  std::string path_;
  std::unique_ptr<Model> model_;
  int64_t V_ = 0;
};

TEST_F(KvCache, PageSizeAndPoolFollowTheContext) {
  auto ctx = make_context(*model_, 4096, 4, KvType::F16, 1);
  EXPECT_EQ(ctx->kv_page_size(), 256);
  EXPECT_EQ(ctx->kv_pages_total(), 16u);
  EXPECT_EQ(ctx->kv_pages_free(), 16u);
  EXPECT_EQ(ctx->kv_bytes(), 0u);
  // 16 sequences in 512 positions: pages of 32, one per sequence.
  ctx = make_context(*model_, 512, 16, KvType::F16, 1);
  EXPECT_EQ(ctx->kv_page_size(), 32);
  EXPECT_EQ(ctx->kv_pages_total(), 16u);
  // A tiny context still gives each sequence a page.
  ctx = make_context(*model_, 8, 3, KvType::Q8_0, 1);
  EXPECT_EQ(ctx->kv_page_size(), 16);
  EXPECT_EQ(ctx->kv_pages_total(), 3u);
}

TEST_F(KvCache, PagesFollowTheTokensHeldAndReturnToThePool) {
  for (KvType kv : {KvType::F16, KvType::F32, KvType::Q8_0}) {
    auto ctx = make_context(*model_, 256, 4, kv, 2);  // 64-position pages, 4 of them
    ASSERT_EQ(ctx->kv_page_size(), 64);
    const size_t page_bytes = ctx->kv_bytes_per_position() * 64;
    const auto tokens = some_tokens(100, 5);
    Batch b;
    for (int p = 0; p < 100; ++p) b.add(tokens[(size_t)p], p, 0, false);
    ASSERT_TRUE(ctx->decode(b));
    EXPECT_EQ(ctx->kv_pages_free(), 2u);
    EXPECT_EQ(ctx->kv_bytes(), 2 * page_bytes);
    ctx->seq_copy(0, 1, 100);  // shares both pages
    EXPECT_EQ(ctx->kv_pages_free(), 2u);
    ctx->seq_truncate(0, 64);  // the second page is still held by sequence 1
    EXPECT_EQ(ctx->kv_pages_free(), 2u);
    ctx->seq_release(1);
    EXPECT_EQ(ctx->kv_pages_free(), 3u);
    EXPECT_EQ(ctx->kv_bytes(), page_bytes);
    EXPECT_EQ(ctx->seq_length(0), 64);
    EXPECT_EQ(ctx->seq_length(1), 0);
    ctx->seq_release(0);
    EXPECT_EQ(ctx->kv_pages_free(), 4u);
    EXPECT_EQ(ctx->kv_bytes(), 0u);
    // Released pages serve again: the pool holds n_ctx positions whichever sequence uses them.
    for (int s = 0; s < 4; ++s) {
      b.clear();
      for (int p = 0; p < 64; ++p) b.add(tokens[(size_t)p], p, s, false);
      ASSERT_TRUE(ctx->decode(b));
    }
    EXPECT_EQ(ctx->kv_pages_free(), 0u);
    EXPECT_THROW(ctx->seq_truncate(0, 65), Error);
    EXPECT_THROW(ctx->seq_copy(0, 1, 65), Error);
    EXPECT_THROW(ctx->seq_release(4), Error);
    EXPECT_THROW(ctx->seq_length(-1), Error);
  }
}

TEST_F(KvCache, PrefixReuseTruncateAndCopiesMatchColdRuns) {
  for (KvType kv : {KvType::F16, KvType::F32, KvType::Q8_0}) {
    SCOPED_TRACE(kv_type_name(kv));
    auto ctx = make_context(*model_, 512, 8, kv, 2);  // 64-position pages
    const auto a = some_tokens(150, 7);
    std::vector<int32_t> b(a.begin(), a.begin() + 90), c(a.begin(), a.begin() + 64);
    const auto tail_b = some_tokens(30, 8), tail_c = some_tokens(20, 9);
    b.insert(b.end(), tail_b.begin(), tail_b.end());
    c.insert(c.end(), tail_c.begin(), tail_c.end());
    const auto cold_a = cold(*model_, a, kv), cold_b = cold(*model_, b, kv), cold_c = cold(*model_, c, kv);

    decode_and_compare(*ctx, 0, a, 0, 100, cold_a, "prompt");
    // Prefix reuse: 90 positions (a partial page) and 64 (whole pages only) copied, then continued.
    ctx->seq_copy(0, 1, 90);
    ctx->seq_copy(0, 2, 64);
    decode_and_compare(*ctx, 1, b, 90, b.size(), cold_b, "after copying 90");
    decode_and_compare(*ctx, 2, c, 64, c.size(), cold_c, "after copying 64");
    // The source continues unharmed by its copies' writes.
    decode_and_compare(*ctx, 0, a, 100, 110, cold_a, "source after the copies");
    // Truncate then decode again, at a page boundary and inside a page.
    ctx->seq_truncate(0, 64);
    decode_and_compare(*ctx, 0, a, 64, 80, cold_a, "after truncating to 64");
    ctx->seq_truncate(0, 33);
    decode_and_compare(*ctx, 0, c, 33, c.size(), cold_c, "after truncating to 33");
    // Copying onto a sequence that held something replaces it.
    ctx->seq_copy(1, 2, 100);
    decode_and_compare(*ctx, 2, b, 100, b.size(), cold_b, "after copying over sequence 2");
    ctx->seq_copy(2, 2, 95);  // src == dst: a truncation
    EXPECT_EQ(ctx->seq_length(2), 95);
  }
}

TEST_F(KvCache, SharedPageIsCopiedBeforeASharerWrites) {
  auto ctx = make_context(*model_, 256, 4, KvType::F16, 2);  // 64-position pages
  const auto a = some_tokens(120, 11);
  auto b = a;
  b.resize(70);
  const auto tail = some_tokens(40, 12);
  b.insert(b.end(), tail.begin(), tail.end());
  const auto cold_a = cold(*model_, a, KvType::F16), cold_b = cold(*model_, b, KvType::F16);

  decode_and_compare(*ctx, 0, a, 0, 80, cold_a, "prompt");
  ctx->seq_copy(0, 1, 80);  // page 1 (positions 64..79) is now shared
  const size_t free_before = ctx->kv_pages_free();
  // Sequence 0 cuts back into the shared page and writes positions 70.. there: sequence 1 must still
  // see a's tokens at 70..79, so the write goes to a copy.
  ctx->seq_truncate(0, 70);
  decode_and_compare(*ctx, 0, b, 70, b.size(), cold_b, "the writer");
  EXPECT_EQ(ctx->kv_pages_free(), free_before - 1) << "one copy of the shared page";
  decode_and_compare(*ctx, 1, a, 80, a.size(), cold_a, "the other sharer");
}

TEST_F(KvCache, BadBatchesAreRejectedAndLeaveTheCacheUntouched) {
  const auto a = some_tokens(80, 13);
  const auto cold_a = cold(*model_, a, KvType::F16);
  auto ctx = make_context(*model_, 128, 2, KvType::F16, 2);  // 64-position pages, 2 of them
  decode_and_compare(*ctx, 0, a, 0, 40, cold_a, "prompt");
  ctx->seq_copy(0, 1, 40);  // shares the partial page: sequence 1 needs a copy to write
  auto expect_rejected = [&](const Batch& b, const std::string& what, const std::string& message) {
    try {
      ctx->decode(b);
      ADD_FAILURE() << what << ": accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << what << ": " << e.what();
    }
    EXPECT_EQ(ctx->seq_length(0), 40) << what;
    EXPECT_EQ(ctx->seq_length(1), 40) << what;
    EXPECT_EQ(ctx->kv_pages_free(), 1u) << what;
    EXPECT_THROW(ctx->logits(0), Error) << what << ": no logits after a rejected batch";
  };
  Batch b;
  b.add(a[40], 40, 0, true);
  b.add(a[41], 40, 0, true);
  expect_rejected(b, "duplicate position", "repeats or goes back");
  b.clear();
  b.add(a[40], 40, 0, true);
  b.add(a[41], 42, 0, true);
  expect_rejected(b, "gap", "skips positions");
  b.clear();
  b.add(a[41], 41, 0, true);
  b.add(a[40], 40, 0, true);
  expect_rejected(b, "decreasing positions", "skips positions");
  b.clear();
  b.add(a[39], 39, 0, true);
  expect_rejected(b, "going back without seq_truncate", "repeats or goes back");
  b.clear();
  b.add(a[40], 40, 0, true);
  b.add((int32_t)V_, 41, 0, true);
  expect_rejected(b, "token id", "vocabulary");
  b.clear();
  b.add(a[40], 40, 2, true);
  expect_rejected(b, "sequence id", "sequence id");
  b.clear();
  b.add(a[40], 128, 0, true);
  expect_rejected(b, "position past n_ctx", "outside the context");
  // Pool: one free page. Sequence 0 to 70 needs a new page, sequence 1 writing into its shared
  // page needs a copy: two pages.
  b.clear();
  for (int p = 40; p < 70; ++p) b.add(a[(size_t)p], p, 0, true);
  b.add(a[40], 40, 1, true);
  expect_rejected(b, "full pool", "KV cache full");
  // Either alone fits; afterwards the cache is as if nothing had been rejected.
  decode_and_compare(*ctx, 0, a, 40, 60, cold_a, "after the rejections");
  decode_and_compare(*ctx, 1, a, 40, 45, cold_a, "the other sharer");

  // No free page: both sharers of a page need a copy to write to it.
  ctx = make_context(*model_, 64, 2, KvType::F16, 2);  // 32-position pages, 2 of them
  decode_and_compare(*ctx, 0, a, 0, 40, cold_a, "prompt");
  ctx->seq_copy(0, 1, 40);
  for (int s : {0, 1}) {
    b.clear();
    b.add(a[40], 40, s, true);
    EXPECT_THROW(ctx->decode(b), Error) << "sequence " << s << " writing to a shared page";
  }
  ctx->seq_release(1);
  decode_and_compare(*ctx, 0, a, 40, 60, cold_a, "once the page is no longer shared");
}

TEST_F(KvCache, AbortBetweenMicroBatchesKeepsTheCompletedOnesAndTheContextUsable) {
  const auto a = some_tokens(100, 17);
  const auto cold_a = cold(*model_, a, KvType::F16);
  auto ctx = make_context(*model_, 256, 2, KvType::F16, 2, 16);
  int polls = 0;
  ctx->set_abort_callback([&] { return ++polls == 3; });
  Batch b;
  for (int p = 0; p < 80; ++p) b.add(a[(size_t)p], p, 0, true);
  EXPECT_FALSE(ctx->decode(b));
  EXPECT_EQ(polls, 3);
  EXPECT_EQ(ctx->seq_length(0), 32) << "two micro-batches of 16 completed";
  EXPECT_THROW(ctx->logits(0), Error) << "an aborted batch has no logits";
  EXPECT_EQ(ctx->kv_pages_total() - ctx->kv_pages_free(), 1u) << "pages of the completed micro-batches only";
  ctx->set_abort_callback(nullptr);
  decode_and_compare(*ctx, 0, a, 32, 100, cold_a, "after the abort");
}

// Resident memory of this process (statm's second field).
size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * (size_t)sysconf(_SC_PAGESIZE);
}

TEST(KvMemory, ResidentMemoryFollowsThePagesHeld) {
  Spec s;  // one KV head of 256: 2 KiB per position in f16, pages of 512 KiB
  s.heads = 1;
  s.kv_heads = 1;
  s.ff = 256;
  s.ctx = 8192;
  const std::string path = write_random_model("kv_memory", s, 61);
  auto model = Model::load(path, LoadOptions{2, "", false});
  auto ctx = make_context(*model, 8192, 8, KvType::F16, 2);
  const size_t page_bytes = ctx->kv_bytes_per_position() * (size_t)ctx->kv_page_size();
  ASSERT_EQ(page_bytes, size_t{1} << 19);
  ASSERT_EQ(ctx->kv_pages_total(), 32u);
  auto fill = [&](int from, int to) {
    for (int q = from; q < to; ++q) {
      Batch b;
      for (int p = 0; p < 1024; ++p) b.add((q * 31 + p) % 300, p, q, false);
      ASSERT_TRUE(ctx->decode(b));
    }
  };
  const size_t before = resident_bytes();
  fill(0, 8);
  EXPECT_EQ(ctx->kv_bytes(), 32 * page_bytes);
  const size_t full = resident_bytes();
  EXPECT_GE(full, before + 30 * page_bytes) << "the pages are committed as they are written";
  for (int q = 2; q < 8; ++q) ctx->seq_release(q);
  EXPECT_EQ(ctx->kv_bytes(), 8 * page_bytes);
  const size_t released = resident_bytes();
  EXPECT_LE(released + 22 * page_bytes, full) << "released pages are given back to the system";
  // Given-back pages serve again: the sequences decode as before.
  fill(2, 8);
  EXPECT_GE(resident_bytes(), released + 22 * page_bytes);
}

TEST(Log, LibraryMessagesGoToTheSinkNotToStderr) {
  Spec s;
  const std::string path = write_random_model("log", s, 59);
  std::vector<std::pair<LogLevel, std::string>> got;
  set_log_sink([&](LogLevel level, const std::string& m) { got.push_back({level, m}); });
  ::testing::internal::CaptureStderr();
  Model::load(path, LoadOptions{1, "", true});
  const std::string printed = ::testing::internal::GetCapturedStderr();
  set_log_sink(nullptr);
  EXPECT_EQ(printed, "");
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back().first, LogLevel::Info);
  EXPECT_EQ(got.back().second, "\rloading model: 100%\n");
  // The default sink prints the text unchanged.
  ::testing::internal::CaptureStderr();
  log(LogLevel::Warn, "warning: something\n");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "warning: something\n");
}

}  // namespace
}  // namespace bitnet
