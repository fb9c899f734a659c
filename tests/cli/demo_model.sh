#!/usr/bin/env bash
# The shipped demo model (models/bitnet-demo-stories.gguf, trained by training/train_demo.py):
#  - lossless: `bitnet perplexity` on its held-out stories agrees within 0.1% with the trainer's
#    own evaluation of the quantized model (stored in the .json beside it), on the same tokens;
#  - it writes text: at least 90% of the words it generates are words of its training corpus.
set -euo pipefail
BITNET=$(realpath "$1")
SRC=$(realpath "$2")
M=$SRC/models/bitnet-demo-stories
for f in "$M.gguf" "$M.json" "$M.heldout.txt" "$M.words"; do
  [[ -f $f ]] || { echo "FAIL: $f is missing"; exit 1; }
done
WORK=$(mktemp -d "$PWD/demo_model.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
json() { sed -nE "s/^ *\"$1\": ([0-9.]+),?$/\1/p" "$M.json" | head -1; }
want_ppl=$(json perplexity)
want_tokens=$(json heldout_tokens)
n_ctx=$(json n_ctx)
[[ -n $want_ppl && -n $want_tokens && -n $n_ctx ]] || { echo "FAIL: $M.json lacks perplexity/heldout_tokens/n_ctx"; exit 1; }

"$BITNET" perplexity -m "$M.gguf" -f "$M.heldout.txt" -c "$n_ctx" -t 2 >"$WORK/ppl.txt" 2>"$WORK/err" \
  || { cat "$WORK/err"; echo "FAIL: perplexity"; exit 1; }
tokens=$(sed -nE 's/.*tokenizing the input took .* s, ([0-9]+) tokens$/\1/p' "$WORK/err")
[[ $tokens == "$want_tokens" ]] || { echo "FAIL: the engine makes $tokens tokens of the held-out text, the trainer $want_tokens"; exit 1; }
ppl=$(sed -nE 's/^Final estimate: PPL = ([0-9.]+).*/\1/p' "$WORK/ppl.txt")
echo "held-out perplexity: engine $ppl, trainer $want_ppl ($tokens tokens, n_ctx $n_ctx)"
awk -v a="$ppl" -v b="$want_ppl" 'BEGIN { d = (a - b) / b; if (d < 0) d = -d; exit !(a > 0 && d < 0.001) }' \
  || { echo "FAIL: engine and trainer perplexities differ by more than 0.1%"; exit 1; }

# Generation reads as text: sampled (fixed seed) and greedy.
for sampling in "--temp 0.8 -s 7" "--temp 0"; do
  # shellcheck disable=SC2086
  "$BITNET" -m "$M.gguf" -p "Once upon a time" -n 200 -t 2 $sampling >"$WORK/out.txt" 2>"$WORK/err" \
    || { cat "$WORK/err"; echo "FAIL: generation ($sampling)"; exit 1; }
  grep -oE '[A-Za-z]+' "$WORK/out.txt" | tr 'A-Z' 'a-z' >"$WORK/words"
  total=$(wc -l <"$WORK/words")
  known=$(grep -cxFf "$M.words" "$WORK/words" || true)
  echo "generation ($sampling): $known of $total words are corpus words"
  head -c 300 "$WORK/out.txt"; echo
  awk -v k="$known" -v n="$total" 'BEGIN { exit !(n >= 20 && k >= 0.9 * n) }' \
    || { echo "FAIL: fewer than 90% of at least 20 words are corpus words"; exit 1; }
done
echo "demo_model: all ok"
