// bitnet pull ORG/NAME[:TAG]: downloads a model from the Hugging Face Hub into huggingface_hub's
// cache and prints its local path as the last line of stdout.
#include <cstdio>

#include "bitnet/error.h"
#include "bitnet/hub.h"
#include "commands.h"
#include "options.h"

namespace bitnet::cli {

int cmd_pull(int argc, char** argv) {
  hub::PullOptions po;
  po.allow_snapshot = true;
  OptionTable t(
      "usage: bitnet pull ORG/NAME[:TAG] [--revision REV] [--hf-file FILE]\n\n"
      "Downloads a GGUF model from the Hugging Face Hub into its cache (shared with huggingface-cli)\n"
      "and prints its local path. TAG picks the GGUF file whose name contains it (case-insensitive);\n"
      "without a TAG: the only GGUF, else the I2_S, TQ2_0 or TQ1_0 one. A repository without GGUF\n"
      "files (a safetensors checkpoint) is downloaded whole and its directory printed, for\n"
      "`bitnet convert DIR -o OUT.gguf`.\n\n"
      "Environment (as huggingface_hub): HF_ENDPOINT (default https://huggingface.co), HF_HUB_CACHE\n"
      "or HF_HOME (default ~/.cache/huggingface), HF_TOKEN or the token file of `huggingface-cli login`\n"
      "for gated and private repositories, HF_HUB_OFFLINE=1 to use the cache only.");
  t.value({"--revision"}, "REV", "branch, tag or commit (default: main)", [&](const std::string& v) { po.revision = v; });
  t.value({"-hff", "--hf-file"}, "FILE", "this file of the repository instead of the TAG's choice",
          [&](const std::string& v) { po.file = v; });
  const auto parsed = t.parse_command(argc, argv, 1);
  if (!parsed) return 0;
  const std::vector<std::string>& positional = *parsed;
  if (positional.empty()) throw Error("no model given (bitnet pull ORG/NAME[:TAG])");
  std::string path = hub::pull(hub::parse_model_ref(positional[0]), po, hub::Settings::from_environment());
  std::printf("%s\n", path.c_str());
  return 0;
}

}  // namespace bitnet::cli
