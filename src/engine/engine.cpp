// The scheduler: slots, the request queue, continuous batching and prompt caching.
#include "bitnet/engine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "engine/session.h"

namespace bitnet {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Eos: return "eos";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Error: return "error";
  }
  return "error";
}

const char* slot_state_name(SlotState s) {
  switch (s) {
    case SlotState::Idle: return "idle";
    case SlotState::Prompt: return "prompt";
    case SlotState::Generating: return "generating";
  }
  return "idle";
}

namespace {

using engine::Session;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Slot {
  int id = 0;
  std::vector<int32_t> cached;        // the tokens its KV sequence holds, in order
  std::unique_ptr<Session> session;   // the request it runs, null when idle
  std::vector<int32_t> input;         // tokens to decode next, continuing `cached`
  bool in_prompt = false;             // no token generated yet
  int n_prompt_done = 0;
  uint64_t order = 0;                 // admission number: prompt chunks are served in this order
  uint64_t last_used = 0;             // step of the last admission (an idle slot's cache age)
};

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

}  // namespace

struct Engine::Impl {
  const Model& model;
  std::unique_ptr<Context> ctx;
  int n_ctx_slot = 0, max_queued = 0, n_step_tokens = 0, n_threads = 0;
  size_t page_size = 0;  // positions per KV page

  // Owned by the thread that runs the loop.
  std::vector<Slot> slots;
  uint64_t n_admitted = 0;
  EngineStats totals;  // counters only

  // Shared with submit(), cancel() and stats(), under mu.
  mutable std::mutex mu;
  std::condition_variable wake;
  std::deque<std::unique_ptr<Session>> queue;
  std::unordered_set<uint64_t> live;       // queued or in a slot
  std::unordered_set<uint64_t> to_cancel;
  uint64_t next_id = 1;
  int n_free = 0;                          // idle slots not yet claimed by a queued request
  bool running = false, stopping = false;
  EngineStats published;                   // as of the end of the last step
  std::thread thread;
  // Set by cancel(): the decode in progress stops after its current micro-batch.
  std::atomic<bool> abort_decode{false};

  Impl(const Model& m, const EngineParams& p) : model(m) {
    ContextParams cp = p.context;
    if (cp.n_seq < 1) throw Error("engine: the number of slots must be at least 1, got " + std::to_string(cp.n_seq));
    n_ctx_slot = p.n_ctx_slot > 0 ? p.n_ctx_slot
                 : cp.n_ctx > 0   ? cp.n_ctx / cp.n_seq
                                  : static_cast<int>(m.config().n_ctx_train);
    if (n_ctx_slot < 1)
      throw Error("engine: a slot's context must hold at least one token (a total context of " + std::to_string(cp.n_ctx) +
                  " for " + std::to_string(cp.n_seq) + " slots)");
    // The KV pool holds the total context, shared by the slots.
    if (cp.n_ctx <= 0) cp.n_ctx = static_cast<int>(std::min<int64_t>(int64_t{n_ctx_slot} * cp.n_seq, 1 << 30));
    if (n_ctx_slot > cp.n_ctx)
      throw Error("engine: a slot's context (" + std::to_string(n_ctx_slot) + ") is larger than the total context (" +
                  std::to_string(cp.n_ctx) + ")");
    ctx = Context::create(m, cp);
    page_size = static_cast<size_t>(ctx->kv_page_size());
    ctx->set_abort_callback([this] { return abort_decode.load(std::memory_order_relaxed); });
    n_threads = ctx->threads().size();
    max_queued = std::max(0, p.max_queued);
    n_step_tokens = p.n_step_tokens > 0 ? p.n_step_tokens : std::max(1, cp.n_batch);
    slots.resize(static_cast<size_t>(cp.n_seq));
    for (size_t i = 0; i < slots.size(); ++i) slots[i].id = static_cast<int>(i);
    n_free = cp.n_seq;
    publish_locked();
  }

  // ---- KV sequence operations, mirrored in Slot::cached --------------------------------------
  void truncate(Slot& s, size_t n) {
    if (n >= s.cached.size()) return;
    ctx->seq_truncate(s.id, static_cast<int>(n));
    s.cached.resize(n);
  }

  // ---- KV pages -------------------------------------------------------------------------------
  // A slot's sequence holds pages_for(cached.size()) pages of its own (the engine shares none).
  size_t pages_for(size_t positions) const { return (positions + page_size - 1) / page_size; }
  // Pages a running slot still takes to decode its pending input.
  size_t pending_pages(const Slot& s) const {
    return pages_for(s.cached.size() + s.input.size()) - pages_for(s.cached.size());
  }
  // Pages idle slots keep for prompt caching: given up when a running request needs them.
  size_t evictable_pages(const Slot* except) const {
    size_t n = 0;
    for (const Slot& s : slots)
      if (!s.session && &s != except) n += pages_for(s.cached.size());
    return n;
  }
  // Pages the prompts (and context shifts) of admitted requests will still take: reserved at
  // admission, so that a prompt, once admitted, always completes.
  size_t reserved_pages() const {
    size_t n = 0;
    for (const Slot& s : slots)
      if (s.session && (s.in_prompt || s.input.size() > 1)) n += pending_pages(s);
    return n;
  }
  // Releases the least recently used idle slots' caches until n pages are free (or none is left).
  void free_pages(size_t n) {
    while (ctx->kv_pages_free() < n) {
      Slot* lru = nullptr;
      for (Slot& s : slots)
        if (!s.session && !s.cached.empty() && (!lru || s.last_used < lru->last_used)) lru = &s;
      if (!lru) return;
      truncate(*lru, 0);
    }
  }

  // ---- retiring -------------------------------------------------------------------------------
  // Fills the completion, forgets the id and calls back. The slot (if any) becomes idle; its KV
  // sequence keeps what was decoded for later prompt reuse.
  void complete(std::unique_ptr<Session> session, Slot* slot) {
    Completion& c = session->completion();
    if (slot) {
      c.slot = slot->id;
      slot->input.clear();
      slot->in_prompt = false;
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      live.erase(c.id);
      if (slot) ++n_free;
    }
    ++totals.requests_total;
    totals.generated_tokens_total += static_cast<uint64_t>(c.n_predicted);
    totals.prompt_seconds_total += c.prompt_seconds;
    totals.generation_seconds_total += c.generation_seconds;
    if (session->request().on_done) session->request().on_done(c);
  }

  void retire(Slot& s, FinishReason reason, const std::string& error = {}) {
    s.session->finish(reason, error);
    complete(std::move(s.session), &s);
  }

  // ---- one step -------------------------------------------------------------------------------
  bool step() {
    std::vector<std::unique_ptr<Session>> dropped;  // cancelled while queued
    std::vector<Slot*> cancelled, admitted;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (uint64_t id : to_cancel) {
        auto q = std::find_if(queue.begin(), queue.end(), [id](const auto& s) { return s->id() == id; });
        if (q != queue.end()) {
          dropped.push_back(std::move(*q));
          queue.erase(q);
          continue;
        }
        for (Slot& s : slots)
          if (s.session && s.session->id() == id) cancelled.push_back(&s);
      }
      to_cancel.clear();
      abort_decode = false;
      // First come, first served: the head of the queue waits for a free slot and for the KV pages
      // of its prompt; the requests behind it wait too.
      while (!queue.empty()) {
        Slot* slot = pick_slot(queue.front()->request());
        if (!slot || !pages_fit(*slot, queue.front()->request())) break;
        slot->session = std::move(queue.front());
        queue.pop_front();
        --n_free;
        admit(*slot);
        admitted.push_back(slot);
      }
    }
    for (auto& s : dropped) {
      s->finish(FinishReason::Cancelled);
      complete(std::move(s), nullptr);
    }
    for (Slot* s : cancelled) retire(*s, FinishReason::Cancelled);

    const bool decoded = decode_batch();
    {
      std::lock_guard<std::mutex> lock(mu);
      publish_locked();
    }
    return decoded || !dropped.empty() || !cancelled.empty() || !admitted.empty();
  }

  // An idle slot for the request: the one whose cache shares the longest prefix with the prompt,
  // else the least recently used. Null when every slot is busy.
  Slot* pick_slot(const Request& r) {
    Slot* best = nullptr;
    size_t best_common = 0;
    for (Slot& s : slots) {
      if (s.session) continue;
      const size_t common = r.cache_prompt ? common_prefix(s.cached, r.prompt) : 0;
      if (!best || common > best_common || (common == best_common && s.last_used < best->last_used)) {
        best = &s;
        best_common = common;
      }
    }
    return best;
  }

  // Prompt tokens an idle slot's cache gives the request. The last prompt token is always decoded
  // again: its logits give the first new token.
  size_t reusable(const Slot& s, const Request& r) const {
    return std::min(r.cache_prompt ? common_prefix(s.cached, r.prompt) : 0, r.prompt.size() - 1);
  }

  // Whether the KV pool can take the request's prompt in `slot` on top of what the running
  // requests still need this step and for their prompts; idle slots' caches count as free.
  bool pages_fit(const Slot& slot, const Request& r) const {
    const size_t keep = reusable(slot, r);
    size_t demand = pages_for(r.prompt.size()) - pages_for(keep);
    for (const Slot& s : slots)
      if (s.session) demand += pending_pages(s);
    const size_t avail = ctx->kv_pages_free() + evictable_pages(&slot) + pages_for(slot.cached.size()) - pages_for(keep);
    return demand <= avail;
  }

  void admit(Slot& s) {
    const auto& prompt = s.session->prompt();
    const size_t keep = reusable(s, s.session->request());
    truncate(s, keep);
    s.input.assign(prompt.begin() + static_cast<ptrdiff_t>(keep), prompt.end());
    s.in_prompt = true;
    s.n_prompt_done = static_cast<int>(keep);
    s.order = ++n_admitted;
    s.last_used = n_admitted;
    Completion& c = s.session->completion();
    c.n_cached = static_cast<int>(keep);
    c.slot = s.id;
    totals.prompt_tokens_cached_total += keep;
  }

  // One token of every generating slot, then prompt chunks first come first served within the
  // step's token budget. Returns false when no slot had anything to decode.
  bool decode_batch() {
    struct Entry {
      Slot* slot;
      size_t n;
      bool logits, prompt;
    };
    std::vector<Entry> entries;
    Batch batch;
    auto add = [&](Slot& s, size_t n) {
      const bool logits = n == s.input.size();
      for (size_t i = 0; i < n; ++i)
        batch.add(s.input[i], static_cast<int32_t>(s.cached.size() + i), s.id, logits && i + 1 == n);
      entries.push_back({&s, n, logits, s.in_prompt});
    };
    // A generating sequence whose next token starts a page gets one if the pool has one beyond the
    // pages reserved for admitted prompts (idle slots' caches count as free); otherwise it ends as
    // if its context were full, oldest requests served first.
    std::vector<Slot*> generating;
    for (Slot& s : slots)
      if (s.session && !s.in_prompt && s.input.size() == 1) generating.push_back(&s);
    std::sort(generating.begin(), generating.end(), [](const Slot* a, const Slot* b) { return a->order < b->order; });
    const size_t reserved = reserved_pages();
    size_t spare = ctx->kv_pages_free() + evictable_pages(nullptr);
    spare = spare > reserved ? spare - reserved : 0;
    bool retired = false;
    for (Slot* s : generating) {
      const size_t need = pending_pages(*s);
      if (need > spare) {
        s->session->completion().context_full = true;
        retire(*s, FinishReason::Length);
        retired = true;
        continue;
      }
      spare -= need;
      add(*s, 1);
    }
    std::vector<Slot*> chunked;
    for (Slot& s : slots)
      if (s.session && s.input.size() > (s.in_prompt ? 0u : 1u)) chunked.push_back(&s);
    std::sort(chunked.begin(), chunked.end(), [](const Slot* a, const Slot* b) { return a->order < b->order; });
    for (Slot* s : chunked) {
      const size_t budget = batch.size() < static_cast<size_t>(n_step_tokens) ? n_step_tokens - batch.size() : 0;
      if (budget == 0) break;
      add(*s, std::min(budget, s->input.size()));
    }
    if (entries.empty()) return retired;
    size_t batch_pages = 0;
    for (const Entry& e : entries)
      batch_pages += pages_for(e.slot->cached.size() + e.n) - pages_for(e.slot->cached.size());
    free_pages(batch_pages);

    const auto start = Clock::now();
    bool whole = true;
    try {
      whole = ctx->decode(batch);
    } catch (const Error& e) {
      // The cache is untouched: the requests of this batch fail, the others wait for the next step.
      for (const Entry& e2 : entries) retire(*e2.slot, FinishReason::Error, e.what());
      return true;
    }
    const double decode_s = seconds_since(start);
    ++totals.decode_calls;
    if (!whole) ++totals.decodes_aborted;

    size_t j = 0;  // index among the entries that asked for logits
    for (const Entry& e : entries) {
      Slot& s = *e.slot;
      // A cancel stopped the decode between micro-batches: what completed stays in the cache, but
      // there are no logits, so a token that needed them is decoded again next step.
      size_t n_done = e.n;
      if (!whole) {
        n_done = static_cast<size_t>(ctx->seq_length(s.id)) - s.cached.size();
        if (n_done == e.n && e.logits) ctx->seq_truncate(s.id, static_cast<int>(s.cached.size() + --n_done));
      }
      totals.decoded_tokens_total += n_done;
      s.cached.insert(s.cached.end(), s.input.begin(), s.input.begin() + static_cast<ptrdiff_t>(n_done));
      s.input.erase(s.input.begin(), s.input.begin() + static_cast<ptrdiff_t>(n_done));
      Completion& c = s.session->completion();
      if (e.prompt) {
        s.n_prompt_done += static_cast<int>(n_done);
        totals.prompt_tokens_total += n_done;
        c.prompt_seconds += decode_s;
      } else {
        c.generation_seconds += decode_s;
        if (e.logits && whole) ++c.n_gen_decoded;
      }
      if (!e.logits || !whole) continue;
      const float* logits = ctx->logits(j++);
      if (e.prompt && s.session->request().n_predict == 0) {
        retire(s, FinishReason::Length);
        continue;
      }
      const auto sample_start = Clock::now();
      const int32_t next = s.session->next(logits);
      c.generation_seconds += seconds_since(sample_start);
      s.in_prompt = false;
      if (next < 0) {
        complete(std::move(s.session), &s);
        continue;
      }
      if (s.cached.size() < static_cast<size_t>(n_ctx_slot)) {
        s.input.assign(1, next);
      } else if (!shift_context(s, next)) {
        c.context_full = true;
        retire(s, FinishReason::Length);
      }
    }
    return true;
  }

  // llama.cpp's context shift: keep the first n_keep tokens, drop half of the rest, and decode
  // the remaining half again after the kept ones (positions change, so their keys are recomputed).
  bool shift_context(Slot& s, int32_t next) {
    const Request& r = s.session->request();
    if (!r.context_shift) return false;
    const size_t n_keep = std::min(static_cast<size_t>(std::max(0, r.n_keep)), s.cached.size());
    const size_t n_discard = (s.cached.size() - n_keep) / 2;
    if (n_discard == 0) return false;
    std::vector<int32_t> rest(s.cached.begin() + static_cast<ptrdiff_t>(n_keep + n_discard), s.cached.end());
    truncate(s, n_keep);
    rest.push_back(next);
    s.input = std::move(rest);
    ++s.session->completion().n_context_shifts;
    return true;
  }

  void publish_locked() {
    EngineStats st = totals;
    st.requests_deferred = static_cast<int>(queue.size());
    st.kv_bytes = ctx->kv_bytes();
    st.kv_pages_total = ctx->kv_pages_total();
    st.kv_pages_used = st.kv_pages_total - ctx->kv_pages_free();
    for (const Slot& s : slots) {
      SlotStats ss;
      ss.id = s.id;
      ss.n_ctx = n_ctx_slot;
      ss.n_cached = static_cast<int>(s.cached.size());
      if (s.session) {
        ++st.requests_processing;
        ss.state = s.in_prompt ? SlotState::Prompt : SlotState::Generating;
        ss.request_id = s.session->id();
        ss.n_prompt = static_cast<int>(s.session->prompt().size());
        ss.n_prompt_done = s.n_prompt_done;
        ss.n_predicted = s.session->completion().n_predicted;
      }
      st.slots.push_back(ss);
    }
    published = std::move(st);
  }

  // Completes everything queued or running as Cancelled (shutdown).
  void cancel_all() {
    std::deque<std::unique_ptr<Session>> waiting;
    {
      std::lock_guard<std::mutex> lock(mu);
      waiting.swap(queue);
      to_cancel.clear();
    }
    for (auto& s : waiting) {
      s->finish(FinishReason::Cancelled);
      complete(std::move(s), nullptr);
    }
    for (Slot& s : slots)
      if (s.session) retire(s, FinishReason::Cancelled);
    std::lock_guard<std::mutex> lock(mu);
    publish_locked();
  }

  void loop() {
    for (;;) {
      const bool worked = step();
      std::unique_lock<std::mutex> lock(mu);
      if (!worked) wake.wait(lock, [this] { return stopping || !queue.empty() || !to_cancel.empty(); });
      if (stopping) break;
    }
    cancel_all();
  }
};

Engine::Engine(const Model& model, const EngineParams& params) : impl_(std::make_unique<Impl>(model, params)) {}

Engine::~Engine() {
  stop();
  impl_->cancel_all();
}

uint64_t Engine::submit(Request r) {
  Impl& m = *impl_;
  using Kind = SubmitError::Kind;
  if (r.prompt.empty()) throw SubmitError(Kind::Invalid, "the prompt is empty");
  const int32_t n_vocab = m.model.tokenizer().n_vocab();
  for (int32_t t : r.prompt)
    if (t < 0 || t >= n_vocab)
      throw SubmitError(Kind::Invalid, "prompt token " + std::to_string(t) + " is outside the vocabulary [0, " +
                                           std::to_string(n_vocab) + ")");
  if (r.prompt.size() > static_cast<size_t>(m.n_ctx_slot))
    throw SubmitError(Kind::PromptTooLong, "the prompt is " + std::to_string(r.prompt.size()) +
                                               " tokens, a slot's context holds " + std::to_string(m.n_ctx_slot));
  if (r.n_probs < 0) throw SubmitError(Kind::Invalid, "n_probs must not be negative");
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    id = m.next_id++;
  }
  std::unique_ptr<Session> session;
  try {
    session = std::make_unique<Session>(id, std::move(r), m.model.tokenizer());
  } catch (const SubmitError&) {
    throw;
  } catch (const Error& e) {
    throw SubmitError(Kind::Invalid, e.what());
  }
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (m.stopping) throw SubmitError(Kind::Stopped, "the engine is shutting down");
    if (m.queue.size() >= static_cast<size_t>(m.n_free + m.max_queued))
      throw SubmitError(Kind::QueueFull, "all " + std::to_string(m.slots.size()) + " slots are busy and " +
                                             std::to_string(m.max_queued) + " requests are waiting");
    m.queue.push_back(std::move(session));
    m.live.insert(id);
  }
  m.wake.notify_one();
  return id;
}

bool Engine::cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->live.count(id)) return false;
    impl_->to_cancel.insert(id);
    impl_->abort_decode = true;
  }
  impl_->wake.notify_one();
  return true;
}

void Engine::start() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->running) return;
  impl_->running = true;
  impl_->stopping = false;
  impl_->thread = std::thread([this] { impl_->loop(); });
}

void Engine::stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->running) return;
    impl_->stopping = true;
  }
  impl_->wake.notify_one();
  impl_->thread.join();
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->running = false;
  impl_->stopping = false;
}

bool Engine::step() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->running) throw Error("Engine::step() called while the engine runs its own thread");
  }
  return impl_->step();
}

void Engine::run_until_idle() {
  for (;;) {
    if (step()) continue;
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->live.empty()) return;
  }
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  EngineStats st = impl_->published;
  st.requests_deferred = static_cast<int>(impl_->queue.size());
  return st;
}

int Engine::n_slots() const { return static_cast<int>(impl_->slots.size()); }
int Engine::n_ctx_slot() const { return impl_->n_ctx_slot; }
int Engine::n_threads() const { return impl_->n_threads; }
const Model& Engine::model() const { return impl_->model; }

}  // namespace bitnet
