// Little-endian loads and stores of the scalars inside tensor blocks (GGUF is little endian).
#pragma once
#include <bit>
#include <cstdint>

namespace bitnet::detail {

inline uint16_t load_le16(const uint8_t* p) { return (uint16_t)(p[0] | (p[1] << 8)); }

inline void store_le16(uint16_t v, uint8_t* p) {
  p[0] = (uint8_t)(v & 0xff);
  p[1] = (uint8_t)(v >> 8);
}

inline float load_le_f32(const uint8_t* p) {
  return std::bit_cast<float>((uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
                              ((uint32_t)p[3] << 24));
}

inline void store_le_f32(float v, uint8_t* p) {
  const uint32_t bits = std::bit_cast<uint32_t>(v);
  for (int i = 0; i < 4; ++i) p[i] = (uint8_t)(bits >> (8 * i));
}

}  // namespace bitnet::detail
