// Chat templates: each built-in rendering against literal strings derived by hand from the real
// Jinja templates, and recognition of the real template texts the model families ship. The
// expected strings agree with Python jinja2 3.1 rendering the real templates below (bos_token
// dropped from the front, as the tokenizer adds it).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "bitnet/chat.h"
#include "bitnet/error.h"
#include "fixtures.h"

namespace bitnet {
namespace {

// The conversation llama.cpp's test-chat-template uses: system prompt, two full exchanges (one
// assistant reply padded with spaces, to show which templates trim) and a final user turn.
std::vector<ChatMessage> conversation() {
  return {{"system", "You are a helpful assistant"}, {"user", "Hello"},
          {"assistant", "Hi there"},                 {"user", "Who are you"},
          {"assistant", "   I am an assistant   "},  {"user", "Another question"}};
}

TEST(ChatTemplate, NamesAreTheFiveFamilies) {
  EXPECT_EQ(chat_template_names(),
            (std::vector<std::string>{"llama3", "bitnet", "falcon3", "llama2", "chatml"}));
}

TEST(ChatTemplate, Llama3RendersTrimmedTurnsAndHeader) {
  EXPECT_EQ(apply_chat_template("llama3", conversation(), true),
            "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(apply_chat_template("llama3", {{"user", "Hi"}}, false),
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
}

TEST(ChatTemplate, BitnetRendersCapitalisedRolesWithEotAndAssistantPrompt) {
  EXPECT_EQ(apply_chat_template("bitnet", conversation(), true),
            "System: You are a helpful assistant<|eot_id|>User: Hello<|eot_id|>"
            "Assistant: Hi there<|eot_id|>User: Who are you<|eot_id|>"
            "Assistant: I am an assistant<|eot_id|>User: Another question<|eot_id|>Assistant: ");
  EXPECT_EQ(apply_chat_template("bitnet", {{"user", " Hi\n"}}, false), "User: Hi<|eot_id|>");
}

TEST(ChatTemplate, Falcon3RendersRoleTagsAndEosAfterAssistantTurns) {
  EXPECT_EQ(apply_chat_template("falcon3", conversation(), true),
            "<|system|>\nYou are a helpful assistant\n<|user|>\nHello\n"
            "<|assistant|>\nHi there<|endoftext|>\n<|user|>\nWho are you\n"
            "<|assistant|>\n   I am an assistant   <|endoftext|>\n<|user|>\nAnother question\n"
            "<|assistant|>\n");
  // The last assistant turn gets no newline after its eos_token.
  EXPECT_EQ(apply_chat_template("falcon3", {{"user", "Hi"}, {"assistant", "Yo"}}, false),
            "<|user|>\nHi\n<|assistant|>\nYo<|endoftext|>");
  EXPECT_EQ(apply_chat_template("falcon3", {}, true), "");
}

TEST(ChatTemplate, Llama2FoldsSystemIntoFirstTurnAndSeparatesTurnsWithEosBos) {
  EXPECT_EQ(apply_chat_template("llama2", conversation(), true),
            "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s>"
            "<s>[INST] Who are you [/INST] I am an assistant </s>"
            "<s>[INST] Another question [/INST]");
  EXPECT_EQ(apply_chat_template("llama2", {{"user", " Hi "}}, false), "[INST] Hi [/INST]");
}

TEST(ChatTemplate, ChatmlRendersContentVerbatim) {
  EXPECT_EQ(apply_chat_template("chatml", conversation(), true),
            "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n"
            "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n"
            "<|im_start|>user\nWho are you<|im_end|>\n"
            "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n"
            "<|im_start|>user\nAnother question<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(apply_chat_template("chatml", {{"user", "Hi"}}, false),
            "<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, UnknownNameThrowsListingKnownNames) {
  try {
    apply_chat_template("gemma", conversation(), true);
    FAIL() << "expected bitnet::Error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("gemma"), std::string::npos) << message;
    for (const auto& name : chat_template_names()) {
      EXPECT_NE(message.find(name), std::string::npos) << message;
    }
  }
}

TEST(ChatTemplateDetect, Llama3FromFixtureTokenizerConfig) {
  BITNET_REQUIRE_FIXTURE("tokenizers/llama3_tokenizer_config.json");
  std::ifstream in(test::fixture("tokenizers/llama3_tokenizer_config.json"));
  const auto config = nlohmann::json::parse(in);
  EXPECT_EQ(detect_chat_template(config.at("chat_template").get<std::string>()), "llama3");
}

// microsoft/bitnet-b1.58-2B-4T tokenizer_config.json.
constexpr const char* kBitnetHfTemplate =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "message['role'] | capitalize + ': '+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}";

// What `bitnet dummy --shape 2b4t` wrote before it copied the real template (files of earlier
// `make run`s still hold it).
constexpr const char* kBitnetOldDummyTemplate =
    "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
    "{{ message['role'] | capitalize }}: {{ message['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}Assistant: {% endif %}";

// What microsoft/BitNet's utils/convert-ms-to-gguf-bitnet.py writes into its GGUF files.
constexpr const char* kBitnetGgufTemplate =
    "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ 'Human: ' + message['content'] + "
    "'\\n\\nBITNETAssistant: ' + eos_token }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token }}{% endif %}{% endfor %}";

// tiiuae/Falcon3-7B-Instruct tokenizer_config.json (tool branch included: it must not confuse
// the detection).
constexpr const char* kFalcon3Template =
    "{%- if tools %}\n{{- '<|system|>\\n' }}\n{%- if messages[0]['role'] == 'system' %}\n"
    "{{- messages[0]['content'] }}\n{%- set remaining_messages = messages[1:] %}\n{%- else %}\n"
    "{%- set remaining_messages = messages %}\n{%- endif %}\n"
    "{{- 'You are a Falcon assistant skilled in function calling. You are helpful, respectful, "
    "and concise.\\n\\n# Tools\\n\\nYou have access to the following functions. You MUST use "
    "them to answer questions when needed. For each function call, you MUST return a JSON object "
    "inside <tool_call></tool_call> tags.\\n\\n<tools>' + tools|tojson(indent=2) + "
    "'</tools>\\n\\n# Output Format\\n\\nYour response MUST follow this format when making "
    "function calls:\\n<tool_call>\\n[\\n  {\"name\": \"function_name\", \"arguments\": "
    "{\"arg1\": \"value1\", \"arg2\": \"value2\"}},\\n  {\"name\": \"another_function\", "
    "\"arguments\": {\"arg\": \"value\"}}\\n]\\n</tool_call>\\nIf no function calls are needed, "
    "respond normally without the tool_call tags.\\n' }}\n"
    "{%- for message in remaining_messages %}\n{%- if message['role'] == 'user' %}\n"
    "{{- '<|user|>\\n' + message['content'] + '\\n' }}\n"
    "{%- elif message['role'] == 'assistant' %}\n{%- if message.content %}\n"
    "{{- '<|assistant|>\\n' + message['content'] }}\n{%- endif %}\n"
    "{%- if message.tool_calls %}\n{{- '\\n<tool_call>\\n' }}\n"
    "{{- message.tool_calls|tojson(indent=2) }}\n{{- '\\n</tool_call>' }}\n{%- endif %}\n"
    "{{- eos_token + '\\n' }}\n{%- elif message['role'] == 'tool' %}\n"
    "{{- '<|assistant|>\\n<tool_response>\\n' + message['content'] + '\\n</tool_response>\\n' }}\n"
    "{%- endif %}\n{%- endfor %}\n{{- '<|assistant|>\\n' if add_generation_prompt }}\n"
    "{%- else %}\n{%- for message in messages %}\n{%- if message['role'] == 'system' %}\n"
    "{{- '<|system|>\\n' + message['content'] + '\\n' }}\n"
    "{%- elif message['role'] == 'user' %}\n{{- '<|user|>\\n' + message['content'] + '\\n' }}\n"
    "{%- elif message['role'] == 'assistant' %}\n{%- if not loop.last %}\n"
    "{{- '<|assistant|>\\n' + message['content'] + eos_token + '\\n' }}\n{%- else %}\n"
    "{{- '<|assistant|>\\n' + message['content'] + eos_token }}\n{%- endif %}\n{%- endif %}\n"
    "{%- if loop.last and add_generation_prompt %}\n{{- '<|assistant|>\\n' }}\n{%- endif %}\n"
    "{%- endfor %}\n{%- endif %}";

// meta-llama/Llama-2-7b-chat-hf tokenizer_config.json.
constexpr const char* kLlama2Template =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}"
    "{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == "
    "0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/"
    "...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = "
    "'<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}"
    "{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
    "{% endif %}{% endfor %}";

// teknium/OpenHermes-2.5-Mistral-7B tokenizer_config.json.
constexpr const char* kChatmlTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

TEST(ChatTemplateDetect, RealTemplatesOfEachFamily) {
  EXPECT_EQ(detect_chat_template(kBitnetHfTemplate), "bitnet");
  EXPECT_EQ(detect_chat_template(kBitnetGgufTemplate), "bitnet");
  EXPECT_EQ(detect_chat_template(kBitnetOldDummyTemplate), "bitnet");
  EXPECT_EQ(detect_chat_template(kFalcon3Template), "falcon3");
  EXPECT_EQ(detect_chat_template(kLlama2Template), "llama2");
  EXPECT_EQ(detect_chat_template(kChatmlTemplate), "chatml");
}

TEST(ChatTemplateDetect, BuiltInNamesAreAcceptedAsThemselves) {
  for (const auto& name : chat_template_names()) EXPECT_EQ(detect_chat_template(name), name);
}

TEST(ChatTemplateDetect, OtherFamiliesAreUnknown) {
  EXPECT_EQ(detect_chat_template(""), "");
  // google/gemma-7b-it
  EXPECT_EQ(detect_chat_template(
                "{% for message in messages %}{{ '<start_of_turn>' + message['role'] + '\\n' + "
                "message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
                "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"),
            "");
  // Phi-3-small shares <|user|>/<|assistant|> with Falcon3 but ends turns with <|end|>.
  EXPECT_EQ(detect_chat_template(
                "{{ bos_token }}{% for message in messages %}{{'<|' + message['role'] + '|>' + "
                "'\\n' + message['content'] + '<|end|>\\n' }}{% endfor %}{% if "
                "add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif "
                "%}<|user|>"),
            "");
  // Mistral v0.2 has [INST] but no <<SYS>> block; phi-4 has <|im_start|> with <|im_sep|>.
  EXPECT_EQ(detect_chat_template("{{ bos_token }}{% for message in messages %}{{ '[INST] ' + "
                                 "message['content'] + ' [/INST]' }}{% endfor %}"),
            "");
  EXPECT_EQ(detect_chat_template("{{'<|im_start|>system<|im_sep|>' + message['content']}}"), "");
}

}  // namespace
}  // namespace bitnet
