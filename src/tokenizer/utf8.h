// Private UTF-8 helpers of the tokenizer layer.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace bitnet::tok {

// Appends the UTF-8 encoding of a code point (assumed valid).
void append_utf8(std::string& out, uint32_t cp);

// Length in bytes of the well-formed UTF-8 sequence at text[pos] (1..4), 0 if the bytes there are
// not a complete well-formed sequence (Unicode's rules: no overlongs, surrogates, > U+10FFFF).
// Sets *incomplete when they are a valid prefix cut off by the end of text.
size_t utf8_sequence_length(std::string_view text, size_t pos, bool* incomplete = nullptr);

// Appends text to out with every ill-formed part replaced by U+FFFD (one per maximal invalid
// subpart). When hold_incomplete is set, a valid but unfinished sequence at the very end is not
// appended; the return value is the number of bytes consumed (text.size() otherwise).
size_t append_sanitized_utf8(std::string& out, std::string_view text, bool hold_incomplete);

bool is_valid_utf8(std::string_view text);

// SentencePiece's rule for splitting text into characters: the length from the lead byte alone,
// clamped to the text (so arbitrary bytes still split).
inline size_t spm_char_length(std::string_view text, size_t pos) {
  static constexpr uint8_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  size_t n = kLengths[static_cast<uint8_t>(text[pos]) >> 4];
  return n < text.size() - pos ? n : text.size() - pos;
}

}  // namespace bitnet::tok
