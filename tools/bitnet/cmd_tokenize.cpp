// bitnet tokenize: token ids of a text, from a GGUF's vocabulary (weights are not loaded) or from a
// standalone tokenizer file.
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bitnet/error.h"
#include "bitnet/gguf.h"
#include "bitnet/tokenizer.h"
#include "commands.h"
#include "common_params.h"

namespace bitnet::cli {
namespace {

std::string ids_list(const std::vector<int32_t>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? ", " : "") + std::to_string(ids[i]);
  return out + "]";
}

}  // namespace

int cmd_tokenize(int argc, char** argv) {
  std::string model_path, tokenizer_path, file_path;
  std::optional<std::string> prompt;
  bool ids_only = false, no_bos = false, parse_special = false, jsonl = false, show_count = false;
  OptionTable t("usage: bitnet tokenize (-m MODEL.gguf | --tokenizer FILE) [-p TEXT | -f FILE | < stdin] [options]");
  t.value({"-m", "--model"}, "FNAME", "GGUF whose vocabulary to use (its weights are not read)",
          [&](const std::string& v) { model_path = v; });
  HubOptions hub;
  add_hub_options(t, hub);
  t.value({"--tokenizer"}, "FILE", "tokenizer.json, tiktoken ranks or SentencePiece .model",
          [&](const std::string& v) { tokenizer_path = v; });
  t.value({"-p", "--prompt"}, "TEXT", "text to tokenize", [&](const std::string& v) { prompt = v; });
  t.value({"-f", "--file"}, "FNAME", "read the text from a file (- = stdin)", [&](const std::string& v) { file_path = v; });
  t.flag({"--ids"}, "print only the ids, as [1, 2, 3]", [&] { ids_only = true; });
  t.flag({"--no-bos"}, "do not add BOS", [&] { no_bos = true; });
  t.flag({"--parse-special"}, "match special token texts (e.g. <|eot_id|>) as single tokens", [&] { parse_special = true; });
  t.flag({"--jsonl"}, "each stdin line is a JSON string; print each one's ids as a JSON array", [&] { jsonl = true; });
  t.flag({"--show-count"}, "print the number of tokens at the end", [&] { show_count = true; });
  if (!t.parse_command(argc, argv)) return 0;
  if (!hub.repo.empty() + !model_path.empty() + !tokenizer_path.empty() != 1)
    throw Error("give the vocabulary as -m MODEL.gguf, -hf ORG/NAME[:TAG] or --tokenizer FILE, one of them");
  if (!hub.repo.empty()) model_path = pull_model(hub);
  if (prompt && !file_path.empty()) throw Error("give the text with -p or -f, not both");
  if (jsonl && (prompt || !file_path.empty())) throw Error("--jsonl reads stdin; it takes no -p or -f");

  std::unique_ptr<Tokenizer> tok;
  if (!model_path.empty()) {
    std::unique_ptr<gguf::File> file = gguf::File::open(model_path);
    tok = Tokenizer::from_gguf(*file);
  } else {
    tok = Tokenizer::from_file(tokenizer_path);
  }
  const bool add_bos = !no_bos && tok->add_bos_default();

  if (jsonl) {
    std::string line;
    for (size_t n = 1; std::getline(std::cin, line); ++n) {
      nlohmann::json text;
      try {
        text = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        throw Error("stdin line " + std::to_string(n) + ": not JSON: " + e.what());
      }
      if (!text.is_string()) throw Error("stdin line " + std::to_string(n) + ": expected a JSON string");
      nlohmann::json ids = tok->encode(text.get<std::string>(), add_bos, parse_special);
      std::printf("%s\n", ids.dump().c_str());
    }
    return 0;
  }

  std::string text;
  if (prompt) text = *prompt;
  else text = read_text_file(file_path.empty() ? "-" : file_path);
  std::vector<int32_t> ids = tok->encode(text, add_bos, parse_special);
  if (ids_only) {
    std::printf("%s\n", ids_list(ids).c_str());
  } else {
    for (int32_t id : ids) std::printf("%6d -> '%s'\n", id, tok->token_to_piece(id, true).c_str());
  }
  if (show_count) std::printf("Total number of tokens: %zu\n", ids.size());
  return 0;
}

}  // namespace bitnet::cli
