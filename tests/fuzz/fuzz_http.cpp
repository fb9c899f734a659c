// libFuzzer target for the server's request parsing (src/server/protocol.h): byte 0 of the input
// picks the endpoint, the rest is the request body. Any body must parse into a request or throw
// HttpError (a 4xx answer); anything else thrown would be a 500. A parsed request is then answered
// with a made-up result in every reply and stream layout, whose JSON must serialize.
#include <cstdint>
#include <string>

#include "server/protocol.h"

using namespace bitnet::server;

namespace {

GenerationResult made_up_result(const GenerationRequest& q) {
  GenerationResult r;
  r.text = q.prompt.empty() && !q.messages.empty() ? q.messages.back().content : q.prompt;
  r.finish = q.stop.empty() ? Finish::Length : Finish::Stop;
  if (!q.stop.empty()) r.stop_word = q.stop.front();
  r.n_prompt = static_cast<int>(q.prompt_tokens.size());
  r.n_predicted = 1;
  if (q.logprobs >= 0) {
    TokenOut t{7, r.text, r.text, -0.5f, {}};
    for (int i = 0; i < q.logprobs; ++i) t.top.push_back({std::to_string(i), -1.0f - i});
    r.tokens.push_back(t);
  }
  return r;
}

void answer(const GenerationRequest& q) {
  const ReplyMeta meta{"id-1", 1700000000, q.model};
  const GenerationResult r = made_up_result(q);
  switch (q.api) {
    case Api::Chat: (void)chat_reply(meta, q, r).dump(); break;
    case Api::Completions: (void)completions_reply(meta, q, r).dump(); break;
    case Api::LlamaCompletion: (void)llama_completion_reply(meta, q, r).dump(); break;
    case Api::Responses: (void)responses_reply(meta, q, r).dump(); break;
  }
  StreamWriter stream(meta, q);
  (void)stream.begin();
  for (const TokenOut& t : r.tokens) (void)stream.token(t);
  (void)stream.end(r);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const json b = parse_body(body);
    switch (data[0] % 5) {
      case 0: answer(parse_chat(b)); break;
      case 1: answer(parse_completions(b)); break;
      case 2: answer(parse_llama_completion(b)); break;
      case 3: answer(parse_responses(b)); break;
      case 4: (void)parse_messages(b.contains("messages") ? b["messages"] : b); break;
    }
  } catch (const HttpError&) {
  }
  return 0;
}
