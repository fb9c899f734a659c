// Codes of upstream ggml's ternary blocks (TQ1_0, TQ2_0), shared by dequantize_row and the
// ternary row readers/writers. A code is c = t + 1 for a ternary value t in {-1, 0, +1}.
#pragma once
#include <cstdint>

namespace bitnet::detail {

constexpr int kTernaryBlock = 256;
constexpr int kTq2BlockBytes = 66;  // uint8 qs[64]; f16 d
constexpr int kTq1BlockBytes = 54;  // uint8 qs[48]; uint8 qh[4]; f16 d

// The f16 scale d of a block (little endian, at the block's end).
uint16_t tq_block_scale_bits(const uint8_t* block, int block_bytes);

// Decode 256 codes; TQ2_0 codes are 0..3 (3 is not ternary), TQ1_0 codes are always 0..2.
void tq2_0_decode_codes(const uint8_t* block, uint8_t* codes);
void tq1_0_decode_codes(const uint8_t* block, uint8_t* codes);

// Encode 256 codes (each 0..2) and the f16 scale bits into one block.
void tq2_0_encode_block(const uint8_t* codes, uint16_t d_bits, uint8_t* block);
void tq1_0_encode_block(const uint8_t* codes, uint16_t d_bits, uint8_t* block);

}  // namespace bitnet::detail
