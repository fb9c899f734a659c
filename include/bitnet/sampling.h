// Token sampling with llama.cpp's defaults and order: penalties (repetition, frequency, presence),
// top-k, top-p, min-p, temperature, then a draw from the distribution. temp <= 0 is greedy (argmax, ties to the lower
// id).
#pragma once
#include <cstdint>
#include <deque>
#include <random>
#include <vector>

namespace bitnet {

struct SamplingParams {
  float temp = 0.8f;
  int32_t top_k = 40;          // <= 0: off
  float top_p = 0.95f;         // >= 1: off
  float min_p = 0.05f;         // <= 0: off
  float repeat_penalty = 1.0f; // 1: off
  float frequency_penalty = 0.0f;  // subtracted from a logit once per occurrence in the window; 0: off
  float presence_penalty = 0.0f;   // subtracted once from the logit of a token in the window; 0: off
  int32_t repeat_last_n = 64;  // window of the three penalties; 0: off, -1: whole context
  uint64_t seed = 0xFFFFFFFF;  // 0xFFFFFFFF (llama.cpp's -1): random
};

class Sampler {
 public:
  Sampler(const SamplingParams& params, int32_t n_vocab);
  // Picks the next token from logits[n_vocab] (not modified).
  int32_t sample(const float* logits);
  // Records a token (prompt or generated) for the penalty window.
  void accept(int32_t token);
  void reset();
  uint64_t seed() const { return seed_; }

 private:
  SamplingParams params_;
  int32_t n_vocab_;
  uint64_t seed_;
  std::mt19937 rng_;
  std::deque<int32_t> recent_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

}  // namespace bitnet
