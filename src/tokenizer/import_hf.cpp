// Hugging Face tokenizer.json with a BPE model: byte-level (LLaMA 3, GPT-2 style) or
// SentencePiece-style with byte fallback (LLaMA 2 style).
#include <algorithm>
#include <climits>
#include <nlohmann/json.hpp>

#include "bitnet/error.h"
#include "bitnet/log.h"
#include "tokenizer/vocab.h"

namespace bitnet::tok {
namespace {

using nlohmann::json;

// Collects every value of `key` found anywhere below j (pre-tokenizers nest in Sequences).
void collect(const json& j, std::string_view key, std::vector<const json*>& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == key) out.push_back(&it.value());
      collect(it.value(), key, out);
    }
  } else if (j.is_array()) {
    for (const json& e : j) collect(e, key, out);
  }
}

bool mentions_type(const json& j, std::string_view type) {
  std::vector<const json*> types;
  collect(j, "type", types);
  return std::any_of(types.begin(), types.end(), [&](const json* t) { return t->is_string() && *t == type; });
}

// The pre-tokenizer name (tokenizer.ggml.pre) whose regex the Split pre-tokenizer uses.
std::string pre_tokenizer_name(const json& pre, const std::string& path) {
  std::vector<const json*> regexes;
  collect(pre, "Regex", regexes);
  if (regexes.empty()) return "gpt2";  // ByteLevel with its built-in GPT-2 regex
  const std::string pattern = regexes.front()->is_string() ? regexes.front()->get<std::string>() : "";
  if (pattern.find("\\p{N}{1,3}") != std::string::npos && pattern.find("'s|'t|'re|'ve|'m|'ll|'d") != std::string::npos)
    return "llama-bpe";
  if (pattern.rfind("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+", 0) == 0) return "gpt2";
  log(LogLevel::Warn, "warning: " + path + ": unrecognised pre-tokenizer regex, using the LLaMA 3 one\n");
  return "llama-bpe";
}

int32_t find_first(const std::vector<std::string>& tokens, std::initializer_list<std::string_view> names) {
  for (std::string_view name : names) {
    auto it = std::find(tokens.begin(), tokens.end(), name);
    if (it != tokens.end()) return static_cast<int32_t>(it - tokens.begin());
  }
  return -1;
}

// A token id as the file gives it: a JSON integer in [0, INT32_MAX]. A float (5.7) or an integer
// too large for 64 bits (which the parser keeps as a float) is refused, not truncated.
int64_t token_id(const json& v, const std::string& path, const char* what) {
  if (!v.is_number_integer())
    throw Error(path + ": tokenizer.json " + what + " id " + v.dump() + " is not an integer");
  const bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() <= INT32_MAX
                                               : v.get<int64_t>() >= 0 && v.get<int64_t>() <= INT32_MAX;
  if (!in_range) throw Error(path + ": tokenizer.json " + what + " id " + v.dump() + " is out of range");
  return v.get<int64_t>();
}

VocabData parse(const std::string& path, const json& j) {
  const json& model = j.at("model");
  if (model.contains("type") && model.at("type") != "BPE")
    throw Error(path + ": tokenizer.json model type " + model.at("type").dump() + " is not supported (BPE only)");

  VocabData d;
  d.source = path;
  const json& vocab = model.at("vocab");
  std::vector<std::pair<std::string, int64_t>> entries;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) entries.emplace_back(it.key(), token_id(it.value(), path, "vocab"));
  struct Added {
    std::string text;
    int64_t id;
    bool special;
  };
  std::vector<Added> added;
  if (j.contains("added_tokens") && j.at("added_tokens").is_array())
    for (const json& a : j.at("added_tokens"))
      added.push_back({a.at("content").get<std::string>(), token_id(a.at("id"), path, "added token"),
                       a.value("special", false)});

  int64_t max_id = -1;
  for (const auto& e : entries) max_id = std::max(max_id, e.second);
  for (const Added& a : added) max_id = std::max(max_id, a.id);
  const int64_t limit = static_cast<int64_t>(entries.size() + added.size());
  if (max_id < 0 || max_id >= limit * 4 + 1024)  // ids must be dense enough to be a vocabulary
    throw Error(path + ": tokenizer.json token id " + std::to_string(max_id) + " does not fit a vocabulary of " +
                std::to_string(limit) + " entries");
  const size_t n = static_cast<size_t>(max_id + 1);
  d.tokens.assign(n, {});
  d.types.assign(n, kUnused);
  for (size_t i = 0; i < n; ++i) d.tokens[i] = "[PAD" + std::to_string(i) + "]";
  auto duplicate = [&](int64_t id, const std::string& text) {
    return Error(path + ": tokenizer.json gives id " + std::to_string(id) + " to both \"" + d.tokens[(size_t)id] +
                 "\" and \"" + text + "\"");
  };
  std::vector<bool> in_vocab(n, false), in_added(n, false);
  for (auto& [text, id] : entries) {
    if (in_vocab[(size_t)id]) throw duplicate(id, text);
    in_vocab[(size_t)id] = true;
    d.tokens[static_cast<size_t>(id)] = std::move(text);
    d.types[static_cast<size_t>(id)] = kNormal;
  }
  // An added token may restate a vocab entry (LLaMA 2's <s> is in both), with the same text.
  for (Added& a : added) {
    if (in_added[(size_t)a.id] || (in_vocab[(size_t)a.id] && d.tokens[(size_t)a.id] != a.text)) throw duplicate(a.id, a.text);
    in_added[(size_t)a.id] = true;
    d.tokens[static_cast<size_t>(a.id)] = std::move(a.text);
    d.types[static_cast<size_t>(a.id)] = a.special ? kControl : kUserDefined;
  }

  for (const json& m : model.at("merges")) {
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ', 1);
      if (space == std::string::npos) throw Error(path + ": tokenizer.json merge \"" + s + "\" has no space");
      d.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2) {
      d.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      throw Error(path + ": tokenizer.json merge " + m.dump() + " is neither \"a b\" nor [a, b]");
    }
  }

  const json null_json;
  const json& pre = j.contains("pre_tokenizer") ? j.at("pre_tokenizer") : null_json;
  const json& decoder = j.contains("decoder") ? j.at("decoder") : null_json;
  if (mentions_type(pre, "ByteLevel") || mentions_type(decoder, "ByteLevel")) {
    d.model = "gpt2";
    d.pre = pre_tokenizer_name(pre, path);
    d.bos = find_first(d.tokens, {"<|begin_of_text|>", "<s>"});
    d.eos = find_first(d.tokens, {"<|end_of_text|>", "<|endoftext|>", "</s>"});
    d.eot = find_first(d.tokens, {"<|eot_id|>", "<|im_end|>"});
    return d;
  }
  if (!model.value("byte_fallback", false))
    throw Error(path + ": tokenizer.json is neither byte-level BPE nor BPE with byte fallback");

  // SentencePiece-style: the model ranks merged pieces by score; the merge order gives the ranks.
  d.model = "llama";
  d.scores.assign(n, 0.0f);
  std::vector<bool> scored(n, false);
  std::unordered_map<std::string, size_t> ids;
  for (size_t i = 0; i < n; ++i) ids.emplace(d.tokens[i], i);
  for (size_t rank = 0; rank < d.merges.size(); ++rank) {
    auto it = ids.find(d.merges[rank].first + d.merges[rank].second);
    if (it != ids.end() && !scored[it->second]) {
      d.scores[it->second] = -static_cast<float>(rank);
      scored[it->second] = true;
    }
  }
  d.merges.clear();
  for (size_t i = 0; i < n; ++i) {
    const std::string& t = d.tokens[i];
    if (t.size() == 6 && t.rfind("<0x", 0) == 0 && t.back() == '>' && d.types[i] == kNormal) d.types[i] = kByte;
  }
  if (model.contains("unk_token") && model.at("unk_token").is_string()) {
    auto it = ids.find(model.at("unk_token").get<std::string>());
    if (it != ids.end()) {
      d.unk = static_cast<int32_t>(it->second);
      d.types[it->second] = kUnknown;
    }
  }
  d.bos = find_first(d.tokens, {"<s>"});
  d.eos = find_first(d.tokens, {"</s>"});
  // The dummy prefix: a normalizer that prepends U+2581, or a Metaspace pre-tokenizer that does.
  const std::string text = j.contains("normalizer") ? j.at("normalizer").dump() : "";
  d.add_space_prefix = text.find("\"Prepend\"") != std::string::npos ||
                       (mentions_type(pre, "Metaspace") && pre.dump().find("\"never\"") == std::string::npos);
  return d;
}

}  // namespace

VocabData import_hf_tokenizer_json(const std::string& path, const std::string& content) {
  try {
    return parse(path, json::parse(content));
  } catch (const json::exception& e) {
    throw Error(path + ": not a usable tokenizer.json (" + e.what() + ")");
  }
}

}  // namespace bitnet::tok
