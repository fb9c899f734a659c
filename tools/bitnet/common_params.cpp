#include "common_params.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "bitnet/error.h"
#include "bitnet/log.h"
#include "bitnet/hub.h"
#include "bitnet/kernels.h"
#include "bitnet/threadpool.h"
#include "util/files.h"

namespace bitnet::cli {

void add_hub_options(OptionTable& t, HubOptions& o) {
  t.value({"-hf", "-hfr", "--hf-repo"}, "ORG/NAME[:TAG]",
          "model from the Hugging Face Hub (downloaded into its cache); TAG picks the GGUF file",
          [&o](const std::string& v) { o.repo = v; });
  t.value({"-hff", "--hf-file"}, "FILE", "with -hf: this file of the repository instead of the TAG's choice",
          [&o](const std::string& v) { o.file = v; });
  t.value({"--revision"}, "REV", "with -hf: branch, tag or commit (default: main)",
          [&o](const std::string& v) { o.revision = v; });
}

std::string pull_model(const HubOptions& o) {
  hub::PullOptions po;
  po.revision = o.revision;
  po.file = o.file;
  return hub::pull(hub::parse_model_ref(o.repo), po, hub::Settings::from_environment());
}

void add_threads_option(OptionTable& t, int& n_threads) {
  t.value({"-t", "--threads"}, "N", "threads (default: physical cores)", [&n_threads](const std::string& v) {
    n_threads = (int)parse_int("--threads", v, -1, kMaxThreads);
    warn_threads(n_threads);
  });
}

void add_engine_options(OptionTable& t, EngineOptions& o) {
  t.value({"-m", "--model"}, "FNAME", "model path (GGUF)", [&o](const std::string& v) { o.model_path = v; });
  add_hub_options(t, o.hub);
  add_threads_option(t, o.n_threads);
  t.value({"-c", "--ctx-size"}, "N", "context size (default: 0 = the model's)",
          [&o](const std::string& v) { o.n_ctx = (int)parse_int("--ctx-size", v, 0, 1 << 24); });
  t.value({"-b", "--batch-size"}, "N", "tokens per forward pass (default: 512)",
          [&o](const std::string& v) { o.n_batch = (int)parse_int("--batch-size", v, 1, 1 << 20); });
  t.value({"-ub", "--ubatch-size"}, "N", "physical batch: at most N tokens per forward pass (min with -b)",
          [&o](const std::string& v) { o.n_ubatch = (int)parse_int("--ubatch-size", v, 1, 1 << 20); });
  t.flag({"--kv-f32"}, "keep the KV cache in f32 (same as -ctk f32 -ctv f32)",
         [&o] { o.cache_type_k = o.cache_type_v = KvType::F32; });
  t.value({"-ctk", "--cache-type-k"}, "TYPE", "KV cache type: f16 (default), f32 or q8_0 (K and V share it)",
          [&o](const std::string& v) { o.cache_type_k = parse_kv_type(v); });
  t.value({"-ctv", "--cache-type-v"}, "TYPE", "KV cache type: f16 (default), f32 or q8_0 (K and V share it)",
          [&o](const std::string& v) { o.cache_type_v = parse_kv_type(v); });
  t.flag({"--mlock"}, "lock the weights in RAM (never swapped out)", [&o] { o.mlock = true; });
  t.flag({"--no-mmap"}, "read the model file into memory instead of mapping it", [&o] { o.use_mmap = false; });
  t.flag({"--no-check-memory"}, "load the model even when the weights, KV cache and buffers exceed the available memory",
         [&o] { o.check_memory = false; });
  t.value({"--tokenizer"}, "FILE", "tokenizer file to use instead of the GGUF's vocabulary",
          [&o](const std::string& v) { o.tokenizer_path = v; });
  t.value({"-ngl", "--gpu-layers", "--n-gpu-layers"}, "N", "accepted for compatibility and ignored (CPU only)",
          [](const std::string&) { note_ignored("-ngl", "this engine runs on the CPU only"); });
  t.optional_value({"-fa", "--flash-attn"}, {"on", "off", "auto"},
                   "accepted for compatibility and ignored (attention is always one fused pass here)",
                   [](const std::string&) { note_ignored("-fa", "attention is always computed in one fused pass here"); });
  t.value({"-tb", "--threads-batch"}, "N", "accepted for compatibility and ignored (-t serves prompts too)",
          [](const std::string& v) {
            parse_int("--threads-batch", v, -1, 1024);
            note_ignored("-tb", "one thread count (-t) serves prompt processing and generation here");
          });
}

int resolve_threads(int requested) { return requested > 0 ? requested : physical_core_count(); }

void require_model(EngineOptions& o) {
  if (!o.hub.repo.empty()) {
    if (!o.model_path.empty()) throw Error("give the model as -m FILE or -hf ORG/NAME, not both");
    o.model_path = pull_model(o.hub);
    o.hub.repo.clear();
  }
  if (o.model_path.empty()) throw Error("no model given (-m FILE.gguf or -hf ORG/NAME[:TAG])");
}

std::unique_ptr<Model> load_model(const EngineOptions& o, bool progress) {
  if (o.model_path.empty()) throw Error("no model given (-m FILE.gguf or -hf ORG/NAME[:TAG])");
  LoadOptions lo;
  lo.n_threads = resolve_threads(o.n_threads);
  lo.tokenizer_path = o.tokenizer_path;
  lo.progress = progress && info_enabled() && isatty(STDERR_FILENO);  // \r updates only make sense on a terminal
  lo.use_mmap = o.use_mmap;
  lo.mlock = o.mlock;
  if (o.check_memory) {
    const MemoryPlan plan = plan_memory(o.model_path, context_params(o));
    if (!plan.fits()) throw Error(plan.refusal());
  }
  std::unique_ptr<Model> model = Model::load(o.model_path, lo);
  const ModelConfig& c = model->config();
  if (o.n_ctx > c.n_ctx_train)
    warn("-c " + std::to_string(o.n_ctx) + " is beyond the model's training context (" + std::to_string(c.n_ctx_train) +
         "): expect degraded output past it");
  if (model->tokenizer().n_vocab() != c.n_vocab)
    warn("the tokenizer has " + std::to_string(model->tokenizer().n_vocab()) + " tokens but the embedding has " +
         std::to_string(c.n_vocab) + " rows: ids past the vocabulary have no text");
  if (o.mlock && info_enabled())
    std::fprintf(stderr, "mlock: %.1f MiB locked in RAM\n", locked_bytes() / 1048576.0);
  return model;
}

KvType EngineOptions::kv_type() const {
  if (cache_type_k && cache_type_v && *cache_type_k != *cache_type_v)
    throw Error(std::string("options -ctk ") + kv_type_name(*cache_type_k) + " and -ctv " + kv_type_name(*cache_type_v) +
                ": the K and V caches share one type here; give the same type to both");
  return cache_type_k.value_or(cache_type_v.value_or(KvType::F16));
}

ContextParams context_params(const EngineOptions& o) {
  ContextParams p;
  p.n_ctx = o.n_ctx;
  p.n_seq = o.n_seq;
  p.kv_type = o.kv_type();
  p.n_threads = resolve_threads(o.n_threads);
  p.n_batch = o.n_ubatch > 0 ? std::min(o.n_batch, o.n_ubatch) : o.n_batch;
  return p;
}

std::string read_text_file(const std::string& path) {
  constexpr uint64_t kMaxTextBytes = uint64_t{1} << 30;
  return read_file_capped(path, kMaxTextBytes, "text file");
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string process_escapes(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    char c = s[++i];
    switch (c) {
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case 'x':
        if (i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
          out += (char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
          i += 2;
          break;
        }
        [[fallthrough]];
      default: out += '\\'; out += c;
    }
  }
  return out;
}

std::vector<int64_t> parse_int_list(const std::string& option, const std::string& value, int64_t min,
                                    int64_t max) {
  std::vector<int64_t> out;
  std::stringstream items(value);
  std::string item;
  while (std::getline(items, item, ',')) {
    // A range "a-b", "a-b+s" or "a-b*m"; a leading '-' is a sign, not a range.
    size_t dash = item.find('-', 1);
    if (dash == std::string::npos) {
      out.push_back(parse_int(option, item, min, max));
      continue;
    }
    size_t op = item.find_first_of("+*", dash + 1);
    int64_t first = parse_int(option, item.substr(0, dash), min, max);
    int64_t last = parse_int(option, item.substr(dash + 1, op == std::string::npos ? op : op - dash - 1), min, max);
    int64_t step = op == std::string::npos ? 1 : parse_int(option, item.substr(op + 1), 1, max);
    bool multiply = op != std::string::npos && item[op] == '*';
    if (multiply && (step < 2 || first < 1)) throw Error("option '" + option + "': invalid range '" + item + "'");
    for (int64_t v = first; v <= last; v = multiply ? v * step : v + step) {
      out.push_back(v);
      if (out.size() > 4096) throw Error("option '" + option + "': range '" + item + "' is too long");
    }
  }
  if (out.empty()) throw Error("option '" + option + "': empty list");
  return out;
}

std::string system_info_line(int n_threads) {
  return "system_info: n_threads = " + std::to_string(n_threads) + " / " +
         std::to_string(std::thread::hardware_concurrency()) + " | " + cpu_features_line() +
         " | kernels = " + isa_name(kernels().isa);
}

namespace {
bool g_info = true;
}

void set_info_enabled(bool on) {
  g_info = on;
  if (on) return set_log_sink({});
  set_log_sink([](LogLevel level, const std::string& message) {
    if (level >= LogLevel::Warn) std::fputs(message.c_str(), stderr);
  });
}
bool info_enabled() { return g_info; }

void warn(const std::string& text) { std::fprintf(stderr, "warning: %s\n", text.c_str()); }

void note_ignored(const std::string& option, const std::string& why) {
  if (g_info) std::fprintf(stderr, "note: %s is accepted and ignored: %s\n", option.c_str(), why.c_str());
}

void warn_threads(int n_threads) {
  const unsigned cpus = std::thread::hardware_concurrency();
  if (cpus > 0 && n_threads > (int)cpus)
    warn("-t " + std::to_string(n_threads) + " is more than the " + std::to_string(cpus) +
         " CPUs of this machine: the threads will compete for them");
}


}  // namespace bitnet::cli
