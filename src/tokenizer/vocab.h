// Private to the tokenizer layer: the vocabulary description every importer produces, and the
// base class the two tokenizer models share (token tables, special-token partitioning, EOG set).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bitnet/tokenizer.h"

namespace bitnet::tok {

// GGUF tokenizer.ggml.token_type values (the same numbers as SentencePiece's piece types).
enum TokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// Everything needed to build a tokenizer, as found in a GGUF file or an importer's source.
struct VocabData {
  std::string model;  // "gpt2" (byte-level BPE) or "llama" (SentencePiece BPE)
  std::string pre;    // pre-tokenizer name (gpt2 only), as tokenizer.ggml.pre spells it
  std::vector<std::string> tokens;
  std::vector<int32_t> types;  // one per token; empty means all normal
  std::vector<float> scores;   // llama only; empty means all zero
  std::vector<std::pair<std::string, std::string>> merges;  // gpt2 only, by rank
  int32_t bos = -1, eos = -1, eot = -1, unk = -1;
  std::optional<bool> add_bos;     // absent: the model's default
  bool add_space_prefix = true;   // llama only: SentencePiece's dummy prefix
  std::string source;              // file name for error messages
};

std::unique_ptr<Tokenizer> make_bpe_tokenizer(VocabData data);
std::unique_ptr<Tokenizer> make_spm_tokenizer(VocabData data);
std::unique_ptr<Tokenizer> make_tokenizer(VocabData data);  // by data.model

// GPT-2's byte-to-unicode map: the UTF-8 text that stands for byte b in byte-level vocabularies.
const std::string& byte_level_text(uint8_t b);
// The 256 special tokens Meta's LLaMA 3 tokenizer appends after its 128000 BPE tokens.
std::vector<std::string> llama3_special_token_texts();

// Importers (each throws bitnet::Error naming the file on malformed input).
VocabData import_hf_tokenizer_json(const std::string& path, const std::string& content);
VocabData import_tiktoken(const std::string& path, const std::string& content);
VocabData import_sentencepiece_model(const std::string& path, const std::string& content);

// A piece of input text: either a token already decided (a matched special token) or raw text.
struct Fragment {
  int32_t token = -1;  // >= 0: a special token
  std::string_view text;
};

class VocabTokenizer : public Tokenizer {
 public:
  explicit VocabTokenizer(VocabData& data);

  int32_t n_vocab() const override { return static_cast<int32_t>(tokens_.size()); }
  bool is_eog(int32_t id) const override;
  const std::string& token_text(int32_t id) const override;

  int32_t find_token(std::string_view text) const {
    auto it = token_ids_.find(text);
    return it == token_ids_.end() ? -1 : it->second;
  }
  int32_t token_type(int32_t id) const { return types_[static_cast<size_t>(id)]; }
  bool valid_id(int32_t id) const { return id >= 0 && id < n_vocab(); }

 protected:
  // Splits text at special-token occurrences, longest token text first, as llama.cpp does:
  // user-defined tokens always, control and unknown tokens only when parse_special is set.
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
  // Writes the keys shared by both models.
  void write_common_gguf(gguf::Writer& w) const;

  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::vector<std::string> tokens_;
  std::vector<int32_t> types_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> token_ids_;
  std::vector<int32_t> special_tokens_;  // control/user-defined/unknown, longest text first
  std::vector<int32_t> eog_tokens_;      // sorted
  int32_t unk_ = -1;
  bool add_bos_explicit_ = false;  // add_bos came from the source, not from a model default
};

}  // namespace bitnet::tok
