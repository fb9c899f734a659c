#!/usr/bin/env bash
# A bounded load test of bitnet serve on loopback (tests/server/load.mjs): 8 streaming clients on
# 4 slots for 20 s, then a short warm-up-free second round to check that memory stays bounded:
# 0 errors, latency p50/p99 and aggregate tokens/s printed.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" server_load "$@"
source "$SRC/tests/cli/lib/server.sh"
need_node_clients
make_model small.gguf
start_server S s.log -m small.gguf -np 4 -c 8192
# The first round reaches the steady state (every slot's KV pages, allocator arenas); the second
# must not grow the server's memory beyond a bound.
node "$NODE_CLIENTS/load.mjs" "$S" --clients 8 --seconds 10 --max-tokens 48 --pid "$S_PID" --max-rss-growth-mib 256
node "$NODE_CLIENTS/load.mjs" "$S" --clients 8 --seconds 10 --max-tokens 48 --pid "$S_PID" --max-rss-growth-mib 16
