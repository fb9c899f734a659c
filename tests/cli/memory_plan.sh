#!/usr/bin/env bash
# The memory plan before loading: a model whose weights, KV cache and buffers exceed the available
# memory is refused with one line of numbers and what would fit, exit 1, nothing on stdout;
# --no-check-memory loads it anyway. BITNET_MEM_AVAILABLE fakes the available memory.
# Usage: memory_plan.sh BITNET_BINARY SOURCE_DIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" memory_plan "$@"

"$BIN" dummy --shape 2b4t --type i2_s -o i2s.gguf "${SMALL[@]}" --ctx 4096 2>/dev/null

run() {  # env assignment, arguments...
  rc=0
  env "$1" "$BIN" "${@:2}" >out 2>err || rc=$?
}
expect_refusal() {  # pattern, env assignment, arguments...
  local pattern=$1; shift
  run "$@"
  if [[ $rc != 1 ]]; then fail "'$*' exited with $rc, expected 1 ($(cat err))"; return; fi
  if [[ $(wc -l < err) != 1 ]] || ! grep -q "^error: the model needs .* of memory (weights .* + KV cache .* for -c .* + buffers .*) but .* is available (BITNET_MEM_AVAILABLE).*$pattern.*; --no-check-memory loads it anyway$" err; then
    fail "'$*': stderr '$(cat err)' is not the one refusal line with '$pattern'"; return
  fi
  [[ ! -s out ]] || { fail "'$*' printed on stdout: $(cat out)"; return; }
  ok
}

# Nothing fits in 1 MB.
expect_refusal "" BITNET_MEM_AVAILABLE=1000000 -m i2s.gguf -p hi -n 2
echo "Once upon a time there was a little dog." > text.txt
expect_refusal "" BITNET_MEM_AVAILABLE=1000000 perplexity -m i2s.gguf -f text.txt
expect_refusal "" BITNET_MEM_AVAILABLE=1000000 bench -m i2s.gguf -p 0 -n 1 -r 1
# The KV cache of the 4096-token context is half of this model (2 layers x 2 KV heads x 64 x 2 x
# f16 = 1 KiB a position, 4 MiB in all; buffers 7 MiB): 10 MB leave room for a smaller -c.
expect_refusal "would fit: -c [0-9]*" BITNET_MEM_AVAILABLE=10000000 -m i2s.gguf -p hi -n 2
ctx=$(grep -o 'would fit: -c [0-9]*' err | grep -o '[0-9]*$')
run BITNET_MEM_AVAILABLE=10000000 -m i2s.gguf -p hi -n 2 -c "$ctx"
[[ $rc == 0 ]] && ok || fail "-c $ctx (the suggested context) exited with $rc: $(cat err)"

# Slots: the KV pool the engine allocates. serve -np 4 with -c 0 gives every slot the training
# context (4 x 4096 positions, 16 MiB: the plan once counted 4 MiB and let it load); -c is the total,
# in whole pages with at least one page per slot (-c 256 -np 64: 64 pages of 16 positions). The server
# exits 1 after the refusal (it used to keep listening when the load failed before it listened).
expect_serve_kv() {  # available bytes, KV text, arguments...
  local avail=$1 kv=$2; shift 2
  rc=0
  BITNET_MEM_AVAILABLE=$avail timeout 30 "$BIN" serve -m i2s.gguf --port 0 "$@" >out 2>err || rc=$?
  if [[ $rc != 1 ]]; then fail "serve $* exited with $rc, expected 1 ($(cat err))"; return; fi
  grep -q "^error: the model needs .* (weights .* + KV cache $kv + buffers .*) but .* is available" err &&
    ok || fail "serve $*: no refusal with 'KV cache $kv': $(cat err)"
}
expect_serve_kv 1000000 "16.0 MiB for -c 16384 shared by 4 sequences" -np 4
expect_serve_kv 1000000 "4.0 MiB for -c 4096" -np 1
expect_serve_kv 1000000 "1.0 MiB for -c 256 shared by 64 sequences" -np 64 -c 256
expect_serve_kv 1000000 "1.0 MiB for -c 1000 shared by 2 sequences" -np 2 -c 1000
# The suggested -c for 2 slots leaves room for their pool: 12 MB hold less than 2 x 4096 positions
# (8 MiB) next to the 8 MiB of weights and buffers.
expect_serve_kv 12000000 "8.0 MiB for -c 8192 shared by 2 sequences" -np 2
ctx=$(grep -o 'would fit: -c [0-9]*' err | grep -o '[0-9]*$' || true)
[[ -n $ctx ]] && (( ctx >= 256 && ctx * 1024 + 8 * 1048576 <= 12000000 )) && ok || fail "suggested -c '$ctx' for 2 slots"

# --no-check-memory proceeds.
run BITNET_MEM_AVAILABLE=1000000 -m i2s.gguf -p hi -n 2 --no-check-memory
[[ $rc == 0 && -s out ]] && ok || fail "--no-check-memory exited with $rc: $(cat err)"
run BITNET_MEM_AVAILABLE=1000000 bench -m i2s.gguf -p 0 -n 1 -r 1 --no-check-memory
[[ $rc == 0 ]] && ok || fail "bench --no-check-memory exited with $rc: $(cat err)"
# Plenty of memory: no refusal.
run BITNET_MEM_AVAILABLE=100000000000 -m i2s.gguf -p hi -n 2
[[ $rc == 0 ]] && ok || fail "100 GB available: exited with $rc: $(cat err)"

report
