// The engine: many requests (conversations, completions) on one Model at once.
//
// An Engine owns a Context with one KV sequence per slot and runs continuous batching: each step
// decodes one batch holding the next token of every generating request plus prompt chunks of
// newly admitted ones (a long prompt is split over steps, so the others keep generating), then
// samples, streams the new text and retires finished requests. Requests wait in a bounded queue
// until a slot is free. A new request reuses the longest prefix of its prompt that a free slot's
// KV cache still holds (llama-server's cache_prompt); results are bit-identical to a cold run.
//
// KV memory: the slots share one pool of pages holding the total context (EngineParams), and a
// slot holds only the pages of the tokens it has, up to its own limit (n_ctx_slot). The memory of
// pages that return to the pool goes back to the system. Pages run out before slots do when the
// slots' limits add up to more than the pool (n_ctx_slot above context.n_ctx / slots, or limits
// that are not whole pages):
//  - a queued request is admitted only when its prompt's pages are free (on top of the pages the
//    prompts already admitted will still take); until then it waits in the queue, first come
//    first served, like a request waiting for a slot;
//  - idle slots keep their last request's tokens for prompt caching; those pages are given up,
//    least recently used first, when a request needs them;
//  - a generating request whose next token needs a page when none is left ends with
//    FinishReason::Length and Completion::context_full, exactly as when its slot's context is
//    full (llama-server instead ends every request of the batch with an error); its text so far
//    is complete and valid. The oldest requests get pages first.
//
// Threads: submit(), cancel() and stats() may be called from any thread at any time. The loop
// runs either on the engine's own thread (start() / stop()) or on the caller's through step()
// (tests, single-threaded front ends), never both. Callbacks run on the thread that runs the loop,
// without any engine lock held: they may call submit(), cancel() and stats(), must return quickly
// (every sequence waits for them) and must not throw. The Model must outlive the Engine.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bitnet/error.h"
#include "bitnet/model.h"
#include "bitnet/sampling.h"

namespace bitnet {

struct EngineParams {
  ContextParams context;  // context.n_seq is the number of slots (parallel sequences); context.n_ctx
                          // the positions of all slots together, as llama-server's -c: the size
                          // of the KV pool (0: n_ctx_slot per slot, the model's training context
                          // when that is 0 too)
  int n_ctx_slot = 0;     // positions one slot may hold (0: context.n_ctx / slots); at most
                          // context.n_ctx. Larger than context.n_ctx / slots, slots may hold
                          // longer conversations while the pool has room (see above)
                          // context.n_batch is the micro-batch: a cancel stops a decode between
                          // micro-batches
  int max_queued = 256;   // requests waiting for a slot; submit() refuses more (QueueFull)
  int n_step_tokens = 0;  // tokens decoded per step, generation first, then prompt chunks
                          // (0: context.n_batch)
};

// A token and its log-probability (natural log of the softmax of the model's logits, before any
// sampling filter, as llama-server's default reports them).
struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0.0f;
};

// One generated token, as streamed to Request::on_token.
struct TokenEvent {
  int32_t token = -1;
  // Text released with this token: valid UTF-8 (bytes of a character split over tokens wait for
  // the rest) with no part of a stop string (text that could begin one is held back until it is
  // resolved, then released with a later token or in Completion::tail). May be empty.
  std::string text;
  float logprob = 0.0f;              // of `token`; only when Request::logprobs or n_probs > 0
  std::vector<TokenLogprob> top;     // the n_probs most likely tokens, most likely first
};

enum class FinishReason {
  Stop,       // a stop string appeared (trimmed from the text)
  Length,     // n_predict tokens, or the slot's context or the KV pool is full (context_full)
  Eos,        // an end-of-generation token (not part of the text) and not ignore_eos
  Cancelled,  // cancel(), or the engine stopped
  Error,      // Completion::error says why
};
const char* finish_reason_name(FinishReason r);  // "stop", "length", "eos", "cancelled", "error"

struct Completion {
  uint64_t id = 0;
  FinishReason reason = FinishReason::Error;
  std::string error;                // reason == Error
  std::string stop_word;            // reason == Stop: the stop string found
  bool context_full = false;        // reason == Length because the slot's context was full or the
                                    // KV pool had no page left for the next token
  std::string text;                 // all generated text (stop string and what follows trimmed)
  std::string tail;                 // the end of `text` no TokenEvent carried (text held back for
                                    // a possible stop string, or an unfinished UTF-8 sequence):
                                    // text == the events' texts concatenated + tail
  std::vector<int32_t> tokens;      // generated token ids (the end-of-generation token excluded)
  int n_prompt = 0;                 // prompt tokens
  int n_cached = 0;                 // of them, reused from the KV cache (not decoded)
  int n_predicted = 0;              // generated tokens (tokens.size())
  int n_gen_decoded = 0;            // of them, decoded back into the cache (the last one of a
                                    // request that ends by length or stop string is not)
  int n_context_shifts = 0;         // times the context was shifted (Request::context_shift)
  int slot = -1;                    // the slot that ran it
  double prompt_seconds = 0.0;      // wall time of the steps that processed the prompt
  double generation_seconds = 0.0;  // wall time of the steps that generated
};

struct Request {
  std::vector<int32_t> prompt;      // tokens (at least one), BOS included when wanted
  SamplingParams sampling;
  int n_predict = -1;               // tokens to generate; < 0: until EOS, a stop string or a full
                                    // context; 0: prompt processing only
  std::vector<std::string> stop;    // stop strings (empty ones ignored)
  bool ignore_eos = false;
  bool cache_prompt = true;         // reuse a free slot's cached prefix
  bool logprobs = false;            // fill TokenEvent::logprob
  int n_probs = 0;                  // fill TokenEvent::top with this many (implies logprobs)
  // A full context shifts instead of stopping (llama.cpp's --context-shift): the first n_keep
  // tokens stay, half of the rest is dropped and the remainder decoded again after them.
  bool context_shift = false;
  int n_keep = 0;
  std::function<void(const TokenEvent&)> on_token;  // optional
  std::function<void(const Completion&)> on_done;   // called exactly once per accepted request
};

// Why submit() refused a request.
class SubmitError : public Error {
 public:
  enum class Kind {
    QueueFull,      // every slot busy and max_queued requests waiting (HTTP 503)
    PromptTooLong,  // the prompt does not fit a slot's context (HTTP 400)
    Invalid,        // empty prompt, token outside the vocabulary, bad sampling values (HTTP 400)
    Stopped,        // the engine is shutting down (HTTP 503)
  };
  SubmitError(Kind kind, const std::string& message) : Error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

enum class SlotState { Idle, Prompt, Generating };
const char* slot_state_name(SlotState s);  // "idle", "prompt", "generating"

struct SlotStats {
  int id = 0;
  SlotState state = SlotState::Idle;
  uint64_t request_id = 0;   // 0 when idle
  int n_ctx = 0;             // positions the slot may hold
  int n_cached = 0;          // positions its KV sequence holds (an idle slot keeps its last
                             // request's tokens for prompt caching)
  int n_prompt = 0;          // of the current request
  int n_prompt_done = 0;     // prompt tokens in the cache
  int n_predicted = 0;
};

struct EngineStats {
  int requests_processing = 0;  // in slots
  int requests_deferred = 0;    // queued for a slot or for the KV pages of their prompt
  uint64_t requests_total = 0;  // finished
  uint64_t prompt_tokens_total = 0;      // prompt tokens decoded (cached ones not counted)
  uint64_t prompt_tokens_cached_total = 0;
  uint64_t generated_tokens_total = 0;
  double prompt_seconds_total = 0.0;     // per request, summed
  double generation_seconds_total = 0.0;
  uint64_t decode_calls = 0;             // steps that ran the model
  uint64_t decodes_aborted = 0;          // of them, stopped between micro-batches by a cancel
  uint64_t decoded_tokens_total = 0;     // tokens decoded over all decode calls
  size_t kv_pages_used = 0, kv_pages_total = 0;  // KV cache pages (idle slots keep theirs for reuse)
  size_t kv_bytes = 0;                           // of the used pages (resident memory follows it)
  std::vector<SlotStats> slots;
};

class Engine {
 public:
  // Creates the Context (throws bitnet::Error on bad parameters). The Model must outlive it.
  Engine(const Model& model, const EngineParams& params);
  ~Engine();  // stops the loop; unfinished requests complete as Cancelled
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request and returns its id (> 0). Throws SubmitError. Any thread.
  uint64_t submit(Request request);
  // Cancels a queued or running request: it completes as Cancelled by the next step (a prefill
  // in progress stops between micro-batches) and frees its slot. False when the id is unknown or
  // already finished. Any thread, callbacks included.
  bool cancel(uint64_t id);

  void start();  // runs the loop on the engine's thread until stop()
  void stop();   // finishes the step in progress, cancels what is left, joins the thread
  // One step on the caller's thread: admit, decode one batch, sample, call back, retire. Returns
  // false when there was nothing to do. Not while start()ed.
  bool step();
  // Steps until every submitted request has completed (the caller's thread; not while started).
  void run_until_idle();

  EngineStats stats() const;  // any thread
  int n_slots() const;
  int n_ctx_slot() const;
  int n_threads() const;  // of the Context's thread pool
  const Model& model() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bitnet
