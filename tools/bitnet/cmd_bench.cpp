// bitnet bench: llama-bench's measurements and outputs, plus llama-batched-bench's parallel
// sequences. Each test runs once as a warmup, then -r times from position d (-d, default 0) in each
// of np sequences (-np, default 1): pp = a prompt of p random tokens per sequence, decoded in
// micro-batches of b tokens; tg = n steps of one token per sequence; pg = a prompt of p then n
// steps. No tokenization or sampling is timed. The first d positions of every sequence are filled
// once per test, untimed; each repetition then truncates the sequences back to d. t/s is the
// aggregate over all sequences (llama-batched-bench's S_PP / S_TG); with -np the per-sequence rate
// is shown too. --roofline adds each tg result as a fraction of what memory bandwidth allows: a
// step reads the weights once for all np sequences, plus each sequence's KV cache; and, where the
// kernel backend has compute probes, each result as a fraction of what the measured peak
// multiply-accumulate rates allow (every token costs its MACs whatever the batch), and which of
// the two bounds is the lower.
#include <sys/utsname.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "bitnet/error.h"
#include "bitnet/kernels.h"
#include "bitnet/model.h"
#include "bitnet/threadpool.h"
#include "bitnet_version.h"
#include "commands.h"
#include "common_params.h"

namespace bitnet::cli {
namespace {

constexpr int kDefaultBatch = 512;

struct Test {
  int n_prompt = 0, n_gen = 0;
};

struct BenchOptions {
  std::vector<std::string> models;
  std::vector<int64_t> n_prompt{512}, n_gen{128}, threads, batch{kDefaultBatch}, depth{0}, n_parallel{1};
  std::vector<Test> pg;  // -pg p,n
  int repetitions = 5;
  std::string output = "md";
  KvType kv_type = KvType::F16;
  bool roofline = false, progress = false, warmup = true, check_memory = true;
};

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / v.size();
}

// Sample standard deviation (Bessel's correction), as llama-bench reports it.
double stdev(const std::vector<double>& v) {
  if (v.size() <= 1) return 0;
  double m = mean(v), sq = 0;
  for (double x : v) sq += (x - m) * (x - m);
  return std::sqrt(sq / (v.size() - 1));
}

struct Result {
  std::string model_path, model_type, test_time;
  uint64_t model_size = 0, n_params = 0, bytes_per_token = 0;
  uint64_t kv_bytes_per_token = 0;  // KV cache read per generated token of one sequence, averaged over the run
  int n_threads = 0, n_batch = 0, n_prompt = 0, n_gen = 0, n_depth = 0, n_parallel = 1;
  KvType kv_type = KvType::F16;
  std::vector<double> samples_ns;
  double bandwidth = 0;  // bytes/s, with --roofline
  // With --roofline on a backend with compute probes: the n_threads' peak rates (per second) and
  // the model's MACs per token.
  double int8_macs_peak = 0, f32_fmas_peak = 0;
  Model::Macs macs;

  // Aggregate tokens per second over all sequences.
  std::vector<double> samples_ts() const {
    std::vector<double> ts;
    for (double ns : samples_ns) ts.push_back(1e9 * n_parallel * (n_prompt + n_gen) / ns);
    return ts;
  }
  bool is_tg() const { return n_prompt == 0 && n_gen > 0; }
  // Achieved tg speed over the bandwidth bound: a step reads the weights once and the KV cache of
  // every sequence, for n_parallel tokens.
  double roofline_fraction() const {
    const double bound = bandwidth_bound_ts();
    return bound > 0 ? mean(samples_ts()) / bound : 0;
  }
  // Aggregate tg t/s that memory bandwidth allows (0 when unknown or not a tg test).
  double bandwidth_bound_ts() const {
    if (!is_tg() || bandwidth <= 0 || bytes_per_token == 0) return 0;
    const double bytes_per_step = (double)bytes_per_token + (double)n_parallel * (double)kv_bytes_per_token;
    return n_parallel * bandwidth / bytes_per_step;
  }
  // Aggregate t/s that the peak MAC rates allow: a token's ternary MACs at the int8 rate plus its
  // other MACs at the f32 FMA rate (0 when not measured).
  double compute_bound_ts() const {
    if (int8_macs_peak <= 0 || f32_fmas_peak <= 0 || macs.ternary + macs.other == 0) return 0;
    return 1.0 / ((double)macs.ternary / int8_macs_peak + (double)macs.other / f32_fmas_peak);
  }
  double compute_fraction() const {
    const double bound = compute_bound_ts();
    return bound > 0 ? mean(samples_ts()) / bound : 0;
  }
  // "memory" or "compute": the lower bound for a tg test; prompts are always compute bound.
  std::string limit() const {
    if (compute_bound_ts() <= 0) return "";
    const double bw = bandwidth_bound_ts();
    return bw > 0 && bw < compute_bound_ts() ? "memory" : "compute";
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

// Display width of UTF-8 text (every code point one column: enough for '±').
size_t columns(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// llama-bench's markdown table: its columns, minimum widths and number formats; a column grows to
// its longest entry. n_batch, type_k/type_v and np appear when a result differs from the default.
class MarkdownTable {
 public:
  MarkdownTable(const std::vector<Result>& results, bool roofline) {
    auto any = [&](auto pred) { return std::any_of(results.begin(), results.end(), pred); };
    const bool batch = any([](const Result& r) { return r.n_batch != kDefaultBatch; });
    const bool kv = any([](const Result& r) { return r.kv_type != KvType::F16; });
    const bool np = any([](const Result& r) { return r.n_parallel != 1; });
    columns_ = {{"model", -30}, {"size", 10}, {"params", 10}, {"backend", -10}, {"threads", 7}};
    if (batch) columns_.push_back({"n_batch", 7});
    if (kv) columns_.insert(columns_.end(), {{"type_k", -6}, {"type_v", -6}});
    if (np) columns_.push_back({"np", 4});
    columns_.push_back({"test", 13});
    columns_.push_back({"t/s", 20});
    if (np) columns_.push_back({"t/s per seq", 20});
    if (roofline) columns_.push_back({"roofline", 10});
    if (any([](const Result& r) { return r.compute_bound_ts() > 0; }))
      columns_.insert(columns_.end(), {{"compute", 9}, {"limit", -7}});
    for (const Result& r : results) {
      std::vector<std::string> row;
      for (auto& [name, width] : columns_) {
        row.push_back(value(name, r));
        const int w = (int)std::max(columns(row.back()), columns(name));
        if (w > std::abs(width)) width = width < 0 ? -w : w;
      }
      rows_.push_back(std::move(row));
    }
  }
  void print() const {
    std::string names = "|", rule = "|";
    for (const auto& [name, width] : columns_) {
      names += cell(name, width);
      rule += ' ';
      rule.append((size_t)std::abs(width) - 1, '-');
      rule += width > 0 ? ": |" : "- |";
    }
    std::printf("%s\n%s\n", names.c_str(), rule.c_str());
    for (const auto& row : rows_) {
      std::string line = "|";
      for (size_t i = 0; i < row.size(); ++i) line += cell(row[i], columns_[i].second);
      std::printf("%s\n", line.c_str());
    }
  }

 private:
  static std::string value(const std::string& name, const Result& r) {
    if (name == "model") return r.model_type;
    if (name == "size")
      return r.model_size < (1ull << 30) ? format("%.2f MiB", r.model_size / 1048576.0)
                                         : format("%.2f GiB", r.model_size / 1073741824.0);
    if (name == "params")
      return r.n_params < 1000000000ull ? format("%.2f M", r.n_params / 1e6) : format("%.2f B", r.n_params / 1e9);
    if (name == "backend") return "CPU";
    if (name == "threads") return std::to_string(r.n_threads);
    if (name == "n_batch") return std::to_string(r.n_batch);
    if (name == "type_k" || name == "type_v") return kv_type_name(r.kv_type);
    if (name == "np") return std::to_string(r.n_parallel);
    if (name == "test") return r.test_name();
    auto ts = r.samples_ts();
    if (name == "t/s") return format("%.2f ± %.2f", mean(ts), stdev(ts));
    if (name == "t/s per seq") return format("%.2f ± %.2f", mean(ts) / r.n_parallel, stdev(ts) / r.n_parallel);
    if (name == "roofline") return r.is_tg() ? format("%.1f %%", 100 * r.roofline_fraction()) : "";
    if (name == "compute") return r.compute_bound_ts() > 0 ? format("%.1f %%", 100 * r.compute_fraction()) : "";
    if (name == "limit") return r.limit();
    return "";
  }
  // Right-aligned for a positive width, left-aligned for a negative one, padded by display columns.
  static std::string cell(const std::string& v, int width) {
    const std::string pad((size_t)std::max(0, std::abs(width) - (int)columns(v)), ' ');
    std::string out = " ";
    out.append(width > 0 ? pad : "").append(v).append(width > 0 ? "" : pad).append(" |");
    return out;
  }
  std::vector<std::pair<std::string, int>> columns_;
  std::vector<std::vector<std::string>> rows_;
};

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    size_t colon = line.find(':');
    if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
  }
  struct utsname u {};
  return uname(&u) == 0 ? std::string(u.machine) : "";
}

std::string utc_now_iso8601() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// llama-bench's JSON fields (those that mean something on this engine), plus n_parallel, the
// kernel set and the roofline figures.
nlohmann::ordered_json to_json(const Result& r) {
  auto ts = r.samples_ts();
  nlohmann::ordered_json j = {
      {"build_commit", BITNET_COMMIT},  {"build_version", BITNET_VERSION},
      {"cpu_info", cpu_model_name()},   {"gpu_info", ""},
      {"backends", "CPU"},              {"kernels", isa_name(kernels().isa)},
      {"model_filename", r.model_path}, {"model_type", r.model_type},
      {"model_size", r.model_size},     {"model_n_params", r.n_params},
      {"n_batch", r.n_batch},           {"n_ubatch", r.n_batch},
      {"n_threads", r.n_threads},       {"type_k", kv_type_name(r.kv_type)},
      {"type_v", kv_type_name(r.kv_type)}, {"n_gpu_layers", 0},
      {"flash_attn", true},             {"use_mmap", true},
      {"n_prompt", r.n_prompt},         {"n_gen", r.n_gen},
      {"n_depth", r.n_depth},           {"n_parallel", r.n_parallel},
      {"test_time", r.test_time},
      {"avg_ns", mean(r.samples_ns)},   {"stddev_ns", stdev(r.samples_ns)},
      {"avg_ts", mean(ts)},             {"stddev_ts", stdev(ts)},
      {"avg_ts_per_seq", mean(ts) / r.n_parallel},
      {"samples_ns", r.samples_ns},     {"samples_ts", ts}};
  if (r.bandwidth > 0) {
    j["memory_bandwidth_bytes_per_s"] = r.bandwidth;
    j["bytes_per_token"] = r.bytes_per_token;
    j["kv_bytes_per_token"] = r.kv_bytes_per_token;
    if (r.is_tg()) j["roofline_fraction"] = r.roofline_fraction();
  }
  if (r.compute_bound_ts() > 0) {
    j["int8_macs_per_s"] = r.int8_macs_peak;
    j["f32_fmas_per_s"] = r.f32_fmas_peak;
    j["ternary_macs_per_token"] = r.macs.ternary;
    j["other_macs_per_token"] = r.macs.other;
    j["compute_fraction"] = r.compute_fraction();
    j["limit"] = r.limit();
  }
  return j;
}

// llama-bench's CSV: a header of field names, then one line per test with every value quoted.
void print_csv(const std::vector<nlohmann::ordered_json>& rows) {
  if (rows.empty()) return;
  auto quote = [](const nlohmann::ordered_json& v) {
    std::string text;
    if (v.is_string()) text = v.get<std::string>();
    else if (v.is_array()) {
      for (const auto& x : v) text.append(text.empty() ? "" : ";").append(x.dump());
    } else text = v.dump();
    std::string out = "\"";
    for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
  };
  std::string header;
  for (const auto& [key, value] : rows[0].items()) header += (header.empty() ? "" : ",") + key;
  std::printf("%s\n", header.c_str());
  for (const auto& row : rows) {
    std::string line;
    for (const auto& [key, value] : rows[0].items())
      line.append(line.empty() ? "" : ",").append(row.contains(key) ? quote(row[key]) : "\"\"");
    std::printf("%s\n", line.c_str());
  }
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
      sinks[c] = read_probe_sum(buffer.data() + c * kWordsPerChunk, (int64_t)kWordsPerChunk);
    });
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    uint64_t total = 0;
    for (uint64_t v : sinks) total += v;
    if (total != kBytes / sizeof(uint64_t)) throw Error("bandwidth probe: wrong checksum");
    if (pass > 0) best = std::max(best, kBytes / s);  // the first pass warms up the pool and TLB
  }
  return best;
}

struct ComputePeak {
  double int8_macs = 0, f32_fmas = 0;  // per second over all threads; 0 without probes
};

// Best of 3 runs of the backend's compute probes on n_threads threads at once (after a warmup).
ComputePeak measure_compute_peak(int n_threads) {
  const ComputeProbes probes = compute_probes(kernels().isa);
  if (!probes.int8_macs || !probes.f32_fmas) return {};
  ThreadPool pool(n_threads);
  auto rate = [&](uint64_t (*probe)(int64_t)) {
    constexpr int64_t kIters = 4000000;  // ~10 ms per task on a 3 GHz core
    const int64_t tasks = 4 * (int64_t)n_threads;
    double best = 0;
    for (int pass = 0; pass < 4; ++pass) {
      std::vector<uint64_t> done(tasks);
      auto t0 = std::chrono::steady_clock::now();
      pool.parallel_for(tasks, [&](int64_t i) { done[i] = probe(kIters); });
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      uint64_t total = 0;
      for (uint64_t d : done) total += d;
      if (pass > 0) best = std::max(best, total / s);
    }
    return best;
  };
  return {rate(probes.int8_macs), rate(probes.f32_fmas)};
}

// Drives the np sequences of one test on a context.
class Runner {
 public:
  Runner(Context& ctx, const Model& model, int n_parallel) : ctx_(ctx), model_(model), np_(n_parallel) {}

  // Each sequence is cut back to `from` tokens, then gets a prompt of n random tokens (in
  // sequence order, so micro-batches hold consecutive tokens of one sequence, as llama-batched-bench
  // builds them).
  void prompt(int n, int from) {
    truncate(from);
    Batch batch;
    for (int s = 0; s < np_; ++s) {
      std::vector<int32_t> tokens = random_tokens(n, from);
      for (int i = 0; i < n; ++i) batch.add(tokens[i], from + i, s, i + 1 == n);
    }
    ctx_.decode(batch);
  }
  // n steps from position `from` (each sequence cut back to it first), one token per sequence each.
  void generate(int n, int from) {
    truncate(from);
    std::vector<std::vector<int32_t>> tokens;
    for (int s = 0; s < np_; ++s) tokens.push_back(random_tokens(n, from));
    for (int i = 0; i < n; ++i) {
      Batch batch;
      for (int s = 0; s < np_; ++s) batch.add(tokens[s][i], from + i, s, true);
      ctx_.decode(batch);
    }
  }

 private:
  void truncate(int n) {
    for (int s = 0; s < np_; ++s)
      if (ctx_.seq_length(s) > n) ctx_.seq_truncate(s, n);
  }
  // n random tokens to decode from position `from`; the first is BOS at position 0 when the model adds it.
  std::vector<int32_t> random_tokens(int n, int from) {
    std::uniform_int_distribution<int32_t> dist(0, (int32_t)model_.config().n_vocab - 1);
    std::vector<int32_t> t(n);
    for (auto& id : t) id = dist(rng_);
    const Tokenizer& tok = model_.tokenizer();
    if (from == 0 && n > 0 && tok.add_bos_default() && tok.bos() >= 0) t[0] = tok.bos();
    return t;
  }
  Context& ctx_;
  const Model& model_;
  const int np_;
  std::mt19937 rng_{1234};  // fixed, so runs draw the same tokens
};

// A context whose pool holds every sequence's positions in whole pages.
std::unique_ptr<Context> make_context(const Model& model, ContextParams cp, int per_sequence) {
  cp.n_ctx = cp.n_seq * per_sequence;
  std::unique_ptr<Context> ctx = Context::create(model, cp);
  const int page = ctx->kv_page_size();
  const int pages_needed = cp.n_seq * ((per_sequence + page - 1) / page);
  if ((int64_t)ctx->kv_pages_total() >= pages_needed) return ctx;
  ctx.reset();
  cp.n_ctx = pages_needed * page;
  return Context::create(model, cp);
}

// "-pg 512,128": a prompt and a generation length.
Test parse_pg(const std::string& v) {
  const size_t comma = v.find(',');
  if (comma == std::string::npos) throw Error("option '-pg': expected PROMPT,GEN (e.g. 512,128), got '" + v + "'");
  Test t{(int)parse_int("-pg", v.substr(0, comma), 1, 1 << 20), (int)parse_int("-pg", v.substr(comma + 1), 1, 1 << 20)};
  return t;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  BenchOptions o;
  OptionTable t("usage: bitnet bench -m MODEL.gguf [-p 512] [-n 128] [-pg 512,128] [-d 0] [-np 1] [-t N] [-r 5]\n"
                "                    [-o md|csv|json|jsonl] [--roofline] [--progress]\n"
                "Lists: comma-separated or repeated, ranges first-last[+step|*mult]; every combination is run.");
  t.value({"-m", "--model"}, "FNAME", "model (list)", [&](const std::string& v) {
    size_t a = 0;
    for (size_t b; (b = v.find(',', a)) != std::string::npos; a = b + 1) o.models.push_back(v.substr(a, b - a));
    o.models.push_back(v.substr(a));
  });
  auto list = [](std::vector<int64_t>& dst, const char* name, int64_t min, int64_t max = 1 << 20) {
    return [&dst, name, min, max, given = false](const std::string& v) mutable {
      if (!given) dst.clear();
      given = true;
      for (int64_t x : parse_int_list(name, v, min, max)) dst.push_back(x);
    };
  };
  t.value({"-p", "--n-prompt"}, "N", "prompt tokens per sequence (list, default 512, 0 = none)", list(o.n_prompt, "-p", 0));
  t.value({"-n", "--n-gen"}, "N", "generated tokens per sequence (list, default 128, 0 = none)", list(o.n_gen, "-n", 0));
  t.value({"-pg"}, "P,N", "a prompt of P tokens then N generated, timed together (repeatable)",
          [&](const std::string& v) { o.pg.push_back(parse_pg(v)); });
  t.value({"-t", "--threads"}, "N", "threads (list, default: physical cores)", [&, add = list(o.threads, "-t", 1, kMaxThreads)](const std::string& v) mutable {
    add(v);
    for (int64_t n : o.threads) warn_threads((int)n);
  });
  t.value({"-d", "--n-depth"}, "N", "tokens already in each sequence's KV cache when a test starts (list, default 0)",
          list(o.depth, "-d", 0));
  t.value({"-np", "--parallel"}, "N", "sequences decoded together (list, default 1), as llama-batched-bench's -npl",
          list(o.n_parallel, "-np", 1));
  t.value({"-b", "--batch-size"}, "N", "micro-batch size for prompts (list, default 512)", list(o.batch, "-b", 1));
  t.value({"-r", "--repetitions"}, "N", "repetitions of each test (default 5)",
          [&](const std::string& v) { o.repetitions = (int)parse_int("-r", v, 1, 100000); });
  t.value({"-o", "--output"}, "FMT", "md (default), csv, json or jsonl (one JSON object per test, as it ends)",
          [&](const std::string& v) {
            if (v != "md" && v != "csv" && v != "json" && v != "jsonl")
              throw Error("option '-o': unsupported output format '" + v + "' (md, csv, json or jsonl)");
            o.output = v;
          });
  auto kv_type = [&](const std::string& v) { o.kv_type = parse_kv_type(v); };  // K and V share one type
  t.value({"-ctk", "--cache-type-k"}, "TYPE", "KV cache type: f16 (default), f32 or q8_0", kv_type);
  t.value({"-ctv", "--cache-type-v"}, "TYPE", "KV cache type: f16 (default), f32 or q8_0", kv_type);
  t.value({"-ngl", "--n-gpu-layers"}, "N", "accepted for compatibility and ignored (CPU only)",
          [](const std::string&) { note_ignored("-ngl", "this engine runs on the CPU only"); });
  HubOptions hub;  // one more model, from the Hugging Face Hub
  add_hub_options(t, hub);
  t.flag({"--roofline"}, "add each tg result as a fraction of memory bandwidth / bytes read per token", [&] { o.roofline = true; });
  t.flag({"--progress"}, "report every stage and repetition on stderr", [&] { o.progress = true; });
  t.flag({"--no-warmup"}, "skip the untimed warmup run of each test", [&] { o.warmup = false; });
  t.flag({"--no-check-memory"}, "run a model even when its weights, KV cache and buffers exceed the available memory",
         [&] { o.check_memory = false; });
  if (!t.parse_command(argc, argv)) return 0;
  if (!hub.repo.empty()) o.models.push_back(pull_model(hub));
  if (o.models.empty()) throw Error("no model given (-m FILE.gguf or -hf ORG/NAME[:TAG])");
  if (o.threads.empty()) o.threads.push_back(physical_core_count());

  std::vector<Test> tests;
  for (int64_t p : o.n_prompt) if (p > 0) tests.push_back({(int)p, 0});
  for (int64_t n : o.n_gen) if (n > 0) tests.push_back({0, (int)n});
  tests.insert(tests.end(), o.pg.begin(), o.pg.end());
  const size_t n_runs = o.models.size() * o.threads.size() * o.batch.size() * o.depth.size() * o.n_parallel.size() * tests.size();

  // With --roofline, each test's limits are measured right before it: on a shared machine the
  // bandwidth and peak rates drift by 2x within minutes, and a probe taken once at the start
  // let later tests read as over 100 % of their bound.
  auto measure_limits = [&](Result& r, const std::string& what) {
    r.bandwidth = measure_read_bandwidth(r.n_threads);
    const ComputePeak peak = measure_compute_peak(r.n_threads);
    r.int8_macs_peak = peak.int8_macs;
    r.f32_fmas_peak = peak.f32_fmas;
    if (peak.int8_macs > 0)
      std::fprintf(stderr, "%s: memory read bandwidth %.2f GB/s, peak %.1f G int8 MAC/s, %.1f G f32 FMA/s (%s)\n",
                   what.c_str(), r.bandwidth / 1e9, peak.int8_macs / 1e9, peak.f32_fmas / 1e9, isa_name(kernels().isa));
    else
      std::fprintf(stderr, "%s: memory read bandwidth %.2f GB/s (no compute probe for the %s kernels: memory bound only)\n",
                   what.c_str(), r.bandwidth / 1e9, isa_name(kernels().isa));
  };

  std::vector<Result> results;
  std::vector<nlohmann::ordered_json> json;
  size_t run = 0;
  for (const std::string& path : o.models) {
    EngineOptions eo;
    eo.model_path = path;
    // The memory plan for the largest context and micro-batch a test takes.
    eo.check_memory = o.check_memory;
    eo.cache_type_k = o.kv_type;
    for (const Test& test : tests)
      for (int64_t depth : o.depth)
        for (int64_t np : o.n_parallel)
          eo.n_ctx = std::max(eo.n_ctx, (int)(np * (depth + test.n_prompt + test.n_gen + 255) / 256 * 256));
    eo.n_batch = (int)*std::max_element(o.batch.begin(), o.batch.end());
    eo.n_seq = (int)*std::max_element(o.n_parallel.begin(), o.n_parallel.end());
    std::unique_ptr<Model> model = load_model(eo, false);
    for (int64_t threads : o.threads)
      for (int64_t n_batch : o.batch)
        for (int64_t depth64 : o.depth)
          for (int64_t np64 : o.n_parallel)
            for (Test test : tests) {
              Result r;
              r.model_path = path;
              r.model_type = model->description();
              r.model_size = model->file_size();
              r.n_params = model->n_params();
              r.bytes_per_token = model->bytes_per_token();
              r.n_threads = (int)threads;
              r.n_batch = (int)n_batch;
              r.n_prompt = test.n_prompt;
              r.n_gen = test.n_gen;
              r.n_depth = (int)depth64;
              r.n_parallel = (int)np64;
              r.kv_type = o.kv_type;
              r.test_time = utc_now_iso8601();
              ++run;
              const std::string what = "bench " + std::to_string(run) + "/" + std::to_string(n_runs) + ": " +
                                       r.test_name() + ", np " + std::to_string(r.n_parallel) + ", " +
                                       std::to_string(r.n_threads) + " threads";
              if (o.roofline) {
                r.macs = model->macs_per_token();
                measure_limits(r, what);
              }
              auto progress = [&](const std::string& stage) {
                if (o.progress) std::fprintf(stderr, "%s: %s\n", what.c_str(), stage.c_str());
              };
              progress("starting");
              ContextParams cp;
              cp.n_seq = r.n_parallel;
              cp.n_threads = r.n_threads;
              cp.n_batch = r.n_batch;
              cp.kv_type = o.kv_type;
              std::unique_ptr<Context> ctx = make_context(*model, cp, r.n_depth + r.n_prompt + r.n_gen);
              // The token at position p reads the keys and values of positions 0..p.
              if (r.n_gen > 0)
                r.kv_bytes_per_token = ctx->kv_bytes_per_position() * (uint64_t)(r.n_depth + r.n_prompt + (r.n_gen + 1) / 2);
              Runner runner(*ctx, *model, r.n_parallel);
              if (r.n_depth > 0) {
                progress("filling " + std::to_string(r.n_depth) + " cache positions per sequence");
                runner.prompt(r.n_depth, 0);
              }
              if (o.warmup) {
                progress("warmup");
                if (r.n_prompt > 0) runner.prompt(std::min(r.n_prompt, r.n_batch), r.n_depth);
                if (r.n_gen > 0) runner.generate(1, r.n_depth);
              }
              for (int rep = 0; rep < o.repetitions; ++rep) {
                Stopwatch clock;
                if (r.n_prompt > 0) runner.prompt(r.n_prompt, r.n_depth);
                if (r.n_gen > 0) runner.generate(r.n_gen, r.n_depth + r.n_prompt);
                r.samples_ns.push_back(clock.seconds() * 1e9);
                progress("repetition " + std::to_string(rep + 1) + "/" + std::to_string(o.repetitions) + ": " +
                         format("%.2f t/s", r.samples_ts().back()));
              }
              std::fprintf(stderr, "%s: %.2f t/s\n", what.c_str(), mean(r.samples_ts()));
              if (o.output == "jsonl") {
                std::printf("%s\n", to_json(r).dump().c_str());
                std::fflush(stdout);
              }
              json.push_back(to_json(r));
              results.push_back(std::move(r));
            }
  }
  if (o.output == "json") std::printf("%s\n", nlohmann::ordered_json(json).dump(2).c_str());
  if (o.output == "csv") print_csv(json);
  if (o.output == "md") {
    MarkdownTable(results, o.roofline).print();
    if (o.roofline) {
      std::printf("\nroofline = tg t/s / (bandwidth x np / bytes read per step: weights once + each sequence's KV cache)"
                  "; bandwidth measured before each test:");
      for (const Result& r : results) std::printf(" %.2f", r.bandwidth / 1e9);
      std::printf(" GB/s\n");
      if (std::any_of(results.begin(), results.end(), [](const Result& r) { return r.compute_bound_ts() > 0; })) {
        std::printf("compute = t/s / (1 / (ternary MACs per token / int8 MAC rate + other MACs / f32 FMA rate)),"
                    " limit = the lower bound; peak rates (%s) before each test:", isa_name(kernels().isa));
        for (const Result& r : results) std::printf(" %.1f/%.1f", r.int8_macs_peak / 1e9, r.f32_fmas_peak / 1e9);
        std::printf(" G int8 MAC/s / G FMA/s\n");
      }
    }
  }
  return 0;
}

}  // namespace bitnet::cli
