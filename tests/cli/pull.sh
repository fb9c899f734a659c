#!/usr/bin/env bash
# bitnet pull and -hf against the stand-in Hub (build/bitnet-stand-in-hub, tests/hub_stand_in.h):
# the printed path, tags, running a pulled model with -hf, offline mode, a gated repository with
# HF_TOKEN and the token file, and a download killed half-way then resumed.
# Usage: pull.sh BITNET_BINARY SOURCE_DIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" pull "$@"

STAND_IN=$(dirname "$BIN")/bitnet-stand-in-hub
if [[ ! -x $STAND_IN ]]; then
  echo "skip: $STAND_IN is not built"
  exit 77
fi

mkdir -p repo slow
"$BIN" dummy --shape 2b4t --type i2_s -o repo/ggml-model-i2_s.gguf "${SMALL[@]}" 2>/dev/null
"$BIN" dummy --shape 2b4t --type tq1_0 -o repo/ggml-model-tq1_0.gguf "${SMALL[@]}" 2>/dev/null
echo "# a model" > repo/README.md
cp repo/ggml-model-i2_s.gguf slow/model-i2_s.gguf
SIZE=$(stat -c %s slow/model-i2_s.gguf)

"$STAND_IN" org/bitnet-gguf=repo org/gated=repo,token=hf_ok "org/slow=slow,rate=$((SIZE / 3))" > endpoint.txt &
HUB_PID=$!
trap 'kill $HUB_PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do [[ -s endpoint.txt ]] && break; sleep 0.05; done
unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_TOKEN_PATH HF_HUB_CACHE HUGGINGFACE_HUB_CACHE HF_HUB_OFFLINE TRANSFORMERS_OFFLINE
export HF_ENDPOINT=$(cat endpoint.txt) HF_HOME=$WORK/hf
CACHE=$HF_HOME/hub

expect_error() {  # pattern, command...
  local pattern=$1 rc=0
  shift
  "$@" >out.txt 2>err.txt || rc=$?
  if [[ $rc == 1 && $(grep -c '^error: ' err.txt) == 1 ]] && grep -q "^error: .*$pattern" err.txt; then ok; else
    fail "'$*' (exit $rc): expected one error line with '$pattern', got: $(cat err.txt)"
  fi
}

# pull prints the snapshot path (a link into blobs/) as its last stdout line; progress goes to stderr.
if path=$("$BIN" pull org/bitnet-gguf 2>err.txt | tail -n 1) && [[ $path == $CACHE/models--org--bitnet-gguf/snapshots/*/ggml-model-i2_s.gguf ]] &&
   cmp -s "$path" repo/ggml-model-i2_s.gguf && [[ -L $path ]]; then ok; else fail "pull: path '$path' $(cat err.txt)"; fi
grep -q "ggml-model-i2_s.gguf: 100% (" err.txt && ok || fail "pull: no progress lines: $(cat err.txt)"
[[ $(cat "$CACHE/models--org--bitnet-gguf/refs/main") == $(basename "$(dirname "$path")") ]] && ok || fail "refs/main"
tq=$("$BIN" pull org/bitnet-gguf:TQ1_0 2>/dev/null | tail -n 1)
cmp -s "$tq" repo/ggml-model-tq1_0.gguf && ok || fail "pull :TQ1_0 gave '$tq'"
expect_error "several GGUF files" "$BIN" pull org/bitnet-gguf:ggml-model
expect_error "no GGUF file .* matches 'q4_k'" "$BIN" pull org/bitnet-gguf:q4_k
expect_error "not found" "$BIN" pull org/missing
expect_error "not a Hugging Face model name" "$BIN" pull nonsense
expect_error "not both" "$BIN" -hf org/bitnet-gguf -m x.gguf -p hi

# -hf wherever -m works: generation, tokenization; offline from the cache without any server.
if "$BIN" -hf org/bitnet-gguf -p "hello" -n 4 -t 1 >gen.txt 2>err.txt; then ok; else fail "-hf generate: $(cat err.txt)"; fi
"$BIN" tokenize -hf org/bitnet-gguf:tq1_0 -p hello --ids >ids.txt 2>err.txt && grep -q '^\[' ids.txt && ok ||
  fail "tokenize -hf: $(cat err.txt)"
"$BIN" logits -hf org/bitnet-gguf --tokens 1,2,3 -o logits.npy -t 1 >/dev/null 2>err.txt && [[ -s logits.npy ]] && ok ||
  fail "logits -hf: $(cat err.txt)"
"$BIN" bench -hf org/bitnet-gguf:tq1_0 -p 0 -n 2 -r 1 -t 1 >bench.txt 2>err.txt && grep -q "tg2" bench.txt && ok ||
  fail "bench -hf: $(cat err.txt)"
if HF_HUB_OFFLINE=1 HF_ENDPOINT=http://127.0.0.1:1 "$BIN" -hf org/bitnet-gguf -p "hello" -n 4 -t 1 >/dev/null 2>err.txt
then ok; else fail "offline -hf: $(cat err.txt)"; fi
expect_error "HF_HUB_OFFLINE.*not in the cache" env HF_HUB_OFFLINE=1 "$BIN" pull org/gated

# A gated repository: refused without a token (naming HF_TOKEN), then HF_TOKEN, then the token file.
expect_error "gated.*HF_TOKEN" "$BIN" pull org/gated
HF_TOKEN=hf_ok "$BIN" pull org/gated >out.txt 2>err.txt && cmp -s "$(tail -n 1 out.txt)" repo/ggml-model-i2_s.gguf && ok ||
  fail "HF_TOKEN pull: $(cat err.txt)"
rm -rf "$CACHE/models--org--gated"
echo "hf_ok" > "$HF_HOME/token"
"$BIN" pull org/gated >out.txt 2>err.txt && ok || fail "token file pull: $(cat err.txt)"
rm "$HF_HOME/token"

# Killed half-way (the stand-in sends this file in about 3 s), then resumed with a Range request.
"$BIN" pull org/slow >/dev/null 2>slow-err.txt &
PULL_PID=$!
partial=
for _ in $(seq 500); do
  partial=$(ls "$CACHE"/models--org--slow/blobs/*.incomplete 2>/dev/null || true)
  [[ -n $partial && $(stat -c %s "$partial") -gt $((SIZE / 4)) ]] && break
  sleep 0.02
done
kill -TERM $PULL_PID
wait $PULL_PID 2>/dev/null || true
have=$(stat -c %s "$partial" 2>/dev/null || echo 0)
if ((have > 0 && have < SIZE)) && ! ls "$CACHE"/models--org--slow/snapshots/*/model-i2_s.gguf >/dev/null 2>&1; then ok; else
  fail "interrupted pull left $have of $SIZE bytes"; fi
path=$("$BIN" pull org/slow 2>err.txt | tail -n 1)
cmp -s "$path" slow/model-i2_s.gguf && ok || fail "resumed pull: $(cat err.txt)"
grep -q "resuming model-i2_s.gguf at $have of $SIZE bytes" err.txt && ok || fail "no resume message: $(cat err.txt)"
[[ ! -e $partial ]] && ok || fail "the .incomplete file remains"

# On a terminal (script gives the command one) the progress is a redrawn bar with bytes, speed, ETA.
if command -v script >/dev/null; then
  HF_HOME=$WORK/hf-tty script -qec "'$BIN' pull org/slow" /dev/null </dev/null >tty.txt 2>&1 || true
  if grep -q $'\r''model-i2_s.gguf \[[#.]*\] .* KiB / .* KiB .*/s ETA [0-9]' tty.txt; then ok; else
    fail "no progress bar on a terminal: $(tr '\r' '\n' < tty.txt | tail -n 3)"; fi
fi

report
