// Compute kernels behind one function table, filled once at start-up from CPUID.
//
// Every backend (scalar reference, AVX2, AVX-VNNI, AVX-512 VNNI, NEON, NEON dotprod) implements the
// same table. Integer results are bit-exact across backends; the ternary matmul's float epilogue
// uses the same operation order everywhere so its output is bit-exact as well. Float dot products
// may differ in summation order (tested within a tolerance).
//
// Runtime ternary layout (shared by all backends): a matrix of M rows and K columns is stored row
// after row, each row padded to Kp = round_up(K, 128) values (pad code 1, i.e. t = 0) and taking
// Kp/4 bytes; rows start at 64-byte aligned offsets. Within a row, each block of 128 values takes
// 32 bytes, value j of the block in byte j % 32 at bit 6 - 2*(j/32), as code c = t + 1 (this is
// bitnet.cpp's I2_S block order, so 32 bytes shifted by 6/4/2/0 give 4 runs of 32 values).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bitnet {

enum class Isa { Scalar, AVX2, AVXVNNI, AVX512VNNI, NEON, NEONDotProd };
const char* isa_name(Isa isa);
// The Isa named (as isa_name spells it, any case), or false when no Isa has that name.
bool parse_isa(const char* name, Isa& out);
// "scalar, avx2, avxvnni, avx512vnni, neon, neon-dotprod": every name parse_isa accepts.
std::string isa_names();

constexpr int64_t kTernaryBlock = 128;
inline int64_t ternary_padded_cols(int64_t k) { return (k + kTernaryBlock - 1) / kTernaryBlock * kTernaryBlock; }
inline size_t ternary_row_bytes(int64_t k) { return (size_t)ternary_padded_cols(k) / 4; }
// Row stride in the packed buffer (row bytes rounded up to 64).
inline size_t ternary_row_stride(int64_t k) { return (ternary_row_bytes(k) + 63) / 64 * 64; }

// TQ1_0 rows read in place from a GGUF file (ggml's layout, see formats.md): 256 values per block
// of 54 bytes { uint8 qs[48]; uint8 qh[4]; f16 d; }, five base-3 digits (codes c = t + 1) per byte
// of qs, four per byte of qh; K is a multiple of 256 and rows follow each other without padding.
constexpr int64_t kTq1Block = 256;
constexpr size_t kTq1BlockBytes = 54;
inline size_t tq1_row_bytes(int64_t k) { return (size_t)(k / kTq1Block) * kTq1BlockBytes; }

// Packs one row of K ternary values (-1/0/+1) into ternary_row_bytes(K) bytes of the runtime
// layout (scalar; used at load time).
void pack_ternary_row(const int8_t* t, int64_t k, uint8_t* out);

struct TernaryGemmArgs {
  const uint8_t* w;          // packed weights, row m at w + m * w_stride
  size_t w_stride;
  const float* row_scale;    // per output row
  int64_t kp;                // padded K (multiple of 128)
  const int8_t* q;           // quantized activations, token n at q + n * q_stride (zero padded to kp)
  size_t q_stride;
  const float* act_scale;    // per token: 1 / sigma = absmax / 127
  const int32_t* act_sum;    // per token: sum of its q values
  int64_t n_tokens;
  float* y;                  // token n's output row at y + n * y_stride
  size_t y_stride;
  int64_t m0, m1;            // the output rows this call computes
  // tq1_gemm only. With row_scale null, row m's scale is the f16 d of its first block times
  // scale_mul (the file's blocks carry the scale; nothing is read at load). scale_mismatch, when
  // not null, is set to 1 (never cleared) if a row has a block whose d bits differ from its first
  // block's: the caller then checks the tensor, since the one-scale-per-row result may be wrong.
  float scale_mul = 1.f;
  int* scale_mismatch = nullptr;
};

struct Kernels {
  Isa isa;
  // Per-token int8 absmax quantization of one activation row (BitNet b1.58's A8):
  //   sigma = 127 / max(max|x|, 1e-5) computed in float, q = clamp(nearbyint(x * sigma), -128, 127)
  // q[k..kp) are zeroed. Writes act_scale = 1/sigma and act_sum = sum q.
  void (*quantize_row_i8)(const float* x, int64_t k, int64_t kp, int8_t* q, float* act_scale,
                          int32_t* act_sum);
  // y[n][m] = float(sum_k c[m][k] * q[n][k] - act_sum[n]) * row_scale[m] * act_scale[n]
  // (c = t + 1, so the integer part equals sum t * q exactly).
  void (*ternary_gemm)(const TernaryGemmArgs& a);
  // The same product with the weights in TQ1_0 (w, w_stride = row bytes, kp = K; see above).
  void (*tq1_gemm)(const TernaryGemmArgs& a);
  float (*dot_f32)(const float* a, const float* b, int64_t n);
  float (*dot_f16_f32)(const uint16_t* a, const float* b, int64_t n);
  void (*fp32_to_fp16_row)(const float* in, uint16_t* out, int64_t n);
  void (*fp16_to_fp32_row)(const uint16_t* in, float* out, int64_t n);
  void (*axpy_f16)(float a, const uint16_t* x, float* y, int64_t n);  // y += a * x
};

// Probes of a backend's peak arithmetic rate (bench --roofline): each runs `iters` iterations of
// independent multiply-accumulates on registers, in the instruction mix of the backend's ternary
// kernels (int8) or of the float head (f32 FMA), and returns how many it did; time them to get the
// compute limit of one core. Null where the backend has none (only AVX2 has them so far).
struct ComputeProbes {
  uint64_t (*int8_macs)(int64_t iters) = nullptr;
  uint64_t (*f32_fmas)(int64_t iters) = nullptr;
};
ComputeProbes compute_probes(Isa isa);

// The sum of n 64-bit words read with the widest loads the CPU has, for timing memory read
// bandwidth (bench --roofline): the kernels stream weights with vector loads, which reach more
// bandwidth than a loop of scalar loads does.
uint64_t read_probe_sum(const uint64_t* p, int64_t n);

// The best backend this CPU supports (BITNET_ISA=scalar|avx2|avxvnni|avx512vnni|neon|neon-dotprod
// in the environment selects another one, for tests and benchmarks; an unsupported choice is an
// error printed once, falling back to the best).
const Kernels& kernels();
// A specific backend, or nullptr when it is not compiled in or the CPU lacks it.
const Kernels* kernels_for(Isa isa);
std::vector<Isa> available_isas();
// "AVX2 = 1 | AVX512 = 1 | AVX512_VNNI = 1 | AVX_VNNI = 1 | F16C = 1 | NEON = 0 | ..." for logs.
std::string cpu_features_line();

}  // namespace bitnet
