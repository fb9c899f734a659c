// Model::load: hyperparameters from GGUF metadata, tensors checked for shape, I2_S and TQ1_0
// weights read in place from the mapping (other ternary formats repacked into the kernels'
// runtime layout), float tensors read in place.
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "bitnet/arch.h"
#include "bitnet/attention_kernels.h"
#include "bitnet/log.h"
#include "model_impl.h"

namespace bitnet {

namespace {

class Loader {
 public:
  Loader(ModelImpl& m, const LoadOptions& opts, ThreadPool& pool)
      : m_(m), file_(*m.file), opts_(opts), pool_(pool) {}

  void load();
  MemoryPlan plan(const ContextParams& cp);

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error(file_.path() + ": " + what); }
  const gguf::TensorInfo& tensor(const std::string& name) const;
  const gguf::TensorInfo* optional_tensor(const std::string& name) const { return file_.find_tensor(name); }
  void check_shape(const gguf::TensorInfo& t, std::initializer_list<int64_t> dims) const;
  std::vector<float> load_vector(const std::string& name, int64_t n) const;
  void check_finite(const gguf::TensorInfo& t, TensorType type);
  Linear load_linear(const std::string& prefix, int64_t in, int64_t out);
  void pack_ternary(const gguf::TensorInfo& t, TensorType type, Linear& lin);
  void repack_ternary(const gguf::TensorInfo& t, TensorType type, Linear& lin);
  void read_config();
  void progress(uint64_t bytes);

  ModelImpl& m_;
  const gguf::File& file_;
  const LoadOptions& opts_;
  ThreadPool& pool_;
  bool bitnet_file_ = false;
  bool tied_head_ = false;
  uint64_t bytes_total_ = 0, bytes_done_ = 0;
  int last_percent_ = -1;
  bool show_progress_ = false;
};

const gguf::TensorInfo& Loader::tensor(const std::string& name) const {
  const gguf::TensorInfo* t = file_.find_tensor(name);
  if (!t) fail("missing tensor '" + name + "'");
  return *t;
}

void Loader::check_shape(const gguf::TensorInfo& t, std::initializer_list<int64_t> dims) const {
  // Trailing dimensions of 1 are allowed ({n} may be stored as {n, 1}).
  bool ok = true;
  int i = 0;
  for (int64_t d : dims) ok = ok && (int64_t)t.ne[i++] == d;
  for (; i < gguf::kMaxDims; ++i) ok = ok && t.ne[i] == 1;
  if (ok) return;
  auto fmt = [](auto begin, auto end) {
    std::string s = "{";
    for (auto it = begin; it != end; ++it) s += (it == begin ? "" : ", ") + std::to_string(*it);
    return s + "}";
  };
  fail("tensor '" + t.name + "' has shape " + fmt(t.ne, t.ne + std::max(1, t.n_dims)) + ", expected " +
       fmt(dims.begin(), dims.end()));
}

std::vector<float> Loader::load_vector(const std::string& name, int64_t n) const {
  const gguf::TensorInfo& t = tensor(name);
  check_shape(t, {n});
  TensorType type = resolve_type(t.type, bitnet_file_, name);
  if (type != TensorType::F32 && type != TensorType::F16 && type != TensorType::BF16)
    fail("tensor '" + name + "' has type " + type_name(type) + ", expected F32, F16 or BF16");
  std::vector<float> v((size_t)n);
  dequantize_row(type, t.data, v.data(), n);
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(v[(size_t)i]))
      fail("tensor '" + name + "' holds a non-finite value (" + std::to_string(v[(size_t)i]) + ") at index " + std::to_string(i));
  return v;
}

// A NaN or Inf in a float matrix would make every activation that reads it NaN: refused at load,
// as for norms and ternary scales.
void Loader::check_finite(const gguf::TensorInfo& t, TensorType type) {
  const int64_t ne0 = (int64_t)t.ne[0], rows = (int64_t)(t.n_elements() / t.ne[0]);
  const uint64_t row_bytes = row_nbytes(type, (uint64_t)ne0);
  constexpr int64_t kRowsPerTask = 256;
  std::atomic<int64_t> bad_row{rows};
  pool_.parallel_for((rows + kRowsPerTask - 1) / kRowsPerTask, [&](int64_t task) {
    for (int64_t r = task * kRowsPerTask; r < std::min(rows, (task + 1) * kRowsPerTask); ++r)
      if (!row_is_finite(type, t.data + (uint64_t)r * row_bytes, ne0)) {
        for (int64_t seen = bad_row.load(); r < seen && !bad_row.compare_exchange_weak(seen, r);) {}
        return;
      }
  });
  if (bad_row < rows) fail("tensor '" + t.name + "' holds a non-finite value (NaN or Inf) in row " + std::to_string(bad_row.load()));
}

void Loader::progress(uint64_t bytes) {
  if (!show_progress_) return;
  bytes_done_ += bytes;
  int pct = bytes_total_ ? (int)(100 * bytes_done_ / bytes_total_) : 100;
  if (pct != last_percent_) {
    last_percent_ = pct;
    log_printf(LogLevel::Info, "\rloading model: %3d%%%s", pct, pct == 100 ? "\n" : "");
  }
}

// Whether any 2-bit field of the codes holds 3 (checked 8 bytes at a time: the scan runs at memory speed).
bool has_code_three(const uint8_t* data, size_t n) {
  constexpr uint64_t kLowBits = 0x5555555555555555ull;
  uint64_t acc = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, data + i, 8);
    acc |= w & (w >> 1) & kLowBits;
  }
  for (; i < n; ++i) acc |= (uint64_t)(data[i] & (data[i] >> 1) & 0x55);
  return acc != 0;
}

// The same over the loader's threads, in 1 MiB pieces: one thread reading a cold mapping waits on
// one page fault at a time.
bool has_code_three(ThreadPool& pool, const uint8_t* data, size_t n) {
  constexpr size_t kPiece = size_t(1) << 20;
  std::atomic<bool> found{false};
  pool.parallel_for((int64_t)((n + kPiece - 1) / kPiece), [&](int64_t piece) {
    const size_t begin = (size_t)piece * kPiece;
    if (!found.load(std::memory_order_relaxed) && has_code_three(data + begin, std::min(kPiece, n - begin)))
      found.store(true, std::memory_order_relaxed);
  });
  return found.load();
}

// I2_S tensors whose rows are whole 128-value blocks already have the runtime layout: the kernels
// read them in place from the mapping (no copy, no load time), unless the file uses the unused
// code 3, which must read as 0 and is rewritten in a copy. TQ1_0 tensors are read in place by
// their own kernels. Other ternary formats are repacked.
void Loader::pack_ternary(const gguf::TensorInfo& t, TensorType type, Linear& lin) {
  lin.ternary = true;
  if (type == TensorType::I2_S && lin.in % kTernaryBlock == 0) {
    const size_t row_bytes = ternary_row_bytes(lin.in), n_bytes = row_bytes * (size_t)lin.out;
    float scale;
    std::memcpy(&scale, t.data + n_bytes, sizeof scale);
    lin.row_scale.assign((size_t)lin.out, scale);
    lin.stride = row_bytes;
    if (!has_code_three(pool_, t.data, n_bytes)) {
      lin.weights = t.data;
    } else {
      lin.packed = allocate_aligned(n_bytes, false);
      for (size_t i = 0; i < n_bytes; ++i) {
        const uint8_t b = t.data[i];
        lin.packed[i] = (uint8_t)(b & ~((b & (b >> 1) & 0x55) << 1));  // 3 -> 1
      }
      lin.weights = lin.packed.get();
    }
  } else if (type == TensorType::TQ1_0 && lin.in % kTq1Block == 0) {
    // Read in place: the kernels take the scales from the blocks (see Tq1Scales).
    lin.tq1 = true;
    lin.weights = lin.tensor_data = t.data;
    lin.stride = tq1_row_bytes(lin.in);
    lin.tq1_scales = std::make_unique<Tq1Scales>();
  } else {
    repack_ternary(t, type, lin);
  }
  for (float s : lin.row_scale)
    if (!std::isfinite(s)) fail("tensor '" + t.name + "' has a non-finite scale");
}

// Faults a new buffer's pages in with one call (Linux >= 5.14; elsewhere they fault on first
// write): one page fault per 4 KiB page was most of a TQ file's repacking time.
void populate(uint8_t* p, size_t bytes) {
#ifdef MADV_POPULATE_WRITE
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  const uintptr_t begin = ((uintptr_t)p + page - 1) / page * page, end = ((uintptr_t)p + bytes) / page * page;
  if (end > begin) madvise((void*)begin, end - begin, MADV_POPULATE_WRITE);
#else
  (void)p, (void)bytes;
#endif
}

void Loader::repack_ternary(const gguf::TensorInfo& t, TensorType type, Linear& lin) {
  lin.stride = ternary_row_stride(lin.in);
  lin.packed = allocate_aligned(lin.stride * (size_t)lin.out, false);
  lin.weights = lin.packed.get();
  populate(lin.packed.get(), lin.stride * (size_t)lin.out);
  lin.row_scale.assign((size_t)lin.out, 0.f);
  constexpr int64_t kRowsPerTask = 64;
  try {  // the pool rethrows the first task's error here
    pool_.parallel_for((lin.out + kRowsPerTask - 1) / kRowsPerTask, [&](int64_t task) {
      std::vector<int8_t> values((size_t)lin.in);
      const int64_t r1 = std::min(lin.out, (task + 1) * kRowsPerTask);
      for (int64_t r = task * kRowsPerTask; r < r1; ++r) {
        lin.row_scale[r] = read_ternary_row(type, t.data, lin.in, lin.out, r, values.data(), t.name);
        pack_ternary_row(values.data(), lin.in, lin.packed.get() + (size_t)r * lin.stride);
      }
    });
  } catch (const Error& e) {
    fail(e.what());
  }
  // The source pages are no longer needed: drop them from this process's resident set.
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t begin = ((uintptr_t)t.data + page - 1) / page * page;
  uintptr_t end = ((uintptr_t)t.data + t.nbytes) / page * page;
  if (end > begin) madvise((void*)begin, end - begin, MADV_DONTNEED);
}

Linear Loader::load_linear(const std::string& prefix, int64_t in, int64_t out) {
  const gguf::TensorInfo& t = tensor(prefix + ".weight");
  check_shape(t, {in, out});
  Linear lin;
  lin.name = t.name;
  lin.in = in;
  lin.out = out;
  lin.type = resolve_type(t.type, bitnet_file_, t.name);
  float extra_scale = 1.f;
  if (const gguf::TensorInfo* s = optional_tensor(prefix + ".scale")) {
    std::vector<float> v = load_vector(s->name, 1);
    extra_scale = v[0];
  }
  if (is_ternary(lin.type)) {
    pack_ternary(t, lin.type, lin);
    for (float& s : lin.row_scale) s *= extra_scale;
    if (lin.tq1) lin.out_scale = extra_scale;
  } else {
    check_finite(t, lin.type);
    lin.data = t.data;
    lin.row_bytes = row_nbytes(lin.type, (uint64_t)in);
    lin.out_scale = extra_scale;
  }
  if (optional_tensor(prefix + ".bias")) lin.bias = load_vector(prefix + ".bias", out);
  progress(t.nbytes);
  return lin;
}

void Loader::read_config() {
  ModelConfig& c = m_.cfg;
  c.arch_name = file_.get_string("general.architecture");
  const ArchInfo* traits = find_arch(c.arch_name);
  if (!traits)
    fail("general.architecture '" + c.arch_name + "' is not supported (supported: " + supported_arch_names() + ")");
  c.arch = traits->arch;
  c.rope_neox = traits->rope_neox;
  c.ffn_relu2 = traits->ffn_relu2;
  c.sub_norms = traits->sub_norms;
  bitnet_file_ = c.arch != Arch::Llama || file_.get_uint("general.file_type", 0) == 40;

  const std::string a = c.arch_name + ".";
  auto positive = [&](const std::string& key, uint64_t v) {
    if (v == 0 || v > (1u << 24)) fail("metadata '" + key + "' = " + std::to_string(v) + " is out of range");
    return (int64_t)v;
  };
  c.n_embd = positive(a + "embedding_length", file_.get_uint(a + "embedding_length"));
  c.n_layer = positive(a + "block_count", file_.get_uint(a + "block_count"));
  c.n_ff = positive(a + "feed_forward_length", file_.get_uint(a + "feed_forward_length"));
  c.n_head = positive(a + "attention.head_count", file_.get_uint(a + "attention.head_count"));
  c.n_head_kv = positive(a + "attention.head_count_kv",
                         file_.get_uint(a + "attention.head_count_kv", (uint64_t)c.n_head));
  c.n_ctx_train = positive(a + "context_length", file_.get_uint(a + "context_length"));
  if (c.n_head % c.n_head_kv != 0)
    fail("attention.head_count " + std::to_string(c.n_head) + " is not a multiple of head_count_kv " +
         std::to_string(c.n_head_kv));
  c.head_dim = positive(a + "attention.key_length",
                        file_.get_uint(a + "attention.key_length", (uint64_t)(c.n_embd / c.n_head)));
  m_.n_rot = positive(a + "rope.dimension_count", file_.get_uint(a + "rope.dimension_count", (uint64_t)c.head_dim));
  if (m_.n_rot > c.head_dim || m_.n_rot % 2 != 0)
    fail("rope.dimension_count " + std::to_string(m_.n_rot) + " does not fit head dimension " +
         std::to_string(c.head_dim));
  c.rope_theta = (float)file_.get_float(a + "rope.freq_base", 10000.0);
  c.rms_eps = (float)file_.get_float(a + "attention.layer_norm_rms_epsilon", 1e-5);
  if (!(c.rms_eps > 0) || !(c.rope_theta > 0)) fail("rope.freq_base / layer_norm_rms_epsilon must be positive");

  const gguf::TensorInfo& embd = tensor(kTokenEmbdName);
  if (embd.n_dims != 2 || (int64_t)embd.ne[0] != c.n_embd)
    fail(std::string("tensor '") + kTokenEmbdName + "' must have shape {" + std::to_string(c.n_embd) + ", n_vocab}");
  c.n_vocab = (int64_t)embd.ne[1];
  // Tied architectures' files normally have no output.weight; a converted checkpoint whose head
  // differs from its embedding carries one, and then it is the head.
  tied_head_ = !optional_tensor(kOutputName);
}

MemoryPlan Loader::plan(const ContextParams& cp) {
  read_config();
  const ModelConfig& c = m_.cfg;
  MemoryPlan p;
  for (const gguf::TensorInfo& t : file_.tensors()) {
    const TensorType type = resolve_type(t.type, bitnet_file_, t.name);
    const int64_t ne0 = (int64_t)t.ne[0], rows = (int64_t)(t.n_elements() / t.ne[0]);
    uint64_t resident = t.nbytes, as_tq1 = t.nbytes;
    if (is_ternary(type)) {  // as pack_ternary keeps it
      const bool in_place = (type == TensorType::I2_S && ne0 % kTernaryBlock == 0) ||
                            (type == TensorType::TQ1_0 && ne0 % kTq1Block == 0);
      if (!in_place) resident = (uint64_t)rows * ternary_row_stride(ne0);
      as_tq1 = ne0 % kTq1Block == 0 ? (uint64_t)rows * tq1_row_bytes(ne0) : resident;
    }
    p.weights += resident;
    p.tq1_weights += as_tq1;
  }
  p.n_seq = std::max(cp.n_seq, 1);
  p.n_ctx = (int)std::min<int64_t>(cp.n_ctx > 0 ? cp.n_ctx : (int64_t)c.n_ctx_train * p.n_seq, 1 << 30);
  const uint64_t kv_row = cp.kv_type == KvType::Q8_0 ? q8_value_row_bytes(c.head_dim)
                                                     : (uint64_t)c.head_dim * (cp.kv_type == KvType::F32 ? 4 : 2);
  const uint64_t per_position = 2 * (uint64_t)(c.n_layer * c.n_head_kv) * kv_row;
  auto kv_bytes = [&](int n_ctx) { return per_position * kv_pool_layout(n_ctx, p.n_seq).positions(); };
  p.kv_cache = kv_bytes(p.n_ctx);
  // The forward pass's float buffers per token (x, h, q, k, v, attention, gate, up, ffn), its
  // int8 activations and the logits, for a full micro-batch.
  const int64_t n = std::min<int64_t>(cp.n_batch, p.n_ctx), q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  p.buffers = (uint64_t)n * ((uint64_t)(3 * c.n_embd + 2 * q_dim + 2 * kv_dim + 2 * c.n_ff + c.n_vocab) * 4 +
                             (uint64_t)std::max(c.n_embd, c.n_ff));
  p.available = available_memory(&p.available_from);
  if (p.weights + p.buffers < p.available && per_position > 0) {
    const uint64_t room = p.available - p.weights - p.buffers;
    uint64_t ctx = std::min<uint64_t>(room / per_position / 256 * 256, 1 << 30);
    while (ctx >= 256 && kv_bytes((int)ctx) > room) ctx -= 256;  // pages for every sequence
    if (ctx >= 256 && ctx < (uint64_t)p.n_ctx) p.fitting_ctx = (int)ctx;
  }
  return p;
}

void Loader::load() {
  show_progress_ = opts_.progress;
  read_config();
  const ModelConfig& c = m_.cfg;

  m_.tok = opts_.tokenizer_path.empty() ? Tokenizer::from_gguf(file_) : Tokenizer::from_file(opts_.tokenizer_path);
  if (m_.tok->n_vocab() > c.n_vocab)
    fail("tokenizer has " + std::to_string(m_.tok->n_vocab()) + " tokens but the model's vocabulary is " +
         std::to_string(c.n_vocab));
  m_.chat_template_text = file_.get_string("tokenizer.chat_template", "");

  for (const auto& t : file_.tensors()) {
    m_.params += t.n_elements();
    bytes_total_ += t.nbytes;
  }

  m_.token_embd = &tensor(kTokenEmbdName);
  m_.token_embd_type = resolve_type(m_.token_embd->type, bitnet_file_, kTokenEmbdName);
  if (is_ternary(m_.token_embd_type)) fail(std::string("tensor '") + kTokenEmbdName + "' must be a float type, not ternary");
  if (!tied_head_) check_finite(*m_.token_embd, m_.token_embd_type);  // a tied head is checked as the head
  m_.output_norm = load_vector(kOutputNormName, c.n_embd);
  m_.head = load_linear(tied_head_ ? "token_embd" : "output", c.n_embd, c.n_vocab);

  ModelHparams h;
  h.n_embd = c.n_embd, h.n_ff = c.n_ff, h.n_head = c.n_head, h.n_head_kv = c.n_head_kv, h.head_dim = c.head_dim;
  const ArchInfo& arch = *find_arch(c.arch_name);
  m_.layers.resize((size_t)c.n_layer);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    Layer& l = m_.layers[(size_t)i];
    auto vector = [&](LayerTensor t) {
      return load_vector(layer_tensor_name(i, t), (int64_t)layer_tensor_shape(t, h)[0]);
    };
    auto linear = [&](LayerTensor t) {
      const std::vector<uint64_t> ne = layer_tensor_shape(t, h);
      return load_linear(layer_tensor_base(i, t), (int64_t)ne[0], (int64_t)ne[1]);
    };
    l.attn_norm = vector(LayerTensor::AttnNorm);
    l.ffn_norm = vector(LayerTensor::FfnNorm);
    if (arch_has(arch, LayerTensor::AttnSubNorm)) l.attn_sub_norm = vector(LayerTensor::AttnSubNorm);
    if (arch_has(arch, LayerTensor::FfnSubNorm)) l.ffn_sub_norm = vector(LayerTensor::FfnSubNorm);
    l.wq = linear(LayerTensor::AttnQ);
    l.wk = linear(LayerTensor::AttnK);
    l.wv = linear(LayerTensor::AttnV);
    l.wo = linear(LayerTensor::AttnOutput);
    l.gate = linear(LayerTensor::FfnGate);
    l.up = linear(LayerTensor::FfnUp);
    l.down = linear(LayerTensor::FfnDown);
  }
  progress(bytes_total_ - bytes_done_);
}

std::string size_label(uint64_t params) {
  char buf[32];
  if (params >= 1000000000ull) std::snprintf(buf, sizeof buf, "%.0fB", params / 1e9);
  else std::snprintf(buf, sizeof buf, "%.0fM", params / 1e6);
  return buf;
}

}  // namespace

std::string ModelImpl::description() const {
  std::string type;
  switch (weight_type()) {
    case TensorType::I2_S: type = "I2_S - 2 bpw ternary"; break;
    case TensorType::TQ1_0: type = "TQ1_0 - 1.69 bpw ternary"; break;
    case TensorType::TQ2_0: type = "TQ2_0 - 2.06 bpw ternary"; break;
    case TensorType::F32: type = "all F32"; break;
    default: type = type_name(weight_type()); break;
  }
  return cfg.arch_name + " " + size_label(params) + " " + type;
}

uint64_t ModelImpl::bytes_per_token() const {
  uint64_t total = head.bytes();
  for (const Layer& l : layers)
    for (const Linear* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down}) total += w->bytes();
  return total;
}

Model::Macs ModelImpl::macs_per_token() const {
  Macs macs;
  auto add = [&](const Linear& w) { (w.ternary ? macs.ternary : macs.other) += (uint64_t)w.in * (uint64_t)w.out; };
  add(head);
  for (const Layer& l : layers)
    for (const Linear* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down}) add(*w);
  return macs;
}

// Locks in RAM what the forward pass reads: every repacked weight buffer and the file's tensors
// that are read in place (not the sources of repacked ones, whose pages were dropped).
static void lock_weights(const ModelImpl& m) {
  std::vector<std::pair<const void*, size_t>> regions;
  std::set<std::string> repacked;
  auto add = [&](const Linear& l) {
    if (!l.packed) return;
    regions.emplace_back(l.packed.get(), l.bytes());
    repacked.insert(l.name);
  };
  add(m.head);
  for (const Layer& l : m.layers)
    for (const Linear* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down}) add(*w);
  for (const gguf::TensorInfo& t : m.file->tensors())
    if (!repacked.count(t.name) && t.nbytes > 0) regions.emplace_back(t.data, t.nbytes);
  for (auto [p, n] : regions)
    if (::mlock(p, n) != 0)
      throw Error("cannot lock the weights in RAM (--mlock): " + std::string(std::strerror(errno)) +
                  "; raise the limit (ulimit -l) or run without --mlock");
}

std::unique_ptr<Model> Model::load(const std::string& path, const LoadOptions& opts) {
  auto m = std::make_unique<ModelImpl>();
  m->file = gguf::File::open(path, opts.use_mmap);
  ThreadPool pool(opts.n_threads > 0 ? opts.n_threads : physical_core_count());
  Loader(*m, opts, pool).load();
  if (opts.mlock) lock_weights(*m);
  return m;
}

// A "Name:   N kB" field of /proc/self/status, in bytes (0 when absent).
static uint64_t status_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1)) * 1024;
  return 0;
}

uint64_t peak_rss_bytes() { return status_bytes("VmHWM"); }
uint64_t locked_bytes() { return status_bytes("VmLck"); }

// ---- memory plan ------------------------------------------------------------------------------

namespace {

// "/proc/meminfo"-style "Key:   N kB" in bytes, or 0.
uint64_t meminfo_bytes(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1)) * 1024;
  return 0;
}

// A cgroup file holding one number ("max" and absent files give no limit).
std::optional<uint64_t> cgroup_number(const std::string& path) {
  std::ifstream in(path);
  std::string v;
  if (!(in >> v) || v == "max") return std::nullopt;
  try {
    return std::stoull(v);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Memory left under this process's cgroup limit (v2 memory.max, else v1 memory.limit_in_bytes),
// or nothing when it has none.
std::optional<uint64_t> cgroup_headroom(std::string& from) {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    // v2: "0::/path"; v1: "N:controllers:/path" with "memory" among the controllers.
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    std::optional<uint64_t> limit, usage;
    if (controllers.empty()) {
      limit = cgroup_number("/sys/fs/cgroup" + path + "/memory.max");
      usage = cgroup_number("/sys/fs/cgroup" + path + "/memory.current");
      from = "cgroup memory.max";
    } else if (("," + controllers + ",").find(",memory,") != std::string::npos) {
      limit = cgroup_number("/sys/fs/cgroup/memory" + path + "/memory.limit_in_bytes");
      usage = cgroup_number("/sys/fs/cgroup/memory" + path + "/memory.usage_in_bytes");
      from = "cgroup memory.limit_in_bytes";
      if (limit && *limit >= (uint64_t{1} << 60)) limit.reset();  // v1 spells "no limit" as a huge number
    }
    if (limit) return *limit > usage.value_or(0) ? *limit - usage.value_or(0) : 0;
  }
  return std::nullopt;
}

std::string gib(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", (double)bytes / (1ull << 30));
  else std::snprintf(buf, sizeof buf, "%.1f MiB", (double)bytes / (1ull << 20));
  return buf;
}

}  // namespace

uint64_t available_memory(std::string* from) {
  std::string source = "MemAvailable";
  uint64_t bytes = meminfo_bytes("MemAvailable");
  if (const char* v = std::getenv("BITNET_MEM_AVAILABLE"); v && *v) {
    bytes = std::strtoull(v, nullptr, 10);
    source = "BITNET_MEM_AVAILABLE";
  } else {
    std::string cgroup_from;
    if (std::optional<uint64_t> headroom = cgroup_headroom(cgroup_from); headroom && *headroom < bytes) {
      bytes = *headroom;
      source = cgroup_from;
    }
  }
  if (from) *from = source;
  return bytes;
}

std::string MemoryPlan::refusal() const {
  std::string line = "the model needs " + gib(total()) + " of memory (weights " + gib(weights) + " + KV cache " +
                     gib(kv_cache) + " for -c " + std::to_string(n_ctx) +
                     (n_seq > 1 ? " shared by " + std::to_string(n_seq) + " sequences" : "") + " + buffers " + gib(buffers) + ") but " +
                     gib(available) + " is available (" + available_from + ")";
  std::vector<std::string> would_fit;
  if (tq1_weights < weights && tq1_weights + kv_cache + buffers <= available)
    would_fit.push_back("the model as TQ1_0 (weights " + gib(tq1_weights) + ")");
  if (fitting_ctx > 0) would_fit.push_back("-c " + std::to_string(fitting_ctx));
  if (!would_fit.empty()) {
    line += "; would fit: " + would_fit[0];
    for (size_t i = 1; i < would_fit.size(); ++i) line += " or " + would_fit[i];
  }
  return line + "; --no-check-memory loads it anyway";
}

MemoryPlan plan_memory(const std::string& path, const ContextParams& cp) {
  auto m = std::make_unique<ModelImpl>();
  m->file = gguf::File::open(path, true);
  ThreadPool pool(1);
  const LoadOptions opts;
  Loader loader(*m, opts, pool);
  return loader.plan(cp);
}

}  // namespace bitnet
