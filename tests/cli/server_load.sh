#!/usr/bin/env bash
# A bounded load test of bitnet serve on loopback (tests/server/load.mjs): 8 streaming clients on
# 4 slots for 20 s, then a short warm-up-free second round to check that memory stays bounded:
# 0 errors, latency p50/p99 and aggregate tokens/s printed.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" server_load "$@"
source "$SRC/tests/cli/lib/server.sh"
need_node_clients
make_model small.gguf
growth=16
if [[ ${BITNET_SANITIZED:-} == 1 ]]; then  # set by scripts/sanitized-ctest.sh
  # ASan reuses freed memory only after 256 MiB of later frees (its quarantine), which read as 58 MiB
  # of growth; with a 1 MiB quarantine its allocator caches and stack records still added 10-14 MiB
  # in the second round. Leaks as such are LeakSanitizer's, at the server's exit.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-}:quarantine_size_mb=1:thread_local_quarantine_size_kb=64
  growth=32
fi
start_server S s.log -m small.gguf -np 4 -c 8192
# The first round reaches the steady state (every slot's KV pages, allocator arenas); the second
# must not grow the server's memory beyond a bound.
node "$NODE_CLIENTS/load.mjs" "$S" --clients 8 --seconds 10 --max-tokens 48 --pid "$S_PID" --max-rss-growth-mib 256
node "$NODE_CLIENTS/load.mjs" "$S" --clients 8 --seconds 10 --max-tokens 48 --pid "$S_PID" --max-rss-growth-mib $growth
