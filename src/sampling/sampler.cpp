// Token sampling with llama.cpp's semantics and default chain: penalties; top_k; top_p; min_p;
// temperature; dist (a draw from the softmax of what is left).
//
// Built for 128k vocabularies: the logits are read in place (never copied or sorted whole); a
// scan compares each raw logit with the running cut of the step (best so far, k-th best, min-p
// threshold) and only the rare tokens that pass it are looked at further, penalized tokens being
// handled apart with their penalized logit. top-p without top-k finds its cut with one bucketed
// pass and sorts only the tokens above it.
#include "bitnet/sampling.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>

#include "bitnet/error.h"

namespace bitnet {
namespace {

using Candidate = std::pair<float, int32_t>;  // (logit, token id)

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Descending logit, ties to the lower id: a strict total order, so every selection is reproducible.
bool ranks_before(const Candidate& a, const Candidate& b) {
  return a.first != b.first ? a.first > b.first : a.second < b.second;
}

// Infinities would break the softmax: map them onto the finite range. (NaN logits never pass a
// scan's comparison, so they are never candidates.)
float sanitize(float logit) {
  return std::clamp(logit, std::numeric_limits<float>::lowest(), std::numeric_limits<float>::max());
}

// Keeps the shortest ranked prefix of `candidates` whose mass exp(logit - max_logit) reaches
// `target` (at least one token). `sorted` says whether they are already in rank order.
void keep_top_p(std::vector<Candidate>& candidates, bool sorted, float max_logit, double target) {
  // Single-precision exp: each term needs float accuracy only; the sums run in double.
  auto mass = [max_logit](const Candidate& c) { return static_cast<double>(std::exp(c.first - max_logit)); };
  auto ranked_end = candidates.end();
  if (!sorted && candidates.size() > 4096) {
    // Bucket by distance below the best logit (1/32 nat wide, the last one open-ended), find the
    // bucket where the cumulative mass reaches the target, and rank only the tokens up to it.
    constexpr size_t kBuckets = 1024;
    constexpr double kBucketsPerNat = 32.0;
    auto bucket_of = [max_logit](const Candidate& c) {
      const double distance = (static_cast<double>(max_logit) - c.first) * kBucketsPerNat;
      return distance < kBuckets - 1 ? static_cast<size_t>(distance) : kBuckets - 1;
    };
    std::array<double, kBuckets> bucket_mass{};
    for (const auto& c : candidates) bucket_mass[bucket_of(c)] += mass(c);
    size_t last_bucket = kBuckets - 1;
    double cumulative = 0.0;
    for (size_t b = 0; b < kBuckets; ++b) {
      cumulative += bucket_mass[b];
      if (cumulative >= target) {
        last_bucket = b;
        break;
      }
    }
    ranked_end = std::partition(candidates.begin(), candidates.end(),
                                [&](const Candidate& c) { return bucket_of(c) <= last_bucket; });
    sorted = false;
  }
  if (!sorted) std::sort(candidates.begin(), ranked_end, ranks_before);
  double cumulative = 0.0;
  for (auto it = candidates.begin(); it != ranked_end; ++it) {
    cumulative += mass(*it);
    if (cumulative >= target) {
      candidates.erase(it + 1, candidates.end());
      return;
    }
  }
  // Rounding kept the sum just short of the target: every token is needed.
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
  if (!std::isfinite(params.frequency_penalty) || !std::isfinite(params.presence_penalty)) {
    throw Error("sampler: frequency_penalty and presence_penalty must be finite numbers (" +
                std::to_string(params.frequency_penalty) + ", " + std::to_string(params.presence_penalty) + ")");
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
  // Penalties, llama.cpp's: once per distinct token of the window, the repetition penalty pushes
  // its logit towards "less likely" whatever its sign, then count x frequency + presence is
  // subtracted.
  std::vector<int32_t> penalized, counts;
  if (params_.repeat_penalty != 1.0f || params_.frequency_penalty != 0.0f || params_.presence_penalty != 0.0f) {
    std::vector<int32_t> window(recent_.begin(), recent_.end());
    std::sort(window.begin(), window.end());
    for (size_t i = 0; i < window.size(); ++i) {
      if (i == 0 || window[i] != window[i - 1]) {
        penalized.push_back(window[i]);
        counts.push_back(0);
      }
      ++counts.back();
    }
  }
  auto penalized_logit = [&](size_t k) {
    const float logit = logits[penalized[k]];
    const float repeated = logit <= 0.0f ? logit * params_.repeat_penalty : logit / params_.repeat_penalty;
    return repeated - static_cast<float>(counts[k]) * params_.frequency_penalty - params_.presence_penalty;
  };
  // Calls visit(candidate) for each token whose logit is >= cut() (re-read after every visit),
  // in id order, then for the penalized tokens with their penalized logit.
  auto scan = [&](auto cut, auto visit) {
    for (int32_t id = 0; id < n_vocab_; ++id) {
      const float logit = logits[id];
      if (logit >= cut() && !std::binary_search(penalized.begin(), penalized.end(), id)) {
        visit(Candidate{sanitize(logit), id});
      }
    }
    for (size_t k = 0; k < penalized.size(); ++k) {
      const float logit = penalized_logit(k);
      if (logit >= cut()) visit(Candidate{sanitize(logit), penalized[k]});
    }
  };

  // The best token: the greedy answer and, for the filters, the softmax's reference point.
  Candidate best{kNegInf, n_vocab_};
  scan([&] { return best.first; },
       [&](const Candidate& c) {
         if (ranks_before(c, best)) best = c;
       });
  if (best.second == n_vocab_) throw Error("sampler: every logit is NaN");
  if (params_.temp <= 0.0f || params_.top_k == 1) return best.second;
  const float max_logit = best.first;

  bool sorted = false;
  candidates_.clear();
  if (params_.top_k > 0 && params_.top_k < n_vocab_) {
    // Keep the k best in a heap whose front is the worst of them.
    const auto k = static_cast<size_t>(params_.top_k);
    scan([&] { return candidates_.size() < k ? kNegInf : candidates_.front().first; },
         [&](const Candidate& c) {
           if (candidates_.size() < k) {
             candidates_.push_back(c);
             std::push_heap(candidates_.begin(), candidates_.end(), ranks_before);
           } else if (ranks_before(c, candidates_.front())) {
             std::pop_heap(candidates_.begin(), candidates_.end(), ranks_before);
             candidates_.back() = c;
             std::push_heap(candidates_.begin(), candidates_.end(), ranks_before);
           }
         });
    std::sort_heap(candidates_.begin(), candidates_.end(), ranks_before);
    sorted = true;
  } else {
    // min-p keeps the tokens with p >= min_p * p_max, i.e. logit >= max + log(min_p) (the best
    // always stays). Applied here, before top-p, although llama.cpp runs it after: both keep a
    // prefix of the ranked list, top-p's is computed with the normaliser of the whole list, and
    // min-p's test is a ratio to p_max, which top-p never removes; so the kept set is the same.
    const float cut = params_.min_p > 0.0f
                          ? std::min(max_logit, static_cast<float>(max_logit + std::log(params_.min_p)))
                          : std::numeric_limits<float>::lowest();
    scan([cut] { return cut; }, [&](const Candidate& c) { candidates_.push_back(c); });
  }

  // top-p's normaliser: the probability mass of every token top-k left, before min-p's removals.
  double total = 0.0;
  if (params_.top_p < 1.0f) {
    auto add = [&](const Candidate& c) { total += static_cast<double>(std::exp(c.first - max_logit)); };
    if (sorted || params_.min_p <= 0.0f) {
      std::for_each(candidates_.begin(), candidates_.end(), add);
    } else {
      scan([] { return std::numeric_limits<float>::lowest(); }, add);
    }
  }

  // After top-k, min-p applies to the k tokens: it keeps a ranked prefix (the best at least).
  if (sorted && params_.min_p > 0.0f) {
    const double cut = static_cast<double>(max_logit) + std::log(static_cast<double>(params_.min_p));
    auto first_dropped = std::find_if(candidates_.begin() + 1, candidates_.end(),
                                      [cut](const Candidate& c) { return c.first < cut; });
    candidates_.erase(first_dropped, candidates_.end());
  }

  // top-p: the shortest ranked prefix holding top_p of the probability at temperature 1.
  if (params_.top_p < 1.0f) {
    keep_top_p(candidates_, sorted, max_logit, static_cast<double>(params_.top_p) * total);
  }

  // Temperature, then the draw. Each candidate's logit is replaced by its weight (softmax
  // numerator). The uniform variate is built from the raw mt19937 output so that a seed gives the
  // same tokens with every standard library.
  double weight_total = 0.0;
  for (auto& c : candidates_) {
    c.first = std::exp((c.first - max_logit) / params_.temp);  // divided: 1/temp may overflow
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
  return best.second;
}

}  // namespace bitnet
