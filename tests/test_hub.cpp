// bitnet::hub against a stand-in Hub on 127.0.0.1 (tests/hub_stand_in.h): the protocol, the cache
// layout huggingface_hub shares, tag selection, resume, verification, tokens and offline mode.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "bitnet/error.h"
#include "bitnet/hub.h"
#include "hub/sha256.h"
#include "hub_stand_in.h"

namespace fs = std::filesystem;
using bitnet::Error;
using bitnet::testing::StandInHub;
using bitnet::testing::StandInRepo;
namespace hub = bitnet::hub;

namespace {

const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";
const std::string kCommit2 = "fedcba9876543210fedcba9876543210fedcba98";

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = (char)(rng() & 0xff);
  return s;
}

std::string sha256(const std::string& s) {
  hub::Sha256 h;
  h.update(s.data(), s.size());
  return h.hex_digest();
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

// Expects `f` to throw bitnet::Error whose message contains every one of `parts`.
template <class F>
void expect_error(F f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    for (const std::string& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

class Hub : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("bitnet-hub-test-" + std::to_string(getpid()) + "-" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    settings.endpoint = server.endpoint();
    settings.cache_dir = (dir / "hub").string();
    gguf = random_bytes(300000, 1);
    StandInRepo repo{"org/model-gguf", kCommit,
                     {{"README.md", "# model\n"},
                      {"ggml-model-i2_s.gguf", gguf},
                      {"ggml-model-tq1_0.gguf", random_bytes(1000, 2)},
                      {"sub/dir/extra.gguf", random_bytes(100, 3)}}};
    server.add(repo);
    options.progress = false;
  }
  void TearDown() override { fs::remove_all(dir); }

  std::string pull(const std::string& ref) { return hub::pull(hub::parse_model_ref(ref), options, settings); }
  fs::path repo_dir(const std::string& folder) { return fs::path(settings.cache_dir) / folder; }
  size_t count(const std::string& server_name, const std::string& method = "") {
    size_t n = 0;
    for (const auto& r : server.requests()) n += r.server == server_name && (method.empty() || r.method == method);
    return n;
  }

  StandInHub server;
  fs::path dir;
  hub::Settings settings;
  hub::PullOptions options;
  std::string gguf;
};

}  // namespace

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  hub::Sha256 million;  // one million 'a', fed in uneven pieces
  std::string piece(977, 'a');
  size_t left = 1000000;
  while (left) {
    size_t n = std::min(left, piece.size());
    million.update(piece.data(), n);
    left -= n;
  }
  EXPECT_EQ(million.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(HubNames, ParseModelRef) {
  auto r = hub::parse_model_ref("microsoft/bitnet-b1.58-2B-4T-gguf:i2_s");
  EXPECT_EQ(r.repo, "microsoft/bitnet-b1.58-2B-4T-gguf");
  EXPECT_EQ(r.tag, "i2_s");
  EXPECT_EQ(hub::parse_model_ref("tiiuae/Falcon3-1B-Instruct-1.58bit").tag, "");
  for (const char* bad : {"", "model", "a/b/c", "/b", "a/", "org/na me", "org/-x", "org/x--y", "org/x..y", "org/x:"})
    EXPECT_THROW(hub::parse_model_ref(bad), Error) << bad;
  EXPECT_EQ(hub::repo_folder_name("org/name"), "models--org--name");
}

TEST(HubNames, SelectGguf) {
  const std::vector<std::string> files = {"README.md", "ggml-model-I2_S.gguf", "model-TQ1_0.gguf", "model-tq2_0.gguf"};
  EXPECT_EQ(hub::select_gguf(files, "i2_s", "o/r"), "ggml-model-I2_S.gguf");  // case-insensitive
  EXPECT_EQ(hub::select_gguf(files, "TQ1", "o/r"), "model-TQ1_0.gguf");
  EXPECT_EQ(hub::select_gguf(files, "", "o/r"), "ggml-model-I2_S.gguf");  // I2_S first
  EXPECT_EQ(hub::select_gguf({"a-tq1_0.gguf", "a-tq2_0.gguf"}, "", "o/r"), "a-tq2_0.gguf");
  EXPECT_EQ(hub::select_gguf({"a-tq1_0.gguf", "a-f16.gguf"}, "", "o/r"), "a-tq1_0.gguf");
  EXPECT_EQ(hub::select_gguf({"only-f16.gguf", "config.json"}, "", "o/r"), "only-f16.gguf");
  expect_error([&] { hub::select_gguf(files, "q4_k", "o/r"); }, {"no GGUF file", "q4_k", "model-tq2_0.gguf"});
  expect_error([&] { hub::select_gguf(files, "model", "o/r"); }, {"several", "ggml-model-I2_S.gguf", "model-TQ1_0.gguf"});
  expect_error([&] { hub::select_gguf({"a-f16.gguf", "a-q8_0.gguf"}, "", "o/r"); },
               {"several GGUF files", "a-f16.gguf", "a-q8_0.gguf", "o/r:TAG"});
  expect_error([&] { hub::select_gguf({"x-i2_s.gguf", "y-i2_s.gguf"}, "", "o/r"); }, {"x-i2_s.gguf", "y-i2_s.gguf"});
  expect_error([&] { hub::select_gguf({"config.json"}, "", "o/r"); }, {"no GGUF"});
}

TEST(HubSettings, FromEnvironment) {
  const char* names[] = {"HF_ENDPOINT", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME",
                         "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE",
                         "TRANSFORMERS_OFFLINE", "HOME"};
  std::map<std::string, std::optional<std::string>> saved;
  for (const char* n : names) {
    const char* v = std::getenv(n);
    saved[n] = v ? std::optional<std::string>(v) : std::nullopt;
    unsetenv(n);
  }
  fs::path home = fs::temp_directory_path() / ("bitnet-hub-home-" + std::to_string(getpid()));
  setenv("HOME", home.c_str(), 1);
  auto s = hub::Settings::from_environment();
  EXPECT_EQ(s.endpoint, "https://huggingface.co");
  EXPECT_EQ(s.cache_dir, home.string() + "/.cache/huggingface/hub");
  EXPECT_EQ(s.token, "");
  EXPECT_FALSE(s.offline);

  spit(home / "hf" / "token", "hf_fromfile\r\n");
  setenv("HF_HOME", "~/hf", 1);
  setenv("HF_ENDPOINT", "http://mirror.example/", 1);
  setenv("HF_HUB_OFFLINE", "1", 1);
  s = hub::Settings::from_environment();
  EXPECT_EQ(s.cache_dir, home.string() + "/hf/hub");
  EXPECT_EQ(s.endpoint, "http://mirror.example");
  EXPECT_EQ(s.token, "hf_fromfile");
  EXPECT_TRUE(s.offline);

  setenv("HF_HUB_CACHE", "/x/cache", 1);
  setenv("HF_TOKEN", "hf_env", 1);
  setenv("HF_HUB_OFFLINE", "0", 1);
  s = hub::Settings::from_environment();
  EXPECT_EQ(s.cache_dir, "/x/cache");
  EXPECT_EQ(s.token, "hf_env");
  EXPECT_FALSE(s.offline);

  unsetenv("HF_HOME");
  unsetenv("HF_HUB_CACHE");
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  EXPECT_EQ(hub::Settings::from_environment().cache_dir, "/xdg/huggingface/hub");

  fs::remove_all(home);
  for (const auto& [n, v] : saved) {
    if (v) setenv(n.c_str(), v->c_str(), 1);
    else unsetenv(n.c_str());
  }
}

TEST_F(Hub, PullWritesHuggingfaceHubCacheLayout) {
  std::string path = pull("org/model-gguf");  // no tag: the I2_S file
  fs::path root = repo_dir("models--org--model-gguf");
  EXPECT_EQ(path, (root / "snapshots" / kCommit / "ggml-model-i2_s.gguf").string());
  ASSERT_TRUE(fs::is_symlink(path));
  EXPECT_EQ(fs::read_symlink(path).string(), "../../blobs/" + sha256(gguf));
  EXPECT_EQ(slurp(path), gguf);
  EXPECT_EQ(slurp(root / "refs" / "main"), kCommit);  // no newline, as huggingface_hub writes it
  EXPECT_FALSE(fs::exists(root / "blobs" / (sha256(gguf) + ".incomplete")));
  EXPECT_TRUE(fs::exists(fs::path(settings.cache_dir) / ".locks" / "models--org--model-gguf" / (sha256(gguf) + ".lock")));

  // The protocol: model info, HEAD on resolve/{commit}, the file from the CDN the Hub redirected to.
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].path, "/api/models/org/model-gguf/revision/main");
  EXPECT_EQ(requests[1].method, "HEAD");
  EXPECT_EQ(requests[1].path, "/org/model-gguf/resolve/" + kCommit + "/ggml-model-i2_s.gguf");
  EXPECT_EQ(requests[2].server, "cdn");
  EXPECT_EQ(requests[2].path, "/cdn/org/model-gguf/" + sha256(gguf));
  EXPECT_EQ(requests[2].range, "");

  // Nested paths link with one more "../" per directory; a non-LFS file's blob is named by its ETag.
  options.file = "sub/dir/extra.gguf";
  path = pull("org/model-gguf");
  EXPECT_EQ(fs::read_symlink(path).string().substr(0, 18), "../../../../blobs/");
  options.file = "README.md";
  path = pull("org/model-gguf");
  EXPECT_EQ(slurp(path), "# model\n");
  EXPECT_EQ(fs::read_symlink(path).string(), "../../blobs/" + sha256("# model\n").substr(0, 40));
}

TEST_F(Hub, TagsPickFilesAndAmbiguityIsAnError) {
  EXPECT_TRUE(pull("org/model-gguf:TQ1_0").ends_with("/ggml-model-tq1_0.gguf"));
  expect_error([&] { pull("org/model-gguf:ggml"); }, {"several", "ggml-model-i2_s.gguf", "ggml-model-tq1_0.gguf"});
  expect_error([&] { pull("org/model-gguf:q4_0"); }, {"no GGUF file", "q4_0"});
}

TEST_F(Hub, CachedFilesAreReusedWithoutDownloading) {
  std::string first = pull("org/model-gguf");
  server.clear_requests();
  EXPECT_EQ(pull("org/model-gguf"), first);
  EXPECT_EQ(count("hub", "GET"), 1u);  // the commit of "main" only
  EXPECT_EQ(count("hub", "HEAD"), 0u);
  EXPECT_EQ(count("cdn"), 0u);

  // The Hub unreachable: the cached snapshot of the revision, with a warning.
  settings.endpoint = "http://127.0.0.1:1";
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(pull("org/model-gguf"), first);
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("using the cached copy"), std::string::npos);
  expect_error([&] { pull("org/other"); }, {"cannot reach http://127.0.0.1:1", "not in the cache"});

  // The Hub down (HTTP 5xx): the same.
  settings.endpoint = server.endpoint();
  StandInRepo down{"org/model-gguf", kCommit, {}};
  down.down = true;
  server.add(down);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(pull("org/model-gguf"), first);
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("HTTP 503"), std::string::npos);
}

TEST_F(Hub, UsesFilesThatHuggingfaceHubDownloaded) {
  // The layout huggingface-cli leaves after `download org/model-gguf ggml-model-i2_s.gguf`.
  fs::path root = repo_dir("models--org--model-gguf");
  spit(root / "blobs" / sha256(gguf), gguf);
  fs::create_directories(root / "snapshots" / kCommit);
  fs::create_symlink("../../blobs/" + sha256(gguf), root / "snapshots" / kCommit / "ggml-model-i2_s.gguf");
  spit(root / "refs" / "main", kCommit);
  EXPECT_EQ(slurp(pull("org/model-gguf:i2_s")), gguf);
  EXPECT_EQ(count("hub", "HEAD") + count("cdn"), 0u);

  // A blob that another snapshot already holds is linked, not downloaded again.
  server.add({"org/model-gguf", kCommit2, {{"renamed-i2_s.gguf", gguf}}});
  server.clear_requests();
  std::string path = pull("org/model-gguf");
  EXPECT_EQ(fs::read_symlink(path).string(), "../../blobs/" + sha256(gguf));
  EXPECT_EQ(count("cdn"), 0u);
  EXPECT_EQ(slurp(root / "refs" / "main"), kCommit2);
}

TEST_F(Hub, OfflineModeNeverConnects) {
  settings.offline = true;
  expect_error([&] { pull("org/model-gguf"); }, {"HF_HUB_OFFLINE", "not in the cache"});
  settings.offline = false;
  std::string path = pull("org/model-gguf");
  options.revision = kCommit;  // a commit resolves without refs/
  std::string by_commit = pull("org/model-gguf");
  options.revision = "main";
  server.clear_requests();
  settings.offline = true;
  EXPECT_EQ(pull("org/model-gguf"), path);
  options.revision = kCommit;
  EXPECT_EQ(pull("org/model-gguf"), by_commit);
  options.revision = "v2";
  expect_error([&] { pull("org/model-gguf"); }, {"not in the cache"});
  options.revision = "main";
  expect_error([&] { pull("org/model-gguf:q4_0"); }, {"q4_0"});
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(Hub, TokenIsSentToTheHubButNotToTheCdn) {
  settings.token = "hf_secret";
  pull("org/model-gguf");
  for (const auto& r : server.requests()) {
    if (r.server == "hub") EXPECT_EQ(r.authorization, "Bearer hf_secret") << r.path;
    else EXPECT_EQ(r.authorization, "") << r.path;
  }
}

TEST_F(Hub, GatedRepositoriesNeedTheRightToken) {
  server.add({"org/gated", kCommit, {{"m-i2_s.gguf", gguf}}, "hf_good"});
  expect_error([&] { pull("org/gated"); }, {"gated", "HF_TOKEN", "401"});
  settings.token = "hf_bad";
  expect_error([&] { pull("org/gated"); }, {"gated", "HF_TOKEN", "403"});
  EXPECT_FALSE(fs::exists(repo_dir("models--org--gated") / "snapshots"));
  settings.token = "hf_good";
  EXPECT_EQ(slurp(pull("org/gated")), gguf);
}

TEST_F(Hub, CorruptDownloadIsRejected) {
  server.add({"org/corrupt", kCommit, {{"m-i2_s.gguf", gguf}}, "", /*corrupt=*/true});
  expect_error([&] { pull("org/corrupt"); }, {"sha256 mismatch", "m-i2_s.gguf", sha256(gguf)});
  fs::path root = repo_dir("models--org--corrupt");
  EXPECT_FALSE(fs::exists(root / "snapshots" / kCommit / "m-i2_s.gguf"));
  EXPECT_FALSE(fs::exists(root / "blobs" / sha256(gguf)));
  EXPECT_FALSE(fs::exists(root / "blobs" / (sha256(gguf) + ".incomplete")));
}

TEST_F(Hub, DroppedConnectionsResumeWithRange) {
  // The CDN closes every connection after 1/10 of the file: one pull makes 5 attempts, the next
  // call resumes from the .incomplete file and finishes.
  const size_t cut = gguf.size() / 10;
  server.add({"org/flaky", kCommit, {{"m-i2_s.gguf", gguf}}, "", false, cut});
  ::testing::internal::CaptureStderr();
  expect_error([&] { pull("org/flaky"); }, {"stopped at " + std::to_string(5 * cut), "run the command again"});
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("resuming"), std::string::npos) << log;
  fs::path partial = repo_dir("models--org--flaky") / "blobs" / (sha256(gguf) + ".incomplete");
  EXPECT_EQ(fs::file_size(partial), 5 * cut);
  EXPECT_FALSE(fs::exists(repo_dir("models--org--flaky") / "snapshots" / kCommit / "m-i2_s.gguf"));

  server.clear_requests();
  std::string path = pull("org/flaky");
  EXPECT_EQ(slurp(path), gguf);
  std::vector<std::string> ranges;
  for (const auto& r : server.requests())
    if (r.server == "cdn") ranges.push_back(r.range);
  ASSERT_EQ(ranges.size(), 5u);
  EXPECT_EQ(ranges[0], "bytes=" + std::to_string(5 * cut) + "-");
  EXPECT_EQ(ranges[4], "bytes=" + std::to_string(9 * cut) + "-");
}

TEST_F(Hub, InterruptedDownloadResumesFromTheIncompleteFile) {
  // What a killed `bitnet pull` (or huggingface-cli) leaves behind.
  server.add({"org/slow", kCommit, {{"m-i2_s.gguf", gguf}}, "", false, 0, 50 << 20});
  fs::path partial = repo_dir("models--org--slow") / "blobs" / (sha256(gguf) + ".incomplete");
  spit(partial, gguf.substr(0, 123457));
  EXPECT_EQ(slurp(pull("org/slow")), gguf);
  auto requests = server.requests();
  ASSERT_EQ(requests.back().server, "cdn");
  EXPECT_EQ(requests.back().range, "bytes=123457-");
  EXPECT_FALSE(fs::exists(partial));

  // A partial file longer than the blob is discarded and the download starts over.
  server.add({"org/slow2", kCommit, {{"m-i2_s.gguf", gguf.substr(0, 5000)}}});
  fs::path partial2 = repo_dir("models--org--slow2") / "blobs" / (sha256(gguf.substr(0, 5000)) + ".incomplete");
  spit(partial2, gguf.substr(0, 6000));
  EXPECT_EQ(slurp(pull("org/slow2")), gguf.substr(0, 5000));
}

TEST_F(Hub, ProgressIsALinePerTenPercentWhenNotATerminal) {
  if (isatty(STDERR_FILENO)) GTEST_SKIP() << "stderr is a terminal";
  options.progress = true;
  ::testing::internal::CaptureStderr();
  pull("org/model-gguf");
  std::string log = ::testing::internal::GetCapturedStderr();
  for (int p = 10; p <= 100; p += 10)
    EXPECT_NE(log.find("pull: ggml-model-i2_s.gguf: " + std::to_string(p) + "% ("), std::string::npos) << p << log;
  EXPECT_EQ(log.find("\r"), std::string::npos);
}

TEST_F(Hub, RevisionsAndMissingRepositories) {
  options.revision = kCommit;
  pull("org/model-gguf");
  EXPECT_FALSE(fs::exists(repo_dir("models--org--model-gguf") / "refs" / kCommit));  // no ref for a commit
  options.revision = "v9";
  expect_error([&] { pull("org/model-gguf"); }, {"revision 'v9' not found"});
  options.revision = "../x";
  expect_error([&] { pull("org/model-gguf"); }, {"invalid revision"});
  options.revision = "main";
  expect_error([&] { pull("org/nothing"); }, {"org/nothing", "not found"});
}

TEST_F(Hub, RepositoriesWithoutGgufDownloadAsSnapshots) {
  server.add({"org/safetensors", kCommit,
              {{"config.json", "{}"}, {"model.safetensors", gguf}, {"tokenizer.json", "{\"model\":{}}"}}});
  expect_error([&] { pull("org/safetensors"); }, {"no GGUF file", "bitnet convert"});
  options.allow_snapshot = true;
  std::string dir_path = pull("org/safetensors");
  EXPECT_EQ(dir_path, (repo_dir("models--org--safetensors") / "snapshots" / kCommit).string());
  EXPECT_EQ(slurp(fs::path(dir_path) / "model.safetensors"), gguf);
  EXPECT_EQ(slurp(fs::path(dir_path) / "config.json"), "{}");
  settings.offline = true;
  EXPECT_EQ(pull("org/safetensors"), dir_path);
}

TEST_F(Hub, ConcurrentPullsOfOneFileDownloadItOnce) {
  // As two processes would: the second waits on the lock file, then finds the blob in place.
  server.add({"org/slow", kCommit, {{"m-i2_s.gguf", gguf}}, "", false, 0, 1 << 20});
  std::string a, b;
  ::testing::internal::CaptureStderr();
  auto run = [&](std::string& out) {
    try {
      out = pull("org/slow");
    } catch (const Error& e) {
      out = e.what();
    }
  };
  std::thread first(run, std::ref(a));
  std::thread second(run, std::ref(b));
  first.join();
  second.join();
  ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(a, b);
  EXPECT_EQ(slurp(a), gguf);
  EXPECT_EQ(count("cdn"), 1u);
}
