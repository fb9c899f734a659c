// Token sampling with llama.cpp's semantics and default chain: penalties; top_k; top_p; min_p;
// temperature; dist (a draw from the softmax of what is left).
//
// Work per token is O(n_vocab) for copying the logits plus, when top-k is on, a partial selection
// of the k best; the candidate list is only ever sorted as far as a step needs (top-p extends the
// sorted prefix in doubling chunks until its cumulative probability is reached).
#include "bitnet/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "bitnet/error.h"

namespace bitnet {
namespace {

using Candidate = std::pair<float, int32_t>;  // (logit, token id)

// Descending logit, ties to the lower id: a strict total order, so every selection is reproducible.
bool ranks_before(const Candidate& a, const Candidate& b) {
  return a.first != b.first ? a.first > b.first : a.second < b.second;
}

// NaN and infinities would break the ordering and the softmax; map them onto the finite range.
float sanitize(float logit) {
  if (std::isnan(logit)) return std::numeric_limits<float>::lowest();
  return std::clamp(logit, std::numeric_limits<float>::lowest(), std::numeric_limits<float>::max());
}

// Makes candidates[0, want) the `want` best in rank order, given that [0, sorted) already are.
void extend_sorted_prefix(std::vector<Candidate>& candidates, size_t& sorted, size_t want) {
  want = std::min(want, candidates.size());
  if (want <= sorted) return;
  auto first = candidates.begin() + static_cast<std::ptrdiff_t>(sorted);
  auto middle = candidates.begin() + static_cast<std::ptrdiff_t>(want);
  std::nth_element(first, middle - 1, candidates.end(), ranks_before);
  std::sort(first, middle, ranks_before);
  sorted = want;
}

uint64_t random_seed() {
  std::random_device device;
  return device();
}

}  // namespace

Sampler::Sampler(const SamplingParams& params, int32_t n_vocab)
    : params_(params),
      n_vocab_(n_vocab),
      seed_(params.seed == 0xFFFFFFFF ? random_seed() : params.seed) {
  if (n_vocab <= 0) throw Error("sampler: n_vocab must be positive, got " + std::to_string(n_vocab));
  if (std::isnan(params.temp) || std::isnan(params.top_p) || std::isnan(params.min_p)) {
    throw Error("sampler: temp, top_p and min_p must be numbers (temp " +
                std::to_string(params.temp) + ", top_p " + std::to_string(params.top_p) +
                ", min_p " + std::to_string(params.min_p) + ")");
  }
  if (!(params.repeat_penalty > 0.0f) || !std::isfinite(params.repeat_penalty)) {
    throw Error("sampler: repeat_penalty must be a positive number, got " +
                std::to_string(params.repeat_penalty));
  }
  if (params.repeat_last_n < -1) {
    throw Error("sampler: repeat_last_n must be -1 (whole context), 0 (off) or positive, got " +
                std::to_string(params.repeat_last_n));
  }
  reset();
}

void Sampler::reset() {
  recent_.clear();
  // mt19937 takes a 32-bit seed; fold a 64-bit one so that its high half still matters.
  rng_.seed(static_cast<uint32_t>(seed_ ^ (seed_ >> 32)));
}

void Sampler::accept(int32_t token) {
  if (token < 0 || token >= n_vocab_) {
    throw Error("sampler: accepted token " + std::to_string(token) + " is outside the vocabulary [0, " +
                std::to_string(n_vocab_) + ")");
  }
  if (params_.repeat_last_n == 0) return;
  recent_.push_back(token);
  if (params_.repeat_last_n > 0 && recent_.size() > static_cast<size_t>(params_.repeat_last_n)) {
    recent_.pop_front();
  }
}

int32_t Sampler::sample(const float* logits) {
  const auto n_vocab = static_cast<size_t>(n_vocab_);
  candidates_.resize(n_vocab);
  for (size_t id = 0; id < n_vocab; ++id) {
    candidates_[id] = {sanitize(logits[id]), static_cast<int32_t>(id)};
  }

  // Repetition penalty: once per distinct token of the window, pushing its logit towards "less
  // likely" whatever its sign. candidates_ is still indexed by id here.
  if (params_.repeat_penalty != 1.0f && !recent_.empty()) {
    std::vector<int32_t> penalized(recent_.begin(), recent_.end());
    std::sort(penalized.begin(), penalized.end());
    penalized.erase(std::unique(penalized.begin(), penalized.end()), penalized.end());
    for (int32_t id : penalized) {
      float& logit = candidates_[static_cast<size_t>(id)].first;
      logit = sanitize(logit <= 0.0f ? logit * params_.repeat_penalty : logit / params_.repeat_penalty);
    }
  }

  // Greedy: argmax of the penalized logits, ties to the lowest id (the first one met).
  if (params_.temp <= 0.0f || params_.top_k == 1) {
    return std::min_element(candidates_.begin(), candidates_.end(), ranks_before)->second;
  }

  size_t sorted = 0;  // candidates_[0, sorted) hold the best candidates in rank order
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < candidates_.size()) {
    extend_sorted_prefix(candidates_, sorted, static_cast<size_t>(params_.top_k));
    candidates_.resize(sorted);
  }

  // Softmax at temperature 1 over what top-k left: top-p and min-p are defined on it.
  const float max_logit =
      sorted > 0 ? candidates_[0].first
                 : std::min_element(candidates_.begin(), candidates_.end(), ranks_before)->first;
  double total = 0.0;
  for (const auto& c : candidates_) total += std::exp(static_cast<double>(c.first) - max_logit);

  // min-p keeps the tokens with p >= min_p * p_max, i.e. logit >= max + log(min_p); the best token
  // always stays. Done before top-p although llama.cpp runs it after: both keep a prefix of the
  // ranked list, top-p's prefix is computed with `total` (the normaliser before min-p), and the
  // min-p test is a ratio to p_max, which top-p never removes; so the result is the same.
  if (params_.min_p > 0.0f) {
    const double threshold = static_cast<double>(max_logit) + std::log(static_cast<double>(params_.min_p));
    auto kept_end = std::remove_if(candidates_.begin(), candidates_.end(), [&](const Candidate& c) {
      return c.first != max_logit && static_cast<double>(c.first) < threshold;
    });
    candidates_.erase(kept_end, candidates_.end());
    sorted = std::min(sorted, candidates_.size());  // remove_if is stable: the prefix stays sorted
  }

  // top-p keeps the shortest ranked prefix whose probability reaches top_p (at least one token).
  if (params_.top_p < 1.0f) {
    const double target = static_cast<double>(params_.top_p) * total;
    double cumulative = 0.0;
    size_t kept = candidates_.size();
    for (size_t i = 0; i < candidates_.size(); ++i) {
      if (i == sorted) extend_sorted_prefix(candidates_, sorted, std::max<size_t>(64, 2 * sorted));
      cumulative += std::exp(static_cast<double>(candidates_[i].first) - max_logit);
      if (cumulative >= target) {
        kept = i + 1;
        break;
      }
    }
    candidates_.resize(kept);
  }

  // Temperature, then the draw. Each candidate's logit is replaced by its weight (softmax
  // numerator). The uniform variate is built from the raw mt19937 output so that a seed gives the
  // same tokens with every standard library.
  const double inverse_temp = 1.0 / static_cast<double>(params_.temp);
  double weight_total = 0.0;
  for (auto& c : candidates_) {
    c.first = static_cast<float>(std::exp((static_cast<double>(c.first) - max_logit) * inverse_temp));
    weight_total += c.first;
  }
  const double u = static_cast<double>(rng_()) * (1.0 / 4294967296.0) * weight_total;
  double cumulative = 0.0;
  for (const auto& c : candidates_) {
    cumulative += c.first;
    if (u < cumulative) return c.second;
  }
  // Rounding left u at the very top: the last candidate with any weight is the one it meant.
  for (auto c = candidates_.rbegin(); c != candidates_.rend(); ++c) {
    if (c->first > 0.0f) return c->second;
  }
  return candidates_[0].second;
}

}  // namespace bitnet
