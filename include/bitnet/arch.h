// The model architectures the engine runs, with the GGUF tensor names, shapes and hyperparameter
// keys of their files: the one table the loader, `bitnet dummy`, `bitnet convert` and the tests use.
// Everything here is immutable data and pure functions (thread-safe).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bitnet/model.h"

namespace bitnet {

namespace gguf {
class Writer;
}

struct ArchInfo {
  const char* name;  // general.architecture
  Arch arch;
  bool rope_neox;  // rotary pairs (i, i + d/2); else (2i, 2i+1)
  bool ffn_relu2;  // relu(gate)^2 * up; else silu(gate) * up
  bool sub_norms;  // attn_sub_norm before attn_output, ffn_sub_norm before ffn_down
  bool tied_head;  // the output head is token_embd (files of this arch have no output.weight)
};

// nullptr when `name` is not an architecture the engine runs.
const ArchInfo* find_arch(std::string_view name);
std::string supported_arch_names();  // "bitnet-b1.58, bitnet-25, bitnet, llama"

// Hyperparameters that decide a model's tensor shapes and its GGUF metadata.
struct ModelHparams {
  int64_t n_vocab = 0, n_embd = 0, n_layer = 0, n_ff = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
  int64_t n_ctx_train = 0;
  float rope_theta = 10000.f, rms_eps = 1e-5f;
};

// Writes general.architecture and the {arch}.* hyperparameter keys the loader reads back.
void write_hparams(gguf::Writer& w, const ArchInfo& arch, const ModelHparams& h);

// Tensors of one decoder block.
enum class LayerTensor {
  AttnNorm, AttnQ, AttnK, AttnV, AttnOutput, AttnSubNorm, FfnNorm, FfnGate, FfnUp, FfnDown, FfnSubNorm,
};
enum class TensorRole { Embedding, Norm, Linear };

inline constexpr const char* kTokenEmbdName = "token_embd.weight";
inline constexpr const char* kOutputNormName = "output_norm.weight";
inline constexpr const char* kOutputName = "output.weight";

// "blk.{layer}.attn_q" and the like: the tensor's name without ".weight" (linears may carry
// ".scale" and ".bias" tensors beside it).
std::string layer_tensor_base(int64_t layer, LayerTensor t);
inline std::string layer_tensor_name(int64_t layer, LayerTensor t) { return layer_tensor_base(layer, t) + ".weight"; }
// GGUF dims {ne0, ne1}: linears {in, out}, norms {n}.
std::vector<uint64_t> layer_tensor_shape(LayerTensor t, const ModelHparams& h);
TensorRole layer_tensor_role(LayerTensor t);
// The block and kind of a "blk.N.<kind>.weight" name; false for any other name.
bool parse_layer_tensor_name(std::string_view name, int64_t& layer, LayerTensor& kind);
// Whether the architecture has this tensor (sub-norms only where sub_norms is set).
bool arch_has(const ArchInfo& arch, LayerTensor t);

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> ne;
  TensorRole role;
  int64_t layer = -1;  // -1 for the global tensors
  LayerTensor kind = LayerTensor::AttnNorm;  // when layer >= 0
};

// Every tensor of a model file in the order writers store them: token_embd, each block's
// tensors, output_norm, and output when `with_output` (architectures without a tied head must have
// it; tied ones may, when their checkpoint's head differs from the embedding).
std::vector<TensorSpec> model_tensors(const ArchInfo& arch, const ModelHparams& h, bool with_output);

}  // namespace bitnet
