// bitnet: one executable with llama.cpp-style subcommands. Anything that is not a subcommand name is
// a generate invocation ("bitnet -m M -p TEXT"), as llama-cli users type it.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "bitnet/error.h"
#include "commands.h"

namespace {

// Keep in step with project(bitnet VERSION ...) in CMakeLists.txt.
constexpr const char* kVersion = "0.1.0";

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
    {"dummy", bitnet::cli::cmd_dummy, "write a model with random weights of a given shape"},
    {"quantize", bitnet::cli::cmd_quantize, "convert a model's weights to another type"},
    {"pull", bitnet::cli::cmd_pull, "download a model from the Hugging Face Hub into its cache"},
};

void print_overview() {
  std::printf("usage: bitnet [generate options]          generate text (default)\n");
  std::printf("       bitnet <subcommand> [options]      (bitnet <subcommand> --help for its options)\n\n");
  std::printf("subcommands:\n");
  for (const auto& s : kSubcommands) std::printf("  %-12s %s\n", s.name, s.summary);
  std::printf("\n");
}

int run(int argc, char** argv) {
  if (argc >= 2) {
    std::string first = argv[1];
    if (first == "--version") {
      std::printf("bitnet %s\n", kVersion);
      return 0;
    }
    for (const auto& s : kSubcommands)
      if (first == s.name) return s.run(argc - 1, argv + 1);
    // "bitnet [generate options] --help" shows the subcommands too.
    for (int i = 1; i < argc && std::strcmp(argv[i], "--") != 0; ++i)
      if (!std::strcmp(argv[i], "-h") || !std::strcmp(argv[i], "--help")) {
        print_overview();
        break;
      }
  } else {
    print_overview();
    std::printf("bitnet --help lists the generate options.\n");
    return 1;
  }
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
