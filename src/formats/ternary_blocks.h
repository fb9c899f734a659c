// Codes of upstream ggml's ternary blocks (TQ1_0, TQ2_0), shared by dequantize_row and the
// ternary row readers/writers. A code is c = t + 1 for a ternary value t in {-1, 0, +1}.
#pragma once
#include <cstdint>

#include "bitnet/formats.h"

namespace bitnet::detail {

constexpr int kTernaryBlock = 256;

// Bytes of one block: TQ2_0 { uint8 qs[64]; f16 d; } = 66, TQ1_0 { uint8 qs[48]; uint8 qh[4]; f16 d; } = 54.
int tq_block_bytes(TensorType t);

// The f16 scale bits of a block (little endian, at the block's end).
uint16_t tq_block_scale_bits(TensorType t, const uint8_t* block);

// Decodes 256 codes; TQ2_0 codes are 0..3 (3 is not ternary), TQ1_0 codes are always 0..2.
void tq_decode_codes(TensorType t, const uint8_t* block, uint8_t* codes);

// Encodes 256 codes (each 0..2) and the f16 scale bits into one block.
void tq_encode_block(TensorType t, const uint8_t* codes, uint16_t d_bits, uint8_t* block);

}  // namespace bitnet::detail
