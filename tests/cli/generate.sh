#!/usr/bin/env bash
# bitnet (generate): option handling and error reporting; with the stories260K fixture, a short
# run with the flags bitnet.cpp's wrappers pass.
set -euo pipefail
BITNET=$1
SRC=$2
WORK=$(mktemp -d "$PWD/generate.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

expect_error() {  # expected stderr pattern, arguments...
  local pattern=$1; shift
  local rc=0
  "$BITNET" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [[ $rc == 1 ]] || fail "'$*' exited with $rc, expected 1"
  [[ $(wc -l < "$WORK/err") == 1 ]] || fail "'$*' printed more than one error line: $(cat "$WORK/err")"
  grep -q "^error: .*$pattern" "$WORK/err" || fail "'$*': stderr '$(cat "$WORK/err")' lacks '$pattern'"
}

expect_error "unknown option '--no-such-flag'" -m x.gguf --no-such-flag
expect_error "needs a value" -m
expect_error "'-n'\|--n-predict" -m x.gguf -n lots
expect_error "no model given" -p hello
expect_error "does-not-exist.gguf" -m "$WORK/does-not-exist.gguf" -p hello
expect_error "unsupported KV cache type" -m x.gguf -ctk q4_0
expect_error "unexpected argument" -m x.gguf stray

# llama.cpp spellings are accepted (bitnet.cpp always passes -ngl 0); --help exits 0 after parsing them.
"$BITNET" -m x.gguf -ngl 0 -ctk f32 -cnv -no-cnv -e -t 2 -c 64 -b 8 --help > "$WORK/help" || fail "flags + --help"
for opt in -m --model -p --prompt -f --file -n --predict --n-predict -t --threads -c --ctx-size -b --batch-size \
           -s --seed --temp --top-k --top-p --min-p --repeat-penalty --repeat-last-n -ngl --gpu-layers \
           --n-gpu-layers --tokenizer --kv-f32 -ctk -e --escape --no-display-prompt -cnv --conversation -sys \
           --system-prompt --chat-template -no-cnv -r --reverse-prompt -v --verbose --ignore-eos; do
  grep -q -- "\(^\|[ ,]\)$opt\([ ,]\|$\)" "$WORK/help" || fail "--help does not list $opt"
done
# The overview names every subcommand.
for sub in logits perplexity tokenize bench dummy quantize; do
  grep -q "^  $sub " "$WORK/help" || fail "--help does not list the '$sub' subcommand"
done
"$BITNET" --version | grep -q "^bitnet [0-9]" || fail "--version"
for sub in logits perplexity tokenize bench; do
  "$BITNET" $sub --help > /dev/null || fail "$sub --help"
done

MODEL=$SRC/../shared/fixtures/models/stories260K/stories260K.f32.gguf
if [[ ! -f $MODEL ]]; then
  echo "note: $MODEL absent, the run with a model is skipped"
  echo "generate: option checks ok"; exit 0
fi
# A run as bitnet.cpp's run_inference.py starts it: prompt shown, 16 tokens, timings on stderr.
"$BITNET" -m "$MODEL" -p "Once upon a time" -n 16 -t 2 -c 128 -ngl 0 --temp 0 >"$WORK/out" 2>"$WORK/err" \
  || fail "generation: $(cat "$WORK/err")"
head -c 16 "$WORK/out" | grep -q "^Once upon a time$" || fail "the prompt is not echoed: $(cat "$WORK/out")"
[[ $(wc -c < "$WORK/out") -gt 20 ]] || fail "no continuation: $(cat "$WORK/out")"
grep -q "^system_info: n_threads = 2" "$WORK/err" || fail "no system_info line"
grep -q "prompt eval time = .* tokens per second" "$WORK/err" || fail "no prompt eval timing"
grep -q "eval time = .* / *15 runs" "$WORK/err" || fail "not 15 decodes for 16 tokens: $(cat "$WORK/err")"
grep -q "peak memory" "$WORK/err" || fail "no peak memory"
# Same seed, same text; --no-display-prompt drops the prompt only.
"$BITNET" -m "$MODEL" -p "Once upon a time" -n 16 --seed 7 --temp 0.9 2>/dev/null > "$WORK/a"
"$BITNET" -m "$MODEL" -p "Once upon a time" -n 16 --seed 7 --temp 0.9 --no-display-prompt 2>/dev/null > "$WORK/b"
[[ "Once upon a time$(cat "$WORK/b")" == "$(cat "$WORK/a")" ]] || fail "seeded runs differ or the prompt was shown"
# A full context stops generation with a notice.
"$BITNET" -m "$MODEL" -p "Once" -n -2 -c 24 --temp 0 --ignore-eos >/dev/null 2>"$WORK/err" || fail "-n -2"
grep -q "context full" "$WORK/err" || fail "no context-full notice"
# Reverse prompt: stops right after the first '.'.
"$BITNET" -m "$MODEL" -p "Once upon a time" -n 100 --temp 0 -r "." --no-display-prompt 2>/dev/null > "$WORK/out"
[[ $(tr -cd '.' < "$WORK/out" | wc -c) == 1 && $(tr -d '\n' < "$WORK/out") == *. ]] || fail "-r: $(cat "$WORK/out")"
# Chat mode reads turns from a pipe; /clear and EOF work; per-turn speeds go to stderr.
printf 'Hello\n/clear\nTell me a story\n' | "$BITNET" -m "$MODEL" -cnv -p "You are kind" -n 8 --temp 0 -c 256 \
  >"$WORK/out" 2>"$WORK/err" || fail "chat: $(cat "$WORK/err")"
[[ $(grep -c '^\[ Prompt: .* t/s | Generation: .* t/s \]$' "$WORK/err") == 2 ]] || fail "chat turns: $(cat "$WORK/err")"
grep -q "conversation cleared" "$WORK/err" || fail "/clear"
echo "generate: all ok"
