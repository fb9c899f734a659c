#!/usr/bin/env python3
"""Trains the demo BitNet b1.58 model from scratch and writes it as a GGUF the engine runs.

  1. corpus: short stories sampled from the stories260K teacher (training/teacher.py);
  2. tokenizer: a byte-level BPE trained on that corpus (training/bpe.py);
  3. model: the engine's `bitnet-b1.58` architecture (RMSNorm, NEOX RoPE, attention and FFN
     sub-norms, ReLU^2 gated FFN, tied float embedding/head) in which every linear layer is a
     BitLinear: ternary weights by absmean, per-token int8 absmax activations, straight-through
     gradients;
  4. export: ternary weights in I2_S, embedding in F16, norms in F32;
  5. evaluation: perplexity of the exported (quantized) model on held-out stories, computed the
     way `bitnet perplexity` computes it, stored in a JSON file that a test compares with the
     engine's figure.

Usage: python3 training/train_demo.py --out-dir models [--steps N] [--threads 2]
"""
import argparse
import json
import math
import os
import re
import sys
import time

# One thread (set before torch loads OpenBLAS): the result does not depend on the machine's
# thread count, and on the shared 2-core machine a second thread waiting at every barrier made
# training 3x slower (95 vs 275 tokens/s), not faster.
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import gguf_file  # noqa: E402
from teacher import Teacher  # noqa: E402

SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- the model -------------------------------------------------------------------------------

def quantize_weight(w):
    """BitNet b1.58: ternary values round(w / mean|w|) clipped to [-1, 1], and that scale."""
    scale = w.abs().mean().clamp(min=1e-5)
    return (w / scale).round().clamp(-1, 1), scale


def quantize_acts(x):
    """Per-token int8 absmax, as the engine's quantize_row_i8: q = round-half-even(x * 127 / amax),
    clipped to [-128, 127]; the dequantized value is q * (1 / sigma)."""
    sigma = 127.0 / x.abs().amax(-1, keepdim=True).clamp(min=1e-5)
    return (x * sigma).round().clamp(-128, 127), 1.0 / sigma


class BitLinear(torch.nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(n_out, n_in).normal_(0, 0.02))

    def forward(self, x):
        t, ws = quantize_weight(self.weight)
        q, inv_sigma = quantize_acts(x)
        if not self.training:
            # Integer products are exact in f32 (|sum| < 2^24), then one rescale: the engine's math.
            return (q @ t.T) * (inv_sigma * ws)
        w = self.weight + (t * ws - self.weight).detach()
        xq = x + (q * inv_sigma - x).detach()
        return xq @ w.T


class RMSNorm(torch.nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + self.eps) * self.weight


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        E, H, FF = c["n_embd"], c["n_head"], c["n_ff"]
        self.c = c
        self.attn_norm, self.ffn_norm = RMSNorm(E, c["eps"]), RMSNorm(E, c["eps"])
        self.attn_sub_norm, self.ffn_sub_norm = RMSNorm(E, c["eps"]), RMSNorm(FF, c["eps"])
        self.wq, self.wk, self.wv, self.wo = BitLinear(E, E), BitLinear(E, E), BitLinear(E, E), BitLinear(E, E)
        self.gate, self.up, self.down = BitLinear(E, FF), BitLinear(E, FF), BitLinear(FF, E)

    def forward(self, x, cos, sin, mask):
        B, T, E = x.shape
        H = self.c["n_head"]
        hd = E // H
        h = self.attn_norm(x)
        q, k, v = (lin(h).view(B, T, H, hd).transpose(1, 2) for lin in (self.wq, self.wk, self.wv))
        q, k = rope_neox(q, cos, sin), rope_neox(k, cos, sin)
        att = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask, dim=-1) @ v
        x = x + self.wo(self.attn_sub_norm(att.transpose(1, 2).reshape(B, T, E)))
        h = self.ffn_norm(x)
        g = F.relu(self.gate(h)).square() * self.up(h)
        return x + self.down(self.ffn_sub_norm(g))


def rope_neox(x, cos, sin):
    """Rotates pairs (j, j + d/2) of each head by position * theta^(-2j/d)."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class BitNetModel(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embd = torch.nn.Parameter(torch.empty(c["n_vocab"], c["n_embd"]).normal_(0, 0.02))
        self.blocks = torch.nn.ModuleList(Block(c) for _ in range(c["n_layer"]))
        self.output_norm = RMSNorm(c["n_embd"], c["eps"])
        hd = c["n_embd"] // c["n_head"]
        # As the engine: the frequencies rounded to f32, the angles computed in f64.
        inv_freq = (c["rope_theta"] ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)).float().double()
        self.register_buffer("inv_freq", inv_freq,
                             persistent=False)

    def embedding(self):
        # The file stores the embedding (= the head) as F16; evaluation uses exactly those values.
        return self.embd if self.training else self.embd.half().float()

    def forward(self, tokens):
        T = tokens.shape[1]
        ang = torch.arange(T, dtype=torch.float64)[:, None] * self.inv_freq[None, :]
        cos, sin = torch.cos(ang).float(), torch.sin(ang).float()
        mask = torch.full((T, T), float("-inf")).triu(1)
        emb = self.embedding()
        x = emb[tokens]
        for blk in self.blocks:
            x = blk(x, cos, sin, mask)
        return self.output_norm(x) @ emb.T


# ---- data ------------------------------------------------------------------------------------

def make_corpus(args, out_dir):
    """Teacher stories (ASCII only; one cut off by the length limit ends at its last full sentence)
    as a list of strings; cached in the work dir."""
    cache = os.path.join(args.work_dir, f"stories-{args.seed}-{args.stories}-{args.teacher_temp}.json")
    if os.path.exists(cache):
        with open(cache) as f:
            return json.load(f)
    fx = args.fixtures
    teacher = Teacher(os.path.join(fx, "stories260K.bin"), os.path.join(fx, "tok512.bin"))
    # The sampler is checked against llama2.c first: greedy from BOS must give its 200 tokens.
    with open(os.path.join(fx, "expected_greedy200.txt")) as f:
        expected = f.read().rstrip("\n")
    ids, _ = teacher.sample(1, 200, 0.0, None)
    if teacher.decode(ids[0]) != expected:
        raise SystemExit("teacher: greedy sample differs from llama2.c's expected_greedy200.txt")
    gen = torch.Generator().manual_seed(args.seed)
    stories, t0 = [], time.time()
    while len(stories) < args.stories:
        ids, done = teacher.sample(args.teacher_batch, args.teacher_steps, args.teacher_temp, gen)
        for s, d in zip(ids, done):
            text = teacher.decode(s).strip()
            if not d:  # cut off by the length limit: keep its whole sentences
                m = re.match(r'(?s).*[.!?]"?', text)
                text = m.group(0) if m else ""
            if text and text.isascii():
                stories.append(text)
        rate = len(stories) / (time.time() - t0)
        log(f"corpus: {len(stories)}/{args.stories} stories, {rate:.0f} stories/s")
    stories = stories[:args.stories]
    os.makedirs(args.work_dir, exist_ok=True)
    with open(cache, "w") as f:
        json.dump(stories, f)
    return stories


def tokenize_stories(tok, stories, bos, eos):
    out = []
    for s in stories:
        out.append(bos)
        out.extend(tok.encode(s))
        out.append(eos)
    return np.asarray(out, dtype=np.int64)


# ---- evaluation as `bitnet perplexity` does it -------------------------------------------------

@torch.no_grad()
def perplexity(model, tokens, n_ctx, bos):
    """llama-perplexity's measure: chunks of n_ctx tokens, the first replaced by BOS, the second
    half scored. Returns (ppl, number of scored tokens)."""
    model.eval()
    nll, count = 0.0, 0
    first = n_ctx // 2
    for c in range(len(tokens) // n_ctx):
        chunk = torch.tensor(tokens[c * n_ctx:(c + 1) * n_ctx], dtype=torch.long)
        inp = chunk.clone()
        inp[0] = bos
        logits = model(inp[None])[0].double()
        lp = torch.log_softmax(logits[first:n_ctx - 1], dim=-1)
        nll -= lp.gather(1, chunk[first + 1:, None]).sum().item()
        count += n_ctx - 1 - first
    model.train()
    return math.exp(nll / count), count


# ---- export ----------------------------------------------------------------------------------

def export_gguf(model, tok, c, path, bos, eos):
    md = {
        "general.architecture": "bitnet-b1.58",
        "general.name": "bitnet-demo-stories",
        "general.license": "MIT",
        "bitnet-b1.58.context_length": c["n_ctx"],
        "bitnet-b1.58.embedding_length": c["n_embd"],
        "bitnet-b1.58.block_count": c["n_layer"],
        "bitnet-b1.58.feed_forward_length": c["n_ff"],
        "bitnet-b1.58.attention.head_count": c["n_head"],
        "bitnet-b1.58.attention.head_count_kv": c["n_head"],
        "bitnet-b1.58.rope.freq_base": float(c["rope_theta"]),
        "bitnet-b1.58.attention.layer_norm_rms_epsilon": float(c["eps"]),
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "gpt2",
        "tokenizer.ggml.tokens": tok.tokens,
        "tokenizer.ggml.token_type": [1] * (len(tok.tokens) - len(SPECIALS)) + [3] * len(SPECIALS),
        "tokenizer.ggml.merges": [f"{l} {r}" for l, r in tok.merges],
        "tokenizer.ggml.bos_token_id": bos,
        "tokenizer.ggml.eos_token_id": eos,
        "tokenizer.ggml.add_bos_token": True,
    }
    tensors = []

    def f32(name, t):
        tensors.append((name, [t.numel()], gguf_file.F32, t.detach().float().numpy().astype("<f4").tobytes()))

    def ternary(name, lin):
        t, s = quantize_weight(lin.weight.detach())
        rows, cols = t.shape
        tensors.append((name, [cols, rows], gguf_file.I2_S,
                        gguf_file.pack_i2s(t.numpy().astype(np.int8), float(s))))

    emb = model.embd.detach().half().numpy().astype("<f2")
    tensors.append(("token_embd.weight", [c["n_embd"], c["n_vocab"]], gguf_file.F16, emb.tobytes()))
    f32("output_norm.weight", model.output_norm.weight)
    for i, b in enumerate(model.blocks):
        p = f"blk.{i}."
        f32(p + "attn_norm.weight", b.attn_norm.weight)
        f32(p + "ffn_norm.weight", b.ffn_norm.weight)
        f32(p + "attn_sub_norm.weight", b.attn_sub_norm.weight)
        f32(p + "ffn_sub_norm.weight", b.ffn_sub_norm.weight)
        for name, lin in (("attn_q", b.wq), ("attn_k", b.wk), ("attn_v", b.wv), ("attn_output", b.wo),
                          ("ffn_gate", b.gate), ("ffn_up", b.up), ("ffn_down", b.down)):
            ternary(p + name + ".weight", lin)
    gguf_file.write(path, md, tensors)


# ---- main ------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", default="models")
    ap.add_argument("--work-dir", default="build/demo-model")
    ap.add_argument("--fixtures", default="../shared/fixtures/models/stories260K")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--stories", type=int, default=3000)
    ap.add_argument("--heldout-stories", type=int, default=48)
    ap.add_argument("--teacher-batch", type=int, default=500)
    ap.add_argument("--teacher-temp", type=float, default=0.8)
    ap.add_argument("--teacher-steps", type=int, default=256, help="longest story in teacher tokens")
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--embd", type=int, default=256)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ff", type=int, default=512)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eval-ctx", type=int, default=128)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    os.makedirs(args.out_dir, exist_ok=True)
    os.makedirs(args.work_dir, exist_ok=True)
    t_start = time.time()

    stories = make_corpus(args, args.out_dir)
    heldout, train = stories[:args.heldout_stories], stories[args.heldout_stories:]
    tok = bpe.Bpe.train("\n".join(train), args.vocab - 256 - len(SPECIALS), SPECIALS, log=log)
    bos, eos = tok.ids[SPECIALS[0]], tok.ids[SPECIALS[1]]
    data = tokenize_stories(tok, train, bos, eos)
    log(f"corpus: {len(train)} training stories, {len(data)} tokens; {len(heldout)} held out")

    heldout_text = "\n\n".join(heldout) + "\n"
    heldout_tokens = [bos] + tok.encode(heldout_text)

    c = dict(n_vocab=len(tok.tokens), n_embd=args.embd, n_layer=args.layers, n_head=args.heads, n_ff=args.ff,
             n_ctx=args.ctx, eps=1e-5, rope_theta=10000.0)
    model = BitNetModel(c)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.2f}M parameters {c}")

    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and n != "embd"]
    other = [p for n, p in model.named_parameters() if not (p.dim() == 2 and n != "embd")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": other, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    warmup = max(1, args.steps // 20)

    def lr_at(step):
        if step < warmup:
            return args.lr * (step + 1) / warmup
        frac = (step - warmup) / max(1, args.steps - warmup)
        return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))

    gen = np.random.default_rng(args.seed)
    T, B = args.ctx, args.batch
    t_train, tokens_seen, avg = time.time(), 0, None
    for step in range(args.steps):
        starts = gen.integers(0, len(data) - T - 1, size=B)
        batch = torch.from_numpy(np.stack([data[s:s + T + 1] for s in starts]))
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens_seen += B * T
        avg = loss.item() if avg is None else 0.95 * avg + 0.05 * loss.item()
        if step % 10 == 0 or step == args.steps - 1:
            el = time.time() - t_train
            rate = tokens_seen / el
            eta = el / (step + 1) * (args.steps - step - 1)
            log(f"step {step + 1}/{args.steps}  loss {avg:.3f}  lr {lr_at(step):.2e}  {rate:.0f} tok/s  "
                f"elapsed {el / 60:.1f} min  ETA {eta / 60:.1f} min")
    train_seconds = time.time() - t_train

    ppl, scored = perplexity(model, heldout_tokens, args.eval_ctx, bos)
    log(f"held-out perplexity (quantized model, n_ctx {args.eval_ctx}): {ppl:.4f} over {scored} tokens")

    name = "bitnet-demo-stories"
    path = os.path.join(args.out_dir, name + ".gguf")
    export_gguf(model, tok, c, path, bos, eos)
    with open(os.path.join(args.out_dir, name + ".heldout.txt"), "w") as f:
        f.write(heldout_text)
    words = sorted({w.lower() for s in train for w in re.findall(r"[A-Za-z]+", s)})
    with open(os.path.join(args.out_dir, name + ".words"), "w") as f:
        f.write("\n".join(words) + "\n")
    report = {
        "model": name + ".gguf",
        "heldout": name + ".heldout.txt",
        "n_ctx": args.eval_ctx,
        "perplexity": round(ppl, 6),
        "scored_tokens": scored,
        "heldout_tokens": len(heldout_tokens),
        "parameters": n_params,
        "config": c,
        "training": {"steps": args.steps, "batch": B, "ctx": T, "tokens": tokens_seen, "lr": args.lr,
                     "seed": args.seed, "stories": len(train), "corpus_tokens": int(len(data)),
                     "train_seconds": round(train_seconds), "total_seconds": round(time.time() - t_start),
                     "tokens_per_second": round(tokens_seen / train_seconds)},
        "final_loss": round(avg, 4),
    }
    with open(os.path.join(args.out_dir, name + ".json"), "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    log(f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB) in {(time.time() - t_start) / 60:.1f} min")


if __name__ == "__main__":
    main()
