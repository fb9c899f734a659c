// bitnet show MODEL: what a GGUF file holds, read from its header only (no weights are loaded):
// a summary as `ollama show` gives it, every metadata key (long arrays shortened, as gguf-dump
// does), the chat template with the built-in one it is recognised as, and the tensor table.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "bitnet/chat.h"
#include "bitnet/error.h"
#include "bitnet/formats.h"
#include "bitnet/gguf.h"
#include "commands.h"
#include "gguf/wire.h"
#include "options.h"

namespace bitnet::cli {
namespace {

constexpr size_t kArrayItemsShown = 8;
constexpr size_t kStringCharsShown = 60;

// A string on one line: control characters escaped, long ones cut.
std::string quoted(const std::string& s, size_t max_chars) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == max_chars) {
      out += "...";
      break;
    }
    const unsigned char c = (unsigned char)s[i];
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '"' || c == '\\') out += std::string("\\") + (char)c;
    else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else out += (char)c;
  }
  return out + "\"";
}

std::string scalar_text(const gguf::Value& v) {
  using gguf::ValueType;
  switch (v.type) {
    case ValueType::STRING: return quoted(v.str, kStringCharsShown);
    case ValueType::BOOL: return v.b ? "true" : "false";
    case ValueType::FLOAT32:
    case ValueType::FLOAT64: {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%.9g", v.f);
      return buf;
    }
    case ValueType::INT8:
    case ValueType::INT16:
    case ValueType::INT32:
    case ValueType::INT64: return std::to_string(v.i);
    default: return std::to_string(v.u);
  }
}

std::string value_text(const gguf::Value& v) {
  if (v.type != gguf::ValueType::ARRAY) return scalar_text(v);
  std::string out = "[";
  for (size_t i = 0; i < v.arr.size() && i < kArrayItemsShown; ++i)
    out += (i ? ", " : "") + value_text(v.arr[i]);
  if (v.arr.size() > kArrayItemsShown) out += ", ... (" + std::to_string(v.arr.size()) + " items)";
  return out + "]";
}

std::string type_text(const gguf::Value& v) {
  if (v.type != gguf::ValueType::ARRAY) return gguf::value_type_name(v.type);
  return std::string("arr[") + gguf::value_type_name(v.elem_type) + "," + std::to_string(v.arr.size()) + "]";
}

std::string human_bytes(uint64_t n) {
  char buf[32];
  if (n >= (1ull << 30)) std::snprintf(buf, sizeof(buf), "%.2f GiB", n / 1073741824.0);
  else if (n >= (1ull << 20)) std::snprintf(buf, sizeof(buf), "%.2f MiB", n / 1048576.0);
  else if (n >= 1024) std::snprintf(buf, sizeof(buf), "%.2f KiB", n / 1024.0);
  else std::snprintf(buf, sizeof(buf), "%" PRIu64 " B", n);
  return buf;
}

void print_summary(const gguf::File& f) {
  const std::string arch = f.get_string("general.architecture", "");
  const std::string a = arch + ".";
  uint64_t n_params = 0;
  for (const auto& t : f.tensors()) n_params += t.n_elements();
  auto row = [](const char* name, const std::string& value) {
    if (!value.empty()) std::printf("  %-22s %s\n", name, value.c_str());
  };
  auto uint_key = [&](const std::string& key) {
    const gguf::Value* v = f.find(key);
    return v && v->type != gguf::ValueType::ARRAY && v->type != gguf::ValueType::STRING ? scalar_text(*v) : "";
  };
  std::printf("model\n");
  row("file", f.path() + " (" + human_bytes(f.file_size()) + ", GGUF v" + std::to_string(f.version()) + ")");
  row("name", f.get_string("general.name", ""));
  row("architecture", arch);
  char params[32];
  std::snprintf(params, sizeof(params), n_params >= 1000000000ull ? "%.2f B" : "%.2f M",
                n_params >= 1000000000ull ? n_params / 1e9 : n_params / 1e6);
  row("parameters", params);
  row("context length", uint_key(a + "context_length"));
  row("embedding length", uint_key(a + "embedding_length"));
  row("layers", uint_key(a + "block_count"));
  row("heads / kv heads", uint_key(a + "attention.head_count").empty()
                              ? ""
                              : uint_key(a + "attention.head_count") + " / " + uint_key(a + "attention.head_count_kv"));
  row("tokenizer", f.get_string("tokenizer.ggml.model", ""));
  if (const gguf::Value* tokens = f.find("tokenizer.ggml.tokens"); tokens && tokens->type == gguf::ValueType::ARRAY)
    row("vocabulary", std::to_string(tokens->arr.size()) + " tokens");
}

void print_metadata(const gguf::File& f) {
  size_t key_width = 0, type_width = 0;
  for (const auto& [key, value] : f.metadata()) {
    key_width = std::max(key_width, key.size());
    type_width = std::max(type_width, type_text(value).size());
  }
  std::printf("\nmetadata (%zu keys)\n", f.metadata().size());
  for (const auto& [key, value] : f.metadata())
    std::printf("  %-*s  %-*s  %s\n", (int)key_width, key.c_str(), (int)type_width, type_text(value).c_str(),
                value_text(value).c_str());
}

void print_chat_template(const gguf::File& f) {
  const std::string text = f.get_string("tokenizer.chat_template", "");
  std::printf("\nchat template\n");
  if (text.empty()) {
    std::printf("  none in the file (chat uses --chat-template NAME or a default)\n");
    return;
  }
  const std::string name = detect_chat_template(text);
  std::printf("  recognised as: %s\n", name.empty() ? "none of the built-in templates (--chat-template NAME)" : name.c_str());
  std::printf("%s\n", text.c_str());
}

void print_tensors(const gguf::File& f) {
  const bool bitnet_file = gguf::wire::is_bitnet_file([&f](std::string_view k) { return f.find(k); });
  struct Row {
    std::string name, type, shape, bytes;
  };
  std::vector<Row> rows;
  Row header{"name", "type", "shape", "bytes"};
  size_t w[4] = {header.name.size(), header.type.size(), header.shape.size(), header.bytes.size()};
  uint64_t total = 0;
  for (const auto& t : f.tensors()) {
    Row r;
    r.name = t.name;
    r.type = type_name(resolve_type(t.type, bitnet_file, t.name));
    for (int d = 0; d < t.n_dims; ++d) r.shape += (d ? " x " : "") + std::to_string(t.ne[d]);
    r.bytes = std::to_string(t.nbytes);
    total += t.nbytes;
    w[0] = std::max(w[0], r.name.size());
    w[1] = std::max(w[1], r.type.size());
    w[2] = std::max(w[2], r.shape.size());
    w[3] = std::max(w[3], r.bytes.size());
    rows.push_back(std::move(r));
  }
  std::printf("\ntensors (%zu, %s of data)\n", rows.size(), human_bytes(total).c_str());
  auto print = [&](const Row& r) {
    std::printf("  %-*s  %-*s  %-*s  %*s\n", (int)w[0], r.name.c_str(), (int)w[1], r.type.c_str(), (int)w[2],
                r.shape.c_str(), (int)w[3], r.bytes.c_str());
  };
  print(header);
  for (const auto& r : rows) print(r);
}

}  // namespace

int cmd_show(int argc, char** argv) {
  bool metadata = true, tensors = true, template_only = false;
  OptionTable t("usage: bitnet show MODEL.gguf [--no-metadata] [--no-tensors] [--template]\n"
                "Prints a model's summary, metadata, chat template and tensor table (reads the header only).");
  t.flag({"--no-metadata"}, "leave out the metadata keys", [&] { metadata = false; });
  t.flag({"--no-tensors"}, "leave out the tensor table", [&] { tensors = false; });
  t.flag({"--template"}, "print only the chat template text", [&] { template_only = true; });
  const auto parsed = t.parse_command(argc, argv, 1);
  if (!parsed) return 0;
  const std::vector<std::string>& positional = *parsed;
  if (positional.empty()) throw Error("no model given (bitnet show MODEL.gguf)");
  std::unique_ptr<gguf::File> f = gguf::File::open(positional[0]);
  if (template_only) {
    const std::string text = f->get_string("tokenizer.chat_template", "");
    if (text.empty()) throw Error("'" + positional[0] + "' has no chat template (tokenizer.chat_template)");
    std::printf("%s\n", text.c_str());
    return 0;
  }
  print_summary(*f);
  if (metadata) print_metadata(*f);
  print_chat_template(*f);
  if (tensors) print_tensors(*f);
  return 0;
}

}  // namespace bitnet::cli
