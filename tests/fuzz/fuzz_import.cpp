// libFuzzer targets fuzz_import_json, fuzz_import_spm and fuzz_import_tiktoken: the importer of a
// Hugging Face tokenizer.json, a SentencePiece ModelProto or a tiktoken ranks file (chosen by
// BITNET_FUZZ_IMPORTER at build time) on arbitrary content. Any input must give a tokenizer, which
// then encodes and decodes a short text, or throw bitnet::Error.
#include <cstdint>
#include <string>

#include "bitnet/error.h"
#include "bitnet/tokenizer.h"
#include "tokenizer/vocab.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto tok = bitnet::tok::make_tokenizer(
        bitnet::tok::BITNET_FUZZ_IMPORTER("fuzz", std::string(reinterpret_cast<const char*>(data), size)));
    (void)tok->decode(tok->encode("Hello, world! 123 \xC3\xA9 <s>", true, true), true);
  } catch (const bitnet::Error&) {
  }
  return 0;
}
