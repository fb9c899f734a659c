// Bit layouts of ggml's TQ2_0 and TQ1_0 blocks, as in upstream ggml-quants.c (see formats.md).
#include "formats/ternary_blocks.h"

#include "formats/byte_order.h"

namespace bitnet::detail {

namespace {

// TQ1_0 packs 5 trits per byte in three sections. Byte b of a section holds the values
// first_value + b + n * bytes (n = 0..trits-1, n = 0 the most significant trit); a section with
// 4 trits per byte pads with a zero trit in the least significant place.
struct Tq1Section {
  int first_byte;
  int bytes;
  int first_value;
  int trits;
};
constexpr Tq1Section kTq1Sections[] = {
    {0, 32, 0, 5},     // qs[0..31]: values 0..159
    {32, 16, 160, 5},  // qs[32..47]: values 160..239
    {48, 4, 240, 4},   // qh[0..3]: values 240..255
};
constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};

// TQ2_0: byte 32h + m of each 128-value half h holds values 128h + m + 32n at bits 2n.
void tq2_0_decode_codes(const uint8_t* block, uint8_t* codes) {
  for (int half = 0; half < 2; ++half)
    for (int m = 0; m < 32; ++m)
      for (int n = 0; n < 4; ++n) codes[128 * half + m + 32 * n] = (block[32 * half + m] >> (2 * n)) & 3;
}

void tq2_0_encode_codes(const uint8_t* codes, uint8_t* block) {
  for (int half = 0; half < 2; ++half)
    for (int m = 0; m < 32; ++m) {
      uint8_t byte = 0;
      for (int n = 0; n < 4; ++n) byte |= (uint8_t)(codes[128 * half + m + 32 * n] << (2 * n));
      block[32 * half + m] = byte;
    }
}

// One section with its shape known at compile time, so that the byte loop vectorises (loading a
// TQ1_0 file decodes every weight through here).
template <Tq1Section S>
void tq1_0_decode_section(const uint8_t* block, uint8_t* codes) {
  for (int n = 0; n < S.trits; ++n)
    for (int b = 0; b < S.bytes; ++b) {
      // Multiplying by 3^n (mod 256) moves trit n to the top; (x * 3) >> 8 then reads it.
      const uint8_t shifted = (uint8_t)(block[S.first_byte + b] * kPow3[n]);
      codes[S.first_value + b + n * S.bytes] = (uint8_t)((shifted * 3u) >> 8);
    }
}

void tq1_0_decode_codes(const uint8_t* block, uint8_t* codes) {
  tq1_0_decode_section<kTq1Sections[0]>(block, codes);
  tq1_0_decode_section<kTq1Sections[1]>(block, codes);
  tq1_0_decode_section<kTq1Sections[2]>(block, codes);
}

void tq1_0_encode_codes(const uint8_t* codes, uint8_t* block) {
  for (const Tq1Section& s : kTq1Sections)
    for (int b = 0; b < s.bytes; ++b) {
      uint32_t q = 0;  // base-3 number of 5 trits, first trit most significant
      for (int n = 0; n < 5; ++n) q = q * 3 + (n < s.trits ? codes[s.first_value + b + n * s.bytes] : 0);
      block[s.first_byte + b] = (uint8_t)((q * 256 + 242) / 243);  // ceil(q * 256 / 243) <= 255
    }
}

}  // namespace

int tq_block_bytes(TensorType t) { return (int)row_nbytes(t, kTernaryBlock); }

uint16_t tq_block_scale_bits(TensorType t, const uint8_t* block) {
  return load_le16(block + tq_block_bytes(t) - 2);
}

void tq_decode_codes(TensorType t, const uint8_t* block, uint8_t* codes) {
  if (t == TensorType::TQ1_0)
    tq1_0_decode_codes(block, codes);
  else
    tq2_0_decode_codes(block, codes);
}

void tq_encode_block(TensorType t, const uint8_t* codes, uint16_t d_bits, uint8_t* block) {
  if (t == TensorType::TQ1_0)
    tq1_0_encode_codes(codes, block);
  else
    tq2_0_encode_codes(codes, block);
  store_le16(d_bits, block + tq_block_bytes(t) - 2);
}

}  // namespace bitnet::detail
