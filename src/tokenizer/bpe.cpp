// Byte-level BPE (GGUF model "gpt2"): pre-tokenizer regex, GPT-2 byte-to-unicode mapping, merges
// applied by rank with a heap over a linked list of symbols (as llama.cpp's llm_tokenizer_bpe).
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>

#include "bitnet/error.h"
#include "bitnet/gguf.h"
#include "bitnet/log.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocab.h"

namespace bitnet::tok {
namespace {

// llama.cpp's LLaMA 3 pattern: the tokenizer.json one with the case-insensitive contractions
// spelled out, so that e.g. U+017F (long s) does not case-fold into "'s".
constexpr const char* kLlama3Pattern =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

struct PreTokenizer {
  std::vector<const char*> patterns;  // applied in sequence, each splitting the previous pieces
  bool ignore_merges = false;         // a word that is itself a token is emitted as is
  bool add_bos = false;
};

PreTokenizer pre_tokenizer_for(const std::string& name, const std::string& source) {
  if (name == "llama3" || name == "llama-v3" || name == "llama-bpe" || name == "falcon3" ||
      name == "falcon-h1" || name == "falcon_e" || name == "pixtral")
    return {{kLlama3Pattern}, true, true};
  if (name == "gpt2" || name == "gpt-2" || name == "mpt" || name == "olmo")
    return {{kGpt2Pattern}, false, false};
  if (name == "default")  // llama.cpp's default BPE pre-tokenizer: several regexes in sequence
    return {{"[\\p{P}\\$\\+<=>\\^~\\|]+",
             "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
             "\\p{N}+", "[0-9][0-9][0-9]"},
            false,
            false};
  log(LogLevel::Warn, "warning: " + source + ": unknown tokenizer.ggml.pre \"" + name + "\", using the LLaMA 3 pre-tokenizer\n");
  return {{kLlama3Pattern}, true, true};
}

class Regex {
 public:
  explicit Regex(const char* pattern) {
    int err = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP, &err, &offset, nullptr);
    if (!code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw Error(std::string("pre-tokenizer regex does not compile: ") + reinterpret_cast<char*>(msg));
    }
    jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Splits valid UTF-8 text into matches and the gaps between them, in order.
  void split(std::string_view text, pcre2_match_data* md, std::vector<std::string_view>& out) const {
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t pos = 0;
    while (pos < text.size()) {
      int rc = jit_ ? pcre2_jit_match(code_, subject, text.size(), pos, 0, md, nullptr)
                    : PCRE2_ERROR_JIT_BADOPTION;
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_JIT_BADOPTION)
        rc = pcre2_match(code_, subject, text.size(), pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) throw Error("pre-tokenizer regex failed with PCRE2 error " + std::to_string(rc));
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      size_t begin = ov[0], end = ov[1];
      if (end == begin) {  // the patterns cannot match empty; stay safe anyway
        end = begin + utf8_sequence_length(text, begin);
        if (end == begin) end = begin + 1;
      }
      if (begin > pos) out.push_back(text.substr(pos, begin - pos));
      out.push_back(text.substr(begin, end - begin));
      pos = end;
    }
    if (pos < text.size()) out.push_back(text.substr(pos));
  }
  pcre2_match_data* new_match_data() const { return pcre2_match_data_create_from_pattern(code_, nullptr); }

 private:
  pcre2_code* code_ = nullptr;
  bool jit_ = false;
};

// GPT-2's reversible map from bytes to printable code points.
struct ByteMap {
  std::string encoded[256];      // UTF-8 of the code point standing for each byte
  int16_t decoded[512];          // code point -> byte, -1 if none
  ByteMap() {
    std::fill(std::begin(decoded), std::end(decoded), int16_t{-1});
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      const uint32_t cp = printable ? b : next++;
      append_utf8(encoded[b], cp);
      decoded[cp] = static_cast<int16_t>(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap map;
  return map;
}

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

class BpeTokenizer final : public VocabTokenizer {
 public:
  explicit BpeTokenizer(VocabData& data)
      : VocabTokenizer(data), pre_name_(data.pre), pre_(pre_tokenizer_for(data.pre, data.source)) {
    if (!add_bos_explicit_) add_bos_ = pre_.add_bos;
    for (const char* p : pre_.patterns) regexes_.push_back(std::make_unique<Regex>(p));
    const ByteMap& bm = byte_map();
    for (int b = 0; b < 256; ++b) byte_tokens_[b] = find_token(bm.encoded[b]);

    merges_.reserve(data.merges.size());
    merge_texts_.reserve(data.merges.size());
    for (size_t rank = 0; rank < data.merges.size(); ++rank) {
      const auto& [left, right] = data.merges[rank];
      merge_texts_.push_back(left + " " + right);
      const int32_t l = find_token(left), r = find_token(right), result = find_token(left + right);
      // A merge whose parts or result are not tokens could never yield a token: it is inert.
      if (l < 0 || r < 0 || result < 0) continue;
      merges_.try_emplace(pair_key(l, r), Merge{static_cast<int32_t>(rank), result});
    }
  }

  std::string model_name() const override { return "gpt2"; }

  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const override {
    std::vector<int32_t> out;
    if (add_bos && bos_ >= 0) out.push_back(bos_);
    std::string sanitized;
    if (!is_valid_utf8(text)) {  // as llama.cpp: ill-formed bytes are read as U+FFFD
      append_sanitized_utf8(sanitized, text, false);
      text = sanitized;
    }
    Workspace ws;
    pcre2_match_data* md = regexes_.front()->new_match_data();
    if (!md) throw Error("out of memory for the pre-tokenizer");
    try {
      for (const Fragment& f : partition(text, parse_special)) {
        if (f.token >= 0) {
          out.push_back(f.token);
          continue;
        }
        std::vector<std::string_view> words{f.text}, next;
        for (const auto& regex : regexes_) {
          next.clear();
          for (std::string_view w : words) regex->split(w, md, next);
          words.swap(next);
        }
        for (std::string_view w : words) encode_word(w, ws, out);
      }
    } catch (...) {
      pcre2_match_data_free(md);
      throw;
    }
    pcre2_match_data_free(md);
    return out;
  }

  std::string token_to_piece(int32_t id, bool special) const override {
    if (!valid_id(id)) return {};
    const std::string& text = tokens_[static_cast<size_t>(id)];
    switch (token_type(id)) {
      case kNormal: {
        std::string out;
        const ByteMap& bm = byte_map();
        for (size_t pos = 0; pos < text.size();) {
          size_t n = utf8_sequence_length(text, pos);
          if (n == 0) n = 1;
          uint32_t cp = 0x110000;
          if (n == 1) cp = static_cast<uint8_t>(text[pos]);
          else if (n == 2) cp = ((text[pos] & 0x1Fu) << 6) | (text[pos + 1] & 0x3Fu);
          if (cp < 512 && bm.decoded[cp] >= 0) out += static_cast<char>(bm.decoded[cp]);
          else out.append(text, pos, n);  // not byte-level: keep the character itself
          pos += n;
        }
        return out;
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
    w.set("tokenizer.ggml.pre", gguf::Value::of_string(pre_name_));
    w.set("tokenizer.ggml.merges", gguf::Value::of_strings(merge_texts_));
  }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  struct Symbol {
    int32_t id;  // -1: a byte without a token (cannot merge, emits nothing)
    int32_t prev, next;
    bool alive;
  };
  struct Candidate {
    int32_t rank, left, right, left_id, right_id, result;
    bool operator<(const Candidate& o) const {  // the heap's top: lowest rank, then leftmost
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };
  struct Workspace {
    std::vector<Symbol> symbols;
    std::vector<Candidate> heap;
    std::string encoded;
  };

  void push_candidate(Workspace& ws, int32_t left, int32_t right) const {
    if (left < 0 || right < 0) return;
    const Symbol& l = ws.symbols[static_cast<size_t>(left)];
    const Symbol& r = ws.symbols[static_cast<size_t>(right)];
    if (l.id < 0 || r.id < 0) return;
    auto it = merges_.find(pair_key(l.id, r.id));
    if (it == merges_.end()) return;
    ws.heap.push_back({it->second.rank, left, right, l.id, r.id, it->second.result});
    std::push_heap(ws.heap.begin(), ws.heap.end());
  }

  void encode_word(std::string_view word, Workspace& ws, std::vector<int32_t>& out) const {
    if (word.empty()) return;
    const ByteMap& bm = byte_map();
    if (word.size() == 1) {
      const int32_t id = byte_tokens_[static_cast<uint8_t>(word[0])];
      if (id >= 0) out.push_back(id);
      return;
    }
    if (pre_.ignore_merges) {
      ws.encoded.clear();
      for (char c : word) ws.encoded += bm.encoded[static_cast<uint8_t>(c)];
      const int32_t id = find_token(ws.encoded);
      if (id >= 0) {
        out.push_back(id);
        return;
      }
    }
    ws.symbols.clear();
    ws.heap.clear();
    const int32_t n = static_cast<int32_t>(word.size());
    for (int32_t i = 0; i < n; ++i)
      ws.symbols.push_back({byte_tokens_[static_cast<uint8_t>(word[static_cast<size_t>(i)])], i - 1,
                            i + 1 < n ? i + 1 : -1, true});
    for (int32_t i = 0; i + 1 < n; ++i) push_candidate(ws, i, i + 1);

    while (!ws.heap.empty()) {
      std::pop_heap(ws.heap.begin(), ws.heap.end());
      const Candidate c = ws.heap.back();
      ws.heap.pop_back();
      Symbol& l = ws.symbols[static_cast<size_t>(c.left)];
      Symbol& r = ws.symbols[static_cast<size_t>(c.right)];
      // Stale when either side has merged since the candidate was pushed.
      if (!l.alive || !r.alive || l.next != c.right || l.id != c.left_id || r.id != c.right_id) continue;
      l.id = c.result;
      r.alive = false;
      l.next = r.next;
      if (r.next >= 0) ws.symbols[static_cast<size_t>(r.next)].prev = c.left;
      push_candidate(ws, l.prev, c.left);
      push_candidate(ws, c.left, l.next);
    }
    for (int32_t i = 0; i >= 0; i = ws.symbols[static_cast<size_t>(i)].next)
      if (ws.symbols[static_cast<size_t>(i)].id >= 0) out.push_back(ws.symbols[static_cast<size_t>(i)].id);
  }

  std::string pre_name_;
  PreTokenizer pre_;
  std::vector<std::unique_ptr<Regex>> regexes_;
  int32_t byte_tokens_[256];
  std::unordered_map<uint64_t, Merge> merges_;
  std::vector<std::string> merge_texts_;
};

}  // namespace

const std::string& byte_level_text(uint8_t b) { return byte_map().encoded[b]; }

std::unique_ptr<Tokenizer> make_bpe_tokenizer(VocabData data) {
  return std::make_unique<BpeTokenizer>(data);
}

}  // namespace bitnet::tok
