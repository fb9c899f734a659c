#!/usr/bin/env bash
# Chat and completion on a real terminal (tmux): Ctrl-C stops a reply and returns to the prompt,
# Ctrl-C / Ctrl-D at the prompt end the chat with the timing summary, non-ASCII input arrives
# whole, multi-line input (\ continuation, """ blocks, pastes), /help with spaces around it, and
# Ctrl-C in completion mode still prints the summary. On the demo model; skipped without tmux.
set -euo pipefail
BITNET=$(realpath "$1")
SRC=$2
MODEL=$(realpath "$SRC/models/bitnet-demo-stories.gguf")  # the project's own trained model
command -v tmux >/dev/null || { echo "skip: tmux is not installed"; exit 77; }
WORK=$(mktemp -d "$PWD/chat_tty.XXXXXX")
# tmux's sockets in a short private directory (a socket path has at most 107 bytes), removed at exit.
export TMUX_TMPDIR=$(mktemp -d /tmp/bitnet-chat-tty.XXXXXX)
SOCK="t"
trap 'tmux -L "$SOCK" kill-server 2>/dev/null || true; rm -rf "$WORK" "$TMUX_TMPDIR"' EXIT
fail() {
  echo "FAIL: $*"
  echo "--- pane:"; tmux -L "$SOCK" capture-pane -p -t t 2>/dev/null | grep -v '^$' | tail -20 || true
  echo "--- stderr:"; tail -20 "$WORK/err" 2>/dev/null || true
  exit 1
}

# Starts a command in a fresh terminal; its stderr goes to $WORK/err, its exit code to $WORK/rc.
# Each terminal gets its own tmux server: a new session on a server that is still exiting after
# kill-server fails with "server exited unexpectedly".
STARTS=0
start() {
  tmux -L "$SOCK" kill-server 2>/dev/null || true
  STARTS=$((STARTS + 1))
  SOCK="t$STARTS"
  rm -f "$WORK/err" "$WORK/rc"
  printf '%q ' "$@" > "$WORK/cmd"
  tmux -L "$SOCK" new-session -d -s t -x 150 -y 50 \
    "cd '$WORK' && LANG=C.UTF-8 LC_ALL=C.UTF-8 $(cat "$WORK/cmd") 2>'$WORK/err'; echo \$? > '$WORK/rc'; sleep 30"
}
keys() { tmux -L "$SOCK" send-keys -t t "$@"; }
# Waits (up to 20 s) until the command's stderr has N lines matching a pattern.
wait_err() {
  local pattern=$1 n=${2:-1}
  for _ in $(seq 200); do
    [[ $(grep -c -- "$pattern" "$WORK/err" 2>/dev/null || true) -ge $n ]] && return 0
    sleep 0.1
  done
  fail "timed out waiting for $n x '$pattern' on stderr"
}
wait_exit() {
  for _ in $(seq 200); do [[ -s $WORK/rc ]] && return 0; sleep 0.1; done
  fail "the program did not exit"
}
# Waits until the pane's last non-empty line is the prompt.
wait_prompt() {
  for _ in $(seq 200); do
    [[ $(tmux -L "$SOCK" capture-pane -p -t t | grep -v '^$' | tail -1) == ">"* ]] && return 0
    sleep 0.1
  done
  fail "no prompt"
}

CHAT=("$BITNET" -m "$MODEL" -cnv --chat-template bitnet -p "You are kind" -c 512 --temp 0 -t 2 -v)

# --- chat: an endless reply (context shift, no end of text) stopped by Ctrl-C --------------------
start "${CHAT[@]}" --ignore-eos --context-shift -n -1
wait_prompt
keys "Tell me a story" Enter
wait_err "message: 15 bytes, 1 line"
sleep 1
keys C-c
wait_err '\[ interrupted \]'
wait_err '\[ Prompt: .* t/s | Generation: .* t/s \]'
wait_prompt
[[ ! -s $WORK/rc ]] || fail "Ctrl-C during a reply ended the program"
# Non-ASCII arrives whole (13 bytes: h é l l o space 日 本).
keys "héllo 日本" Enter
wait_err "message: 13 bytes, 1 line"
sleep 0.3
keys C-c
wait_err '\[ interrupted \]' 2
wait_prompt
# Commands tolerate spaces; /help lists them.
keys "   /help  " Enter
wait_err "/bye, /quit"
wait_prompt
# A trailing backslash continues the message; typed lines arrive separately.
keys 'first line\' Enter
sleep 0.5
keys "second" Enter
wait_err "message: 17 bytes, 2 line(s)"
sleep 0.3
keys C-c
wait_err '\[ interrupted \]' 3
wait_prompt
# A """ block.
keys '"""' Enter
sleep 0.3
keys "alpha" Enter
sleep 0.3
keys "beta" Enter
sleep 0.3
keys 'gamma"""' Enter
wait_err "message: 16 bytes, 3 line(s)"
sleep 0.3
keys C-c
wait_err '\[ interrupted \]' 4
wait_prompt
# Lines pasted at once are one message.
tmux -L "$SOCK" set-buffer -b paste $'one\ntwo\nthree\n'
tmux -L "$SOCK" paste-buffer -b paste -t t
wait_err "message: 13 bytes, 3 line(s)"
sleep 0.3
keys C-c
wait_err '\[ interrupted \]' 5
wait_prompt
# Ctrl-C at the empty prompt: a clean exit with a newline and the timing summary.
keys C-c
wait_exit
[[ $(cat "$WORK/rc") == 0 ]] || fail "exit code $(cat "$WORK/rc") after Ctrl-C at the prompt"
grep -q "total time" "$WORK/err" || fail "no timing summary after Ctrl-C at the prompt"
[[ $(tmux -L "$SOCK" capture-pane -p -t t | grep -c '^> *$') -ge 1 ]] || fail "no newline after the last prompt"
echo "ok: chat Ctrl-C, non-ASCII, /help, multi-line input, exit on Ctrl-C"

# --- chat: Ctrl-D and /bye leave too ---------------------------------------------------------
start "${CHAT[@]}" -n 4
wait_prompt
keys C-d
wait_exit
[[ $(cat "$WORK/rc") == 0 ]] && grep -q "total time" "$WORK/err" || fail "Ctrl-D at the prompt"
for cmd in "/bye" " /quit " "/exit"; do
  start "${CHAT[@]}" -n 4
  wait_prompt
  keys "$cmd" Enter
  wait_exit
  [[ $(cat "$WORK/rc") == 0 ]] || fail "'$cmd' did not leave cleanly"
done
echo "ok: Ctrl-D, /bye, /quit, /exit"

# --- completion: Ctrl-C stops generation and still prints the summary ------------------------
start "$BITNET" -m "$MODEL" -p "Once upon a time" -n -1 --ignore-eos --context-shift -c 256 -t 2
wait_err "sampler seed"
sleep 1
keys C-c
wait_exit
[[ $(cat "$WORK/rc") == 0 ]] || fail "completion exit code $(cat "$WORK/rc") after Ctrl-C"
grep -q '\[ interrupted \]' "$WORK/err" || fail "no interruption notice"
grep -q "eval time = .* runs" "$WORK/err" || fail "no timing summary after Ctrl-C"
echo "chat_tty: all ok"
