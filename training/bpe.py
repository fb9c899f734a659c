"""Byte-level BPE (GPT-2 style), trained on the corpus and stored in the GGUF as
tokenizer.ggml.model "gpt2" with pre-tokenizer "gpt2", which the engine implements.

The corpus is ASCII, where GPT-2's pre-tokenizer regex (\\p{L} letters, \\p{N} digits) is exactly the
ASCII pattern below, so this encoder gives the engine's token ids (the perplexity test compares
the two on the held-out text).
"""
import collections
import re

PRETOKENIZE = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")


def byte_to_unicode():
    """GPT-2's reversible map from bytes to printable characters."""
    printable = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or b >= 174]
    mapping, extra = {}, 256
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(extra)
            extra += 1
    return mapping


BYTE_TEXT = byte_to_unicode()


def words_of(text):
    return PRETOKENIZE.findall(text)


class Bpe:
    def __init__(self, merges, specials):
        self.merges = merges  # list of (left, right) in rank order, as byte-level texts
        self.tokens = [BYTE_TEXT[b] for b in range(256)] + [l + r for l, r in merges] + list(specials)
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.cache = {}

    @staticmethod
    def train(text, n_merges, specials, log=print):
        """Learns n_merges merges from the word counts of text (most frequent pair first; ties by
        the pair's first occurrence in the sorted word list, so the result is deterministic)."""
        counts = collections.Counter(words_of(text))
        words = [[BYTE_TEXT[b] for b in w.encode("utf-8")] for w in sorted(counts)]
        freq = [counts[w] for w in sorted(counts)]
        merges = []
        for step in range(n_merges):
            pairs = collections.Counter()
            for w, f in zip(words, freq):
                for a, b in zip(w, w[1:]):
                    pairs[(a, b)] += f
            if not pairs:
                break
            best = max(pairs.items(), key=lambda kv: kv[1])[0]  # first maximal in insertion order
            merges.append(best)
            joined = best[0] + best[1]
            for i, w in enumerate(words):
                if len(w) < 2:
                    continue
                j, out = 0, []
                while j < len(w):
                    if j + 1 < len(w) and w[j] == best[0] and w[j + 1] == best[1]:
                        out.append(joined)
                        j += 2
                    else:
                        out.append(w[j])
                        j += 1
                words[i] = out
            if log and (step + 1) % 256 == 0:
                log(f"tokenizer: {step + 1}/{n_merges} merges")
        return Bpe(merges, specials)

    def _encode_word(self, word):
        ids = self.cache.get(word)
        if ids is not None:
            return ids
        parts = [BYTE_TEXT[b] for b in word.encode("utf-8")]
        while len(parts) > 1:
            best, best_rank = None, None
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = i, r
            if best is None:
                break
            parts[best:best + 2] = [parts[best] + parts[best + 1]]
        ids = [self.ids[p] for p in parts]
        self.cache[word] = ids
        return ids

    def encode(self, text):
        out = []
        for w in words_of(text):
            out.extend(self._encode_word(w))
        return out

    def decode(self, ids):
        inverse = {v: k for k, v in BYTE_TEXT.items()}
        raw = bytearray()
        for i in ids:
            t = self.tokens[i]
            if all(ch in inverse for ch in t):
                raw.extend(inverse[ch] for ch in t)
        return raw.decode("utf-8", errors="replace")
