// Architecture traits and the GGUF tensor table (names as llama.cpp / bitnet.cpp files spell them).
#include "bitnet/arch.h"

#include "bitnet/gguf.h"

namespace bitnet {

namespace {

constexpr ArchInfo kArchs[] = {
    {"bitnet-b1.58", Arch::BitNetB158, true, true, true, true},
    {"bitnet-25", Arch::BitNetB158, true, true, true, true},
    {"bitnet", Arch::BitNet, true, false, true, true},
    {"llama", Arch::Llama, false, false, false, false},
};

struct LayerTensorInfo {
  LayerTensor kind;
  const char* suffix;
  TensorRole role;
};

// In the order writers store a block's tensors (bitnet.cpp's order).
constexpr LayerTensorInfo kLayerTensors[] = {
    {LayerTensor::AttnNorm, "attn_norm", TensorRole::Norm},
    {LayerTensor::AttnQ, "attn_q", TensorRole::Linear},
    {LayerTensor::AttnK, "attn_k", TensorRole::Linear},
    {LayerTensor::AttnV, "attn_v", TensorRole::Linear},
    {LayerTensor::AttnOutput, "attn_output", TensorRole::Linear},
    {LayerTensor::AttnSubNorm, "attn_sub_norm", TensorRole::Norm},
    {LayerTensor::FfnNorm, "ffn_norm", TensorRole::Norm},
    {LayerTensor::FfnGate, "ffn_gate", TensorRole::Linear},
    {LayerTensor::FfnUp, "ffn_up", TensorRole::Linear},
    {LayerTensor::FfnDown, "ffn_down", TensorRole::Linear},
    {LayerTensor::FfnSubNorm, "ffn_sub_norm", TensorRole::Norm},
};

const LayerTensorInfo& info(LayerTensor t) {
  for (const auto& i : kLayerTensors)
    if (i.kind == t) return i;
  return kLayerTensors[0];  // unreachable: every enumerator is in the table
}

}  // namespace

const ArchInfo* find_arch(std::string_view name) {
  for (const auto& a : kArchs)
    if (name == a.name) return &a;
  return nullptr;
}

std::string supported_arch_names() {
  std::string s;
  for (const auto& a : kArchs) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

void write_hparams(gguf::Writer& w, const ArchInfo& arch, const ModelHparams& h) {
  const std::string a = arch.name;
  auto u32 = [](int64_t v) { return gguf::Value::of_u32(static_cast<uint32_t>(v)); };
  w.set("general.architecture", gguf::Value::of_string(a));
  w.set(a + ".vocab_size", u32(h.n_vocab));
  w.set(a + ".context_length", u32(h.n_ctx_train));
  w.set(a + ".embedding_length", u32(h.n_embd));
  w.set(a + ".block_count", u32(h.n_layer));
  w.set(a + ".feed_forward_length", u32(h.n_ff));
  w.set(a + ".attention.head_count", u32(h.n_head));
  w.set(a + ".attention.head_count_kv", u32(h.n_head_kv));
  if (h.n_embd % h.n_head != 0 || h.head_dim != h.n_embd / h.n_head) {
    w.set(a + ".attention.key_length", u32(h.head_dim));
    w.set(a + ".attention.value_length", u32(h.head_dim));
  }
  w.set(a + ".rope.freq_base", gguf::Value::of_f32(h.rope_theta));
  w.set(a + ".rope.dimension_count", u32(h.head_dim));
  w.set(a + ".attention.layer_norm_rms_epsilon", gguf::Value::of_f32(h.rms_eps));
}

std::string layer_tensor_base(int64_t layer, LayerTensor t) {
  return "blk." + std::to_string(layer) + "." + info(t).suffix;
}

std::vector<uint64_t> layer_tensor_shape(LayerTensor t, const ModelHparams& h) {
  const uint64_t embd = (uint64_t)h.n_embd, ff = (uint64_t)h.n_ff, q_dim = (uint64_t)(h.n_head * h.head_dim),
                 kv_dim = (uint64_t)(h.n_head_kv * h.head_dim);
  switch (t) {
    case LayerTensor::AttnNorm:
    case LayerTensor::FfnNorm: return {embd};
    case LayerTensor::AttnSubNorm: return {q_dim};
    case LayerTensor::FfnSubNorm: return {ff};
    case LayerTensor::AttnQ: return {embd, q_dim};
    case LayerTensor::AttnK:
    case LayerTensor::AttnV: return {embd, kv_dim};
    case LayerTensor::AttnOutput: return {q_dim, embd};
    case LayerTensor::FfnGate:
    case LayerTensor::FfnUp: return {embd, ff};
    case LayerTensor::FfnDown: return {ff, embd};
  }
  return {};
}

TensorRole layer_tensor_role(LayerTensor t) { return info(t).role; }

bool parse_layer_tensor_name(std::string_view name, int64_t& layer, LayerTensor& kind) {
  constexpr std::string_view prefix = "blk.", suffix = ".weight";
  if (name.substr(0, prefix.size()) != prefix || name.size() < prefix.size() + suffix.size() ||
      name.substr(name.size() - suffix.size()) != suffix)
    return false;
  name = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  const size_t dot = name.find('.');
  if (dot == 0 || dot == std::string_view::npos || dot > 7) return false;
  int64_t n = 0;
  for (char c : name.substr(0, dot)) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  for (const auto& i : kLayerTensors)
    if (name.substr(dot + 1) == i.suffix) {
      layer = n;
      kind = i.kind;
      return true;
    }
  return false;
}

bool arch_has(const ArchInfo& arch, LayerTensor t) {
  return arch.sub_norms || (t != LayerTensor::AttnSubNorm && t != LayerTensor::FfnSubNorm);
}

std::vector<TensorSpec> model_tensors(const ArchInfo& arch, const ModelHparams& h, bool with_output) {
  const uint64_t embd = (uint64_t)h.n_embd, vocab = (uint64_t)h.n_vocab;
  std::vector<TensorSpec> out;
  out.push_back({kTokenEmbdName, {embd, vocab}, TensorRole::Embedding});
  for (int64_t l = 0; l < h.n_layer; ++l)
    for (const auto& i : kLayerTensors)
      if (arch_has(arch, i.kind))
        out.push_back({layer_tensor_name(l, i.kind), layer_tensor_shape(i.kind, h), i.role, l, i.kind});
  out.push_back({kOutputNormName, {embd}, TensorRole::Norm});
  if (with_output) out.push_back({kOutputName, {embd, vocab}, TensorRole::Embedding});
  return out;
}

}  // namespace bitnet
