// Sampling: greedy and seeded draws, the repetition penalty, and the sets top-k / top-p / min-p
// keep, checked by drawing many times from small hand-made distributions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <vector>

#include "bitnet/error.h"
#include "bitnet/sampling.h"

namespace bitnet {
namespace {

SamplingParams all_filters_off(float temp = 1.0f) {
  SamplingParams p;
  p.temp = temp;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  p.seed = 1234;
  return p;
}

std::vector<float> logits_of(const std::vector<double>& probabilities) {
  std::vector<float> logits;
  for (double p : probabilities) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

std::vector<float> random_logits(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(n);
  for (auto& l : logits) l = normal(rng);
  return logits;
}

int32_t argmax(const std::vector<float>& logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// Draws n tokens and checks that exactly the ids of `expected` (id -> probability before
// renormalisation) appear, each with a frequency within 5 standard deviations of its
// renormalised probability.
void expect_draws_follow(Sampler& sampler, const std::vector<float>& logits,
                         const std::map<int32_t, double>& expected, int n = 20000) {
  std::map<int32_t, int> counts;
  for (int i = 0; i < n; ++i) ++counts[sampler.sample(logits.data())];
  double mass = 0.0;
  for (const auto& [id, p] : expected) mass += p;
  for (const auto& [id, count] : counts) {
    EXPECT_TRUE(expected.count(id)) << "token " << id << " was drawn " << count << " times";
  }
  for (const auto& [id, p] : expected) {
    const double q = p / mass;
    const double sigma = std::sqrt(q * (1.0 - q) / n);
    EXPECT_NEAR(static_cast<double>(counts[id]) / n, q, 5.0 * sigma + 1e-9) << "token " << id;
  }
}

TEST(Sampler, GreedyIsArgmax) {
  Sampler sampler(all_filters_off(0.0f), 5000);
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    const auto logits = random_logits(5000, seed);
    EXPECT_EQ(sampler.sample(logits.data()), argmax(logits));
  }
}

TEST(Sampler, GreedyTiesGoToTheLowestId) {
  std::vector<float> logits = {0.0f, 2.0f, -1.0f, 2.0f, 2.0f};
  Sampler sampler(all_filters_off(-1.0f), 5);
  EXPECT_EQ(sampler.sample(logits.data()), 1);
}

TEST(Sampler, TopKOneIsGreedyAtAnyTemperature) {
  for (float temp : {0.5f, 1.0f, 5.0f, 100.0f}) {
    auto params = all_filters_off(temp);
    params.top_k = 1;
    Sampler sampler(params, 3000);
    for (uint32_t seed = 1; seed <= 10; ++seed) {
      const auto logits = random_logits(3000, seed);
      EXPECT_EQ(sampler.sample(logits.data()), argmax(logits)) << "temp " << temp;
    }
  }
}

std::vector<int32_t> draw_sequence(const SamplingParams& params, const std::vector<float>& logits,
                                   int n) {
  Sampler sampler(params, static_cast<int32_t>(logits.size()));
  std::vector<int32_t> tokens;
  for (int i = 0; i < n; ++i) tokens.push_back(sampler.sample(logits.data()));
  return tokens;
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedsDiffer) {
  const auto logits = random_logits(1000, 7);
  SamplingParams params;  // llama.cpp defaults: top_k 40, top_p 0.95, min_p 0.05, temp 0.8
  params.temp = 1.5f;     // flatter, so that many tokens stay in play
  params.seed = 42;
  const auto first = draw_sequence(params, logits, 200);
  EXPECT_EQ(draw_sequence(params, logits, 200), first);
  params.seed = 43;
  EXPECT_NE(draw_sequence(params, logits, 200), first);
}

TEST(Sampler, ResetReplaysTheSameSequence) {
  const auto logits = random_logits(1000, 8);
  auto params = all_filters_off(1.0f);
  Sampler sampler(params, 1000);
  std::vector<int32_t> first, second;
  for (int i = 0; i < 50; ++i) first.push_back(sampler.sample(logits.data()));
  sampler.reset();
  for (int i = 0; i < 50; ++i) second.push_back(sampler.sample(logits.data()));
  EXPECT_EQ(first, second);
}

TEST(Sampler, RandomSeedIsRecordedAndReproduces) {
  const auto logits = random_logits(1000, 9);
  auto params = all_filters_off(1.0f);
  params.seed = 0xFFFFFFFF;
  Sampler sampler(params, 1000);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 100; ++i) tokens.push_back(sampler.sample(logits.data()));
  params.seed = sampler.seed();
  EXPECT_EQ(draw_sequence(params, logits, 100), tokens);
}

TEST(Sampler, RepeatPenaltyFlipsANearTie) {
  auto params = all_filters_off(0.0f);
  params.repeat_penalty = 1.1f;
  params.repeat_last_n = 2;
  // Positive logits are divided: 1.05 / 1.1 < 1.0.
  const std::vector<float> positive = {1.0f, 1.05f, -3.0f};
  Sampler sampler(params, 3);
  EXPECT_EQ(sampler.sample(positive.data()), 1);
  sampler.accept(1);
  EXPECT_EQ(sampler.sample(positive.data()), 0);
  // Negative logits are multiplied: -1.0 * 1.1 < -1.05.
  const std::vector<float> negative = {-1.0f, -1.05f, -3.0f};
  sampler.reset();
  EXPECT_EQ(sampler.sample(negative.data()), 0);
  sampler.accept(0);
  EXPECT_EQ(sampler.sample(negative.data()), 1);
  // Only the last repeat_last_n accepted tokens count.
  sampler.accept(2);
  sampler.accept(2);
  EXPECT_EQ(sampler.sample(negative.data()), 0);
}

TEST(Sampler, RepeatPenaltyAppliesOncePerDistinctToken) {
  auto params = all_filters_off(0.0f);
  params.repeat_penalty = 1.1f;
  params.repeat_last_n = -1;
  // Once: 1.2 / 1.1 = 1.09 still beats 1.0; applied twice or more (1.2 / 1.21 = 0.99) it would lose.
  const std::vector<float> logits = {1.0f, 1.2f};
  Sampler sampler(params, 2);
  for (int i = 0; i < 10; ++i) sampler.accept(1);
  EXPECT_EQ(sampler.sample(logits.data()), 1);
}

TEST(Sampler, FrequencyPenaltyCountsOccurrencesPresencePenaltyDoesNot) {
  // Token 1 leads by 0.5; token 0 never appears in the window.
  const std::vector<float> logits = {1.0f, 1.5f, -3.0f};
  auto params = all_filters_off(0.0f);
  params.repeat_last_n = -1;
  params.frequency_penalty = 0.2f;
  Sampler frequency(params, 3);
  frequency.accept(1);
  frequency.accept(1);
  EXPECT_EQ(frequency.sample(logits.data()), 1);  // 1.5 - 2 x 0.2 = 1.1 still leads
  frequency.accept(1);
  EXPECT_EQ(frequency.sample(logits.data()), 0);  // 1.5 - 3 x 0.2 = 0.9
  params.frequency_penalty = 0.0f;
  params.presence_penalty = 0.4f;
  Sampler presence(params, 3);
  for (int i = 0; i < 10; ++i) presence.accept(1);
  EXPECT_EQ(presence.sample(logits.data()), 1);  // 1.5 - 0.4 = 1.1, however often it appeared
  params.presence_penalty = 0.6f;
  Sampler stronger(params, 3);
  stronger.accept(1);
  EXPECT_EQ(stronger.sample(logits.data()), 0);  // 1.5 - 0.6 = 0.9
  // Negative penalties favour repeats; the window bounds all three penalties.
  params.presence_penalty = -1.0f;
  params.repeat_last_n = 1;
  Sampler favour(params, 3);
  favour.accept(2);
  EXPECT_EQ(favour.sample(std::vector<float>{1.0f, 1.5f, 1.0f}.data()), 2);  // 1.0 + 1.0 = 2.0
  favour.accept(0);
  EXPECT_EQ(favour.sample(std::vector<float>{1.0f, 1.5f, 1.0f}.data()), 0);  // 2 left the window
}

TEST(Sampler, PenaltiesCombineInLlamaCppOrder) {
  // logit 2.0, seen twice: 2.0 / 1.25 = 1.6, then - 2 x 0.1 - 0.3 = 1.1, just below 1.15.
  const std::vector<float> logits = {1.15f, 2.0f};
  auto params = all_filters_off(0.0f);
  params.repeat_last_n = -1;
  params.repeat_penalty = 1.25f;
  params.frequency_penalty = 0.1f;
  params.presence_penalty = 0.3f;
  Sampler sampler(params, 2);
  sampler.accept(1);
  sampler.accept(1);
  EXPECT_EQ(sampler.sample(logits.data()), 0);
  params.presence_penalty = 0.2f;  // 1.2 > 1.15
  Sampler weaker(params, 2);
  weaker.accept(1);
  weaker.accept(1);
  EXPECT_EQ(weaker.sample(logits.data()), 1);
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingP) {
  const std::vector<double> probabilities = {0.05, 0.5, 0.15, 0.3};
  auto params = all_filters_off(1.0f);
  params.top_p = 0.75f;  // 0.5 + 0.3 = 0.8 is the first cumulative sum >= 0.75
  Sampler sampler(params, 4);
  expect_draws_follow(sampler, logits_of(probabilities), {{1, 0.5}, {3, 0.3}});
  params.top_p = 0.4f;  // the best token alone reaches it
  Sampler single(params, 4);
  expect_draws_follow(single, logits_of(probabilities), {{1, 0.5}}, 2000);
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheBest) {
  const std::vector<double> probabilities = {0.06, 0.4, 0.04, 0.3, 0.2};
  auto params = all_filters_off(1.0f);
  params.min_p = 0.2f;  // threshold 0.08 keeps 0.4, 0.3, 0.2
  Sampler sampler(params, 5);
  expect_draws_follow(sampler, logits_of(probabilities), {{1, 0.4}, {3, 0.3}, {4, 0.2}});
}

TEST(Sampler, TopPAndMinPKeepTheIntersection) {
  const std::vector<double> probabilities = {0.06, 0.4, 0.04, 0.3, 0.2};
  auto params = all_filters_off(1.0f);
  params.min_p = 0.12f;  // threshold 0.048 keeps four tokens
  params.top_p = 0.65f;  // 0.4 + 0.3 reaches it: two tokens
  Sampler sampler(params, 5);
  expect_draws_follow(sampler, logits_of(probabilities), {{1, 0.4}, {3, 0.3}});
  params.top_p = 0.95f;  // 0.4 + 0.3 + 0.2 + 0.06 reaches it; min-p then drops nothing more
  Sampler wide(params, 5);
  expect_draws_follow(wide, logits_of(probabilities), {{1, 0.4}, {3, 0.3}, {4, 0.2}, {0, 0.06}});
}

TEST(Sampler, TopKKeepsTheKBest) {
  const std::vector<double> probabilities = {0.1, 0.25, 0.05, 0.35, 0.25};
  auto params = all_filters_off(1.0f);
  params.top_k = 3;  // 0.35 and the two tied 0.25
  Sampler sampler(params, 5);
  expect_draws_follow(sampler, logits_of(probabilities), {{3, 0.35}, {1, 0.25}, {4, 0.25}});
}

TEST(Sampler, TemperatureSharpensAfterTheFilters) {
  const std::vector<double> probabilities = {0.5, 0.3, 0.15, 0.05};
  auto params = all_filters_off(0.5f);  // p^2: 0.25, 0.09, 0.0225
  params.top_p = 0.9f;                  // decided at temperature 1: 0.5 + 0.3 + 0.15 = 0.95
  Sampler sampler(params, 4);
  expect_draws_follow(sampler, logits_of(probabilities), {{0, 0.25}, {1, 0.09}, {2, 0.0225}});
}

TEST(Sampler, ExtremeTemperaturesStayWellDefined) {
  const std::vector<float> logits = {0.0f, 3.0f, 1.0f};
  auto params = all_filters_off(1e-30f);  // as good as greedy
  Sampler cold(params, 3);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(cold.sample(logits.data()), 1);
  params.temp = std::numeric_limits<float>::infinity();  // uniform
  Sampler hot(params, 3);
  expect_draws_follow(hot, logits, {{0, 1.0}, {1, 1.0}, {2, 1.0}}, 6000);
}

TEST(Sampler, TopPWithoutTopKOnALlamaSizedVocabulary) {
  // Enough tokens for the bucketed cut; the expected kept set is computed by a full sort here.
  std::vector<float> logits = random_logits(128256, 12);
  std::vector<std::pair<float, int32_t>> ranked;
  for (size_t i = 0; i < logits.size(); ++i) ranked.push_back({logits[i], static_cast<int32_t>(i)});
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  double total = 0.0;
  for (const auto& r : ranked) total += std::exp(static_cast<double>(r.first - ranked[0].first));
  double cumulative = 0.0;
  size_t kept = 0;
  while (cumulative < 0.5 * total) {
    cumulative += std::exp(static_cast<double>(ranked[kept].first - ranked[0].first));
    ++kept;
  }
  const float last_kept = ranked[kept - 1].first;
  auto params = all_filters_off(1.0f);
  params.top_p = 0.5f;
  Sampler sampler(params, static_cast<int32_t>(logits.size()));
  bool drew_from_lower_half = false;
  for (int i = 0; i < 300; ++i) {
    const float drawn = logits[static_cast<size_t>(sampler.sample(logits.data()))];
    ASSERT_GE(drawn, last_kept) << "drew a token outside the top-p set of " << kept;
    drew_from_lower_half |= drawn < ranked[kept / 2].first;
  }
  EXPECT_TRUE(drew_from_lower_half) << "the lower half of the kept set was never drawn";
}

TEST(Sampler, DefaultsOnALlamaSizedVocabularyStayInTheTopK) {
  const auto logits = random_logits(128256, 11);
  std::vector<float> sorted = logits;
  std::nth_element(sorted.begin(), sorted.begin() + 39, sorted.end(), std::greater<float>());
  const float fortieth = sorted[39];
  SamplingParams params;
  params.seed = 5;
  Sampler sampler(params, 128256);
  for (int i = 0; i < 200; ++i) {
    const int32_t token = sampler.sample(logits.data());
    ASSERT_GE(logits[static_cast<size_t>(token)], fortieth);
  }
}

TEST(Sampler, NonFiniteLogitsDoNotBreakSampling) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> logits = {std::nanf(""), -inf, 1.0f, inf, 0.0f};
  Sampler greedy(all_filters_off(0.0f), 5);
  EXPECT_EQ(greedy.sample(logits.data()), 3);
  SamplingParams defaults;
  defaults.seed = 3;
  Sampler sampler(defaults, 5);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sampler.sample(logits.data()), 3);
}

TEST(Sampler, RejectsBadParametersAndTokens) {
  EXPECT_THROW(Sampler(SamplingParams{}, 0), Error);
  SamplingParams bad_penalty;
  bad_penalty.repeat_penalty = 0.0f;
  EXPECT_THROW(Sampler(bad_penalty, 10), Error);
  SamplingParams bad_frequency;
  bad_frequency.frequency_penalty = std::numeric_limits<float>::infinity();
  EXPECT_THROW(Sampler(bad_frequency, 10), Error);
  SamplingParams bad_presence;
  bad_presence.presence_penalty = std::nanf("");
  EXPECT_THROW(Sampler(bad_presence, 10), Error);
  SamplingParams bad_window;
  bad_window.repeat_last_n = -2;
  EXPECT_THROW(Sampler(bad_window, 10), Error);
  SamplingParams bad_p;
  bad_p.top_p = std::nanf("");
  EXPECT_THROW(Sampler(bad_p, 10), Error);
  Sampler sampler(SamplingParams{}, 10);
  EXPECT_THROW(sampler.accept(10), Error);
  EXPECT_THROW(sampler.accept(-1), Error);
}

}  // namespace
}  // namespace bitnet
