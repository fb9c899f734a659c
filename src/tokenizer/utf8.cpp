#include "tokenizer/utf8.h"

namespace bitnet::tok {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

size_t utf8_sequence_length(std::string_view text, size_t pos, bool* incomplete) {
  if (incomplete) *incomplete = false;
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[pos + i]); };
  const uint8_t lead = byte(0);
  if (lead < 0x80) return 1;
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 3;
    if (lead == 0xE0) lo = 0xA0;  // overlong
    if (lead == 0xED) hi = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 4;
    if (lead == 0xF0) lo = 0x90;  // overlong
    if (lead == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  for (size_t i = 1; i < need; ++i) {
    if (pos + i >= text.size()) {
      if (incomplete) *incomplete = true;
      return 0;
    }
    const uint8_t b = byte(i);
    if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
  }
  return need;
}

size_t append_sanitized_utf8(std::string& out, std::string_view text, bool hold_incomplete) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  size_t pos = 0;
  while (pos < text.size()) {
    size_t run = pos;  // copy maximal runs of ASCII and valid sequences at once
    size_t n;
    bool incomplete = false;
    while (run < text.size() && (n = utf8_sequence_length(text, run, &incomplete)) != 0) run += n;
    out.append(text.substr(pos, run - pos));
    pos = run;
    if (pos == text.size()) break;
    if (incomplete && hold_incomplete) return pos;
    // Skip the maximal subpart: the lead byte plus the continuation bytes that were acceptable.
    size_t skip = 1;
    while (pos + skip < text.size() && skip < 4 &&
           (static_cast<uint8_t>(text[pos + skip]) & 0xC0) == 0x80 &&
           utf8_sequence_length(text.substr(0, pos + skip + 1), pos, &incomplete) == 0 && incomplete)
      ++skip;
    out.append(kReplacement);
    pos += skip;
  }
  return text.size();
}

bool is_valid_utf8(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    const size_t n = utf8_sequence_length(text, pos);
    if (n == 0) return false;
    pos += n;
  }
  return true;
}

}  // namespace bitnet::tok
