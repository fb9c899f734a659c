#!/usr/bin/env bash
# bitnet tokenize: --jsonl ids equal llama.cpp's reference tokenizations (LLaMA 3 BPE through the
# tokenizer.json, LLaMA 2 SPM through a vocab-only GGUF, which also shows that -m reads no weights).
set -euo pipefail
BITNET=$1
SRC=$2
FIX=$SRC/../shared/fixtures
for f in tokenizers/llama3_tokenizer.json vocab/ggml-vocab-llama-bpe.gguf.inp vocab/ggml-vocab-llama-spm.gguf; do
  [[ -f $FIX/$f ]] || { echo "skip: fixture $FIX/$f absent"; exit 77; }
done
command -v python3 >/dev/null || { echo "skip: python3 needed to write the JSON lines"; exit 77; }
WORK=$(mktemp -d "$PWD/tokenize.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Cases as JSON lines, expected ids as JSON arrays (the .inp ends with a separator).
to_jsonl() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
inp, out, dst = sys.argv[1:]
cases = open(inp, encoding="utf-8").read().split("\n__ggml_vocab_test__\n")
expected = open(out).read().split("\n")[:-1]
if len(cases) == len(expected) + 1 and cases[-1] == "":
    cases.pop()
assert len(cases) == len(expected), (len(cases), len(expected))
with open(dst + ".jsonl", "w") as f:
    for c in cases:
        f.write(json.dumps(c) + "\n")
with open(dst + ".expected", "w") as f:
    for e in expected:
        f.write(json.dumps([int(x) for x in e.split()], separators=(",", ":")) + "\n")
PY
}

check() {  # name, vocabulary option, value
  local name=$1; shift
  to_jsonl "$FIX/vocab/ggml-vocab-$name.gguf.inp" "$FIX/vocab/ggml-vocab-$name.gguf.out" "$WORK/$name"
  "$BITNET" tokenize "$@" --no-bos --jsonl < "$WORK/$name.jsonl" > "$WORK/$name.got"
  if ! diff -u "$WORK/$name.expected" "$WORK/$name.got"; then
    echo "FAIL: $name tokenizations differ"; exit 1
  fi
  echo "ok: $name, $(wc -l < "$WORK/$name.got") cases"
}
check llama-bpe --tokenizer "$FIX/tokenizers/llama3_tokenizer.json"
check llama-spm -m "$FIX/vocab/ggml-vocab-llama-spm.gguf"

# --ids adds BOS by default for these vocabularies; --no-bos drops it.
with_bos=$("$BITNET" tokenize -m "$FIX/vocab/ggml-vocab-llama-spm.gguf" -p "Hello world" --ids)
without=$("$BITNET" tokenize -m "$FIX/vocab/ggml-vocab-llama-spm.gguf" -p "Hello world" --ids --no-bos)
[[ $with_bos == "[1, 15043, 3186]" ]] || { echo "FAIL: --ids gave '$with_bos'"; exit 1; }
[[ $without == "[15043, 3186]" ]] || { echo "FAIL: --ids --no-bos gave '$without'"; exit 1; }
# The piece listing.
"$BITNET" tokenize -m "$FIX/vocab/ggml-vocab-llama-spm.gguf" -p "Hello world" --no-bos | grep -q "15043 -> ' Hello'" \
  || { echo "FAIL: piece listing"; exit 1; }
# Bad input: one error line, exit 1.
if echo '{"not": "a string"}' | "$BITNET" tokenize --tokenizer "$FIX/tokenizers/llama3_tokenizer.json" --jsonl 2>"$WORK/err"; then
  echo "FAIL: a non-string JSON line was accepted"; exit 1
fi
grep -q "^error: stdin line 1" "$WORK/err" || { echo "FAIL: error message: $(cat "$WORK/err")"; exit 1; }
echo "tokenize: all ok"
