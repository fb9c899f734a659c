#!/usr/bin/env bash
# A soak of bitnet serve (not run by CI; minutes long): CLIENTS streaming clients send chat requests
# back to back to one server for SECONDS (default 300) after a 20 s warm-up, through
# tests/server/load.mjs; the server's RSS is sampled every 30 s. Prints the error count, latency,
# aggregate tokens/s and the RSS at start, during and at the end; exits 1 on any error.
# Usage: bench/server_soak.sh [BITNET_BINARY] [SECONDS] [MODEL]
#   MODEL defaults to the shipped demo model (models/bitnet-demo-stories.gguf).
# Environment: CLIENTS (default 6), SLOTS (default 4), MAX_TOKENS (default 64), THREADS (default 2).
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$(realpath "${1:-$SRC/build/bitnet}")
SECONDS_TOTAL=${2:-300}
MODEL=$(realpath "${3:-$SRC/models/bitnet-demo-stories.gguf}")
CLIENTS=${CLIENTS:-6}
SLOTS=${SLOTS:-4}
MAX_TOKENS=${MAX_TOKENS:-64}
THREADS=${THREADS:-2}

source "$SRC/tests/cli/lib/common.sh" server_soak "$BIN" "$SRC"
source "$SRC/tests/cli/lib/server.sh"
need_node_clients
start_server S s.log -m "$MODEL" -np "$SLOTS" -t "$THREADS" --metrics

rss() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$S_PID/status"; }
echo "soak: $(basename "$MODEL"), $CLIENTS clients on $SLOTS slots, $THREADS threads, $SECONDS_TOTAL s, max_tokens $MAX_TOKENS"
echo "soak: RSS after load $(rss) MiB"
node "$NODE_CLIENTS/load.mjs" "$S" --clients "$CLIENTS" --seconds 20 --max-tokens "$MAX_TOKENS" >/dev/null
echo "soak: RSS after a 20 s warm-up $(rss) MiB"
(
  for ((t = 30; t < SECONDS_TOTAL; t += 30)); do
    sleep 30
    echo "soak: RSS at ${t} s $(rss) MiB"
  done
) &
SAMPLER=$!
rc=0
node "$NODE_CLIENTS/load.mjs" "$S" --clients "$CLIENTS" --seconds "$SECONDS_TOTAL" --max-tokens "$MAX_TOKENS" \
  --pid "$S_PID" --max-rss-growth-mib 1000000 || rc=$?
kill "$SAMPLER" 2>/dev/null || true
echo "soak: RSS at the end $(rss) MiB"
grep -c ' 200 | prompt' s.log | sed 's/^/soak: requests logged with status 200: /'
grep -v ' 200 | ' s.log | grep '^request:' | head -5 || true
exit $rc
