#!/usr/bin/env bash
# Chat (-cnv) and completion behaviour that needs no terminal, on the demo model: replies read as
# text, -f as the chat system prompt, a full context drops the oldest turns but keeps the system
# prompt, /bye, """ blocks from a pipe, and --context-shift in completion mode.
set -euo pipefail
BITNET=$1
SRC=$2
MODEL=$SRC/models/bitnet-demo-stories.gguf  # the project's own trained model (models/README.md)
WORK=$(mktemp -d "$PWD/chat.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# Its vocabulary has no chat tokens: the short 'bitnet' template keeps turns small enough.
CHAT=("$BITNET" -m "$MODEL" -cnv --chat-template bitnet --temp 0 -t 2 -v)

# -f FILE is the system prompt in chat, as -p is (a final newline dropped as for prompts).
printf 'You are kind\n' > "$WORK/sys.txt"
printf 'Hello\n' | "${CHAT[@]}" -p "You are kind" -n 12 -c 256 > "$WORK/p.out" 2> "$WORK/p.err" || fail "chat -p: $(cat "$WORK/p.err")"
printf 'Hello\n' | "${CHAT[@]}" -f "$WORK/sys.txt" -n 12 -c 256 > "$WORK/f.out" 2> "$WORK/f.err" || fail "chat -f"
printf 'Hello\n' | "${CHAT[@]}" -n 12 -c 256 > "$WORK/none.out" 2> "$WORK/none.err" || fail "chat without system prompt"
cmp -s "$WORK/p.out" "$WORK/f.out" || fail "-f and -p give different replies"
decoded() { grep -o '[0-9]* decoded' "$1" | head -1; }
[[ $(decoded "$WORK/p.err") == $(decoded "$WORK/f.err") ]] || fail "-f: $(decoded "$WORK/f.err") vs -p: $(decoded "$WORK/p.err")"
[[ $(decoded "$WORK/p.err") != $(decoded "$WORK/none.err") ]] || fail "the system prompt from -f was not used"

# The replies read as text: at least 80% of their words are words of the model's training corpus.
printf 'Tell me a story about a dog\nWhat did the cat do?\n' | "${CHAT[@]}" -n 48 -c 256 > "$WORK/story.out" 2> /dev/null \
  || fail "two-turn chat"
words=$(grep -oE '[A-Za-z]+' "$WORK/story.out" | tr 'A-Z' 'a-z')
total=$(wc -w <<<"$words")
known=$(grep -cxFf "$SRC/models/bitnet-demo-stories.words" <<<"$words" || true)
((total >= 30 && known * 100 >= total * 80)) || fail "replies are not text: $known of $total corpus words: $(cat "$WORK/story.out")"
echo "chat replies: $known of $total words are corpus words"

# A small context: the oldest turns are dropped (said on stderr), every turn is answered, and the
# system prompt stays in every request (its tokens are reused from the cache each turn).
for i in $(seq 8); do echo "Tell me about the little dog number $i and the big cat"; done > "$WORK/turns.txt"
"${CHAT[@]}" -p "You are a kind storyteller" -n 16 -c 128 < "$WORK/turns.txt" > "$WORK/out" 2> "$WORK/err" \
  || fail "small-context chat: $(cat "$WORK/err")"
[[ $(grep -c '^\[ Prompt: .* t/s | Generation: .* t/s \]$' "$WORK/err") == 8 ]] || fail "not 8 answered turns: $(cat "$WORK/err")"
grep -q "dropped the .* oldest turn(s), the system prompt stays" "$WORK/err" || fail "no notice of dropped turns"
reused=$(grep -o '\[ [0-9]* tokens reused' "$WORK/err" | tail -1 | grep -o '[0-9]*')
[[ $reused -ge 8 ]] || fail "the system prompt was not reused after dropping turns ($reused tokens)"

# /bye ends the chat from a pipe; a """ block is one message.
printf '"""\nline one\nline two\n"""\n/bye\nnever read\n' | "${CHAT[@]}" -n 4 -c 256 > "$WORK/out" 2> "$WORK/err" \
  || fail "block + /bye: $(cat "$WORK/err")"
grep -q "message: 17 bytes, 2 line(s)" "$WORK/err" || fail "\"\"\" block: $(cat "$WORK/err")"
[[ $(grep -c "message:" "$WORK/err") == 1 ]] || fail "/bye did not end the chat"

# Completion with --context-shift: 100 tokens in a context of 32.
"$BITNET" -m "$MODEL" -p "Once upon a time" -n 100 -c 32 --temp 0 --ignore-eos --context-shift --keep 2 \
  > "$WORK/out" 2> "$WORK/err" || fail "--context-shift: $(cat "$WORK/err")"
grep -q "eval time = .* / *99 runs" "$WORK/err" || fail "--context-shift did not generate 100 tokens: $(cat "$WORK/err")"
grep -q "context shifted" "$WORK/err" || fail "no context-shift notice"
# Without it the same run stops at the full context.
"$BITNET" -m "$MODEL" -p "Once upon a time" -n 100 -c 32 --temp 0 --ignore-eos > "$WORK/out" 2> "$WORK/err" \
  || fail "full context"
grep -q "context full (n_ctx = 32)" "$WORK/err" || fail "no context-full notice: $(cat "$WORK/err")"
echo "chat: all ok"
