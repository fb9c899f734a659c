// bitnet quantize: converts a ternary model between I2_S, TQ1_0 and TQ2_0 without changing a single
// weight. Every ternary tensor is decoded row by row to its {-1,0,+1} values and scale and encoded
// again; all other tensors and all metadata are copied (general.file_type adjusted), except
// token_embd/output when --head-type asks to requantize them. Linear weights stored as F32, F16 or
// BF16 (llama.cpp's BitNet conversions, TriLM unpacked) are ternarised: exactly when every
// non-zero value has one magnitude (the tensor already is ternary x one scale), else by absmean.
//
// Scales: I2_S keeps one f32 scale per tensor, TQ1_0/TQ2_0 an f16 scale per 256-value block. So
//  - TQ -> I2_S needs every row of a tensor to share one scale (else the tensor is refused);
//  - I2_S -> TQ needs the f32 scale to be exactly representable as f16. When it is not, the
//    conversion would change every weight slightly, so it is refused unless --allow-requant, which
//    rounds the scale to f16 and reports how many tensors were affected and by how much.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "bitnet/error.h"
#include "bitnet/formats.h"
#include "bitnet/gguf.h"
#include "commands.h"
#include "common_params.h"
#include "bitnet/arch.h"
#include "convert/model_writer.h"
#include "convert/ternarize.h"
#include "options.h"
#include "util/files.h"

namespace bitnet::cli {

namespace {

bool is_convertible_ternary(TensorType t) {
  return t == TensorType::I2_S || t == TensorType::TQ1_0 || t == TensorType::TQ2_0;
}

bool is_head_tensor(const std::string& name) {
  return name == "token_embd.weight" || name == "output.weight";
}

std::string format_float(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// Copies data in bounded pieces so that progress moves for large tensors too.
void copy_bytes(ModelFileWriter& out, const uint8_t* data, uint64_t n) {
  constexpr uint64_t kPiece = 8u << 20;
  for (uint64_t done = 0; done < n; done += kPiece) out.write(data + done, std::min(kPiece, n - done));
}

struct ScaleRounding {
  int tensors = 0;
  double max_relative_change = 0;
};

// Rounds a ternary scale to the f16 that TQ types store, under --allow-requant's policy.
float target_scale(const std::string& name, float scale, TensorType to, bool allow_requant, bool first_row,
                   ScaleRounding& rounding) {
  if (to == TensorType::I2_S) return scale;
  const float as_f16 = fp16_to_fp32(fp32_to_fp16(scale));
  if (as_f16 == scale) return scale;
  const double change = std::fabs(static_cast<double>(as_f16) - scale) / std::fabs(scale);
  if (!allow_requant)
    throw Error("tensor '" + name + "': scale " + format_float(scale) + " is not exactly " +
                "representable as the f16 block scale of " + type_name(to) + " (it would " +
                "become " + format_float(as_f16) + "); pass --allow-requant to accept that");
  if (first_row) ++rounding.tensors;
  rounding.max_relative_change = std::max(rounding.max_relative_change, change);
  return as_f16;
}

void convert_ternary(ModelFileWriter& out, const gguf::TensorInfo& ti, TensorType from,
                     TensorType to, uint64_t rows, bool allow_requant, ScaleRounding& rounding) {
  const uint64_t ne0 = ti.ne[0];
  TernaryTensorEncoder enc(out, ti.name, to, ne0, rows);
  std::vector<int8_t> values(ne0);
  for (uint64_t r = 0; r < rows; ++r) {
    const float scale = read_ternary_row(from, ti.data, ne0, rows, r, values.data(), ti.name);
    enc.write_row(values.data(), target_scale(ti.name, scale, to, allow_requant, r == 0, rounding));
  }
  enc.finish();
}

// Float linear weights: ternary x one scale a converts exactly (t = sign(x)); anything else by
// absmean, whose scale is an approximation anyway (so TQ's f16 rounding of it is not refused).
void ternarize_float(ModelFileWriter& out, const gguf::TensorInfo& ti, TensorType from, TensorType to,
                     uint64_t rows, bool allow_requant, ScaleRounding& rounding) {
  const uint64_t ne0 = ti.ne[0], row_bytes = row_nbytes(from, ne0);
  auto read = [&](int64_t r, float* x) {
    dequantize_row(from, ti.data + static_cast<uint64_t>(r) * row_bytes, x, static_cast<int64_t>(ne0));
  };
  const float common = common_magnitude(static_cast<int64_t>(rows), static_cast<int64_t>(ne0), read);
  const Absmean q = common > 0 ? Absmean{0, 0} : absmean(static_cast<int64_t>(rows), static_cast<int64_t>(ne0), read);
  const float scale = common > 0 ? target_scale(ti.name, common, to, allow_requant, true, rounding) : q.scale;
  TernaryTensorEncoder enc(out, ti.name, to, ne0, rows);
  std::vector<float> x(ne0);
  std::vector<int8_t> values(ne0);
  for (uint64_t r = 0; r < rows; ++r) {
    read(static_cast<int64_t>(r), x.data());
    if (common > 0)
      for (uint64_t i = 0; i < ne0; ++i) values[i] = static_cast<int8_t>(x[i] > 0 ? 1 : x[i] < 0 ? -1 : 0);
    else
      ternarize_row(x.data(), static_cast<int64_t>(ne0), q.multiplier, values.data());
    enc.write_row(values.data(), scale);
  }
  enc.finish();
}

void requantize_head(ModelFileWriter& out, const gguf::TensorInfo& ti, TensorType from,
                     TensorType to, uint64_t rows, ThreadPool& pool) {
  const uint64_t ne0 = ti.ne[0];
  const uint64_t in_row = row_nbytes(from, ne0);
  write_quantized_rows(out, to, ne0, rows, pool, [&](uint64_t r, float* x) {
    dequantize_row(from, ti.data + r * in_row, x, static_cast<int64_t>(ne0));
  });
}

enum class Action { Copy, Ternary, Ternarize, Head };

// A linear weight of the architecture table stored as floats.
bool is_float_linear(const gguf::TensorInfo& ti, TensorType t) {
  int64_t layer;
  LayerTensor kind;
  return (t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16) &&
         parse_layer_tensor_name(ti.name, layer, kind) && layer_tensor_role(kind) == TensorRole::Linear;
}

}  // namespace

int cmd_quantize(int argc, char** argv) {
  std::string head_type_name;
  int n_threads = 0;
  bool force = false, allow_requant = false;
  OptionTable opts(
      "usage: bitnet quantize IN OUT TYPE [options]\n"
      "Converts the ternary weights of a GGUF model to TYPE (i2_s, tq1_0, tq2_0) losslessly,\n"
      "copying metadata and all other tensors. Linear weights stored as f32/f16/bf16 are\n"
      "ternarised (exactly when already ternary x one scale, else by absmean).");
  opts.value({"--head-type"}, "T", "also requantize token_embd/output to T (f16, q6_k, q8_0, f32, bf16)",
             [&](const std::string& v) { head_type_name = v; });
  opts.flag({"--allow-requant"},
            "when converting to tq1_0/tq2_0, round scales that f16 cannot hold exactly (changes "
            "weights by up to 2^-11 relative) instead of refusing",
            [&] { allow_requant = true; });
  add_threads_option(opts, n_threads);
  opts.flag({"--force"}, "overwrite an existing output file", [&] { force = true; });
  const auto parsed = opts.parse_command(argc, argv, 3);
  if (!parsed) return 0;
  const std::vector<std::string>& positional = *parsed;
  if (positional.size() != 3)
    throw Error("quantize: expected IN OUT TYPE, got " + std::to_string(positional.size()) +
                " arguments (see --help)");
  const std::string& in_path = positional[0];
  const std::string& out_path = positional[1];
  const TensorType target = parse_type_name(positional[2]);
  if (!is_convertible_ternary(target))
    throw Error("quantize: TYPE must be i2_s, tq1_0 or tq2_0, not '" + positional[2] + "'");
  std::optional<TensorType> head_type;
  if (!head_type_name.empty()) {
    head_type = parse_type_name(head_type_name);
    if (is_ternary(*head_type) || *head_type == TensorType::Q4_0)
      throw Error("quantize: --head-type must be f16, bf16, q6_k, q8_0 or f32, not '" +
                  head_type_name + "'");
  }

  std::error_code ec;
  if (std::filesystem::exists(out_path, ec) && std::filesystem::equivalent(in_path, out_path, ec))
    throw Error("quantize: OUT '" + out_path + "' is the input file; write to another file");
  check_output_path(out_path, force);

  const auto in = gguf::File::open(in_path);
  const bool bitnet = is_bitnet_file(*in);

  // Decide every tensor's fate before writing anything, so bad input fails early.
  std::vector<Action> actions;
  std::vector<TensorType> from_types;
  int n_ternary = 0;
  std::string float_linear;  // a 2-D non-head tensor, to explain a non-ternary input
  for (const auto& ti : in->tensors()) {
    const TensorType t = resolve_type(ti.type, bitnet, ti.name);
    from_types.push_back(t);
    if (is_ternary(t)) {
      if (!is_convertible_ternary(t))
        throw Error("quantize: tensor '" + ti.name + "' is " + type_name(t) + ", whose packing " +
                    "depends on build-time tile parameters; only i2_s, tq1_0 and tq2_0 convert");
      check_row_length(target, ti.ne[0], ti.ne[1] * ti.ne[2] * ti.ne[3], ti.name);
      actions.push_back(Action::Ternary);
      ++n_ternary;
    } else if (is_float_linear(ti, t)) {
      check_row_length(target, ti.ne[0], ti.ne[1] * ti.ne[2] * ti.ne[3], ti.name);
      actions.push_back(Action::Ternarize);
      ++n_ternary;
    } else if (head_type && is_head_tensor(ti.name)) {
      check_row_length(*head_type, ti.ne[0], ti.ne[1] * ti.ne[2] * ti.ne[3], ti.name);
      actions.push_back(Action::Head);
    } else {
      if (ti.n_dims >= 2 && float_linear.empty() && !is_head_tensor(ti.name))
        float_linear = ti.name + " is " + type_name(t);
      actions.push_back(Action::Copy);
    }
  }
  if (n_ternary == 0)
    throw Error("quantize: '" + in_path + "' has no ternary or float linear weights" +
                (float_linear.empty() ? std::string() : " (" + float_linear + ")") +
                " (blk.N.attn_q.weight, ...) to convert");

  ModelFileWriter out(out_path, "quantize", in->alignment());
  gguf::Writer& w = out.gguf();
  for (const auto& [key, value] : in->metadata())
    w.set(key, key == "general.file_type" ? gguf::Value::of_u32(llama_ftype_for(target)) : value);
  w.set("general.file_type", gguf::Value::of_u32(llama_ftype_for(target)));  // also when absent

  const auto& tensors = in->tensors();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& ti = tensors[i];
    const std::vector<uint64_t> ne(ti.ne, ti.ne + ti.n_dims);
    switch (actions[i]) {
      case Action::Copy: out.declare_raw(ti.name, ne, ti.type, ti.nbytes); break;
      case Action::Ternary:
      case Action::Ternarize: out.declare(ti.name, ne, target); break;
      case Action::Head: out.declare(ti.name, ne, *head_type); break;
    }
  }
  ThreadPool pool(resolve_threads(n_threads));
  out.open(force);
  ScaleRounding rounding;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& ti = tensors[i];
    const uint64_t rows = ti.ne[1] * ti.ne[2] * ti.ne[3];
    switch (actions[i]) {
      case Action::Copy: copy_bytes(out, ti.data, ti.nbytes); break;
      case Action::Ternary:
        convert_ternary(out, ti, from_types[i], target, rows, allow_requant, rounding);
        break;
      case Action::Ternarize:
        ternarize_float(out, ti, from_types[i], target, rows, allow_requant, rounding);
        break;
      case Action::Head: requantize_head(out, ti, from_types[i], *head_type, rows, pool); break;
    }
  }
  out.finish();
  if (rounding.tensors > 0)
    std::fprintf(stderr,
                 "quantize: warning: rounded the scales of %d tensors to f16 (largest relative "
                 "change %.3g)\n",
                 rounding.tensors, rounding.max_relative_change);
  return 0;
}

}  // namespace bitnet::cli
