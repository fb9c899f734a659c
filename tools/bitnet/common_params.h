// Helpers shared by the subcommands: the engine options that several commands take (model, threads,
// context, batch, KV type), text/number parsing and timing.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bitnet/model.h"
#include "options.h"

namespace bitnet::cli {

// -hf ORG/NAME[:TAG] (a model on the Hugging Face Hub), with -hff and --revision.
struct HubOptions {
  std::string repo;  // as typed, with its tag
  std::string file;
  std::string revision = "main";
};
void add_hub_options(OptionTable& table, HubOptions& opts);
// The local path of the -hf model, downloaded into the Hugging Face cache when missing (progress on
// stderr). Throws bitnet::Error.
std::string pull_model(const HubOptions& opts);

struct EngineOptions {
  std::string model_path;
  HubOptions hub;
  std::string tokenizer_path;
  int n_threads = 0;  // 0: physical cores
  int n_ctx = 0;      // 0: the model's (for each sequence)
  int n_seq = 1;      // sequences the context holds (serve's -np slots), for the memory plan and the context
  int n_batch = 512;
  int n_ubatch = 0;  // -ub: 0 unless given; a forward pass takes min(-b, -ub) tokens
  bool use_mmap = true, mlock = false;
  bool check_memory = true;  // --no-check-memory turns the memory plan off
  // -ctk / -ctv when given; both name one type, as K and V share it here.
  std::optional<KvType> cache_type_k, cache_type_v;
  KvType kv_type() const;  // throws when -ctk and -ctv differ
};

// Registers -m, -hf (add_hub_options), -t, -c, -b, -ub, --kv-f32, -ctk/-ctv, --mlock, --no-mmap,
// --no-check-memory,
// --tokenizer and the llama.cpp flags that mean nothing on this CPU engine (-ngl, -fa, -tb), with
// llama.cpp's spellings.
void add_engine_options(OptionTable& table, EngineOptions& opts);
// -t/--threads N into n_threads (0 or -1: physical cores, resolved by resolve_threads).
void add_threads_option(OptionTable& table, int& n_threads);
int resolve_threads(int requested);  // <= 0: physical cores
constexpr int kMaxThreads = 1024;  // -t
// Loads the model; first refuses it (bitnet::Error with plan_memory's one line) when the weights,
// the KV cache and the buffers would not fit in the available memory, unless --no-check-memory;
// warns on stderr about -c beyond the training context, a tokenizer whose size differs from the
// embedding rows, and says how much --mlock locked.
std::unique_ptr<Model> load_model(const EngineOptions& opts, bool progress = true);
ContextParams context_params(const EngineOptions& opts);
// Resolves -hf into model_path (downloading the model if needed); throws when neither -m nor -hf
// was given, or both.
void require_model(EngineOptions& opts);

// A regular file ("-": standard input) of at most 1 GiB; FIFOs, devices and directories refused.
std::string read_text_file(const std::string& path);
// llama.cpp's prompt escapes: \n \r \t \' \" \\ \xNN (an unknown escape is kept as written).
std::string process_escapes(const std::string& text);
// A comma-separated list of integers, each in [min, max]; items may be ranges "first-last",
// "first-last+step" or "first-last*mult" as in llama-bench.
std::vector<int64_t> parse_int_list(const std::string& option, const std::string& value, int64_t min,
                                    int64_t max);

// "system_info: n_threads = N / M | AVX2 = 1 | ... | kernels = avx2" as llama.cpp prints it, plus
// the kernel set in use.
std::string system_info_line(int n_threads);

// Informational stderr lines (progress, system info) are on unless --log-disable turned them off;
// warnings and errors always print.
void set_info_enabled(bool on);
bool info_enabled();
// "warning: TEXT" on stderr.
void warn(const std::string& text);
// The one stderr line for an accepted llama.cpp option that does nothing here.
void note_ignored(const std::string& option, const std::string& why);
// Warns when -t asks for more threads than the machine has CPUs.
void warn_threads(int n_threads);

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  void restart() { start_ = std::chrono::steady_clock::now(); }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace bitnet::cli
