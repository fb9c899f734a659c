// The HTTP API's wire formats, apart from any socket or model: request bodies of the OpenAI and
// llama-server endpoints parsed and validated into one GenerationRequest, and the JSON of replies,
// stream chunks and errors. Pure functions, safe to call from any thread.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bitnet/chat.h"
#include "bitnet/sampling.h"

namespace bitnet::server {

using json = nlohmann::ordered_json;

// A request the server answers with an error: HTTP status, OpenAI error type and a one-line
// message. Thrown by the parsers and handlers, turned into the response by the HTTP layer.
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, const std::string& message, std::string type = "")
      : std::runtime_error(message), status_(status), type_(type.empty() ? default_type(status) : std::move(type)) {}
  int status() const { return status_; }
  const std::string& type() const { return type_; }
  static std::string default_type(int status);

 private:
  int status_;
  std::string type_;
};

// {"error": {"code": status, "message": ..., "type": ...}}: OpenAI's shape with llama-server's
// numeric code.
json error_body(int status, const std::string& message, const std::string& type);

enum class Api { Chat, Completions, LlamaCompletion, Responses };

// What any generation endpoint asks for. The prompt is either chat messages (rendered with the
// chat template later), text, or token ids (llama-server's /completion).
struct GenerationRequest {
  Api api = Api::Chat;
  std::string model;                  // as the client named it (echoed back)
  std::vector<ChatMessage> messages;  // Chat, Responses
  std::string prompt;                 // Completions, LlamaCompletion
  std::vector<int32_t> prompt_tokens; // LlamaCompletion with an array prompt
  bool prompt_is_tokens = false;
  int max_tokens = -1;                // -1: until end of generation or a full slot
  SamplingParams sampling;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage
  int logprobs = -1;                  // -1: none; otherwise the number of top alternatives (0..20)
  bool cache_prompt = true;
};

// Parse a body of the named endpoint. Throws HttpError(400) naming the field for malformed JSON,
// missing required fields, wrong types, out-of-range values and unsupported features (n != 1,
// tools, ...).
json parse_body(const std::string& body);
GenerationRequest parse_chat(const json& body);
GenerationRequest parse_completions(const json& body);
GenerationRequest parse_llama_completion(const json& body);
GenerationRequest parse_responses(const json& body);
// The messages of /v1/chat/completions (and /apply-template): roles system/user/assistant (and
// developer, treated as system), content a string or a list of text parts.
std::vector<ChatMessage> parse_messages(const json& messages, const char* field = "messages");

// Field accessors that validate: absent or null gives nullopt; a present value of the wrong type or
// out of range throws HttpError(400) naming the field.
std::optional<std::string> get_string(const json& body, const char* key);
std::optional<bool> get_bool(const json& body, const char* key);
std::optional<double> get_number(const json& body, const char* key, double lo, double hi);
std::optional<int64_t> get_int(const json& body, const char* key, int64_t lo, int64_t hi);

// ---- replies ------------------------------------------------------------------------------------

enum class Finish { Stop, Length };  // end of generation or a stop string / the token limit
const char* finish_reason(Finish f);  // OpenAI's "stop" / "length"

// One alternative of a token's log-probabilities.
struct TokenLogprob {
  std::string piece;
  float logprob = 0;
};
// A generated token: the text released with it (which may hold back part of a stop string or of a
// character) and, when asked, its own piece, log-probability and top alternatives.
struct TokenOut {
  int32_t id = -1;
  std::string text;
  std::string piece;
  float logprob = 0;
  std::vector<TokenLogprob> top;
};

// Everything known about a finished generation.
struct GenerationResult {
  std::string text;
  std::vector<TokenOut> tokens;  // filled when logprobs were asked for
  Finish finish = Finish::Stop;
  std::string stop_word;         // the stop string that ended it, if any
  int n_prompt = 0, n_cached = 0, n_predicted = 0;
  double prompt_ms = 0, predicted_ms = 0;
  int slot = -1;
};

// Identity of one response: its id, creation time and the model name it reports.
struct ReplyMeta {
  std::string id;
  int64_t created = 0;
  std::string model;
};
std::string make_id(const char* prefix);  // prefix + 24 random alphanumerics

json usage_json(const GenerationResult& r);
json timings_json(const GenerationResult& r);
// Complete (non-streamed) replies.
json chat_reply(const ReplyMeta& m, const GenerationRequest& q, const GenerationResult& r);
json completions_reply(const ReplyMeta& m, const GenerationRequest& q, const GenerationResult& r);
json llama_completion_reply(const ReplyMeta& m, const GenerationRequest& q, const GenerationResult& r);
json responses_reply(const ReplyMeta& m, const GenerationRequest& q, const GenerationResult& r,
                     const char* status = "completed");
// Log-probabilities of tokens in the chat ("content": [...]) and the legacy completions layout.
json chat_logprobs(const std::vector<TokenOut>& tokens);
json completions_logprobs(const std::vector<TokenOut>& tokens, size_t text_offset);

// Server-sent events: "data: <json>\n\n", optionally preceded by "event: <name>\n".
std::string sse(const json& data, const char* event = nullptr);

// The server-sent events of one streamed reply, in the layout of its API: OpenAI chunks ending in
// "data: [DONE]", llama-server's /completion objects, or Responses API events. Not thread-safe:
// one per stream.
class StreamWriter {
 public:
  StreamWriter(ReplyMeta meta, const GenerationRequest& request);
  std::string begin();                         // before any token
  std::string token(const TokenOut& t);        // one piece of generated text
  std::string end(const GenerationResult& r);  // the finish, usage and terminator

 private:
  json chat_chunk(json delta, const json& finish, const json& logprobs) const;
  json completions_chunk(const std::string& text, const json& finish, const json& logprobs) const;
  ReplyMeta meta_;
  GenerationRequest q_;
  std::string text_;         // generated so far (Responses events repeat it at the end)
  int sequence_ = 0;         // Responses API sequence_number
  std::string message_id_;   // Responses API output item id
};

}  // namespace bitnet::server
