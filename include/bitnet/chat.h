// Chat templates: built-in renderings of the Jinja templates that the supported model families
// ship (Debian has no Jinja library for C++), chosen by recognising a GGUF's template text.
#pragma once
#include <string>
#include <vector>

namespace bitnet {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

// Names of the built-in templates: "llama3", "bitnet" (BitNet b1.58 2B4T), "falcon3", "llama2",
// "chatml".
std::vector<std::string> chat_template_names();
// The built-in template a GGUF `tokenizer.chat_template` text corresponds to, or "" if none.
std::string detect_chat_template(const std::string& jinja_text);
// Renders the conversation. With add_generation_prompt, ends with the assistant's turn header.
// The BOS token text is not included (the tokenizer adds BOS). Throws bitnet::Error on an unknown
// name.
std::string apply_chat_template(const std::string& name, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt);

}  // namespace bitnet
