// bitnet convert: a Hugging Face BitNet checkpoint directory to a GGUF file (see convert/convert.h).
#include <cstdio>
#include <string>

#include "bitnet/error.h"
#include "commands.h"
#include "common_params.h"
#include "convert/convert.h"
#include "options.h"

namespace bitnet::cli {

int cmd_convert(int argc, char** argv) {
  ConvertOptions c;
  std::string output;
  OptionTable opts(
      "usage: bitnet convert HF_DIR -o OUT.gguf [--type i2_s|tq1_0|tq2_0] [--head-type f16|q8_0|q6_k]\n"
      "Converts a Hugging Face checkpoint (config.json, model.safetensors or its shards, tokenizer)\n"
      "of BitNet b1.58 2B4T (BitNetForCausalLM, packed or bf16), Llama3-8B-1.58 / Falcon3 1.58-bit /\n"
      "Falcon-E (LlamaForCausalLM, quant_method bitnet) or bitnet_b1_58-large/-3B (BitnetForCausalLM)\n"
      "to GGUF. TQ1_0/TQ2_0 store the weight scale as f16 and need rows of a multiple of 256 values.");
  opts.value({"-o", "--output"}, "FILE", "output GGUF file", [&](const std::string& v) { output = v; });
  opts.value({"--type"}, "T", "linear weight type: i2_s (default), tq1_0, tq2_0",
             [&](const std::string& v) { c.type = parse_type_name(v); });
  opts.value({"--head-type"}, "T", "token_embd/output type: f16 (default), q8_0, q6_k, bf16, f32",
             [&](const std::string& v) { c.head_type = parse_type_name(v); });
  int n_threads = 0;
  add_threads_option(opts, n_threads);
  opts.flag({"--force"}, "overwrite an existing output file", [&] { c.force = true; });
  const auto parsed = opts.parse_command(argc, argv, 1);
  if (!parsed) return 0;
  const std::vector<std::string>& positional = *parsed;
  if (positional.size() != 1) throw Error("convert: expected one checkpoint directory (see --help)");
  if (output.empty()) throw Error("convert: -o OUT.gguf is required");
  c.n_threads = resolve_threads(n_threads);
  convert_checkpoint(positional[0], output, c);
  std::printf("%s\n", output.c_str());
  return 0;
}

}  // namespace bitnet::cli
