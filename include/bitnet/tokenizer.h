// Tokenizers that match the reference implementations id for id: byte-level BPE (GGUF model
// "gpt2": LLaMA 3, GPT-2, Falcon3) and SentencePiece BPE (GGUF model "llama": LLaMA 2).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet {
namespace gguf {
class File;
class Writer;
}  // namespace gguf

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // From the tokenizer.ggml.* metadata of a GGUF file. Throws bitnet::Error on missing/invalid keys.
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& file);
  // From a standalone file, recognised by content: a Hugging Face tokenizer.json, a tiktoken ranks
  // file (base64 token, space, rank per line), or a SentencePiece .model protobuf.
  static std::unique_ptr<Tokenizer> from_file(const std::string& path);
  // The special-token settings of a Hugging Face tokenizer_config.json: token texts (empty: keep
  // what the vocabulary file says) and add_bos_token.
  struct SpecialTokens {
    std::string bos, eos;
    std::optional<bool> add_bos;
  };
  // from_file, then BOS/EOS/add_bos as `special` says. Throws when a named token is not in the
  // vocabulary.
  static std::unique_ptr<Tokenizer> from_file(const std::string& path, const SpecialTokens& special);
  // A usable vocabulary of exactly n_vocab tokens for random-weight dummy models; any text encodes
  // (to byte tokens) and decodes back exactly. "gpt2": the 256 byte tokens, normal fillers, and
  // BOS/EOS/EOT as the last three ids, or at 128000/128001/128009 among the 256 LLaMA 3 special
  // tokens when n_vocab == 128256. "llama": <unk>=0, <s>=1, </s>=2, <0x00>..<0xFF>=3..258,
  // U+2581 (space)=259, fillers. n_vocab must be at least 260.
  static std::unique_ptr<Tokenizer> synthetic(const std::string& model, int32_t n_vocab);

  // parse_special: match special/control token texts (e.g. "<|eot_id|>") in the text as single
  // tokens, as llama.cpp does; otherwise they are tokenized as plain text.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const = 0;
  // The bytes a token stands for (byte-level decoding applied, "<0xNN>" mapped to its byte,
  // SentencePiece's U+2581 to a space). Control tokens give their text only if `special` is set.
  virtual std::string token_to_piece(int32_t id, bool special = false) const = 0;
  // Concatenated pieces as valid UTF-8 (invalid bytes become U+FFFD). For SentencePiece
  // vocabularies with a dummy prefix, the leading space of the first text piece is removed.
  std::string decode(const std::vector<int32_t>& ids, bool special = false) const;

  virtual int32_t n_vocab() const = 0;
  virtual std::string model_name() const = 0;  // "gpt2" or "llama"
  int32_t bos() const { return bos_; }          // -1 when the vocabulary has none
  int32_t eos() const { return eos_; }
  int32_t eot() const { return eot_; }          // end of turn (<|eot_id|>), -1 when none
  bool add_bos_default() const { return add_bos_; }
  // End of generation: eos, eot, or another end-of-generation token of the vocabulary.
  virtual bool is_eog(int32_t id) const = 0;
  // The vocabulary text of a token, as stored (for printing pieces and for writers).
  virtual const std::string& token_text(int32_t id) const = 0;

  // Writes the tokenizer.ggml.* keys that from_gguf() reads back to the same tokenizer.
  virtual void write_gguf(gguf::Writer& w) const = 0;

 protected:
  int32_t bos_ = -1, eos_ = -1, eot_ = -1;
  bool add_bos_ = true;
  bool decode_strips_leading_space_ = false;  // SentencePiece dummy prefix
};

// Turns a stream of token ids into text that is always valid UTF-8: bytes of a character split
// across tokens are held back until it completes; invalid sequences become U+FFFD.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(tok) {}
  std::string push(int32_t id);
  std::string flush();  // whatever is held back, invalid remainders as U+FFFD

 private:
  const Tokenizer& tok_;
  std::string pending_;
};

}  // namespace bitnet
