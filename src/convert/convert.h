// `bitnet convert`: a Hugging Face BitNet checkpoint (config.json, safetensors, tokenizer) to GGUF.
//
// Families (config.json "architectures"):
//  - BitNetForCausalLM (BitNet b1.58 2B4T) -> bitnet-b1.58: packed uint8 weights with a
//    weight_scale (AutoBitLinear offline: W = t * weight_scale), or the -bf16 master's float
//    weights ternarised by absmean; ReLU^2, sub-norms, tied embeddings.
//  - LlamaForCausalLM with quantization_config.quant_method = bitnet (Llama3-8B-1.58, Falcon3
//    1.58-bit, Falcon-E) -> llama: packed weights, BitLinear's W = t / weight_scale, float lm_head,
//    SiLU; Q/K rows permuted to llama's interleaved rotary layout.
//  - BitnetForCausalLM (1bitLLM bitnet_b1_58-large/-3B) -> bitnet: float masters ternarised by
//    absmean; SiLU; inner_attn_ln / ffn_layernorm are the sub-norms.
// The output is streamed tensor by tensor from the memory-mapped safetensors through the GGUF
// writer's temporary file, so a checkpoint never needs its size in RAM.
#pragma once
#include <string>

#include "bitnet/formats.h"

namespace bitnet {

struct ConvertOptions {
  TensorType type = TensorType::I2_S;       // linear weights: I2_S, TQ1_0 or TQ2_0
  TensorType head_type = TensorType::F16;   // token_embd / output: F16, Q8_0, Q6_K (or F32, BF16)
  bool force = false;                       // overwrite an existing output file
  int n_threads = 1;                        // threads that quantize token_embd / output
};

// Converts the checkpoint directory `dir` into `out`. Everything that can be checked (config,
// tensor names, dtypes and shapes, tokenizer) is checked before the output is created. Throws
// bitnet::Error with a one-line message on bad input; no file is left at `out` then.
void convert_checkpoint(const std::string& dir, const std::string& out, const ConvertOptions& opts);

}  // namespace bitnet
