// tiktoken ranks file: "<base64 token bytes> <rank>" per line. The merges are derived the way
// tiktoken's byte-pair merge reproduces each token: repeatedly join the adjacent pair whose
// concatenation has the lowest rank, using only ranks below the token's own; a token that ends as
// exactly two parts is the merge of those parts, with the token's rank.
#include <algorithm>
#include <charconv>
#include <climits>
#include <functional>
#include <queue>
#include <unordered_map>

#include "bitnet/error.h"
#include "tokenizer/vocab.h"

namespace bitnet::tok {
namespace {

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool base64_decode(std::string_view in, std::string& out) {
  out.clear();
  uint32_t acc = 0;
  int bits = 0;
  size_t i = 0;
  for (; i < in.size() && in[i] != '='; ++i) {
    const int v = base64_value(in[i]);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  for (; i < in.size(); ++i)
    if (in[i] != '=') return false;
  return !out.empty();
}

struct ViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using RankMap = std::unordered_map<std::string, int32_t, ViewHash, std::equal_to<>>;

// tiktoken's byte-pair merge of `token`, stopped before any rank >= max_rank: repeatedly join the
// adjacent pair of lowest rank (the leftmost on a tie). The candidate pairs wait in a heap keyed by
// (rank, start), so each merge costs O(log L) plus the two lookups of the pairs it creates, not a
// rescan of the token: O(L log L) lookups instead of O(L^2) (a 1 MB file of long tokens took
// seconds per doubling of the longest token).
std::vector<std::string_view> byte_pair_parts(std::string_view token, const RankMap& ranks, int32_t max_rank) {
  const uint32_t n = static_cast<uint32_t>(token.size());
  // end[s]: where the part starting at byte s ends (0: no part starts there); prev[e]: the start
  // of the part that ends at e.
  std::vector<uint32_t> end(n), prev(n + 1);
  for (uint32_t i = 0; i < n; ++i) end[i] = i + 1, prev[i + 1] = i;
  struct Candidate {
    int32_t rank;
    uint32_t start, mid, stop;  // the parts [start, mid) and [mid, stop)
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : start > o.start; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto consider = [&](uint32_t start, uint32_t mid, uint32_t stop) {
    auto it = ranks.find(token.substr(start, stop - start));
    if (it != ranks.end() && it->second < max_rank) heap.push({it->second, start, mid, stop});
  };
  for (uint32_t i = 0; i + 1 < n; ++i) consider(i, i + 1, i + 2);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    if (end[c.start] != c.mid || end[c.mid] != c.stop) continue;  // a part of it was merged since
    end[c.start] = c.stop;
    end[c.mid] = 0;
    prev[c.stop] = c.start;
    if (c.start > 0) consider(prev[c.start], c.start, c.stop);
    if (c.stop < n) consider(c.start, c.stop, end[c.stop]);
  }
  std::vector<std::string_view> parts;
  for (uint32_t s = 0; s < n; s = end[s]) parts.push_back(token.substr(s, end[s] - s));
  return parts;
}

std::string byte_level(std::string_view bytes) {
  std::string out;
  for (char c : bytes) out += byte_level_text(static_cast<uint8_t>(c));
  return out;
}

}  // namespace

VocabData import_tiktoken(const std::string& path, const std::string& content) {
  RankMap ranks;
  std::string bytes;
  size_t line_no = 0;
  int64_t max_rank = -1;
  for (size_t pos = 0; pos < content.size();) {
    size_t end = content.find('\n', pos);
    if (end == std::string::npos) end = content.size();
    std::string_view line(content.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    int64_t rank = -1;
    const char* num_end = line.data() + line.size();
    const bool ok = space != std::string_view::npos && base64_decode(line.substr(0, space), bytes) &&
                    std::from_chars(line.data() + space + 1, num_end, rank).ptr == num_end;
    if (!ok || rank < 0 || rank >= INT32_MAX)
      throw Error(path + ":" + std::to_string(line_no) + ": not a tiktoken line \"<base64> <rank>\"");
    if (!ranks.emplace(bytes, static_cast<int32_t>(rank)).second)
      throw Error(path + ":" + std::to_string(line_no) + ": token listed twice");
    max_rank = std::max(max_rank, rank);
  }
  if (ranks.empty()) throw Error(path + ": no tiktoken ranks found");
  if (max_rank >= static_cast<int64_t>(ranks.size()))
    throw Error(path + ": tiktoken ranks are not 0.." + std::to_string(ranks.size() - 1) + " (rank " +
                std::to_string(max_rank) + " present; ranks must be distinct and without gaps)");
  std::vector<std::string_view> by_rank(ranks.size());
  for (const auto& [token, rank] : ranks) {
    if (!by_rank[static_cast<size_t>(rank)].empty())
      throw Error(path + ": tiktoken rank " + std::to_string(rank) + " is given to two tokens");
    by_rank[static_cast<size_t>(rank)] = token;
  }


  VocabData d;
  d.source = path;
  d.model = "gpt2";
  d.pre = "llama-bpe";  // the pattern Meta's tiktoken tokenizer (and microsoft/BitNet's) uses
  for (size_t rank = 0; rank < by_rank.size(); ++rank) {
    const std::string_view token = by_rank[rank];
    d.tokens.push_back(byte_level(token));
    d.types.push_back(kNormal);
    if (token.size() < 2) continue;
    const auto parts = byte_pair_parts(token, ranks, static_cast<int32_t>(rank));
    if (parts.size() == 2) d.merges.emplace_back(byte_level(parts[0]), byte_level(parts[1]));
  }
  if (d.tokens.size() == 128000) {  // Meta's LLaMA 3 encoding: append its special tokens
    for (std::string& s : llama3_special_token_texts()) {
      d.tokens.push_back(std::move(s));
      d.types.push_back(kControl);
    }
    d.bos = 128000, d.eos = 128001, d.eot = 128009;
  }
  return d;
}

}  // namespace bitnet::tok
