// bitnet bench: llama-bench's measurements and table. Each test runs once as a warmup, then -r
// times from position d (-d, default 0): pp = a prompt of p random tokens in batches of b, tg = n
// single-token decodes; no tokenization or sampling is timed. The first d cache positions are filled
// once per test, untimed, with a random prompt; each repetition then rewinds to position d and
// overwrites what the previous one wrote, so every repetition sees the same d cached tokens. --roofline adds each tg result as a fraction of
// what the machine's memory bandwidth allows (bandwidth / bytes of weights read per token).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "bitnet/error.h"
#include "bitnet/model.h"
#include "bitnet/threadpool.h"
#include "commands.h"
#include "common_params.h"

namespace bitnet::cli {
namespace {

struct BenchOptions {
  std::vector<std::string> models;
  std::vector<int64_t> n_prompt{512}, n_gen{128}, threads, batch{512}, depth{0};
  int repetitions = 5;
  std::string output = "md";
  KvType kv_type = KvType::F16;
  bool roofline = false;
};

struct Result {
  std::string model_path, model_type;
  uint64_t model_size = 0, n_params = 0, bytes_per_token = 0;
  uint64_t kv_bytes_per_token = 0;  // KV cache read per generated token, averaged over the tg run
  int n_threads = 0, n_batch = 0, n_prompt = 0, n_gen = 0, n_depth = 0;
  std::vector<double> samples_ns;
  double bandwidth = 0;  // bytes/s, with --roofline

  std::vector<double> samples_ts() const {
    std::vector<double> ts;
    for (double ns : samples_ns) ts.push_back(1e9 * (n_prompt + n_gen) / ns);
    return ts;
  }
  // Achieved tg speed over the bandwidth bound, for tg tests with a measured bandwidth.
  double roofline_fraction() const {
    if (n_gen == 0 || bandwidth <= 0 || bytes_per_token == 0) return 0;
    return mean(samples_ts()) / (bandwidth / (double)(bytes_per_token + kv_bytes_per_token));
  }
  static double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / v.size();
  }
  // Sample standard deviation (Bessel's correction), as llama-bench reports it.
  static double stdev(const std::vector<double>& v) {
    if (v.size() <= 1) return 0;
    double m = mean(v), sq = 0;
    for (double x : v) sq += (x - m) * (x - m);
    return std::sqrt(sq / (v.size() - 1));
  }
  std::string test_name() const {
    std::string name = n_gen == 0      ? "pp" + std::to_string(n_prompt)
                       : n_prompt == 0 ? "tg" + std::to_string(n_gen)
                                       : "pp" + std::to_string(n_prompt) + "+tg" + std::to_string(n_gen);
    if (n_depth > 0) name += " @ d" + std::to_string(n_depth);
    return name;
  }
};

std::string format(const char* fmt, double a, double b = 0) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), fmt, a, b);
  return buf;
}

// The markdown table of llama-bench: same columns, widths (negative = left-aligned) and formats.
class MarkdownTable {
 public:
  explicit MarkdownTable(bool roofline) {
    columns_ = {{"model", -30}, {"size", 10}, {"params", 10}, {"backend", -10}, {"threads", 7}, {"test", 13}, {"t/s", 20}};
    if (roofline) columns_.push_back({"roofline", 10});
  }
  void header() const {
    std::string names = "|", rule = "|";
    for (const auto& [name, width] : columns_) {
      names += cell(name, width);
      rule += ' ';
      rule.append((size_t)std::abs(width) - 1, '-');
      rule += width > 0 ? ": |" : "- |";
    }
    std::printf("%s\n%s\n", names.c_str(), rule.c_str());
  }
  void row(const Result& r) const {
    std::string line = "|";
    for (const auto& [name, width] : columns_) {
      std::string v;
      int w = width;
      if (name == "model") v = r.model_type;
      else if (name == "size") v = r.model_size < (1ull << 30) ? format("%.2f MiB", r.model_size / 1048576.0)
                                                               : format("%.2f GiB", r.model_size / 1073741824.0);
      else if (name == "params") v = r.n_params < 1000000000ull ? format("%.2f M", r.n_params / 1e6) : format("%.2f B", r.n_params / 1e9);
      else if (name == "backend") v = "CPU";
      else if (name == "threads") v = std::to_string(r.n_threads);
      else if (name == "test") v = r.test_name();
      else if (name == "t/s") {
        auto ts = r.samples_ts();
        v = format("%.2f ± %.2f", Result::mean(ts), Result::stdev(ts));
        w += 1;  // '±' is two bytes in UTF-8
      } else if (name == "roofline") v = r.n_gen > 0 ? format("%.1f %%", 100 * r.roofline_fraction()) : "";
      line += cell(v, w);
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }

 private:
  static std::string cell(const std::string& v, int width) {
    char buf[256];
    std::snprintf(buf, sizeof(buf), " %*s |", width, v.c_str());
    return buf;
  }
  std::vector<std::pair<std::string, int>> columns_;
};

nlohmann::json to_json(const Result& r) {
  auto ts = r.samples_ts();
  nlohmann::json j = {
      {"model_filename", r.model_path}, {"model_type", r.model_type}, {"model_size", r.model_size},
      {"model_n_params", r.n_params},   {"backend", "CPU"},           {"n_batch", r.n_batch},
      {"n_threads", r.n_threads},       {"n_prompt", r.n_prompt},     {"n_gen", r.n_gen},
      {"n_depth", r.n_depth},
      {"avg_ns", Result::mean(r.samples_ns)}, {"stddev_ns", Result::stdev(r.samples_ns)},
      {"avg_ts", Result::mean(ts)},     {"stddev_ts", Result::stdev(ts)},
      {"samples_ns", r.samples_ns},     {"samples_ts", ts}};
  if (r.bandwidth > 0) {
    j["memory_bandwidth_bytes_per_s"] = r.bandwidth;
    j["bytes_per_token"] = r.bytes_per_token;
    j["kv_bytes_per_token"] = r.kv_bytes_per_token;
    if (r.n_gen > 0) j["roofline_fraction"] = r.roofline_fraction();
  }
  return j;
}

// Best-of-3 multi-threaded streaming read over about 1 GiB, in bytes per second.
double measure_read_bandwidth(int n_threads) {
  constexpr size_t kBytes = size_t(1) << 30, kChunk = size_t(4) << 20;
  constexpr size_t kWordsPerChunk = kChunk / sizeof(uint64_t);
  std::vector<uint64_t> buffer(kBytes / sizeof(uint64_t), 1);  // written once so every page is mapped
  const int64_t n_chunks = (int64_t)(kBytes / kChunk);
  std::vector<uint64_t> sinks(n_chunks);
  ThreadPool pool(n_threads);
  double best = 0;
  for (int pass = 0; pass < 4; ++pass) {
    auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(n_chunks, [&](int64_t c) {
      const uint64_t* p = buffer.data() + c * kWordsPerChunk;
      uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;  // independent sums keep several loads in flight
      for (size_t i = 0; i < kWordsPerChunk; i += 4) {
        a0 += p[i];
        a1 += p[i + 1];
        a2 += p[i + 2];
        a3 += p[i + 3];
      }
      sinks[c] = a0 + a1 + a2 + a3;
    });
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    uint64_t total = 0;
    for (uint64_t v : sinks) total += v;
    if (total != kBytes / sizeof(uint64_t)) throw Error("bandwidth probe: wrong checksum");
    if (pass > 0) best = std::max(best, kBytes / s);  // the first pass warms up the pool and TLB
  }
  return best;
}

std::vector<int32_t> random_tokens(std::mt19937& rng, int n, int32_t n_vocab) {
  std::uniform_int_distribution<int32_t> dist(0, n_vocab - 1);
  std::vector<int32_t> t(n);
  for (auto& id : t) id = dist(rng);
  return t;
}

// n random tokens to decode from position `from`; the first is BOS at position 0 when the model adds it.
std::vector<int32_t> test_tokens(const Model& model, std::mt19937& rng, int n, int from) {
  std::vector<int32_t> tokens = random_tokens(rng, n, (int32_t)model.config().n_vocab);
  const Tokenizer& tok = model.tokenizer();
  if (from == 0 && n > 0 && tok.add_bos_default() && tok.bos() >= 0) tokens[0] = tok.bos();
  return tokens;
}

// One prompt of n tokens from position `from` (the cache cut back to `from` first), in batches of n_batch.
void run_prompt(Context& ctx, const Model& model, std::mt19937& rng, int n, int n_batch, int from) {
  std::vector<int32_t> tokens = test_tokens(model, rng, n, from);
  ctx.seq_truncate(0, from);
  for (int start = 0; start < n; start += n_batch) {
    Batch batch;
    const int end = std::min(n, start + n_batch);
    for (int i = start; i < end; ++i) batch.add(tokens[i], from + i, 0, i + 1 == end);
    ctx.decode(batch);
  }
}

// n single-token decodes from position `from` (the cache cut back to `from` first).
void run_generation(Context& ctx, const Model& model, std::mt19937& rng, int n, int from) {
  std::vector<int32_t> tokens = test_tokens(model, rng, n, from);
  ctx.seq_truncate(0, from);
  for (int i = 0; i < n; ++i) {
    Batch batch;
    batch.add(tokens[i], from + i, 0, true);
    ctx.decode(batch);
  }
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  BenchOptions o;
  bool p_given = false, n_given = false, b_given = false;
  OptionTable t("usage: bitnet bench -m MODEL.gguf [-p 512] [-n 128] [-d 0] [-t N] [-r 5] [-o md|json] [--roofline]\n"
                "Lists: comma-separated or repeated, ranges first-last[+step|*mult]; every combination is run.");
  t.value({"-m", "--model"}, "FNAME", "model (list)", [&](const std::string& v) {
    size_t a = 0;
    for (size_t b; (b = v.find(',', a)) != std::string::npos; a = b + 1) o.models.push_back(v.substr(a, b - a));
    o.models.push_back(v.substr(a));
  });
  auto list = [](std::vector<int64_t>& dst, bool& given, const char* name, int64_t min) {
    return [&dst, &given, name, min](const std::string& v) {
      if (!given) dst.clear();
      given = true;
      for (int64_t x : parse_int_list(name, v, min, 1 << 20)) dst.push_back(x);
    };
  };
  bool t_given = false, d_given = false;
  t.value({"-p", "--n-prompt"}, "N", "prompt tokens (list, default 512, 0 = none)", list(o.n_prompt, p_given, "-p", 0));
  t.value({"-n", "--n-gen"}, "N", "generated tokens (list, default 128, 0 = none)", list(o.n_gen, n_given, "-n", 0));
  t.value({"-t", "--threads"}, "N", "threads (list, default: physical cores)", list(o.threads, t_given, "-t", 1));
  t.value({"-d", "--n-depth"}, "N", "tokens already in the KV cache when a test starts (list, default 0)",
          list(o.depth, d_given, "-d", 0));
  t.value({"-b", "--batch-size"}, "N", "batch size for prompts (list, default 512)", list(o.batch, b_given, "-b", 1));
  t.value({"-r", "--repetitions"}, "N", "repetitions of each test (default 5)",
          [&](const std::string& v) { o.repetitions = (int)parse_int("-r", v, 1, 100000); });
  t.value({"-o", "--output"}, "FMT", "md (default) or json", [&](const std::string& v) {
    if (v != "md" && v != "json") throw Error("option '-o': unsupported output format '" + v + "' (md or json)");
    o.output = v;
  });
  auto kv_type = [&](const std::string& v) { o.kv_type = parse_kv_type(v); };  // K and V share one type
  t.value({"-ctk", "--cache-type-k"}, "TYPE", "KV cache type: f16 (default), f32 or q8_0", kv_type);
  t.value({"-ctv", "--cache-type-v"}, "TYPE", "KV cache type: f16 (default), f32 or q8_0", kv_type);
  t.value({"-ngl", "--n-gpu-layers"}, "N", "accepted for compatibility and ignored (CPU only)", [](const std::string&) {});
  HubOptions hub;  // one more model, from the Hugging Face Hub
  add_hub_options(t, hub);
  t.flag({"--roofline"}, "add each tg result as a fraction of memory bandwidth / bytes per token", [&] { o.roofline = true; });
  std::vector<std::string> positional = t.parse(argc, argv);
  if (t.help_requested()) {
    std::printf("%s", t.help().c_str());
    return 0;
  }
  if (!positional.empty()) throw Error("unexpected argument '" + positional[0] + "' (see --help)");
  if (!hub.repo.empty()) o.models.push_back(pull_model(hub));
  if (o.models.empty()) throw Error("no model given (-m FILE.gguf or -hf ORG/NAME[:TAG])");
  if (o.threads.empty()) o.threads.push_back(physical_core_count());

  std::map<int, double> bandwidth;  // per thread count
  if (o.roofline) {
    for (int64_t n : o.threads) {
      std::fprintf(stderr, "bench: measuring memory read bandwidth with %d threads\n", (int)n);
      bandwidth[(int)n] = measure_read_bandwidth((int)n);
      std::fprintf(stderr, "bench: memory read bandwidth: %.2f GB/s (%d threads)\n", bandwidth[(int)n] / 1e9, (int)n);
    }
  }

  MarkdownTable table(o.roofline);
  if (o.output == "md") table.header();
  nlohmann::json json = nlohmann::json::array();
  std::mt19937 rng(1234);  // fixed, so runs draw the same tokens
  for (const std::string& path : o.models) {
    EngineOptions eo;
    eo.model_path = path;
    std::unique_ptr<Model> model = load_model(eo, false);
    for (int64_t threads : o.threads)
      for (int64_t n_batch : o.batch)
        for (int64_t depth64 : o.depth) {
          const int depth = (int)depth64;
          std::vector<std::pair<int, int>> tests;
          for (int64_t p : o.n_prompt) if (p > 0) tests.push_back({(int)p, 0});
          for (int64_t n : o.n_gen) if (n > 0) tests.push_back({0, (int)n});
          for (auto [n_prompt, n_gen] : tests) {
            Result r;
            r.model_path = path;
            r.model_type = model->description();
            r.model_size = model->file_size();
            r.n_params = model->n_params();
            r.bytes_per_token = model->bytes_per_token();
            r.n_threads = (int)threads;
            r.n_batch = (int)n_batch;
            r.n_prompt = n_prompt;
            r.n_gen = n_gen;
            r.n_depth = depth;
            if (o.roofline) r.bandwidth = bandwidth[(int)threads];
            ContextParams cp;
            cp.n_ctx = depth + n_prompt + n_gen;
            cp.n_threads = (int)threads;
            cp.n_batch = (int)n_batch;
            cp.kv_type = o.kv_type;
            std::unique_ptr<Context> ctx = Context::create(*model, cp);
            // The token at position p reads the keys and values of positions 0..p.
            if (n_gen > 0) r.kv_bytes_per_token = ctx->kv_bytes_per_position() * (uint64_t)(depth + (n_gen + 1) / 2);
            if (depth > 0) {
              std::fprintf(stderr, "bench: %s, %s, %d threads: filling %d cache positions\n", path.c_str(),
                           r.test_name().c_str(), (int)threads, depth);
              run_prompt(*ctx, *model, rng, depth, (int)n_batch, 0);
            }
            // Every run below starts at position `depth`, keeping positions 0..depth-1.
            std::fprintf(stderr, "bench: %s, %s, %d threads: warmup\n", path.c_str(), r.test_name().c_str(), (int)threads);
            if (n_prompt > 0) run_prompt(*ctx, *model, rng, std::min(n_prompt, (int)n_batch), (int)n_batch, depth);
            if (n_gen > 0) run_generation(*ctx, *model, rng, 1, depth);
            for (int rep = 0; rep < o.repetitions; ++rep) {
              Stopwatch clock;
              if (n_prompt > 0) run_prompt(*ctx, *model, rng, n_prompt, (int)n_batch, depth);
              if (n_gen > 0) run_generation(*ctx, *model, rng, n_gen, depth + n_prompt);
              r.samples_ns.push_back(clock.seconds() * 1e9);
              std::fprintf(stderr, "bench: %s, %s: repetition %d/%d: %.2f t/s\n", path.c_str(), r.test_name().c_str(),
                           rep + 1, o.repetitions, r.samples_ts().back());
            }
            if (o.output == "md") table.row(r);
            else json.push_back(to_json(r));
          }
        }
  }
  if (o.output == "json") std::printf("%s\n", json.dump(2).c_str());
  else if (o.roofline) {
    std::printf("\nroofline = tg t/s / (memory read bandwidth / bytes read per token: weights + KV cache at that depth); bandwidth:");
    for (auto [n, bw] : bandwidth) std::printf(" %.2f GB/s (%d threads)", bw / 1e9, n);
    std::printf("\n");
  }
  return 0;
}

}  // namespace bitnet::cli
