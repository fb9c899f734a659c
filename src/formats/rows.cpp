// Scalar reference dequantize_row / quantize_row for the block formats, in ggml's exact layouts.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include "bitnet/error.h"
#include "bitnet/formats.h"
#include "formats/byte_order.h"
#include "formats/ternary_blocks.h"

namespace bitnet {

using detail::load_le16;
using detail::store_le16;

namespace {

// Q4_0: { f16 d; uint8 qs[16]; }, value j < 16 in the low nibble of qs[j], j >= 16 in the high
// nibble of qs[j - 16]; value = (nibble - 8) * d.
// Q8_0: { f16 d; int8 qs[32]; }, value = qs[j] * d.
// Q6_K: { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; f16 d; }, 256 values.
constexpr int kQ6Bytes = 210;
constexpr int kQ6Qh = 128, kQ6Scales = 192, kQ6D = 208;

// Where value i (0..255) of a Q6_K block lives. Each 128-value half h uses ql[64h..64h+63],
// qh[32h..32h+31] and scales[8h..8h+7]; within it value l + 32k (l < 32, k < 4) takes its low
// 4 bits from ql[l + 32(k&1)] (low nibble for k < 2, high for k >= 2), its high 2 bits from
// qh[l] at bit 2k, and its scale from scales[l/16 + 2k]. Code = 6-bit value + 32.
struct Q6Position {
  int ql_byte, ql_shift, qh_byte, qh_shift, scale;
};

Q6Position q6_position(int i) {
  const int h = i / 128, l = i % 32, k = (i % 128) / 32;
  return {64 * h + l + 32 * (k & 1), 4 * (k >> 1), kQ6Qh + 32 * h + l, 2 * k, 8 * h + l / 16 + 2 * k};
}

void dequantize_q4_0(const uint8_t* block, float* out) {
  const float d = fp16_to_fp32(load_le16(block));
  for (int j = 0; j < 16; ++j) {
    out[j] = (float)((block[2 + j] & 0x0f) - 8) * d;
    out[j + 16] = (float)((block[2 + j] >> 4) - 8) * d;
  }
}

// ggml's reference: d = (value of largest magnitude) / -8, so that value maps to nibble 0 and the
// opposite side gets one extra level; codes are trunc(x/d + 8.5) capped at 15.
void quantize_q4_0(const float* in, uint8_t* block) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j)
    if (std::fabs(in[j]) > amax) {
      amax = std::fabs(in[j]);
      max = in[j];
    }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_le16(fp32_to_fp16(d), block);
  auto code = [&](float x) { return (uint8_t)std::min(15, (int)(int8_t)(x * id + 8.5f)); };
  for (int j = 0; j < 16; ++j) block[2 + j] = (uint8_t)(code(in[j]) | (code(in[j + 16]) << 4));
}

void dequantize_q8_0(const uint8_t* block, float* out) {
  const float d = fp16_to_fp32(load_le16(block));
  for (int j = 0; j < 32; ++j) out[j] = (float)(int8_t)block[2 + j] * d;
}

// ggml's reference: d = amax / 127, qs = round half away from zero of x / d.
void quantize_q8_0(const float* in, uint8_t* block) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(in[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_le16(fp32_to_fp16(d), block);
  for (int j = 0; j < 32; ++j) block[2 + j] = (uint8_t)(int8_t)std::round(in[j] * id);
}

void dequantize_q6_k(const uint8_t* block, float* out) {
  const float d = fp16_to_fp32(load_le16(block + kQ6D));
  for (int i = 0; i < 256; ++i) {
    const Q6Position p = q6_position(i);
    const int code = ((block[p.ql_byte] >> p.ql_shift) & 0x0f) | (((block[p.qh_byte] >> p.qh_shift) & 3) << 4);
    out[i] = d * (float)(int8_t)block[kQ6Scales + p.scale] * (float)(code - 32);
  }
}

// std::clamp((int)std::lround(v), -32, 31) for finite v, computed in float without branches so
// that loops over it vectorise (lround is a library call and was most of the quantizer's time).
// The callers keep v finite: they skip what would divide by zero or by infinity.
inline float q6_level(float v) {
  v = std::min(std::max(v, -64.0f), 64.0f);
  const float whole = (float)(int)v;  // truncated toward zero; v - whole is exact
  const float frac = v - whole;
  const float rounded = whole + (frac >= 0.5f ? 1.0f : 0.0f) - (frac <= -0.5f ? 1.0f : 0.0f);
  return std::min(std::max(rounded, -32.0f), 31.0f);
}

// Levels for 16 values on a given step (nearest, clamped to -32..31) and their squared error.
double q6_fit(const float* x, float step, int* levels) {
  float level[16] = {};
  if (step != 0.0f)
    for (int j = 0; j < 16; ++j) level[j] = q6_level(x[j] / step);
  double error = 0;
  for (int j = 0; j < 16; ++j) {
    levels[j] = (int)level[j];
    const double residual = (double)x[j] - (double)(step * level[j]);
    error += residual * residual;
  }
  return error;
}

// Best step for 16 values on the levels -32..31: tries 21 candidate steps around the one that
// puts the value of largest magnitude on -32, refits each by least squares for the levels it
// produced, and keeps the refit step whose own rounding gives the smallest squared error.
// The candidates are the inner loops (each lane keeps its own sums in the order of the values, so
// the result is that of trying them one after the other), which lets them run in vector lanes.
float q6_subblock_scale(const float* x) {
  float max = 0.0f, amax = 0.0f;
  for (int j = 0; j < 16; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  if (amax == 0.0f) return 0.0f;
  constexpr int kCandidates = 21, kLanes = 24;  // candidate c tries 32 + 0.1 (c - 10) levels; padded
  float inverse[kLanes], sum_ll[kLanes] = {}, scale[kLanes];
  double sum_xl[kLanes] = {}, error[kLanes] = {};
  // A sub-block of subnormals has infinite inverses: every level is 0 then (as lround's out-of-range
  // result cast to int was), so the candidate is skipped, as with inverse 0.
  for (int c = 0; c < kLanes; ++c) {
    inverse[c] = -(32.0f + 0.1f * (float)(c - 10)) / max;
    if (!std::isfinite(inverse[c])) inverse[c] = 0.0f;
  }
  for (int j = 0; j < 16; ++j)
    for (int c = 0; c < kLanes; ++c) {
      const float level = q6_level(x[j] * inverse[c]);
      sum_xl[c] += (double)x[j] * (double)level;
      sum_ll[c] += level * level;  // integers below 2^24: exact
    }
  // Candidates whose levels (so refit step, so error) repeat the previous kept one's cannot win
  // (the first of equal errors does), so only the distinct steps are evaluated, in candidate
  // order. A kept step is far from 0 (of the order of amax / 32): every quotient stays finite.
  int kept = 0;
  for (int c = 0; c < kCandidates; ++c) {
    if (sum_ll[c] == 0.0f) continue;
    const float step = (float)(sum_xl[c] / (double)sum_ll[c]);
    if (kept == 0 || step != scale[kept - 1]) scale[kept++] = step;
  }
  const int lanes = (kept + 3) & ~3;  // whole 4-float vectors
  for (int c = kept; c < lanes; ++c) scale[c] = 1.0f;  // padding lanes, never read
  for (int j = 0; j < 16; ++j)
    for (int c = 0; c < lanes; ++c) {
      const float level = q6_level(x[j] / scale[c]);
      const double residual = (double)x[j] - (double)(scale[c] * level);
      error[c] += residual * residual;
    }
  float best_scale = 0.0f;
  double best_error = INFINITY;
  for (int c = 0; c < kept; ++c)
    if (error[c] < best_error) {
      best_error = error[c];
      best_scale = scale[c];
    }
  return best_scale;
}

// Our Q6_K quantizer (not bit-identical to ggml's): a least-squares step per 16-value sub-block
// (q6_subblock_scale); d = max |step| / 127 stored as f16; each int8 sub-block scale is the
// floor or ceiling of step / d, whichever fits its values better; values are then rounded
// against the step actually stored, d * scales[j], and clamped to -32..31.
void quantize_q6_k(const float* in, uint8_t* block) {
  std::memset(block, 0, kQ6Bytes);
  float steps[16];
  float max_step = 0.0f;
  for (int j = 0; j < 16; ++j) {
    steps[j] = q6_subblock_scale(in + 16 * j);
    max_step = std::max(max_step, std::fabs(steps[j]));
  }
  const uint16_t d_bits = fp32_to_fp16(max_step / 127.0f);
  const float d = fp16_to_fp32(d_bits);
  if (d == 0.0f) return;  // all zero (or below f16 range): an all-zero block decodes to zeros
  store_le16(d_bits, block + kQ6D);
  int levels[256];
  for (int j = 0; j < 16; ++j) {
    const float ratio = steps[j] / d;
    int best_scale = 0;
    double best_error = INFINITY;
    for (float rounded : {std::floor(ratio), std::ceil(ratio)}) {
      const int scale = std::clamp((int)rounded, -127, 127);
      const double error = q6_fit(in + 16 * j, d * (float)scale, levels + 16 * j);
      if (error < best_error) {
        best_error = error;
        best_scale = scale;
      }
    }
    block[kQ6Scales + j] = (uint8_t)(int8_t)best_scale;
    q6_fit(in + 16 * j, d * (float)best_scale, levels + 16 * j);
  }
  for (int i = 0; i < 256; ++i) {
    const Q6Position p = q6_position(i);
    const int code = levels[i] + 32;
    block[p.ql_byte] |= (uint8_t)((code & 0x0f) << p.ql_shift);
    block[p.qh_byte] |= (uint8_t)((code >> 4) << p.qh_shift);
  }
}

void dequantize_tq(TensorType t, const uint8_t* block, float* out) {
  uint8_t codes[detail::kTernaryBlock];
  detail::tq_decode_codes(t, block, codes);
  const float d = fp16_to_fp32(detail::tq_block_scale_bits(t, block));
  for (int i = 0; i < detail::kTernaryBlock; ++i) out[i] = (float)(codes[i] - 1) * d;
}

// Float types are handled as blocks of one value.
using DequantizeBlock = void (*)(const uint8_t* block, float* out);
using QuantizeBlock = void (*)(const float* in, uint8_t* block);

DequantizeBlock block_dequantizer(TensorType t) {
  switch (t) {
    case TensorType::F32: return [](const uint8_t* b, float* out) { *out = detail::load_le_f32(b); };
    case TensorType::F16: return [](const uint8_t* b, float* out) { *out = fp16_to_fp32(load_le16(b)); };
    case TensorType::BF16: return [](const uint8_t* b, float* out) { *out = bf16_to_fp32(load_le16(b)); };
    case TensorType::Q4_0: return dequantize_q4_0;
    case TensorType::Q8_0: return dequantize_q8_0;
    case TensorType::Q6_K: return dequantize_q6_k;
    case TensorType::TQ1_0: return [](const uint8_t* b, float* out) { dequantize_tq(TensorType::TQ1_0, b, out); };
    case TensorType::TQ2_0: return [](const uint8_t* b, float* out) { dequantize_tq(TensorType::TQ2_0, b, out); };
    default: return nullptr;
  }
}

QuantizeBlock block_quantizer(TensorType t) {
  switch (t) {
    case TensorType::F32: return [](const float* in, uint8_t* b) { detail::store_le_f32(*in, b); };
    case TensorType::F16: return [](const float* in, uint8_t* b) { store_le16(fp32_to_fp16(*in), b); };
    case TensorType::BF16: return [](const float* in, uint8_t* b) { store_le16(fp32_to_bf16(*in), b); };
    case TensorType::Q4_0: return quantize_q4_0;
    case TensorType::Q8_0: return quantize_q8_0;
    case TensorType::Q6_K: return quantize_q6_k;
    default: return nullptr;
  }
}

// Blocks in a row of ne0 values; throws unless ne0 is a whole number of blocks.
int64_t whole_blocks(TensorType t, int64_t ne0, const char* what) {
  const int64_t block = block_size(t);
  if (ne0 < 0 || ne0 % block != 0)
    throw Error(std::string(what) + ": row length " + std::to_string(ne0) + " is not a multiple of the " +
                type_name(t) + " block size " + std::to_string(block));
  return ne0 / block;
}

}  // namespace

void dequantize_row(TensorType t, const void* row, float* out, int64_t ne0) {
  const DequantizeBlock dequantize = block_dequantizer(t);
  if (!dequantize)
    throw Error(std::string("dequantize_row: tensor type ") + type_name(t) +
                " has no self-contained rows; read it with read_ternary_row");
  const int64_t blocks = whole_blocks(t, ne0, "dequantize_row");
  const int64_t block = block_size(t);
  const uint64_t block_bytes = row_nbytes(t, (uint64_t)block);
  const auto* bytes = static_cast<const uint8_t*>(row);
  for (int64_t b = 0; b < blocks; ++b) dequantize(bytes + (uint64_t)b * block_bytes, out + b * block);
}

void quantize_row(TensorType t, const float* in, void* row, int64_t ne0) {
  const QuantizeBlock quantize = block_quantizer(t);
  if (!quantize)
    throw Error(std::string("quantize_row: tensor type ") + type_name(t) +
                " is not quantized from floats; ternary types are written with write_ternary_row / encode_i2s");
  const int64_t blocks = whole_blocks(t, ne0, "quantize_row");
  const int64_t block = block_size(t);
  const uint64_t block_bytes = row_nbytes(t, (uint64_t)block);
  auto* bytes = static_cast<uint8_t*>(row);
  float finite[256];  // the largest block
  for (int64_t b = 0; b < blocks; ++b) {
    // The block formats cannot hold NaN or Inf (and their casts to int would be undefined): those
    // values quantize as 0. Float types keep them.
    const float* x = in + b * block;
    if (block > 1 && !std::all_of(x, x + block, [](float v) { return std::isfinite(v); })) {
      for (int64_t i = 0; i < block; ++i) finite[i] = std::isfinite(x[i]) ? x[i] : 0.0f;
      x = finite;
    }
    quantize(x, bytes + (uint64_t)b * block_bytes);
  }
}

bool row_is_finite(TensorType t, const void* row, int64_t ne0) {
  const auto* bytes = static_cast<const uint8_t*>(row);
  // A value is Inf or NaN exactly when its exponent bits are all ones.
  auto scan16 = [&](uint64_t n, uint64_t stride, uint64_t offset, uint16_t exponent) {
    bool bad = false;  // no early exit: the loop vectorises and runs at memory speed
    for (uint64_t i = 0; i < n; ++i) bad |= (load_le16(bytes + i * stride + offset) & exponent) == exponent;
    return !bad;
  };
  // Contiguous 16-bit values, four per 64-bit word: a lane's exponent bits are all ones exactly
  // when adding (0x8000 - exponent) to them carries into its top bit (a word loop vectorises;
  // the strided loop above did not, and checking a 2B model's f16 head was a third of its load).
  auto scan16_contiguous = [&](uint64_t n, uint16_t exponent) {
    if constexpr (std::endian::native != std::endian::little) return scan16(n, 2, 0, exponent);
    constexpr uint64_t kLanes = 0x0001000100010001ull, kTop = 0x8000800080008000ull;
    const uint64_t mask = kLanes * exponent, carry = kLanes * (uint16_t)(0x8000 - exponent);
    uint64_t acc = 0, i = 0;
    for (; i + 4 <= n; i += 4) {
      uint64_t w;
      std::memcpy(&w, bytes + 2 * i, 8);
      acc |= ((w & mask) + carry) & kTop;
    }
    return acc == 0 && scan16(n - i, 2, 2 * i, exponent);
  };
  switch (t) {
    case TensorType::F32: {
      bool bad = false;
      for (int64_t i = 0; i < ne0; ++i) bad |= !std::isfinite(detail::load_le_f32(bytes + 4 * i));
      return !bad;
    }
    case TensorType::F16: return scan16_contiguous((uint64_t)ne0, 0x7c00);
    case TensorType::BF16: return scan16_contiguous((uint64_t)ne0, 0x7f80);
    // Block types: every value is the f16 scale d times small integers, so d decides.
    case TensorType::Q4_0: return scan16((uint64_t)whole_blocks(t, ne0, "row_is_finite"), 18, 0, 0x7c00);
    case TensorType::Q8_0: return scan16((uint64_t)whole_blocks(t, ne0, "row_is_finite"), 34, 0, 0x7c00);
    case TensorType::Q6_K: return scan16((uint64_t)whole_blocks(t, ne0, "row_is_finite"), kQ6Bytes, kQ6D, 0x7c00);
    default: throw Error(std::string("row_is_finite: tensor type ") + type_name(t) + " is not a float or block type");
  }
}

}  // namespace bitnet
