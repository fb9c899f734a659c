// Matrix products of the linear layers, split into tasks over output rows (and token blocks).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "bitnet/head_kernels.h"
#include "model_impl.h"

namespace bitnet {

AlignedBytes allocate_aligned(size_t bytes, bool zero) {
  size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded ? rounded : 64);
  if (!p) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
  if (zero) std::memset(p, 0, rounded);
  return AlignedBytes(static_cast<uint8_t*>(p));
}

namespace {

// Row tasks of one matrix as boundaries (task i covers rows [b[i], b[i+1])), in multiples of 16
// rows (full SIMD row groups). Long contiguous ranges keep each thread's weight stream
// prefetchable (2B4T generation, 2 threads: 36.5 tok/s with 2 equal tasks per thread, 34.5 with 8).
// One token's products are split largest first ("guided"): each task takes 1/(2 * threads) of the
// rows not yet assigned, at least 64; threads claim tasks in order, so each starts on a long range
// and the small tasks at the end let a thread that got ahead take over from one the shared machine
// slowed (40.2 vs 40.0 tok/s F16 head, 65-69 vs 55-60 Q6_K head). Batches, whose token blocks
// already make many tasks, get two equal tasks per thread.
std::vector<int64_t> row_tasks(int64_t rows, int threads, bool guided) {
  std::vector<int64_t> bounds{0};
  const int64_t equal = std::max<int64_t>(16, ((rows + 2 * threads - 1) / (2 * threads) + 15) / 16 * 16);
  for (int64_t start = 0; start < rows;) {
    int64_t n = equal;
    if (guided) n = std::max<int64_t>(64, ((rows - start) / (2 * (int64_t)threads) + 15) / 16 * 16);
    start = std::min(rows, start + n);
    bounds.push_back(start);
  }
  return bounds;
}

// Tokens per task block: keeps one block's activations within L2 while weights stream once per block.
constexpr int64_t kTokenBlock = 64;

}  // namespace

void quantize_acts(const float* x, int64_t n, int64_t k, QuantizedActs& out, ThreadPool& pool) {
  const Kernels& kn = kernels();
  out.kp = ternary_padded_cols(k);
  out.n = n;
  out.q.resize((size_t)(n * out.kp));
  out.scale.resize((size_t)n);
  out.sum.resize((size_t)n);
  auto run = [&](int64_t i) {
    kn.quantize_row_i8(x + i * k, k, out.kp, out.q.data() + i * out.kp, &out.scale[i], &out.sum[i]);
  };
  if (n < 4) {
    for (int64_t i = 0; i < n; ++i) run(i);
  } else {
    pool.parallel_for(n, run);
  }
}

namespace {

// The reference check of a TQ1_0 linear read in place (see Tq1Scales): every row through the
// repacking reader, which throws for blocks that disagree or a non-finite scale.
void check_tq1_scales(const Linear& w, ThreadPool& pool) {
  Tq1Scales& s = *w.tq1_scales;
  std::call_once(s.once, [&] {
    std::vector<float> scales((size_t)w.out);
    constexpr int64_t kRowsPerTask = 256;
    pool.parallel_for((w.out + kRowsPerTask - 1) / kRowsPerTask, [&](int64_t task) {
      std::vector<int8_t> values((size_t)w.in);
      for (int64_t r = task * kRowsPerTask; r < std::min(w.out, (task + 1) * kRowsPerTask); ++r)
        scales[(size_t)r] = read_ternary_row(TensorType::TQ1_0, w.tensor_data, (uint64_t)w.in, (uint64_t)w.out,
                                             (uint64_t)r, values.data(), w.name) * w.out_scale;
    });
    s.row_scale = std::move(scales);
    s.ready = true;
  });
}

bool all_finite(const float* y, int64_t n) {
  bool ok = true;
  for (int64_t i = 0; i < n; ++i) ok &= std::isfinite(y[i]);
  return ok;
}

}  // namespace

void ternary_matmul(std::initializer_list<LinearOutput> parts, const QuantizedActs& a, ThreadPool& pool) {
  // One parallel loop over the row tasks of every part: one barrier instead of one per matrix.
  struct Part {
    const Linear* w;
    float* y;
    std::vector<int64_t> bounds;
    int64_t first_task;
    const float* row_scale;  // null: TQ1_0 scales from the blocks
    int scale_mismatch = 0;
  };
  std::vector<Part> plan;
  int64_t row_task_count = 0;
  for (const LinearOutput& p : parts) {
    const float* row_scale = p.w->row_scale.data();
    if (p.w->tq1) row_scale = p.w->tq1_scales->ready ? p.w->tq1_scales->row_scale.data() : nullptr;
    plan.push_back({p.w, p.y, row_tasks(p.w->out, pool.size(), a.n == 1), row_task_count, row_scale});
    row_task_count += (int64_t)plan.back().bounds.size() - 1;
  }
  const Kernels& kn = kernels();
  const int64_t token_tasks = (a.n + kTokenBlock - 1) / kTokenBlock;
  pool.parallel_for(row_task_count * token_tasks, [&](int64_t task) {
    const int64_t rt = task % row_task_count, tt = task / row_task_count;
    size_t pi = 0;
    while (pi + 1 < plan.size() && plan[pi + 1].first_task <= rt) ++pi;
    Part& p = plan[pi];
    const Linear& w = *p.w;
    const int64_t t0 = tt * kTokenBlock, t1 = std::min(a.n, t0 + kTokenBlock);
    TernaryGemmArgs args;
    args.w = w.weights;
    args.w_stride = w.stride;
    args.row_scale = p.row_scale;
    args.kp = a.kp;
    args.q = a.q.data() + t0 * a.kp;
    args.q_stride = (size_t)a.kp;
    args.act_scale = a.scale.data() + t0;
    args.act_sum = a.sum.data() + t0;
    args.n_tokens = t1 - t0;
    args.y = p.y + t0 * w.out;
    args.y_stride = (size_t)w.out;
    args.m0 = p.bounds[(size_t)(rt - p.first_task)];
    args.m1 = p.bounds[(size_t)(rt - p.first_task) + 1];
    if (w.tq1) {
      args.scale_mul = w.out_scale;
      if (!p.row_scale) args.scale_mismatch = &p.scale_mismatch;
      kn.tq1_gemm(args);
    } else {
      kn.ternary_gemm(args);
    }
  });
  // A TQ1_0 part computed with its blocks' scales that flagged a disagreement or gave a non-finite
  // output is checked, then computed again with the checked scales.
  for (const Part& p : plan)
    if (p.w->tq1 && !p.row_scale && (p.scale_mismatch || !all_finite(p.y, a.n * p.w->out))) {
      check_tq1_scales(*p.w, pool);
      ternary_matmul({{p.w, p.y}}, a, pool);
    }
}

namespace {

// Storage types with dedicated head kernels (no dequantization to a buffer).
bool head_kernel_type(TensorType t, int64_t k, HeadType& out) {
  switch (t) {
    case TensorType::F16: out = HeadType::F16; break;
    case TensorType::Q8_0: out = HeadType::Q8_0; break;
    case TensorType::Q6_K: out = HeadType::Q6_K; break;
    default: return false;
  }
  return k % head_block_values(out) == 0;
}

}  // namespace

void float_matmul(const Linear& w, const float* x, int64_t n, float* y, ThreadPool& pool) {
  const std::vector<int64_t> bounds = row_tasks(w.out, pool.size(), n == 1);
  const int64_t tasks = (int64_t)bounds.size() - 1;
  HeadType head_type;
  if (head_kernel_type(w.type, w.in, head_type)) {
    // F16 rows take the float activations as they are; Q8_0 / Q6_K take them quantized per block,
    // once per call.
    thread_local std::vector<uint8_t> acts;
    const void* act_data = x;
    size_t act_stride = (size_t)w.in * sizeof(float);
    if (head_type != HeadType::F16) {
      act_stride = head_act_row_bytes(head_type, w.in);
      acts.resize(act_stride * (size_t)n);
      for (int64_t i = 0; i < n; ++i) head_quantize_acts(head_type, x + i * w.in, w.in, acts.data() + i * act_stride);
      act_data = acts.data();
    }
    pool.parallel_for(tasks, [&](int64_t task) {
      HeadGemmArgs args;
      args.w = w.data;
      args.row_bytes = w.row_bytes;
      args.k = w.in;
      args.acts = act_data;
      args.act_stride = act_stride;
      args.n_tokens = n;
      args.y = y;
      args.y_stride = (size_t)w.out;
      args.m0 = bounds[(size_t)task];
      args.m1 = bounds[(size_t)task + 1];
      head_gemm(head_type, args);
    });
  } else {
    // Other types (F32, BF16, Q4_0, ...): each row once as floats, dotted with every token.
    const Kernels& kn = kernels();
    pool.parallel_for(tasks, [&](int64_t task) {
      const int64_t m0 = bounds[(size_t)task], m1 = bounds[(size_t)task + 1];
      thread_local std::vector<float> row;
      for (int64_t m = m0; m < m1; ++m) {
        const uint8_t* src = w.data + (size_t)m * w.row_bytes;
        const float* wr = reinterpret_cast<const float*>(src);
        if (w.type != TensorType::F32) {
          row.resize((size_t)w.in);
          dequantize_row(w.type, src, row.data(), w.in);
          wr = row.data();
        }
        for (int64_t i = 0; i < n; ++i) y[i * w.out + m] = kn.dot_f32(wr, x + i * w.in, w.in);
      }
    });
  }
  if (w.out_scale != 1.f)
    for (int64_t i = 0; i < n * w.out; ++i) y[i] *= w.out_scale;
}

void linear_forward(std::initializer_list<LinearOutput> parts, const float* x, int64_t n,
                    QuantizedActs& scratch, ThreadPool& pool) {
  bool any_ternary = false, all_ternary = true;
  for (const LinearOutput& p : parts) {
    any_ternary = any_ternary || p.w->ternary;
    all_ternary = all_ternary && p.w->ternary;
  }
  // The input is quantized once for every ternary linear that reads it.
  if (any_ternary) quantize_acts(x, n, parts.begin()->w->in, scratch, pool);
  if (all_ternary) {
    ternary_matmul(parts, scratch, pool);
  } else {
    for (const LinearOutput& p : parts) {
      if (p.w->ternary) ternary_matmul({p}, scratch, pool);
      else float_matmul(*p.w, x, n, p.y, pool);
    }
  }
  for (const LinearOutput& p : parts)
    if (!p.w->bias.empty())
      for (int64_t i = 0; i < n; ++i)
        for (int64_t m = 0; m < p.w->out; ++m) p.y[i * p.w->out + m] += p.w->bias[(size_t)m];
}

}  // namespace bitnet
