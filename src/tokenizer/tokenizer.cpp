// The public entry points: loading (GGUF, files recognised by content, synthetic vocabularies),
// decoding and streaming decoding.
#include "bitnet/tokenizer.h"

#include <cstdio>

#include "bitnet/error.h"
#include "bitnet/gguf.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocab.h"
#include "util/files.h"

namespace bitnet {
namespace {

int32_t optional_id(const gguf::File& f, std::string_view key) {
  if (!f.find(key)) return -1;
  const uint64_t v = f.get_uint(key);
  if (v > static_cast<uint64_t>(INT32_MAX))
    throw Error(f.path() + ": " + std::string(key) + " = " + std::to_string(v) + " is not a token id");
  return static_cast<int32_t>(v);
}

}  // namespace

std::vector<std::string> tok::llama3_special_token_texts() {
  std::vector<std::string> s = {"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                                "<|reserved_special_token_1|>", "<|reserved_special_token_2|>",
                                "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
                                "<|reserved_special_token_4|>", "<|eot_id|>"};
  for (int i = 5; s.size() < 256; ++i) s.push_back("<|reserved_special_token_" + std::to_string(i) + "|>");
  return s;
}

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
  tok::VocabData d;
  d.source = file.path();
  d.model = file.get_string("tokenizer.ggml.model");
  d.pre = file.get_string("tokenizer.ggml.pre", "default");
  d.tokens = file.get_strings("tokenizer.ggml.tokens");
  if (file.find("tokenizer.ggml.token_type")) {
    for (int64_t t : file.get_ints("tokenizer.ggml.token_type")) {
      if (t < tok::kNormal || t > tok::kByte)
        throw Error(d.source + ": tokenizer.ggml.token_type holds invalid type " + std::to_string(t));
      d.types.push_back(static_cast<int32_t>(t));
    }
  }
  if (d.model == "llama" && file.find("tokenizer.ggml.scores")) d.scores = file.get_floats("tokenizer.ggml.scores");
  if (d.model == "gpt2") {
    for (const std::string& m : file.get_strings("tokenizer.ggml.merges")) {
      const size_t space = m.find(' ', 1);  // a part may itself be a lone space in other vocabularies
      if (space == std::string::npos)
        throw Error(d.source + ": tokenizer.ggml.merges entry \"" + m + "\" has no separating space");
      d.merges.emplace_back(m.substr(0, space), m.substr(space + 1));
    }
  }
  d.bos = optional_id(file, "tokenizer.ggml.bos_token_id");
  d.eos = optional_id(file, "tokenizer.ggml.eos_token_id");
  d.eot = optional_id(file, "tokenizer.ggml.eot_token_id");
  d.unk = optional_id(file, "tokenizer.ggml.unknown_token_id");
  if (file.find("tokenizer.ggml.add_bos_token")) d.add_bos = file.get_bool("tokenizer.ggml.add_bos_token", true);
  d.add_space_prefix = file.get_bool("tokenizer.ggml.add_space_prefix", true);
  return tok::make_tokenizer(std::move(d));
}

namespace {

tok::VocabData read_vocab_file(const std::string& path) {
  // The largest real tokenizer files (tokenizer.json of 250k-token vocabularies) are tens of MB.
  constexpr uint64_t kMaxTokenizerBytes = uint64_t{256} << 20;
  const std::string content = read_file_capped(path, kMaxTokenizerBytes, "tokenizer file");
  const size_t first = content.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) throw Error(path + ": tokenizer file is empty");
  if (content[first] == '{') return tok::import_hf_tokenizer_json(path, content);
  // A SentencePiece ModelProto starts with field 1 (pieces), length-delimited: tag byte 0x0A.
  if (content[0] == '\x0A') return tok::import_sentencepiece_model(path, content);
  return tok::import_tiktoken(path, content);
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_file(const std::string& path) {
  return tok::make_tokenizer(read_vocab_file(path));
}

std::unique_ptr<Tokenizer> Tokenizer::from_file(const std::string& path, const SpecialTokens& special) {
  tok::VocabData d = read_vocab_file(path);
  auto id_of = [&](const std::string& text, const char* what) {
    for (size_t i = 0; i < d.tokens.size(); ++i)
      if (d.tokens[i] == text) return static_cast<int32_t>(i);
    throw Error(path + ": the " + std::string(what) + " token \"" + text + "\" is not in the vocabulary");
  };
  if (!special.bos.empty()) d.bos = id_of(special.bos, "BOS");
  if (!special.eos.empty()) d.eos = id_of(special.eos, "EOS");
  if (special.add_bos) d.add_bos = special.add_bos;
  return tok::make_tokenizer(std::move(d));
}

std::unique_ptr<Tokenizer> Tokenizer::synthetic(const std::string& model, int32_t n_vocab) {
  constexpr int32_t kMinVocab = 260;  // 256 bytes + 3 specials + the llama space piece
  if (n_vocab < kMinVocab || n_vocab > (1 << 24))
    throw Error("synthetic tokenizer: n_vocab " + std::to_string(n_vocab) + " outside [260, 16777216]");
  tok::VocabData d;
  d.source = "synthetic " + model + " vocabulary";
  d.model = model;
  const auto filler = [](int32_t id, std::string_view space) { return std::string(space) + "tok" + std::to_string(id); };
  if (model == "gpt2") {
    d.pre = "llama-bpe";
    for (int b = 0; b < 256; ++b) d.tokens.push_back(tok::byte_level_text(static_cast<uint8_t>(b)));
    const bool llama3_layout = n_vocab == 128256;
    const int32_t first_special = llama3_layout ? 128000 : n_vocab - 3;
    for (int32_t id = 256; id < first_special; ++id) d.tokens.push_back(filler(id, "\xC4\xA0"));  // "Ġ"
    if (llama3_layout) {
      for (std::string& s : tok::llama3_special_token_texts()) d.tokens.push_back(std::move(s));
      d.bos = 128000, d.eos = 128001, d.eot = 128009;
    } else {
      for (const char* s : {"<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"}) d.tokens.push_back(s);
      d.bos = n_vocab - 3, d.eos = n_vocab - 2, d.eot = n_vocab - 1;
    }
    d.types.assign(d.tokens.size(), tok::kNormal);
    for (int32_t id = first_special; id < n_vocab; ++id) d.types[static_cast<size_t>(id)] = tok::kControl;
  } else if (model == "llama") {
    d.tokens = {"<unk>", "<s>", "</s>"};
    d.types = {tok::kUnknown, tok::kControl, tok::kControl};
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      d.tokens.push_back(name);
      d.types.push_back(tok::kByte);
    }
    // U+2581 itself, so that spaces (escaped to it) decode as spaces rather than as its bytes.
    d.tokens.push_back("\xE2\x96\x81");
    d.types.push_back(tok::kNormal);
    for (int32_t id = kMinVocab; id < n_vocab; ++id) {
      d.tokens.push_back(filler(id, "\xE2\x96\x81"));
      d.types.push_back(tok::kNormal);
    }
    d.scores.assign(d.tokens.size(), 0.0f);
    d.unk = 0, d.bos = 1, d.eos = 2;
  } else {
    throw Error("synthetic tokenizer: model \"" + model + "\" is not \"gpt2\" or \"llama\"");
  }
  return tok::make_tokenizer(std::move(d));
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool special) const {
  std::string raw;
  bool strip_space = decode_strips_leading_space_;
  for (int32_t id : ids) {
    std::string piece = token_to_piece(id, special);
    if (strip_space) {
      if (piece.empty()) continue;  // BOS and other silent tokens do not consume the strip
      if (piece.front() == ' ') piece.erase(0, 1);
      strip_space = false;
    }
    raw += piece;
  }
  std::string out;
  tok::append_sanitized_utf8(out, raw, false);
  return out;
}

std::string StreamDecoder::push(int32_t id) {
  pending_ += tok_.token_to_piece(id);
  std::string out;
  const size_t consumed = tok::append_sanitized_utf8(out, pending_, true);
  pending_.erase(0, consumed);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  tok::append_sanitized_utf8(out, pending_, false);
  pending_.clear();
  return out;
}

}  // namespace bitnet
