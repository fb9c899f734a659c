#!/usr/bin/env bash
# Aggregate generation speed of bitnet serve with 1, 4 and 8 concurrent streaming clients (-np
# equal to the clients) next to the CLI's single stream, on the random-weight model of BitNet
# b1.58 2B4T's shape that `make bench` uses; not run by CI (about 3 minutes a round).
# Each round measures, in turn: the CLI (`bitnet -n 64 --ignore-eos`, its eval tokens/s), then
# a fresh server per client count (bench/server_throughput.mjs: steady-state tokens/s over a
# window once every stream is generating). The machine may be shared, so the rounds interleave
# the configurations and the summary gives mean ± sd of each and of its ratio to the CLI of the
# same round.
# Usage: bench/server_throughput.sh [BITNET_BINARY] [ROUNDS] [WINDOW_S]   (THREADS, default 2)
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$(realpath "${1:-$SRC/build/bitnet}")
ROUNDS=${2:-3}
WINDOW=${3:-30}
THREADS=${THREADS:-2}
MODEL=$SRC/models/dummy-2b4t-i2_s.gguf
[[ -f $MODEL ]] || "$BIN" dummy --shape 2b4t --type i2_s -o "$MODEL"

source "$SRC/tests/cli/lib/common.sh" server_throughput "$BIN" "$SRC"
source "$SRC/tests/cli/lib/server.sh"
need_node_clients
results=$WORK/results.txt
for ((r = 1; r <= ROUNDS; r++)); do
  cli=$("$BIN" -m "$MODEL" -p "Tell me a long story." -n 64 -t "$THREADS" --ignore-eos 2>&1 >/dev/null |
        sed -nE 's/.* eval time = .* ([0-9.]+) tokens per second.*/\1/p' | tail -1)
  echo "round $r: cli $cli tokens/s"
  echo "$r cli $cli" >>"$results"
  for n in 1 4 8; do
    # 512 tokens of context a slot: the prompt and a window's worth of generated tokens.
    start_server S "s$r-$n.log" -m "$MODEL" -np "$n" -c $((512 * n)) -t "$THREADS"
    line=$(node "$SRC/bench/server_throughput.mjs" "$S" "$n" 3 "$WINDOW")
    kill "$S_PID"; wait "$S_PID" 2>/dev/null || true
    echo "round $r: serve $line"
    echo "$r np$n ${line##* }" >>"$results"
  done
done
echo
echo "| configuration | tokens/s (mean ± sd of $ROUNDS) | ratio to the CLI |"
echo "|---|---:|---:|"
awk '
  { v[$2, $1] = $3; if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 } rounds[$1] = 1 }
  function stats(key, ratio,   r, x, s, s2, k) {
    s = s2 = k = 0
    for (r in rounds) { x = v[key, r]; if (ratio) x /= v["cli", r]; s += x; s2 += x * x; k++ }
    m = s / k; sd = k > 1 ? sqrt((s2 - k * m * m) / (k - 1)) : 0
    return sprintf("%.2f ± %.2f", m, sd)
  }
  END {
    for (i = 1; i <= n; i++) {
      key = order[i]
      name = key == "cli" ? "CLI, one stream" : "serve, " substr(key, 3) " streaming client(s), -np " substr(key, 3)
      printf "| %s | %s | %s |\n", name, stats(key, 0), key == "cli" ? "1" : stats(key, 1)
    }
  }' "$results"
