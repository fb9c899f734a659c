// Built-in renderings of the chat templates our model families ship, and their recognition from a
// GGUF's `tokenizer.chat_template` Jinja text.
//
// Sources of the facts below (read, not copied):
//  - llama3: Meta's template (fixture tokenizers/llama3_tokenizer_config.json): per message
//    '<|start_header_id|>' + role + '<|end_header_id|>\n\n' + content|trim + '<|eot_id|>', then
//    '<|start_header_id|>assistant<|end_header_id|>\n\n'. That template appends the header even
//    without add_generation_prompt; like llama.cpp's built-in we append it only when asked.
//  - bitnet: microsoft/bitnet-b1.58-2B-4T tokenizer_config.json:
//    {% for message in loop_messages %}{% set content = message['role'] | capitalize + ': '+
//    message['content'] | trim + '<|eot_id|>' %}...{% if add_generation_prompt %}{{ 'Assistant: ' }}
//    So "System: s<|eot_id|>User: u<|eot_id|>Assistant: a<|eot_id|>...Assistant: ". Two other
//    renderings exist and are NOT what the model was trained on: the GGUF written by microsoft/
//    BitNet's utils/convert-ms-to-gguf-bitnet.py carries a placeholder template ("Human: ...
//    \n\nBITNETAssistant: " + eos_token), and bitnet.cpp's llama.cpp fork (`tmpl == "bitnet" ||
//    tmpl_contains("BITNET")`, also ik_llama.cpp's LLM_CHAT_TEMPLATE_BITNET) renders "System: s"
//    without <|eot_id|> and assistant turns without <|eot_id|>. We recognise both texts as "bitnet"
//    and render the tokenizer_config.json template.
//  - falcon3: tiiuae/Falcon3-*-Instruct tokenizer_config.json (non-tool branch): system and user
//    turns '<|role|>\n' + content + '\n'; assistant turns '<|assistant|>\n' + content + eos_token,
//    followed by '\n' unless last; '<|assistant|>\n' after the last message when asked. Falcon3's
//    eos_token is "<|endoftext|>". (llama.cpp's built-in omits the eos_token; the template has it.)
//  - llama2: meta-llama/Llama-2-*-chat tokenizer_config.json: a leading system message is folded
//    into the first user turn as '<<SYS>>\n' + system + '\n<</SYS>>\n\n' + user; each user turn is
//    bos_token + '[INST] ' + content.strip() + ' [/INST]' and each assistant turn
//    ' ' + content.strip() + ' ' + eos_token, with "<s>"/"</s>". The first BOS is left to the
//    tokenizer; later ones are written as "<s>" text, as the template does.
//  - chatml: '<|im_start|>' + role + '\n' + content + '<|im_end|>\n', then '<|im_start|>assistant\n'.
// Detection follows llama.cpp's llm_chat_detect_template (substring tests on the Jinja text).
#include "bitnet/chat.h"

#include <cctype>
#include <string_view>

#include "bitnet/error.h"

namespace bitnet {
namespace {

constexpr std::string_view kLlama3 = "llama3";
constexpr std::string_view kBitnet = "bitnet";
constexpr std::string_view kFalcon3 = "falcon3";
constexpr std::string_view kLlama2 = "llama2";
constexpr std::string_view kChatml = "chatml";

// Jinja's `trim` and Python's str.strip() with no argument: ASCII whitespace on both ends.
std::string trim(const std::string& text) {
  auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && is_space(text[begin])) ++begin;
  while (end > begin && is_space(text[end - 1])) --end;
  return text.substr(begin, end - begin);
}

// Jinja's `capitalize`: first character upper case, the rest lower case.
std::string capitalize(const std::string& text) {
  std::string out = text;
  for (size_t i = 0; i < out.size(); ++i) {
    auto c = static_cast<unsigned char>(out[i]);
    out[i] = static_cast<char>(i == 0 ? std::toupper(c) : std::tolower(c));
  }
  return out;
}

std::string render_llama3(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string out;
  for (const auto& m : messages) {
    out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>";
  }
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string render_bitnet(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string out;
  for (const auto& m : messages) out += capitalize(m.role) + ": " + trim(m.content) + "<|eot_id|>";
  if (add_generation_prompt) out += "Assistant: ";
  return out;
}

std::string render_falcon3(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    const bool last = i + 1 == messages.size();
    if (m.role == "system" || m.role == "user") {
      out += "<|" + m.role + "|>\n" + m.content + "\n";
    } else if (m.role == "assistant") {
      out += "<|assistant|>\n" + m.content + "<|endoftext|>" + (last ? "" : "\n");
    }  // the template has no branch for other roles
  }
  // Emitted inside the template's loop, so only after at least one message.
  if (add_generation_prompt && !messages.empty()) out += "<|assistant|>\n";
  return out;
}

// The template folds only messages[0] into the first user turn and drops later system messages;
// we fold every system message into the user turn that follows it rather than lose it.
std::string render_llama2(const std::vector<ChatMessage>& messages) {
  std::string out;
  std::string pending_system;
  bool first_turn = true;
  for (const auto& m : messages) {
    if (m.role == "system") {
      pending_system += "<<SYS>>\n" + m.content + "\n<</SYS>>\n\n";
    } else if (m.role == "user") {
      out += first_turn ? "[INST] " : "<s>[INST] ";
      out += trim(pending_system + m.content) + " [/INST]";
      pending_system.clear();
      first_turn = false;
    } else if (m.role == "assistant") {
      out += ' ';
      out += trim(m.content);
      out += " </s>";
    }
  }
  // A system message with no user turn after it still reaches the model, as an open turn.
  if (!pending_system.empty()) out += (first_turn ? "[INST] " : "<s>[INST] ") + pending_system;
  // The template has no generation prompt: " [/INST]" already ends every user turn.
  return out;
}

std::string render_chatml(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string out;
  for (const auto& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace

std::vector<std::string> chat_template_names() {
  return {std::string(kLlama3), std::string(kBitnet), std::string(kFalcon3), std::string(kLlama2),
          std::string(kChatml)};
}

std::string detect_chat_template(const std::string& jinja_text) {
  for (const auto& name : chat_template_names()) {
    if (jinja_text == name) return name;  // a built-in name is accepted as its own template
  }
  auto contains = [&jinja_text](std::string_view needle) {
    return jinja_text.find(needle) != std::string::npos;
  };
  if (contains("<|im_start|>")) {
    // phi-4 (<|im_sep|>) and SmolVLM (<end_of_utterance>) use <|im_start|> but are not ChatML.
    return contains("<|im_sep|>") || contains("<end_of_utterance>") ? "" : std::string(kChatml);
  }
  if (contains("[INST]")) {
    // Mistral's templates share [INST] but differ in spacing and system handling; a LLaMA 2
    // template is the one with a <<SYS>> block.
    const bool mistral = jinja_text.rfind("mistral", 0) == 0 || contains("[SYSTEM_PROMPT]") ||
                         contains("[AVAILABLE_TOOLS]") || contains("' [INST] ' + system_message");
    return !mistral && contains("<<SYS>>") ? std::string(kLlama2) : "";
  }
  if (contains("<|assistant|>") && contains("<|user|>")) {
    // Phi-3 ends turns with <|end|>; GLM-Edge writes its tags outside quoted strings and never
    // appends eos_token, which every Falcon3 template does.
    return !contains("<|end|>") && contains("eos_token") ? std::string(kFalcon3) : "";
  }
  if (contains("<|start_header_id|>") && contains("<|end_header_id|>")) return std::string(kLlama3);
  // BitNet b1.58 2B4T: "Role: content<|eot_id|>" turns with an "Assistant: " generation prompt,
  // written as a quoted string (its tokenizer_config.json) or as template text (older files of
  // `bitnet dummy`), or the placeholder microsoft/BitNet's converter writes.
  if (contains("BITNETAssistant") || (contains("<|eot_id|>") && contains("Assistant: "))) {
    return std::string(kBitnet);
  }
  return "";
}

std::string apply_chat_template(const std::string& name, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt) {
  if (name == kLlama3) return render_llama3(messages, add_generation_prompt);
  if (name == kBitnet) return render_bitnet(messages, add_generation_prompt);
  if (name == kFalcon3) return render_falcon3(messages, add_generation_prompt);
  if (name == kLlama2) return render_llama2(messages);
  if (name == kChatml) return render_chatml(messages, add_generation_prompt);
  std::string known;
  for (const auto& n : chat_template_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown chat template '" + name + "' (built-in templates: " + known + ")");
}

}  // namespace bitnet
