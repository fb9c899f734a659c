// SentencePiece BPE (GGUF model "llama"), as llama.cpp's llm_tokenizer_spm: characters as symbols,
// repeatedly merge the adjacent pair whose concatenation is the best-scoring token (heap of
// bigrams), then emit tokens. Merged symbols are always tokens (only token bigrams are queued), so
// only single characters can lack a token; they fall back to <0xNN> byte tokens.
#include <cstdio>
#include <queue>

#include "bitnet/error.h"
#include "bitnet/gguf.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocab.h"

namespace bitnet::tok {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

class SpmTokenizer final : public VocabTokenizer {
 public:
  explicit SpmTokenizer(VocabData& data) : VocabTokenizer(data), add_space_prefix_(data.add_space_prefix) {
    if (!data.scores.empty() && data.scores.size() != tokens_.size())
      throw Error(data.source + ": tokenizer.ggml.scores has " + std::to_string(data.scores.size()) +
                  " entries for " + std::to_string(tokens_.size()) + " tokens");
    scores_ = data.scores.empty() ? std::vector<float>(tokens_.size(), 0.0f) : std::move(data.scores);
    if (!add_bos_explicit_) add_bos_ = true;
    decode_strips_leading_space_ = add_space_prefix_;
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      int32_t id = find_token(name);
      if (id < 0) id = find_token(std::string(1, static_cast<char>(b)));  // as llama.cpp falls back
      byte_tokens_[b] = id;
    }
    for (const std::string& t : tokens_) {
      for (size_t at = t.find(kSpace, 1); at != std::string::npos && words_independent_; at = t.find(kSpace, at + 1))
        if (at < kSpace.size() || t.compare(at - kSpace.size(), kSpace.size(), kSpace) != 0) words_independent_ = false;
    }
    for (int32_t id = 0; id < n_vocab(); ++id) {
      if (token_type(id) != kByte) continue;
      const std::string& t = tokens_[static_cast<size_t>(id)];
      unsigned value = 0;
      if (t.size() != 6 || std::sscanf(t.c_str(), "<0x%2X>", &value) != 1)
        throw Error(data.source + ": byte token " + std::to_string(id) + " has text \"" + t +
                    "\" instead of <0xNN>");
    }
  }

  std::string model_name() const override { return "llama"; }

  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const override {
    std::vector<int32_t> out;
    bool previous_was_special = true;  // the dummy prefix goes at the start and after specials
    if (add_bos && bos_ >= 0) out.push_back(bos_);
    std::string escaped;
    for (const Fragment& f : partition(text, parse_special)) {
      if (f.token >= 0) {
        out.push_back(f.token);
        previous_was_special = true;
        continue;
      }
      escaped.clear();
      if (add_space_prefix_ && previous_was_special) escaped += kSpace;
      for (char c : f.text) {
        if (c == ' ') escaped += kSpace;
        else escaped += c;
      }
      encode_escaped(escaped, out);
      previous_was_special = false;
    }
    return out;
  }

  std::string token_to_piece(int32_t id, bool special) const override {
    if (!valid_id(id)) return {};
    const std::string& text = tokens_[static_cast<size_t>(id)];
    switch (token_type(id)) {
      case kNormal: {
        std::string out;
        out.reserve(text.size());
        for (size_t pos = 0; pos < text.size();) {
          if (text.compare(pos, kSpace.size(), kSpace) == 0) {
            out += ' ';
            pos += kSpace.size();
          } else {
            out += text[pos++];
          }
        }
        return out;
      }
      case kByte: {
        unsigned value = 0;
        std::sscanf(text.c_str(), "<0x%2X>", &value);  // checked at construction
        return std::string(1, static_cast<char>(value));
      }
      case kUserDefined:
        return text;
      case kControl:
      case kUnknown:
        return special ? text : std::string();
      default:
        return {};
    }
  }

  void write_gguf(gguf::Writer& w) const override {
    write_common_gguf(w);
    w.set("tokenizer.ggml.pre", gguf::Value::of_string("default"));
    w.set("tokenizer.ggml.scores", gguf::Value::of_f32s(scores_));
    w.set("tokenizer.ggml.add_space_prefix", gguf::Value::of_bool(add_space_prefix_));
  }

 private:
  struct Symbol {
    int32_t prev, next;
    size_t start, len;  // len 0: merged into its left neighbour
  };
  struct Bigram {
    float score;
    int32_t left, right;
    size_t len;  // length of the concatenation when pushed (detects stale entries)
    bool operator<(const Bigram& o) const {  // the heap's top: best score, then leftmost
      return score != o.score ? score < o.score : left > o.left;
    }
  };

  // Runs the merges on each word separately when the vocabulary allows it (see words_independent_):
  // the same result as one run over the whole text, with a small heap instead of a huge one.
  void encode_escaped(std::string_view text, std::vector<int32_t>& out) const {
    std::vector<Symbol> symbols;
    std::priority_queue<Bigram> heap;
    for (size_t pos = 0; pos < text.size();) {
      const size_t n = spm_char_length(text, pos);
      const bool space = text.compare(pos, n, kSpace) == 0;
      if (words_independent_ && space && !symbols.empty() &&
          (pos < kSpace.size() || text.compare(pos - kSpace.size(), kSpace.size(), kSpace) != 0)) {
        encode_word(text, symbols, heap, out);
        symbols.clear();
      }
      const int32_t i = static_cast<int32_t>(symbols.size());
      symbols.push_back({i - 1, -1, pos, n});
      pos += n;
    }
    encode_word(text, symbols, heap, out);
  }

  void encode_word(std::string_view text, std::vector<Symbol>& symbols, std::priority_queue<Bigram>& heap,
                   std::vector<int32_t>& out) const {
    if (symbols.empty()) return;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) symbols[i].next = static_cast<int32_t>(i + 1);
    const auto try_add = [&](int32_t left, int32_t right) {
      if (left < 0 || right < 0) return;
      const Symbol& l = symbols[static_cast<size_t>(left)];
      const Symbol& r = symbols[static_cast<size_t>(right)];
      const std::string_view joined = text.substr(l.start, l.len + r.len);
      const int32_t id = find_token(joined);
      if (id < 0) return;
      heap.push({scores_[static_cast<size_t>(id)], left, right, joined.size()});
    };
    for (size_t i = 0; i + 1 < symbols.size(); ++i) try_add(static_cast<int32_t>(i), static_cast<int32_t>(i + 1));

    while (!heap.empty()) {
      const Bigram b = heap.top();
      heap.pop();
      Symbol& l = symbols[static_cast<size_t>(b.left)];
      Symbol& r = symbols[static_cast<size_t>(b.right)];
      if (l.len == 0 || r.len == 0 || l.len + r.len != b.len) continue;
      l.len += r.len;
      r.len = 0;
      l.next = r.next;
      if (r.next >= 0) symbols[static_cast<size_t>(r.next)].prev = b.left;
      try_add(l.prev, b.left);
      try_add(b.left, l.next);
    }
    for (int32_t i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) {
      const Symbol& s = symbols[static_cast<size_t>(i)];
      const std::string_view piece = text.substr(s.start, s.len);
      const int32_t id = find_token(piece);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      for (char c : piece) {
        const int32_t b = byte_tokens_[static_cast<uint8_t>(c)];
        if (b >= 0) out.push_back(b);
        else if (unk_ >= 0) out.push_back(unk_);
      }
    }
  }

  bool add_space_prefix_;
  // True when no token has U+2581 right after another character: then no merge can span the
  // start of a word (a U+2581 after a non-space), and words tokenize independently.
  bool words_independent_ = true;
  std::vector<float> scores_;
  int32_t byte_tokens_[256];
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm_tokenizer(VocabData data) {
  return std::make_unique<SpmTokenizer>(data);
}

}  // namespace bitnet::tok
