// IEEE binary16 and bfloat16 <-> binary32 conversions, bit exact, round to nearest even.
#include <bit>
#include <cstdint>

#include "bitnet/formats.h"

namespace bitnet {

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f)  // inf keeps a zero mantissa, NaN keeps its payload
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0)
    return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return std::bit_cast<float>(sign);
  // Subnormal: shift the leading one into the implicit position, lowering the exponent.
  int32_t e = 113;
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    --e;
  }
  return std::bit_cast<float>(sign | ((uint32_t)e << 23) | ((mantissa & 0x3ffu) << 13));
}

uint16_t fp32_to_fp16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u)  // NaN: stays a quiet NaN, keeps the top payload bits
    return (uint16_t)(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
  if (magnitude >= 0x47800000u) return sign | 0x7c00u;  // >= 65536 (and inf): beyond any rounding to 65504

  const uint32_t exponent = magnitude >> 23;
  uint32_t kept;       // the fp16 magnitude before rounding
  uint32_t dropped;    // the bits shifted out
  uint32_t half;       // the value of `dropped` that is exactly one half ulp
  if (exponent >= 113) {  // normal in fp16: rebias 127 -> 15 and drop 13 mantissa bits
    kept = (magnitude >> 13) - (112u << 10);
    dropped = magnitude & 0x1fffu;
    half = 0x1000u;
  } else {  // subnormal in fp16: value = m * 2^(exponent - 150), fp16 unit is 2^-24
    const uint32_t shift = 126 - exponent;  // >= 14
    if (shift > 24) return sign;           // below half the smallest subnormal
    const uint32_t m = (magnitude & 0x7fffffu) | (exponent ? 0x800000u : 0);
    kept = m >> shift;
    dropped = m & ((1u << shift) - 1);
    half = 1u << (shift - 1);
  }
  if (dropped > half || (dropped == half && (kept & 1))) ++kept;  // a carry may step into the next binade or to inf
  return (uint16_t)(sign | kept);
}

float bf16_to_fp32(uint16_t h) { return std::bit_cast<float>((uint32_t)h << 16); }

uint16_t fp32_to_bf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40u);  // quiet NaN
  const uint32_t round_even = 0x7fffu + ((bits >> 16) & 1u);
  return (uint16_t)((bits + round_even) >> 16);  // overflow of the largest values carries into inf, as it must
}

}  // namespace bitnet
