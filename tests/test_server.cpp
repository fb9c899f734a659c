// The server's wire formats without a socket: request parsing and validation (every endpoint's
// fields, the 400s with their messages), a fuzz of the parsers (any byte string or JSON value
// gives a request or an HttpError, nothing else), and the layout of replies and SSE streams.
#include <gtest/gtest.h>

#include <random>

#include "server/protocol.h"

namespace bitnet::server {
namespace {

GenerationRequest chat(const std::string& body) { return parse_chat(parse_body(body)); }

// The HttpError a body gives, as "status: message".
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const HttpError& e) {
    return std::to_string(e.status()) + ": " + e.what();
  }
  return "no error";
}

TEST(ServerProtocol, ChatFields) {
  auto q = chat(R"({"model":"m","messages":[{"role":"system","content":"S"},{"role":"user","content":[
      {"type":"text","text":"a"},{"type":"text","text":"b"}]},{"role":"assistant","content":null}],
      "max_completion_tokens":7,"temperature":0,"top_p":0.5,"top_k":3,"min_p":0.1,"seed":42,"stop":"x",
      "presence_penalty":1,"frequency_penalty":-1,"repeat_penalty":1.1,"stream":true,
      "stream_options":{"include_usage":true},"logprobs":true,"top_logprobs":4,"n":1,"tools":[]})");
  EXPECT_EQ(q.api, Api::Chat);
  EXPECT_EQ(q.model, "m");
  ASSERT_EQ(q.messages.size(), 3u);
  EXPECT_EQ(q.messages[1].content, "ab");
  EXPECT_EQ(q.messages[2].content, "");
  EXPECT_EQ(q.max_tokens, 7);
  EXPECT_EQ(q.sampling.temp, 0.0f);
  EXPECT_EQ(q.sampling.top_p, 0.5f);
  EXPECT_EQ(q.sampling.top_k, 3);
  EXPECT_EQ(q.sampling.seed, 42u);
  EXPECT_EQ(q.sampling.presence_penalty, 1.0f);
  EXPECT_EQ(q.sampling.frequency_penalty, -1.0f);
  EXPECT_EQ(q.stop, std::vector<std::string>{"x"});
  EXPECT_TRUE(q.stream);
  EXPECT_TRUE(q.include_usage);
  EXPECT_EQ(q.logprobs, 4);
  // developer is a system message; seed -1 is random.
  q = chat(R"({"messages":[{"role":"developer","content":"d"}],"seed":-1})");
  EXPECT_EQ(q.messages[0].role, "system");
  EXPECT_EQ(q.sampling.seed, 0xFFFFFFFFull);
}

TEST(ServerProtocol, CompletionPrompts) {
  auto q = parse_completions(parse_body(R"({"prompt":["one"]})"));
  EXPECT_EQ(q.prompt, "one");
  EXPECT_EQ(q.max_tokens, 16);  // OpenAI's default for completions
  q = parse_llama_completion(parse_body(R"({"prompt":[1,2,3],"n_predict":-1,"n_probs":2,"cache_prompt":false})"));
  EXPECT_TRUE(q.prompt_is_tokens);
  EXPECT_EQ(q.prompt_tokens, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(q.max_tokens, -1);
  EXPECT_EQ(q.logprobs, 2);
  EXPECT_FALSE(q.cache_prompt);
  q = parse_responses(parse_body(R"({"instructions":"I","input":[{"type":"message","role":"user",
      "content":[{"type":"input_text","text":"hi"}]}],"max_output_tokens":3})"));
  ASSERT_EQ(q.messages.size(), 2u);
  EXPECT_EQ(q.messages[0].content, "I");
  EXPECT_EQ(q.messages[1].content, "hi");
  EXPECT_EQ(q.max_tokens, 3);
}

TEST(ServerProtocol, BadRequestsName400AndTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "empty"},
      {"{", "malformed JSON"},
      {"[]", "JSON object"},
      {R"({"max_tokens":6e66666})", "malformed JSON"},  // fuzz_http: a number out of double's range
      {"{}", "'messages' is required"},
      {R"({"messages":{}})", "'messages' must be an array"},
      {R"({"messages":[]})", "at least one"},
      {R"({"messages":[1]})", "must be an object"},
      {R"({"messages":[{"role":"user"}]})", "needs 'content'"},
      {R"({"messages":[{"role":"tool","content":"x"}]})", "not supported"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", "only text"},
      {R"({"messages":[{"role":"user","content":"x"}],"n":3})", "'n' must be 1"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":[{}]})", "'tools'"},
      {R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"auto"})", "'tool_choice'"},
      {R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}})", "json_object"},
      {R"({"messages":[{"role":"user","content":"x"}],"temperature":"1"})", "'temperature' must be a number"},
      {R"({"messages":[{"role":"user","content":"x"}],"temperature":-1})", "'temperature' must be in [0, 100]"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":2.5})", "'max_tokens' must be an integer"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":1e300})", "'max_tokens' must be an integer"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":18446744073709551615})", "'max_tokens' must be in"},
      {R"({"messages":[{"role":"user","content":"x"}],"seed":"s"})", "'seed' must be an integer"},
      {R"({"messages":[{"role":"user","content":"x"}],"stop":[1]})", "'stop' must be"},
      {R"({"messages":[{"role":"user","content":"x"}],"stream":1})", "'stream' must be a boolean"},
      {R"({"messages":[{"role":"user","content":"x"}],"stream_options":true})", "'stream_options'"},
      {R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":2})", "needs 'logprobs'"},
      {R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":21,"logprobs":true})", "'top_logprobs' must be in"},
  };
  for (const auto& [body, message] : cases) {
    std::string e = error_of([&] { chat(body); });
    EXPECT_EQ(e.rfind("400: ", 0), 0u) << body << " -> " << e;
    EXPECT_NE(e.find(message), std::string::npos) << body << " -> " << e;
  }
  EXPECT_NE(error_of([] { parse_completions(parse_body("{}")); }).find("'prompt' is required"), std::string::npos);
  EXPECT_NE(error_of([] { parse_completions(parse_body(R"({"prompt":["a","b"]})")); }).find("one prompt"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_llama_completion(parse_body(R"({"prompt":[1,-1]})")); }).find("invalid token id"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_responses(parse_body(R"({"input":5})")); }).find("'input'"), std::string::npos);
}

// Random bytes, mutated valid bodies and random JSON values in every field: each parser either
// returns or throws HttpError(400). Anything else (another exception, a crash) fails.
TEST(ServerProtocol, FuzzedBodiesGiveA400OrARequest) {
  const std::string seeds[] = {
      R"({"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"max_tokens":5,"stop":["a"],"stream":true,"stream_options":{"include_usage":true},"logprobs":true,"top_logprobs":2})",
      R"({"prompt":[1,2,3],"n_predict":4,"temperature":0.5,"top_k":4,"seed":9,"n_probs":1})",
      R"({"input":[{"role":"user","content":"x"}],"instructions":"y","max_output_tokens":2})",
  };
  const char* keys[] = {"messages", "prompt", "input", "max_tokens", "temperature", "top_p", "top_k", "min_p",
                        "seed", "stop", "stream", "stream_options", "n", "tools", "logprobs", "top_logprobs",
                        "n_predict", "n_probs", "instructions", "response_format", "tool_choice", "model"};
  std::mt19937 rng(7);
  auto random_json = [&](auto&& self, int depth) -> json {
    switch (rng() % 8) {
      case 0: return nullptr;
      case 1: return (bool)(rng() % 2);
      case 2: return (int64_t)rng() - (int64_t)(1u << 31);
      case 3: return std::ldexp((double)rng(), (int)(rng() % 200) - 100);
      case 4: return std::string(rng() % 5, (char)('a' + rng() % 26));
      case 5: {
        json a = json::array();
        for (int i = 0; depth < 3 && i < (int)(rng() % 4); ++i) a.push_back(self(self, depth + 1));
        return a;
      }
      default: {
        json o = json::object();
        const char* sub[] = {"role", "content", "type", "text", "include_usage"};
        for (int i = 0; depth < 3 && i < (int)(rng() % 4); ++i) o[sub[rng() % 5]] = self(self, depth + 1);
        return o;
      }
    }
  };
  auto run_all = [](const std::string& body) {
    for (auto parse : {parse_chat, parse_completions, parse_llama_completion, parse_responses}) {
      try {
        parse(parse_body(body));
      } catch (const HttpError& e) {
        ASSERT_EQ(e.status(), 400) << body;
      }
    }
  };
  for (int iter = 0; iter < 3000; ++iter) {
    std::string body = seeds[rng() % 3];
    switch (iter % 3) {
      case 0:  // byte mutations
        for (int k = 0; k < 1 + (int)(rng() % 4); ++k) body[rng() % body.size()] = (char)(rng() % 256);
        break;
      case 1:  // truncation
        body.resize(rng() % body.size());
        break;
      default: {  // a random value in a known field
        json j = json::parse(body);
        j[keys[rng() % (sizeof(keys) / sizeof(keys[0]))]] = random_json(random_json, 0);
        body = j.dump();
      }
    }
    run_all(body);
  }
}

TEST(ServerProtocol, ChatReplyAndStream) {
  GenerationRequest q = chat(R"({"messages":[{"role":"user","content":"x"}],"stream":true,
                                 "stream_options":{"include_usage":true}})");
  GenerationResult r;
  r.text = "Hello";
  r.finish = Finish::Length;
  r.n_prompt = 10;
  r.n_cached = 4;
  r.n_predicted = 2;
  ReplyMeta m{"chatcmpl-1", 123, "tiny"};
  json whole = chat_reply(m, q, r);
  EXPECT_EQ(whole["choices"][0]["message"]["content"], "Hello");
  EXPECT_EQ(whole["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(whole["usage"]["total_tokens"], 12);
  EXPECT_EQ(whole["usage"]["prompt_tokens_details"]["cached_tokens"], 4);

  StreamWriter w(m, q);
  std::string s = w.begin() + w.token({5, "Hel", "Hel", 0, {}}) + w.token({6, "lo", "lo", 0, {}}) + w.end(r);
  EXPECT_EQ(s.rfind("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\"", 0), 0u);
  EXPECT_NE(s.find(R"("delta":{"role":"assistant","content":""})"), std::string::npos);
  EXPECT_NE(s.find(R"("delta":{"content":"Hel"})"), std::string::npos);
  EXPECT_NE(s.find(R"("finish_reason":"length")"), std::string::npos);
  EXPECT_NE(s.find(R"("choices":[],"usage":{"prompt_tokens":10)"), std::string::npos);
  EXPECT_TRUE(s.ends_with("data: [DONE]\n\n"));

  q = parse_responses(parse_body(R"({"input":"x","stream":true})"));
  StreamWriter rw({"resp_1", 1, "tiny"}, q);
  s = rw.begin() + rw.token({5, "Hi", "Hi", 0, {}}) + rw.end(r);
  size_t created = s.find("event: response.created"), delta = s.find("event: response.output_text.delta"),
         done = s.find("event: response.incomplete");  // ended by the token limit
  EXPECT_LT(created, delta);
  EXPECT_LT(delta, done);
  EXPECT_NE(done, std::string::npos);
}

}  // namespace
}  // namespace bitnet::server
