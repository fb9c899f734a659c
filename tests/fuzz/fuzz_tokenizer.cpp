// libFuzzer target: encoding arbitrary bytes and decoding arbitrary ids with both tokenizer models.
// Byte 0 of the input picks the model (bit 0), special-token parsing (bit 1) and BOS (bit 2); the
// rest is the text, and is also read as little-endian int16 ids (some out of range) to decode.
// Checks: ids in range, decoded and streamed text valid UTF-8, and valid UTF-8 text without BOS or
// special parsing decodes back exactly (the synthetic vocabularies cover every byte; for llama's,
// text without a literal U+2581).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "bitnet/error.h"
#include "bitnet/tokenizer.h"
#include "tokenizer/utf8.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto gpt2 = bitnet::Tokenizer::synthetic("gpt2", 1000);
  static const auto llama = bitnet::Tokenizer::synthetic("llama", 1000);
  if (size == 0) return 0;
  const bitnet::Tokenizer& tok = data[0] & 1 ? *llama : *gpt2;
  const bool parse_special = data[0] & 2, add_bos = data[0] & 4;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const std::vector<int32_t> ids = tok.encode(text, add_bos, parse_special);
    for (int32_t id : ids)
      if (id < 0 || id >= tok.n_vocab()) std::abort();
    // SentencePiece (llama) writes spaces as U+2581 and decodes every U+2581 as a space, so text
    // that holds one literally does not come back unchanged (nor does it in sentencepiece).
    const bool spm_space_mark = (data[0] & 1) && text.find("\xE2\x96\x81") != std::string::npos;
    if (!add_bos && !parse_special && !spm_space_mark && bitnet::tok::is_valid_utf8(text) && tok.decode(ids) != text)
      std::abort();
    std::vector<int32_t> raw;
    for (size_t i = 1; i + 1 < size; i += 2) raw.push_back(static_cast<int16_t>(data[i] | data[i + 1] << 8) % 1100);
    bitnet::StreamDecoder stream(tok);
    std::string streamed;
    for (int32_t id : raw) {
      if (id >= 0 && id < tok.n_vocab()) streamed += stream.push(id);
    }
    streamed += stream.flush();
    if (!bitnet::tok::is_valid_utf8(streamed)) std::abort();
    if (!bitnet::tok::is_valid_utf8(tok.decode(raw, parse_special))) std::abort();
  } catch (const bitnet::Error&) {
  }
  return 0;
}
