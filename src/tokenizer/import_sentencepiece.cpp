// SentencePiece .model: a ModelProto protobuf, decoded by hand. Fields used:
//   ModelProto      1 pieces (repeated), 2 trainer_spec, 3 normalizer_spec
//   SentencePiece   1 piece (string), 2 score (float), 3 type (enum, the GGUF token types)
//   TrainerSpec     3 model_type (1 unigram, 2 BPE), 40 unk_id, 41 bos_id, 42 eos_id
//   NormalizerSpec  3 add_dummy_prefix (default true)
#include <cstring>

#include "bitnet/error.h"
#include "tokenizer/vocab.h"

namespace bitnet::tok {
namespace {

class ProtoReader {
 public:
  ProtoReader(std::string_view data, const std::string& path) : data_(data), path_(path) {}
  bool done() const { return pos_ >= data_.size(); }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) fail("truncated varint");
      const uint8_t b = static_cast<uint8_t>(data_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint longer than 10 bytes");
  }
  // Reads a tag; returns the field number and sets wire_type.
  uint32_t tag(uint32_t& wire_type) {
    const uint64_t t = varint();
    wire_type = static_cast<uint32_t>(t & 7);
    return static_cast<uint32_t>(t >> 3);
  }
  std::string_view bytes() {
    const uint64_t n = varint();
    if (n > data_.size() - pos_) fail("length " + std::to_string(n) + " past the end");
    std::string_view s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  float fixed32_float() {
    if (data_.size() - pos_ < 4) fail("truncated float");
    float f;
    std::memcpy(&f, data_.data() + pos_, 4);  // little-endian on every supported target
    pos_ += 4;
    return f;
  }
  void skip(uint32_t wire_type) {
    switch (wire_type) {
      case 0: varint(); break;
      case 1: advance(8); break;
      case 2: bytes(); break;
      case 5: advance(4); break;
      default: fail("unsupported wire type " + std::to_string(wire_type));
    }
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(path_ + ": not a SentencePiece model: " + what + " at byte " + std::to_string(pos_));
  }

 private:
  void advance(size_t n) {
    if (data_.size() - pos_ < n) fail("truncated field");
    pos_ += n;
  }
  std::string_view data_;
  const std::string& path_;
  size_t pos_ = 0;
};

}  // namespace

VocabData import_sentencepiece_model(const std::string& path, const std::string& content) {
  VocabData d;
  d.source = path;
  d.model = "llama";
  int64_t unk = 0, bos = 1, eos = 2, model_type = 1;
  ProtoReader model(content, path);
  while (!model.done()) {
    uint32_t wire;
    const uint32_t field = model.tag(wire);
    if (field == 1 && wire == 2) {
      ProtoReader piece(model.bytes(), path);
      std::string text;
      float score = 0;
      int64_t type = kNormal;
      while (!piece.done()) {
        uint32_t w;
        const uint32_t f = piece.tag(w);
        if (f == 1 && w == 2) text = piece.bytes();
        else if (f == 2 && w == 5) score = piece.fixed32_float();
        else if (f == 3 && w == 0) type = static_cast<int64_t>(piece.varint());
        else piece.skip(w);
      }
      if (type < kNormal || type > kByte) piece.fail("piece type " + std::to_string(type));
      d.tokens.push_back(std::move(text));
      d.scores.push_back(score);
      d.types.push_back(static_cast<int32_t>(type));
    } else if ((field == 2 || field == 3) && wire == 2) {
      ProtoReader spec(model.bytes(), path);
      while (!spec.done()) {
        uint32_t w;
        const uint32_t f = spec.tag(w);
        if (w != 0) {
          spec.skip(w);
          continue;
        }
        const int64_t v = static_cast<int64_t>(spec.varint());  // int32 fields: sign-extended
        if (field == 2 && f == 3) model_type = v;
        else if (field == 2 && f == 40) unk = v;
        else if (field == 2 && f == 41) bos = v;
        else if (field == 2 && f == 42) eos = v;
        else if (field == 3 && f == 3) d.add_space_prefix = v != 0;
      }
    } else {
      model.skip(wire);
    }
  }
  if (d.tokens.empty()) throw Error(path + ": SentencePiece model has no pieces");
  if (model_type != 2)
    throw Error(path + ": SentencePiece model type " + std::to_string(model_type) +
                " is not supported (BPE only; 1 is unigram)");
  const int64_t n = static_cast<int64_t>(d.tokens.size());
  const auto id_or_none = [n](int64_t id) { return id >= 0 && id < n ? static_cast<int32_t>(id) : -1; };
  d.unk = id_or_none(unk);
  d.bos = id_or_none(bos);
  d.eos = id_or_none(eos);
  return d;
}

}  // namespace bitnet::tok
