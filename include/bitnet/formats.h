// Tensor storage formats: type ids, sizes, scalar reference dequantizers and quantizers.
//
// Everything here is the plain reference: simple loops, no SIMD. The kernels in kernels.h are
// tested against these. Ternary formats expose their content as ternary values t in {-1,0,+1}
// plus a float scale so that the engine can repack any of them into its own runtime layout.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace bitnet {

// ggml type ids as stored in GGUF. Ids 36..39 are bitnet.cpp's only in BitNet files (upstream ggml
// reuses them for other types), see resolve_type().
enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q8_0 = 8,
  Q6_K = 14,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  I2_S = 36,
  TL1 = 38,
  TL2 = 39,
};

const char* type_name(TensorType t);
// Parses "f32", "f16", "bf16", "q8_0", "q4_0", "q6_k", "tq1_0", "tq2_0", "i2_s" (case-insensitive);
// throws bitnet::Error listing the accepted names otherwise.
TensorType parse_type_name(const std::string& name);

// Interprets a raw GGUF type id. `bitnet_file` says the file is a BitNet one (architecture
// bitnet-b1.58 / bitnet-25 / bitnet, or general.file_type 40), the only context where 36..39 are
// I2_S/TL1/TL2. Throws bitnet::Error naming the tensor and the id for anything unknown.
TensorType resolve_type(uint32_t raw, bool bitnet_file, const std::string& tensor_name);

bool is_ternary(TensorType t);  // TQ1_0, TQ2_0, I2_S, TL1, TL2

// Values per block (1 for F32/F16/BF16; 32 for Q4_0/Q8_0; 256 for Q6_K/TQ1_0/TQ2_0; 128 for I2_S).
int64_t block_size(TensorType t);

// Bytes of a whole tensor of ne0 x ne1 (x more rows folded into ne1). Throws bitnet::Error when ne0
// is not a multiple of the block size or the type cannot be sized (TL1/TL2, which we reject).
// I2_S: n/4 + 32 (codes, f32 scale, 28 bytes padding).
uint64_t tensor_nbytes(TensorType t, uint64_t ne0, uint64_t ne1);
// Bytes of one row for block types (not I2_S, whose rows are not self-contained).
uint64_t row_nbytes(TensorType t, uint64_t ne0);

// ---- float formats ---------------------------------------------------------------------------
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);  // round to nearest even
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);  // round to nearest even

// Dequantizes one row of ne0 values of a block type (F32, F16, BF16, Q4_0, Q8_0, Q6_K, TQ1_0,
// TQ2_0). `row` points at the row's first byte.
void dequantize_row(TensorType t, const void* row, float* out, int64_t ne0);
// Whether every value of a row (F32, F16, BF16, Q4_0, Q8_0, Q6_K) is finite, judged from the bits
// (a float's exponent, a block's f16 scale), so it runs at memory speed.
bool row_is_finite(TensorType t, const void* row, int64_t ne0);
// Quantizes one row (F32, F16, BF16, Q4_0, Q8_0, Q6_K) the way ggml's reference quantizers do;
// in the block types a NaN or Inf quantizes as 0.
void quantize_row(TensorType t, const float* in, void* row, int64_t ne0);

// ---- ternary formats -------------------------------------------------------------------------
// Reads row `r` of a ternary tensor (ne0 x ne1) as values in {-1,0,+1} and returns that row's
// scale (weight = t * scale). For I2_S the scale is the tensor's (read after the codes); for
// TQ1_0/TQ2_0 it is the block scale d, which BitNet converters set to the tensor scale. When the
// blocks of a row disagree, throws bitnet::Error naming the tensor (we keep one scale per row).
float read_ternary_row(TensorType t, const uint8_t* tensor_data, uint64_t ne0, uint64_t ne1,
                       uint64_t r, int8_t* out, const std::string& tensor_name);

// Writes ternary rows. For TQ1_0 / TQ2_0 `write_ternary_row` fills row_nbytes(t, ne0) bytes with
// d = scale (as f16). For I2_S use I2sTensorEncoder: rows are concatenated, then the scale and
// 28 zero bytes are appended, exactly as bitnet.cpp lays the tensor out.
void write_ternary_row(TensorType t, const int8_t* values, int64_t ne0, float scale, void* row);
// Encodes `n` values (n % 128 == 0) of I2_S codes into n/4 bytes.
void encode_i2s(const int8_t* values, int64_t n, uint8_t* out);
// The 32-byte I2_S trailer: f32 scale then 28 zero bytes.
void encode_i2s_trailer(float scale, uint8_t* out32);

}  // namespace bitnet
