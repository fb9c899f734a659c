// One request in the engine: its sampler, the UTF-8 stream decoder, stop strings held back until
// resolved, the limits (EOS, n_predict) and the Completion being built. Owned and used by the
// engine's loop thread only.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "bitnet/engine.h"
#include "bitnet/tokenizer.h"

namespace bitnet::engine {

// Text released for streaming while stop strings may still appear: keeps back the longest end of
// the text that could be the start of a stop string.
class StopStrings {
 public:
  explicit StopStrings(std::vector<std::string> stops);
  // Appends text. Returns true when a stop string is now complete: the text is cut where it
  // starts and matched() names it.
  bool append(const std::string& text);
  // Text that can be streamed now (nothing of a possible stop string), from where the last call
  // stopped.
  std::string release();
  // All that is not released yet (at the end of generation, when no stop string can follow).
  std::string release_all();
  const std::string& text() const { return text_; }
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string text_;
  size_t released_ = 0;
  std::string matched_;
};

// ln softmax(logits)[token], and the n most likely tokens with theirs (ties to the lower id).
float token_logprob(const float* logits, int32_t n_vocab, int32_t token, double* log_normaliser = nullptr);
std::vector<TokenLogprob> top_logprobs(const float* logits, int32_t n_vocab, int n, double log_normaliser);

class Session {
 public:
  // Throws bitnet::Error on invalid sampling parameters. Every prompt token enters the sampler's
  // penalty window.
  Session(uint64_t id, Request request, const Tokenizer& tok);

  uint64_t id() const { return done_.id; }
  const Request& request() const { return request_; }
  const std::vector<int32_t>& prompt() const { return request_.prompt; }

  // Samples the next token from the logits of the last decoded one and streams its text. Returns
  // the token to decode next, or -1 when the request has finished (reason set).
  int32_t next(const float* logits);
  // Ends the request: flushes held-back text into the tail and fills the reason.
  void finish(FinishReason reason, const std::string& error = {});
  bool finished() const { return finished_; }
  Completion& completion() { return done_; }

 private:
  Request request_;
  const Tokenizer& tok_;
  Sampler sampler_;
  StreamDecoder decoder_;
  StopStrings stops_;
  Completion done_;
  bool finished_ = false;
};

}  // namespace bitnet::engine
