#include "engine/session.h"

#include <algorithm>
#include <cmath>

namespace bitnet::engine {

StopStrings::StopStrings(std::vector<std::string> stops) {
  for (auto& s : stops)
    if (!s.empty()) stops_.push_back(std::move(s));
}

bool StopStrings::append(const std::string& text) {
  const size_t before = text_.size();
  text_ += text;
  size_t first = std::string::npos;
  for (const auto& s : stops_) {
    // Only matches that end in the new text are new: earlier ones would have stopped already.
    const size_t from = before >= s.size() ? before - s.size() + 1 : 0;
    const size_t at = text_.find(s, from);
    if (at < first) {
      first = at;
      matched_ = s;
    }
  }
  if (first == std::string::npos) return false;
  text_.resize(first);
  return true;
}

std::string StopStrings::release() {
  // The longest end of the text that is a proper beginning of some stop string stays back.
  size_t hold = 0;
  for (const auto& s : stops_) {
    for (size_t n = std::min(s.size() - 1, text_.size()); n > hold; --n) {
      if (text_.compare(text_.size() - n, n, s, 0, n) == 0) {
        hold = n;
        break;
      }
    }
  }
  const size_t end = std::max(released_, text_.size() - hold);
  std::string out = text_.substr(released_, end - released_);
  released_ = end;
  return out;
}

std::string StopStrings::release_all() {
  std::string out = text_.substr(std::min(released_, text_.size()));
  released_ = text_.size();
  return out;
}

float token_logprob(const float* logits, int32_t n_vocab, int32_t token, double* log_normaliser) {
  float max = logits[0];
  for (int32_t i = 1; i < n_vocab; ++i) max = std::max(max, logits[i]);
  double sum = 0.0;
  for (int32_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
  const double norm = max + std::log(sum);
  if (log_normaliser) *log_normaliser = norm;
  return static_cast<float>(logits[token] - norm);
}

std::vector<TokenLogprob> top_logprobs(const float* logits, int32_t n_vocab, int n, double log_normaliser) {
  n = std::clamp(n, 0, n_vocab);
  std::vector<int32_t> ids(static_cast<size_t>(n_vocab));
  for (int32_t i = 0; i < n_vocab; ++i) ids[static_cast<size_t>(i)] = i;
  auto better = [logits](int32_t a, int32_t b) { return logits[a] != logits[b] ? logits[a] > logits[b] : a < b; };
  std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), better);
  std::vector<TokenLogprob> out;
  for (int i = 0; i < n; ++i) {
    const int32_t id = ids[static_cast<size_t>(i)];
    out.push_back({id, static_cast<float>(logits[id] - log_normaliser)});
  }
  return out;
}

Session::Session(uint64_t id, Request request, const Tokenizer& tok)
    : request_(std::move(request)),
      tok_(tok),
      sampler_(request_.sampling, tok.n_vocab()),
      decoder_(tok),
      stops_(request_.stop) {
  done_.id = id;
  done_.n_prompt = static_cast<int>(request_.prompt.size());
  for (int32_t t : request_.prompt) sampler_.accept(t);
}

int32_t Session::next(const float* logits) {
  const int32_t id = sampler_.sample(logits);
  sampler_.accept(id);
  if (!request_.ignore_eos && tok_.is_eog(id)) {
    finish(FinishReason::Eos);
    return -1;
  }
  done_.tokens.push_back(id);
  done_.n_predicted = static_cast<int>(done_.tokens.size());
  TokenEvent ev;
  ev.token = id;
  if (request_.logprobs || request_.n_probs > 0) {
    double norm = 0.0;
    ev.logprob = token_logprob(logits, tok_.n_vocab(), id, &norm);
    if (request_.n_probs > 0) ev.top = top_logprobs(logits, tok_.n_vocab(), request_.n_probs, norm);
  }
  const bool stopped = stops_.append(decoder_.push(id));
  ev.text = stops_.release();
  if (request_.on_token) request_.on_token(ev);
  if (stopped) {
    done_.stop_word = stops_.matched();
    finish(FinishReason::Stop);
    return -1;
  }
  if (request_.n_predict >= 0 && done_.n_predicted >= request_.n_predict) {
    finish(FinishReason::Length);
    return -1;
  }
  return id;
}

void Session::finish(FinishReason reason, const std::string& error) {
  if (finished_) return;
  finished_ = true;
  done_.reason = reason;
  done_.error = error;
  // An unfinished UTF-8 sequence at the end can still complete a stop string.
  if (reason != FinishReason::Stop && stops_.append(decoder_.flush()) &&
      (reason == FinishReason::Eos || reason == FinishReason::Length)) {
    done_.reason = FinishReason::Stop;
    done_.stop_word = stops_.matched();
  }
  done_.tail = stops_.release_all();
  done_.text = stops_.text();
}

}  // namespace bitnet::engine
