#!/usr/bin/env bash
# bitnet bench: llama-bench's markdown table (header, rule, a pp and a tg row) and JSON output, on
# a tiny random-weight model written by `bitnet dummy`.
set -euo pipefail
BITNET=$1
WORK=$(mktemp -d "$PWD/bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

MODEL=$WORK/tiny.gguf
"$BITNET" dummy --shape 2b4t --type i2_s --embd 256 --layers 2 --ff 512 --heads 4 --heads-kv 2 --vocab 1000 \
  -o "$MODEL" >/dev/null 2>"$WORK/err" || fail "dummy: $(cat "$WORK/err")"

"$BITNET" bench -m "$MODEL" -p 64 -n 16 -t 2 -r 2 -ngl 0 >"$WORK/md" 2>"$WORK/err" || fail "bench: $(cat "$WORK/err")"
cat "$WORK/md"
header='| model                          |       size |     params | backend    | threads |          test |                  t/s |'
rule='| ------------------------------ | ---------: | ---------: | ---------- | ------: | ------------: | -------------------: |'
[[ $(sed -n 1p "$WORK/md") == "$header" ]] || fail "header line"
[[ $(sed -n 2p "$WORK/md") == "$rule" ]] || fail "rule line"
row_re='^\| .{30,} \| +[0-9.]+ MiB \| +[0-9.]+ M \| CPU +\| +2 \| +%s \| +[0-9.]+ ± [0-9.]+ \|$'
grep -Eq "$(printf "$row_re" pp64)" "$WORK/md" || fail "no pp64 row"
grep -Eq "$(printf "$row_re" tg16)" "$WORK/md" || fail "no tg16 row"
[[ $(wc -l < "$WORK/md") == 4 ]] || fail "expected 4 lines"
"$BITNET" bench -m "$MODEL" -p 32 -n 0 -t 1,2 -r 1 -o json >"$WORK/json" 2>/dev/null || fail "json"
if command -v python3 >/dev/null; then
  python3 - "$WORK/json" <<'PY' || fail "json content"
import json, sys
rows = json.load(open(sys.argv[1]))
assert [(r["n_threads"], r["n_prompt"], r["n_gen"]) for r in rows] == [(1, 32, 0), (2, 32, 0)], rows
assert all(r["avg_ts"] > 0 and len(r["samples_ns"]) == 1 for r in rows)
PY
fi
# -d: each test starts with that many tokens in the cache, in a context of depth + test tokens
# (larger than the model's 512 here); the test column reads "pp32 @ d64" as in llama-bench.
DEEP=$WORK/ctx512.gguf
"$BITNET" dummy --shape 2b4t --type i2_s --embd 256 --layers 2 --ff 512 --heads 4 --heads-kv 2 --vocab 1000 \
  --ctx 512 -o "$DEEP" >/dev/null 2>"$WORK/err" || fail "dummy --ctx 512: $(cat "$WORK/err")"
"$BITNET" bench -m "$DEEP" -p 32 -n 8 -d 0,64,500 -t 2 -r 2 >"$WORK/depth" 2>"$WORK/err" || fail "bench -d: $(cat "$WORK/err")"
cat "$WORK/depth"
tests=$(sed -n '3,$p' "$WORK/depth" | awk -F'|' '{gsub(/^ +| +$/, "", $7); print $7}' | paste -sd,)
[[ $tests == "pp32,tg8,pp32 @ d64,tg8 @ d64,pp32 @ d500,tg8 @ d500" ]] || fail "-d test column: $tests"
grep -Eq "$(printf "$row_re" 'tg8 @ d64')" "$WORK/depth" || fail "tg8 @ d64 row format"
"$BITNET" bench -m "$DEEP" -p 0 -n 4 -d 64 -r 1 -o json >"$WORK/depth.json" 2>/dev/null || fail "json -d"
grep -q '"n_depth": 64' "$WORK/depth.json" || fail "json has no n_depth 64"
if "$BITNET" bench -m "$DEEP" -d -1 2>"$WORK/err"; then fail "accepted -d -1"; fi
grep -q "^error: .*-d" "$WORK/err" || fail "-d -1 message: $(cat "$WORK/err")"
if "$BITNET" bench -m "$MODEL" -o csv 2>"$WORK/err"; then fail "accepted -o csv"; fi
grep -q "^error: .*csv" "$WORK/err" || fail "-o csv message"
echo "bench: all ok"
