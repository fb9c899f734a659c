"""The stories260K teacher (karpathy/llama2.c tinyllamas, MIT): a LLaMA model of 260K parameters
trained on TinyStories, read from llama2.c's own .bin format and sampled in batches with torch.

Its samples are the demo model's training corpus. llama2.c ends a story by emitting BOS (the
TinyStories token stream has BOS before each story and no EOS), so a sample stops there.
"""
import struct

import torch

BOS, EOS = 1, 2


class Teacher:
    def __init__(self, model_path, tokenizer_path):
        with open(model_path, "rb") as f:
            data = f.read()
        dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("7i", data[:28])
        self.shared = vocab > 0
        vocab = abs(vocab)
        self.dim, self.n_layers, self.n_heads, self.n_kv, self.vocab, self.seq_len = dim, n_layers, n_heads, n_kv, vocab, seq_len
        self.head = dim // n_heads
        w = torch.frombuffer(bytearray(data[28:]), dtype=torch.float32)
        off = 0

        def take(*shape):
            nonlocal off
            n = 1
            for s in shape:
                n *= s
            t = w[off:off + n].view(*shape)
            off += n
            return t

        kv_dim = n_kv * self.head
        self.emb = take(vocab, dim)
        self.rms_att = take(n_layers, dim)
        self.wq = take(n_layers, dim, dim)
        self.wk = take(n_layers, kv_dim, dim)
        self.wv = take(n_layers, kv_dim, dim)
        self.wo = take(n_layers, dim, dim)
        self.rms_ffn = take(n_layers, dim)
        self.w1 = take(n_layers, hidden, dim)
        self.w2 = take(n_layers, dim, hidden)
        self.w3 = take(n_layers, hidden, dim)
        self.rms_final = take(dim)
        take(seq_len, self.head // 2)  # freq_cis_real, recomputed below
        take(seq_len, self.head // 2)  # freq_cis_imag
        self.wcls = self.emb if self.shared else take(vocab, dim)
        # llama2.c's RoPE: pairs (2j, 2j+1) rotated by pos * 10000^(-2j/head).
        j = torch.arange(0, self.head, 2, dtype=torch.float32)
        self.inv_freq = 1.0 / (10000.0 ** (j / self.head))

        with open(tokenizer_path, "rb") as f:
            tok = f.read()
        pos = 4
        self.pieces = []
        for _ in range(vocab):
            _score, n = struct.unpack("fi", tok[pos:pos + 8])
            pos += 8
            self.pieces.append(tok[pos:pos + n])
            pos += n

    @staticmethod
    def _rmsnorm(x, w):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-5) * w

    def _rope(self, x, p):
        # x: [B, H, head]; rotate pairs (2j, 2j+1) at position p.
        ang = p * self.inv_freq
        c, s = torch.cos(ang), torch.sin(ang)
        a, b = x[..., 0::2], x[..., 1::2]
        out = torch.empty_like(x)
        out[..., 0::2] = a * c - b * s
        out[..., 1::2] = a * s + b * c
        return out

    @torch.no_grad()
    def sample(self, n, steps, temperature, generator):
        """n stories of at most `steps` tokens, each a list of ids (without BOS), sampled from BOS
        with the given temperature (0 = greedy). A story ends at the BOS or EOS it emits."""
        B, H, KV, hd = n, self.n_heads, self.n_kv, self.head
        group = H // KV
        kc = torch.zeros(self.n_layers, B, KV, steps, hd)
        vc = torch.zeros(self.n_layers, B, KV, steps, hd)
        token = torch.full((B,), BOS, dtype=torch.long)
        out = torch.zeros(B, steps, dtype=torch.long)
        done = torch.zeros(B, dtype=torch.bool)
        length = torch.full((B,), steps, dtype=torch.long)
        for p in range(steps):
            x = self.emb[token]
            for l in range(self.n_layers):
                h = self._rmsnorm(x, self.rms_att[l])
                q = self._rope((h @ self.wq[l].T).view(B, H, hd), p)
                k = self._rope((h @ self.wk[l].T).view(B, KV, hd), p)
                kc[l, :, :, p] = k
                vc[l, :, :, p] = (h @ self.wv[l].T).view(B, KV, hd)
                qg = q.view(B, KV, group, hd)  # the query heads sharing each KV head
                # Broadcast products rather than batched matmuls: the matrices are tiny.
                scores = (qg[:, :, :, None, :] * kc[l, :, :, None, :p + 1]).sum(-1) / hd ** 0.5
                att = torch.softmax(scores, dim=-1)
                o = (att[..., None] * vc[l, :, :, None, :p + 1]).sum(3).reshape(B, H * hd)
                x = x + o @ self.wo[l].T
                h = self._rmsnorm(x, self.rms_ffn[l])
                g = h @ self.w1[l].T
                x = x + (torch.nn.functional.silu(g) * (h @ self.w3[l].T)) @ self.w2[l].T
            logits = self._rmsnorm(x, self.rms_final) @ self.wcls.T
            if temperature == 0:
                token = logits.argmax(-1)
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            ended = ~done & ((token == BOS) | (token == EOS))
            length[ended] = p
            done |= ended
            out[:, p] = token
            if bool(done.all()):
                break
        return [out[i, :length[i]].tolist() for i in range(B)], done.tolist()

    def decode(self, ids):
        """Text of a story as llama2.c prints it: the first piece's leading space dropped, <0xNN>
        pieces as their byte."""
        raw = b""
        for i, t in enumerate(ids):
            piece = self.pieces[t]
            if i == 0 and piece.startswith(b" "):
                piece = piece[1:]
            if len(piece) == 6 and piece.startswith(b"<0x") and piece.endswith(b">"):
                piece = bytes([int(piece[3:5], 16)])
            raw += piece
        return raw.decode("utf-8", errors="replace")
