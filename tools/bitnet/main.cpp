// bitnet: one executable with llama.cpp-style subcommands. Anything that is not a subcommand name is
// a generate invocation ("bitnet -m M -p TEXT"), as llama-cli users type it.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "bitnet/error.h"
#include "bitnet/kernels.h"
#include "bitnet_version.h"
#include "commands.h"

namespace {

struct Subcommand {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

constexpr Subcommand kSubcommands[] = {
    {"logits", bitnet::cli::cmd_logits, "write the logits of every position of a token sequence to .npy"},
    {"perplexity", bitnet::cli::cmd_perplexity, "perplexity of a text file, as llama-perplexity"},
    {"tokenize", bitnet::cli::cmd_tokenize, "token ids of a text (model or tokenizer file)"},
    {"bench", bitnet::cli::cmd_bench, "prompt and generation speed, as llama-bench"},
    {"show", bitnet::cli::cmd_show, "a model's metadata, chat template and tensors"},
    {"dummy", bitnet::cli::cmd_dummy, "write a model with random weights of a given shape"},
    {"quantize", bitnet::cli::cmd_quantize, "convert a model's weights to another type"},
    {"pull", bitnet::cli::cmd_pull, "download a model from the Hugging Face Hub into its cache"},
    {"convert", bitnet::cli::cmd_convert, "convert a Hugging Face BitNet checkpoint to GGUF"},
    {"serve", bitnet::cli::cmd_serve, "OpenAI- and llama-server-compatible HTTP server with a chat page"},
};

void print_overview() {
  std::printf("usage: bitnet [generate options]          generate text (default; -cnv: chat)\n");
  std::printf("       bitnet <subcommand> [options]      (bitnet <subcommand> --help for its options)\n");
  std::printf("       bitnet --version\n\n");
  std::printf("subcommands:\n");
  for (const auto& s : kSubcommands) std::printf("  %-12s %s\n", s.name, s.summary);
  std::printf("\nenvironment:\n");
  std::printf("  %-15s force a kernel set: %s (default: the best this CPU runs)\n", "BITNET_ISA",
              bitnet::isa_names().c_str());
  std::printf("  %-15s bytes of memory to plan with instead of MemAvailable / the cgroup limit (tests)\n",
              "BITNET_MEM_AVAILABLE");
  std::printf("  %-15s access token for gated or private models (-hf, pull)\n", "HF_TOKEN");
  std::printf("  %-15s where -hf and pull keep models (default: HF_HOME/hub, ~/.cache/huggingface/hub)\n", "HF_HUB_CACHE");
  std::printf("  %-15s 1: use only models already in the cache\n", "HF_HUB_OFFLINE");
  std::printf("  %-15s the Hub's address (default: https://huggingface.co)\n", "HF_ENDPOINT");
  std::printf("\n");
}

// An unknown BITNET_ISA is refused before any work (the library alone would fall back with a warning).
void check_isa_environment() {
  const char* wanted = std::getenv("BITNET_ISA");
  bitnet::Isa isa;
  if (wanted && *wanted && !bitnet::parse_isa(wanted, isa))
    throw bitnet::Error(std::string("BITNET_ISA=") + wanted + " is not a kernel set; valid names: " +
                        bitnet::isa_names() + " (any case)");
}

// Whether `name` is one of the arguments before "--".
bool has_argument(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc && std::strcmp(argv[i], "--") != 0; ++i)
    if (!std::strcmp(argv[i], name)) return true;
  return false;
}

int run(int argc, char** argv) {
  if (has_argument(argc, argv, "--version")) {
    std::printf("bitnet %s (commit %s)\n", BITNET_VERSION, BITNET_COMMIT);
    return 0;
  }
  check_isa_environment();
  if (argc < 2) {
    print_overview();
    std::printf("bitnet --help lists the generate options.\n");
    return 1;
  }
  for (const auto& s : kSubcommands)
    if (!std::strcmp(argv[1], s.name)) return s.run(argc - 1, argv + 1);
  // "bitnet [generate options] --help" shows the subcommands too.
  if (has_argument(argc, argv, "-h") || has_argument(argc, argv, "--help")) print_overview();
  return bitnet::cli::cmd_generate(argc, argv);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const bitnet::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", e.what());
  } catch (const std::bad_alloc&) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: out of memory\n");
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", e.what());
  }
  return 1;
}
