// Field names and layouts follow the OpenAI API reference (chat completions, completions,
// responses) and llama-server's README (/completion, timings); read, not copied.
#include "protocol.h"

#include <cmath>
#include <random>

namespace bitnet::server {

std::string HttpError::default_type(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 500: return "server_error";
    case 501: return "not_supported_error";
    case 503: return "unavailable_error";
    default: return "invalid_request_error";
  }
}

json error_body(int status, const std::string& message, const std::string& type) {
  return {{"error", {{"code", status}, {"message", message}, {"type", type}}}};
}

// ---- field access -------------------------------------------------------------------------------

namespace {

[[noreturn]] void bad(const std::string& message) { throw HttpError(400, message); }

const json* field(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string range_text(double lo, double hi) {
  auto num = [](double v) {
    json j = v;
    if (v == std::floor(v) && std::fabs(v) < 1e15) j = (int64_t)v;
    return j.dump();
  };
  std::string out = "[";
  out += num(lo);
  out += ", ";
  out += num(hi);
  out += "]";
  return out;
}

}  // namespace

std::optional<std::string> get_string(const json& body, const char* key) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) bad(std::string("'") + key + "' must be a string");
  return v->get<std::string>();
}

std::optional<bool> get_bool(const json& body, const char* key) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) bad(std::string("'") + key + "' must be a boolean");
  return v->get<bool>();
}

std::optional<double> get_number(const json& body, const char* key, double lo, double hi) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) bad(std::string("'") + key + "' must be a number");
  double d = v->get<double>();
  if (!(d >= lo && d <= hi)) bad(std::string("'") + key + "' must be in " + range_text(lo, hi));
  return d;
}

std::optional<int64_t> get_int(const json& body, const char* key, int64_t lo, int64_t hi) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  bool integral = v->is_number_integer() ||
                  (v->is_number_float() && v->get<double>() == std::floor(v->get<double>()) &&
                   std::fabs(v->get<double>()) < 9e15);
  if (!integral) bad(std::string("'") + key + "' must be an integer");
  if (v->is_number_unsigned() && v->get<uint64_t>() > (uint64_t)hi)
    bad(std::string("'") + key + "' must be in " + range_text((double)lo, (double)hi));
  int64_t i = v->is_number_float() ? (int64_t)v->get<double>() : v->get<int64_t>();
  if (i < lo || i > hi) bad(std::string("'") + key + "' must be in " + range_text((double)lo, (double)hi));
  return i;
}

json parse_body(const std::string& body) {
  if (body.empty()) bad("the request body is empty: expected a JSON object");
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e99999
    bad(std::string("malformed JSON in the request body: ") + e.what());
  }
  if (!j.is_object()) bad("the request body must be a JSON object");
  return j;
}

// ---- generation requests ------------------------------------------------------------------------

namespace {

constexpr int64_t kMaxTokens = 1 << 30;

// The sampling fields shared by every endpoint (OpenAI's and llama-server's names).
void parse_sampling(const json& b, GenerationRequest& q) {
  SamplingParams& s = q.sampling;
  if (auto v = get_number(b, "temperature", 0, 100)) s.temp = (float)*v;
  if (auto v = get_number(b, "top_p", 0, 1)) s.top_p = (float)*v;
  if (auto v = get_int(b, "top_k", 0, kMaxTokens)) s.top_k = (int32_t)*v;
  if (auto v = get_number(b, "min_p", 0, 1)) s.min_p = (float)*v;
  if (auto v = get_number(b, "repeat_penalty", 0, 100)) s.repeat_penalty = (float)*v;
  if (auto v = get_int(b, "repeat_last_n", -1, kMaxTokens)) s.repeat_last_n = (int32_t)*v;
  if (auto v = get_number(b, "presence_penalty", -2, 2)) s.presence_penalty = (float)*v;
  if (auto v = get_number(b, "frequency_penalty", -2, 2)) s.frequency_penalty = (float)*v;
  if (auto v = get_int(b, "seed", -1, (int64_t)0xFFFFFFFF)) s.seed = *v < 0 ? 0xFFFFFFFFull : (uint64_t)*v;
  if (auto v = get_string(b, "model")) q.model = *v;
  if (auto v = get_bool(b, "stream")) q.stream = *v;
  if (auto v = get_bool(b, "cache_prompt")) q.cache_prompt = *v;
  if (auto v = get_bool(b, "ignore_eos")) q.ignore_eos = *v;

  if (const json* stop = field(b, "stop")) {
    if (stop->is_string()) {
      q.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      if (stop->size() > 16) bad("'stop' may hold at most 16 strings");
      for (const auto& s2 : *stop) {
        if (!s2.is_string()) bad("'stop' must be a string or an array of strings");
        q.stop.push_back(s2.get<std::string>());
      }
    } else {
      bad("'stop' must be a string or an array of strings");
    }
    std::erase(q.stop, std::string());
  }
  if (const json* so = field(b, "stream_options")) {
    if (!so->is_object()) bad("'stream_options' must be an object");
    if (auto v = get_bool(*so, "include_usage")) q.include_usage = *v;
  }
}

void reject_unsupported(const json& b) {
  if (auto n = get_int(b, "n", 1, 128); n && *n != 1)
    bad("'n' must be 1: this server returns one choice per request (send several requests instead)");
  if (const json* tools = field(b, "tools"); tools && !(tools->is_array() && tools->empty()))
    bad("'tools' (function calling) is not supported by this server");
  if (const json* f = field(b, "functions"); f && !(f->is_array() && f->empty()))
    bad("'functions' (function calling) is not supported by this server");
  if (const json* tc = field(b, "tool_choice"); tc && !(tc->is_string() && *tc == "none"))
    bad("'tool_choice' is not supported by this server (it has no tools)");
  if (const json* rf = field(b, "response_format")) {
    if (!rf->is_object()) bad("'response_format' must be an object");
    auto type = get_string(*rf, "type");
    if (type && *type != "text") bad("'response_format' of type '" + *type + "' is not supported (only 'text')");
  }
}

int parse_max_tokens(const json& b, std::initializer_list<const char*> keys) {
  int n = -1;
  for (const char* k : keys)
    if (auto v = get_int(b, k, -1, kMaxTokens)) n = (int)*v;
  return n;
}

// Text of a message content: a string, or a list of {"type": "text", "text": ...} parts (the
// Responses API's "input_text"/"output_text" too).
std::string content_text(const json& content, const std::string& where) {
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) bad("'" + where + "' must be a string or an array of text parts");
  std::string text;
  for (const auto& part : content) {
    if (!part.is_object()) bad("each part of '" + where + "' must be an object");
    auto type = get_string(part, "type");
    if (!type) bad("each part of '" + where + "' needs a 'type'");
    if (*type != "text" && *type != "input_text" && *type != "output_text")
      bad("content parts of type '" + *type + "' are not supported (only text)");
    auto t = get_string(part, "text");
    if (!t) bad("a text part of '" + where + "' needs a 'text' string");
    text += *t;
  }
  return text;
}

ChatMessage parse_message(const json& m, const std::string& where) {
  if (!m.is_object()) bad("each of '" + where + "' must be an object");
  auto role = get_string(m, "role");
  if (!role) bad("each of '" + where + "' needs a 'role'");
  std::string r = *role == "developer" ? "system" : *role;
  if (r == "tool" || r == "function") bad("messages with role '" + r + "' are not supported (no tools)");
  if (r != "system" && r != "user" && r != "assistant")
    bad("unknown role '" + *role + "' in '" + where + "' (system, user or assistant)");
  if (field(m, "tool_calls")) bad("messages with 'tool_calls' are not supported (no tools)");
  if (r != "assistant" && !field(m, "content")) bad("a '" + r + "' message needs 'content'");
  auto it = m.find("content");
  return {r, content_text(it == m.end() ? json() : *it, where + ".content")};
}

}  // namespace

std::vector<ChatMessage> parse_messages(const json& messages, const char* name) {
  if (!messages.is_array()) bad(std::string("'") + name + "' must be an array of messages");
  if (messages.empty()) bad(std::string("'") + name + "' must hold at least one message");
  std::vector<ChatMessage> out;
  for (const auto& m : messages) out.push_back(parse_message(m, name));
  return out;
}

GenerationRequest parse_chat(const json& b) {
  GenerationRequest q;
  q.api = Api::Chat;
  const json* messages = field(b, "messages");
  if (!messages) bad("'messages' is required");
  q.messages = parse_messages(*messages);
  reject_unsupported(b);
  parse_sampling(b, q);
  q.max_tokens = parse_max_tokens(b, {"max_tokens", "max_completion_tokens"});
  if (auto lp = get_bool(b, "logprobs"); lp && *lp) q.logprobs = 0;
  if (auto top = get_int(b, "top_logprobs", 0, 20)) {
    if (q.logprobs < 0) bad("'top_logprobs' needs 'logprobs': true");
    q.logprobs = (int)*top;
  }
  return q;
}

namespace {

// A prompt given as a string, or (as llama-server accepts) as an array of token ids; OpenAI's
// array of one string too.
void parse_prompt(const json& b, GenerationRequest& q) {
  const json* p = field(b, "prompt");
  if (!p) bad("'prompt' is required");
  if (p->is_string()) {
    q.prompt = p->get<std::string>();
    return;
  }
  if (!p->is_array()) bad("'prompt' must be a string or an array of token ids");
  if (p->size() == 1 && (*p)[0].is_string()) {
    q.prompt = (*p)[0].get<std::string>();
    return;
  }
  for (const auto& t : *p) {
    if (t.is_string()) bad("'prompt' holds several strings: send one prompt per request");
    if (!t.is_number_integer()) bad("'prompt' must be a string or an array of token ids");
    int64_t id = t.get<int64_t>();
    if (id < 0 || id > INT32_MAX) bad("'prompt' holds the invalid token id " + std::to_string(id));
    q.prompt_tokens.push_back((int32_t)id);
  }
  q.prompt_is_tokens = true;
}

}  // namespace

GenerationRequest parse_completions(const json& b) {
  GenerationRequest q;
  q.api = Api::Completions;
  parse_prompt(b, q);
  reject_unsupported(b);
  if (auto echo = get_bool(b, "echo"); echo && *echo) bad("'echo' is not supported");
  if (auto suffix = get_string(b, "suffix"); suffix && !suffix->empty()) bad("'suffix' is not supported");
  if (auto best = get_int(b, "best_of", 1, 128); best && *best != 1) bad("'best_of' must be 1");
  parse_sampling(b, q);
  q.max_tokens = parse_max_tokens(b, {"max_tokens"});
  if (q.max_tokens < 0 && !field(b, "max_tokens")) q.max_tokens = 16;  // OpenAI's default
  if (auto lp = get_int(b, "logprobs", 0, 20)) q.logprobs = (int)*lp;
  return q;
}

GenerationRequest parse_llama_completion(const json& b) {
  GenerationRequest q;
  q.api = Api::LlamaCompletion;
  parse_prompt(b, q);
  reject_unsupported(b);
  parse_sampling(b, q);
  q.max_tokens = parse_max_tokens(b, {"max_tokens", "n_predict"});
  if (auto np = get_int(b, "n_probs", 0, 20); np && *np > 0) q.logprobs = (int)*np;
  return q;
}

GenerationRequest parse_responses(const json& b) {
  GenerationRequest q;
  q.api = Api::Responses;
  if (auto ins = get_string(b, "instructions"); ins && !ins->empty()) q.messages.push_back({"system", *ins});
  const json* input = field(b, "input");
  if (!input) bad("'input' is required");
  if (input->is_string()) {
    q.messages.push_back({"user", input->get<std::string>()});
  } else if (input->is_array()) {
    if (input->empty()) bad("'input' must hold at least one item");
    for (const auto& item : *input) {
      if (item.is_object()) {
        auto type = get_string(item, "type");
        if (type && *type != "message") bad("input items of type '" + *type + "' are not supported (only messages)");
      }
      q.messages.push_back(parse_message(item, "input"));
    }
  } else {
    bad("'input' must be a string or an array of messages");
  }
  reject_unsupported(b);
  parse_sampling(b, q);
  q.max_tokens = parse_max_tokens(b, {"max_output_tokens"});
  return q;
}

// ---- replies ------------------------------------------------------------------------------------

const char* finish_reason(Finish f) { return f == Finish::Length ? "length" : "stop"; }

std::string make_id(const char* prefix) {
  static constexpr char kAlnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += kAlnum[rng() % (sizeof(kAlnum) - 1)];
  return id;
}

json usage_json(const GenerationResult& r) {
  return {{"prompt_tokens", r.n_prompt},
          {"completion_tokens", r.n_predicted},
          {"total_tokens", r.n_prompt + r.n_predicted},
          {"prompt_tokens_details", {{"cached_tokens", r.n_cached}}}};
}

json timings_json(const GenerationResult& r) {
  const int n_evaluated = r.n_prompt - r.n_cached;
  auto per_token = [](double ms, int n) { return n > 0 ? ms / n : 0.0; };
  auto per_second = [](double ms, int n) { return ms > 0 ? 1e3 * n / ms : 0.0; };
  return {{"cache_n", r.n_cached},
          {"prompt_n", n_evaluated},
          {"prompt_ms", r.prompt_ms},
          {"prompt_per_token_ms", per_token(r.prompt_ms, n_evaluated)},
          {"prompt_per_second", per_second(r.prompt_ms, n_evaluated)},
          {"predicted_n", r.n_predicted},
          {"predicted_ms", r.predicted_ms},
          {"predicted_per_token_ms", per_token(r.predicted_ms, r.n_predicted)},
          {"predicted_per_second", per_second(r.predicted_ms, r.n_predicted)}};
}

namespace {

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back((int)c);
  return b;
}

json token_logprob(const std::string& piece, float lp) {
  return {{"token", piece}, {"logprob", lp}, {"bytes", bytes_of(piece)}};
}

}  // namespace

json chat_logprobs(const std::vector<TokenOut>& tokens) {
  json content = json::array();
  for (const auto& t : tokens) {
    json e = token_logprob(t.piece, t.logprob);
    json top = json::array();
    for (const auto& a : t.top) top.push_back(token_logprob(a.piece, a.logprob));
    e["top_logprobs"] = top;
    content.push_back(e);
  }
  return {{"content", content}};
}

json completions_logprobs(const std::vector<TokenOut>& tokens, size_t text_offset) {
  json toks = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  for (const auto& t : tokens) {
    toks.push_back(t.piece);
    lps.push_back(t.logprob);
    json top = json::object();
    for (const auto& a : t.top) top[a.piece] = a.logprob;
    tops.push_back(top);
    offsets.push_back(text_offset);
    text_offset += t.piece.size();
  }
  return {{"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json chat_reply(const ReplyMeta& m, const GenerationRequest& q, const GenerationResult& r) {
  json choice = {{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", r.text}}},
                 {"logprobs", q.logprobs >= 0 ? chat_logprobs(r.tokens) : json()},
                 {"finish_reason", finish_reason(r.finish)}};
  return {{"id", m.id},           {"object", "chat.completion"}, {"created", m.created},
          {"model", m.model},     {"choices", json::array({choice})}, {"usage", usage_json(r)},
          {"timings", timings_json(r)}};
}

json completions_reply(const ReplyMeta& m, const GenerationRequest& q, const GenerationResult& r) {
  json choice = {{"text", r.text},
                 {"index", 0},
                 {"logprobs", q.logprobs >= 0 ? completions_logprobs(r.tokens, 0) : json()},
                 {"finish_reason", finish_reason(r.finish)}};
  return {{"id", m.id},       {"object", "text_completion"},     {"created", m.created},
          {"model", m.model}, {"choices", json::array({choice})}, {"usage", usage_json(r)},
          {"timings", timings_json(r)}};
}

namespace {

const char* stop_type(const GenerationResult& r) {
  if (r.finish == Finish::Length) return "limit";
  return r.stop_word.empty() ? "eos" : "word";
}

json llama_probs(const std::vector<TokenOut>& tokens) {
  json probs = json::array();
  for (const auto& t : tokens) {
    json top = json::array();
    for (const auto& a : t.top) top.push_back({{"token", a.piece}, {"logprob", a.logprob}});
    probs.push_back({{"id", t.id}, {"token", t.piece}, {"logprob", t.logprob}, {"top_logprobs", top}});
  }
  return probs;
}

}  // namespace

json llama_completion_reply(const ReplyMeta& m, const GenerationRequest& q, const GenerationResult& r) {
  json j = {{"index", 0},
            {"content", r.text},
            {"id_slot", r.slot},
            {"stop", true},
            {"model", m.model},
            {"tokens_predicted", r.n_predicted},
            {"tokens_evaluated", r.n_prompt},
            {"tokens_cached", r.n_cached},
            {"stop_type", stop_type(r)},
            {"stopping_word", r.stop_word},
            {"truncated", false},
            {"timings", timings_json(r)}};
  if (q.logprobs > 0) j["completion_probabilities"] = llama_probs(r.tokens);
  return j;
}

json responses_reply(const ReplyMeta& m, const GenerationRequest& q, const GenerationResult& r, const char* status) {
  (void)q;
  json content = json::array({{{"type", "output_text"}, {"text", r.text}, {"annotations", json::array()}}});
  json item = {{"type", "message"}, {"id", "msg_" + m.id.substr(m.id.find('_') + 1)}, {"status", status},
               {"role", "assistant"}, {"content", content}};
  json j = {{"id", m.id},
            {"object", "response"},
            {"created_at", m.created},
            {"status", status},
            {"model", m.model},
            {"output", json::array({item})},
            {"usage",
             {{"input_tokens", r.n_prompt},
              {"input_tokens_details", {{"cached_tokens", r.n_cached}}},
              {"output_tokens", r.n_predicted},
              {"output_tokens_details", {{"reasoning_tokens", 0}}},
              {"total_tokens", r.n_prompt + r.n_predicted}}}};
  if (r.finish == Finish::Length && std::string(status) == "completed") {
    j["status"] = "incomplete";
    j["incomplete_details"] = {{"reason", "max_output_tokens"}};
  }
  return j;
}

std::string sse(const json& data, const char* event) {
  std::string out;
  if (event) out = std::string("event: ") + event + "\n";
  out += "data: " + data.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
  return out;
}

// ---- streaming ----------------------------------------------------------------------------------

StreamWriter::StreamWriter(ReplyMeta meta, const GenerationRequest& request)
    : meta_(std::move(meta)), q_(request), message_id_("msg_" + meta_.id.substr(meta_.id.find('_') + 1)) {}

json StreamWriter::chat_chunk(json delta, const json& finish, const json& logprobs) const {
  json choice = {{"index", 0}, {"delta", std::move(delta)}, {"logprobs", logprobs}, {"finish_reason", finish}};
  return {{"id", meta_.id},       {"object", "chat.completion.chunk"}, {"created", meta_.created},
          {"model", meta_.model}, {"choices", json::array({choice})}};
}

json StreamWriter::completions_chunk(const std::string& text, const json& finish, const json& logprobs) const {
  json choice = {{"text", text}, {"index", 0}, {"logprobs", logprobs}, {"finish_reason", finish}};
  return {{"id", meta_.id},       {"object", "text_completion"}, {"created", meta_.created},
          {"model", meta_.model}, {"choices", json::array({choice})}};
}

std::string StreamWriter::begin() {
  switch (q_.api) {
    case Api::Chat:
      return sse(chat_chunk({{"role", "assistant"}, {"content", ""}}, nullptr, nullptr));
    case Api::Responses: {
      GenerationResult empty;
      json resp = responses_reply(meta_, q_, empty, "in_progress");
      json item = resp["output"][0];
      item["content"] = json::array();
      resp["output"] = json::array();
      std::string out = sse({{"type", "response.created"}, {"sequence_number", sequence_++}, {"response", resp}},
                            "response.created");
      out += sse({{"type", "response.in_progress"}, {"sequence_number", sequence_++}, {"response", resp}},
                 "response.in_progress");
      out += sse({{"type", "response.output_item.added"}, {"sequence_number", sequence_++}, {"output_index", 0},
                  {"item", item}},
                 "response.output_item.added");
      out += sse({{"type", "response.content_part.added"}, {"sequence_number", sequence_++}, {"item_id", message_id_},
                  {"output_index", 0}, {"content_index", 0},
                  {"part", {{"type", "output_text"}, {"text", ""}, {"annotations", json::array()}}}},
                 "response.content_part.added");
      return out;
    }
    default:
      return "";
  }
}

std::string StreamWriter::token(const TokenOut& t) {
  const size_t offset = text_.size();
  text_ += t.text;
  const bool lp = q_.logprobs >= 0;
  switch (q_.api) {
    case Api::Chat:
      return sse(chat_chunk({{"content", t.text}}, nullptr, lp ? chat_logprobs({t}) : json()));
    case Api::Completions:
      return sse(completions_chunk(t.text, nullptr, lp ? completions_logprobs({t}, offset) : json()));
    case Api::LlamaCompletion: {
      json j = {{"index", 0}, {"content", t.text}, {"tokens", json::array({t.id})}, {"stop", false}};
      if (q_.logprobs > 0) j["completion_probabilities"] = llama_probs({t});
      return sse(j);
    }
    case Api::Responses:
      return sse({{"type", "response.output_text.delta"}, {"sequence_number", sequence_++}, {"item_id", message_id_},
                  {"output_index", 0}, {"content_index", 0}, {"delta", t.text}},
                 "response.output_text.delta");
  }
  return "";
}

std::string StreamWriter::end(const GenerationResult& r) {
  switch (q_.api) {
    case Api::Chat: {
      std::string out = sse(chat_chunk(json::object(), finish_reason(r.finish), nullptr));
      if (q_.include_usage) {
        json u = chat_chunk(json::object(), nullptr, nullptr);
        u["choices"] = json::array();
        u["usage"] = usage_json(r);
        u["timings"] = timings_json(r);
        out += sse(u);
      }
      return out + "data: [DONE]\n\n";
    }
    case Api::Completions: {
      std::string out = sse(completions_chunk("", finish_reason(r.finish), nullptr));
      if (q_.include_usage) {
        json u = completions_chunk("", nullptr, nullptr);
        u["choices"] = json::array();
        u["usage"] = usage_json(r);
        out += sse(u);
      }
      return out + "data: [DONE]\n\n";
    }
    case Api::LlamaCompletion: {
      json j = llama_completion_reply(meta_, q_, r);
      j["content"] = "";
      j.erase("completion_probabilities");
      return sse(j);
    }
    case Api::Responses: {
      json resp = responses_reply(meta_, q_, r);
      json part = resp["output"][0]["content"][0];
      std::string out = sse({{"type", "response.output_text.done"}, {"sequence_number", sequence_++},
                             {"item_id", message_id_}, {"output_index", 0}, {"content_index", 0}, {"text", r.text}},
                            "response.output_text.done");
      out += sse({{"type", "response.content_part.done"}, {"sequence_number", sequence_++}, {"item_id", message_id_},
                  {"output_index", 0}, {"content_index", 0}, {"part", part}},
                 "response.content_part.done");
      out += sse({{"type", "response.output_item.done"}, {"sequence_number", sequence_++}, {"output_index", 0},
                  {"item", resp["output"][0]}},
                 "response.output_item.done");
      const char* done = resp["status"] == "completed" ? "response.completed" : "response.incomplete";
      out += sse({{"type", done}, {"sequence_number", sequence_++}, {"response", resp}}, done);
      return out;
    }
  }
  return "";
}

}  // namespace bitnet::server
