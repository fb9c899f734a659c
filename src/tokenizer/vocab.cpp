#include "tokenizer/vocab.h"

#include <algorithm>
#include <array>
#include <string>

#include "bitnet/error.h"
#include "bitnet/gguf.h"

namespace bitnet::tok {
namespace {

// Texts that end a generation in the vocabularies llama.cpp knows, besides EOS and EOT.
constexpr std::array<std::string_view, 10> kEndOfGenerationTexts = {
    "<|eot_id|>", "<|end_of_text|>", "<|eom_id|>", "<|im_end|>",        "<|end|>",
    "<end_of_turn>", "<|endoftext|>", "<EOT>",     "<end_of_utterance>", "</s>",
};

void check_id(const VocabData& d, int32_t id, const char* what) {
  if (id < -1 || id >= static_cast<int32_t>(d.tokens.size()))
    throw Error(d.source + ": " + what + " id " + std::to_string(id) + " outside the vocabulary of " +
                std::to_string(d.tokens.size()) + " tokens");
}

}  // namespace

VocabTokenizer::VocabTokenizer(VocabData& data) {
  if (data.tokens.empty()) throw Error(data.source + ": tokenizer vocabulary is empty");
  if (data.tokens.size() > static_cast<size_t>(INT32_MAX))
    throw Error(data.source + ": tokenizer vocabulary too large");
  if (!data.types.empty() && data.types.size() != data.tokens.size())
    throw Error(data.source + ": tokenizer.ggml.token_type has " + std::to_string(data.types.size()) +
                " entries for " + std::to_string(data.tokens.size()) + " tokens");
  check_id(data, data.bos, "BOS");
  check_id(data, data.eos, "EOS");
  check_id(data, data.eot, "EOT");
  check_id(data, data.unk, "unknown-token");

  tokens_ = std::move(data.tokens);
  types_ = data.types.empty() ? std::vector<int32_t>(tokens_.size(), kNormal) : std::move(data.types);
  token_ids_.reserve(tokens_.size());
  for (size_t i = 0; i < tokens_.size(); ++i)
    token_ids_.emplace(tokens_[i], static_cast<int32_t>(i));  // first id wins on duplicates

  for (size_t i = 0; i < tokens_.size(); ++i) {
    const int32_t t = types_[i];
    if ((t == kControl || t == kUserDefined || t == kUnknown) && !tokens_[i].empty())
      special_tokens_.push_back(static_cast<int32_t>(i));
  }
  std::stable_sort(special_tokens_.begin(), special_tokens_.end(), [&](int32_t a, int32_t b) {
    return tokens_[static_cast<size_t>(a)].size() > tokens_[static_cast<size_t>(b)].size();
  });

  bos_ = data.bos;
  eos_ = data.eos;
  eot_ = data.eot;
  unk_ = data.unk;
  if (eot_ < 0) {
    int32_t id = find_token("<|eot_id|>");
    if (id < 0) id = find_token("<|im_end|>");
    if (id >= 0 && types_[static_cast<size_t>(id)] == kControl) eot_ = id;
  }
  if (data.add_bos) {
    add_bos_ = *data.add_bos;
    add_bos_explicit_ = true;
  }

  for (int32_t id : {eos_, eot_})
    if (id >= 0) eog_tokens_.push_back(id);
  for (std::string_view text : kEndOfGenerationTexts) {
    const int32_t id = find_token(text);
    if (id >= 0 && id != bos_ && types_[static_cast<size_t>(id)] == kControl) eog_tokens_.push_back(id);
  }
  std::sort(eog_tokens_.begin(), eog_tokens_.end());
  eog_tokens_.erase(std::unique(eog_tokens_.begin(), eog_tokens_.end()), eog_tokens_.end());
}

bool VocabTokenizer::is_eog(int32_t id) const {
  return std::binary_search(eog_tokens_.begin(), eog_tokens_.end(), id);
}

const std::string& VocabTokenizer::token_text(int32_t id) const {
  if (!valid_id(id))
    throw Error("token id " + std::to_string(id) + " outside the vocabulary of " +
                std::to_string(n_vocab()) + " tokens");
  return tokens_[static_cast<size_t>(id)];
}

std::vector<Fragment> VocabTokenizer::partition(std::string_view text, bool parse_special) const {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({-1, text});
  for (int32_t id : special_tokens_) {
    if (!parse_special && types_[static_cast<size_t>(id)] != kUserDefined) continue;
    const std::string& special = tokens_[static_cast<size_t>(id)];
    std::vector<Fragment> next;
    bool found_any = false;
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t start = 0;
      for (size_t at; (at = f.text.find(special, start)) != std::string_view::npos;) {
        found_any = true;
        if (at > start) next.push_back({-1, f.text.substr(start, at - start)});
        next.push_back({id, {}});
        start = at + special.size();
      }
      if (start < f.text.size()) next.push_back({-1, f.text.substr(start)});
    }
    if (found_any) fragments = std::move(next);
  }
  return fragments;
}

void VocabTokenizer::write_common_gguf(gguf::Writer& w) const {
  w.set("tokenizer.ggml.model", gguf::Value::of_string(model_name()));
  w.set("tokenizer.ggml.tokens", gguf::Value::of_strings(tokens_));
  w.set("tokenizer.ggml.token_type", gguf::Value::of_i32s(types_));
  if (bos_ >= 0) w.set("tokenizer.ggml.bos_token_id", gguf::Value::of_u32(static_cast<uint32_t>(bos_)));
  if (eos_ >= 0) w.set("tokenizer.ggml.eos_token_id", gguf::Value::of_u32(static_cast<uint32_t>(eos_)));
  if (eot_ >= 0) w.set("tokenizer.ggml.eot_token_id", gguf::Value::of_u32(static_cast<uint32_t>(eot_)));
  if (unk_ >= 0)
    w.set("tokenizer.ggml.unknown_token_id", gguf::Value::of_u32(static_cast<uint32_t>(unk_)));
  w.set("tokenizer.ggml.add_bos_token", gguf::Value::of_bool(add_bos_));
}

std::unique_ptr<Tokenizer> make_tokenizer(VocabData data) {
  if (data.model == "gpt2") return make_bpe_tokenizer(std::move(data));
  if (data.model == "llama") return make_spm_tokenizer(std::move(data));
  throw Error(data.source + ": tokenizer.ggml.model \"" + data.model +
              "\" is not supported (expected \"gpt2\" or \"llama\")");
}

}  // namespace bitnet::tok
