#!/usr/bin/env bash
# bitnet logits: the .npy header and shape, refusal to overwrite, and that splitting the sequence
# into passes (-b) gives the same logits as one pass.
set -euo pipefail
BITNET=$1
SRC=$2
MODEL=$SRC/../shared/fixtures/models/stories260K/stories260K.f32.gguf
[[ -f $MODEL ]] || { echo "skip: fixture $MODEL absent"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 needed to read .npy"; exit 77; }
WORK=$(mktemp -d "$PWD/logits.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$BITNET" logits -m "$MODEL" --tokens 1,403,407,261,385 -o "$WORK/one.npy" -t 2 2>"$WORK/err" || fail "$(cat "$WORK/err")"
"$BITNET" logits -m "$MODEL" --tokens 1,403,407,261,385 -o "$WORK/split.npy" -b 2 2>/dev/null || fail "-b 2"
"$BITNET" logits -m "$MODEL" --tokens 1,403,407,261,385 -o "$WORK/kvf32.npy" --kv-f32 2>/dev/null || fail "--kv-f32"
# stories260K's heads have 8 values: too small for q8_0 blocks of 32 (the model tests cover q8_0).
if "$BITNET" logits -m "$MODEL" --tokens 1,2 -o "$WORK/q8.npy" -ctk q8_0 -ctv q8_0 2>"$WORK/err"; then fail "q8_0 with head size 8"; fi
grep -q "^error: .*q8_0 KV cache needs a head size that is a multiple of 32; this model's is 8" "$WORK/err" ||
  fail "q8_0 head size message: $(cat "$WORK/err")"
if "$BITNET" logits -m "$MODEL" --tokens 1,2 -o "$WORK/mixed.npy" -ctk q8_0 -ctv f16 2>"$WORK/err"; then fail "accepted different K and V types"; fi
grep -q "^error: .*-ctk q8_0 and -ctv f16" "$WORK/err" || fail "mixed KV types message: $(cat "$WORK/err")"
if "$BITNET" logits -m "$MODEL" --tokens 1,2 -o "$WORK/bad.npy" -ctk q4_0 2>"$WORK/err"; then fail "accepted -ctk q4_0"; fi
grep -q "^error: .*q4_0" "$WORK/err" || fail "bad KV type message: $(cat "$WORK/err")"
"$BITNET" logits -m "$MODEL" -p "Once upon a time" -o "$WORK/prompt.npy" 2>/dev/null || fail "-p"
"$BITNET" logits -m "$MODEL" -p "Once upon a time" --no-bos -o "$WORK/nobos.npy" 2>/dev/null || fail "--no-bos"

if "$BITNET" logits -m "$MODEL" --tokens 1,2 -o "$WORK/one.npy" 2>"$WORK/err"; then fail "overwrote without --force"; fi
grep -q "^error: .*exists.*--force" "$WORK/err" || fail "overwrite message: $(cat "$WORK/err")"
"$BITNET" logits -m "$MODEL" --tokens 1,2 -o "$WORK/one2.npy" --force 2>/dev/null || fail "--force on a new file"
cp "$WORK/one2.npy" "$WORK/keep.npy"
"$BITNET" logits -m "$MODEL" --tokens 1,403,407 -o "$WORK/one2.npy" --force 2>/dev/null || fail "--force"
if "$BITNET" logits -m "$MODEL" --tokens 1,99999 -o "$WORK/bad.npy" 2>"$WORK/err"; then fail "accepted a token outside the vocabulary"; fi
grep -q "^error: .*99999" "$WORK/err" || fail "bad token message: $(cat "$WORK/err")"

python3 - "$WORK" <<'PY'
import ast, math, struct, sys
work = sys.argv[1]

def load(name):
    data = open(f"{work}/{name}", "rb").read()
    assert data[:6] == b"\x93NUMPY", "magic"
    assert data[6:8] == b"\x01\x00", "version 1.0"
    (hlen,) = struct.unpack("<H", data[8:10])
    header = data[10:10 + hlen].decode("latin1")
    assert (10 + hlen) % 64 == 0, f"header not 64-aligned: {10 + hlen}"
    assert header.endswith("\n"), "header must end in a newline"
    d = ast.literal_eval(header.strip())
    assert d["descr"] == "<f4" and d["fortran_order"] is False, d
    rows, cols = d["shape"]
    body = data[10 + hlen:]
    assert len(body) == rows * cols * 4, (len(body), rows, cols)
    values = struct.unpack(f"<{rows * cols}f", body)
    assert all(math.isfinite(v) for v in values), "non-finite logits"
    return rows, cols, values

r, c, one = load("one.npy")
assert (r, c) == (5, 512), (r, c)
r, c, split = load("split.npy")
assert (r, c) == (5, 512)
worst = max(abs(a - b) for a, b in zip(one, split))
assert worst < 1e-4, f"-b 2 differs from one pass by {worst}"
_, _, kvf32 = load("kvf32.npy")
worst_kv = max(abs(a - b) for a, b in zip(one, kvf32))
# f16 rounding of K and V moves logits of magnitude ~20 by ~1e-2 at most.
assert 0 < worst_kv < 0.05, f"f32 KV differs from f16 KV by {worst_kv}"

rp, _, prompt = load("prompt.npy")
rn, _, nobos = load("nobos.npy")
assert rp == rn + 1, (rp, rn)
assert load("one2.npy")[0] == 3
# The same first tokens give the same first rows, whatever follows (causal attention).
_, _, two = load("keep.npy")
worst = max(abs(a - b) for a, b in zip(one[:512], two[:512]))
assert worst < 1e-4, f"row 0 depends on later tokens: {worst}"
print(f"npy ok: 5 x 512; max |diff|: -b 2 vs one pass {worst:.2e}, f32 vs f16 KV {worst_kv:.2e}")
PY
echo "logits: all ok"
