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
# llama-bench's columns; the model column widens to the model's name, every line is as wide.
header_re='^\| model +\| +size \| +params \| backend +\| threads \| +test \| +t/s \|$'
sed -n 1p "$WORK/md" | grep -Eq "$header_re" || fail "header line: $(sed -n 1p "$WORK/md")"
sed -n 2p "$WORK/md" | grep -Eq '^\| -+ \| -+: \| -+: \| -+ \| -+: \| -+: \| -+: \|$' || fail "rule line"
widths=$(sed -n '1,4p' "$WORK/md" | while IFS= read -r line; do printf '%s' "$line" | wc -m; done | sort -u | wc -l)
[[ $widths == 1 ]] || fail "table lines differ in width"
name=$(sed -n 3p "$WORK/md" | awk -F'|' '{print $2}')
[[ ${#name} -ge 32 && $name == " bitnet-b1.58 "* ]] || fail "model column '$name'"
row_re='^\| bitnet-b1\.58 .* \| +[0-9.]+ MiB \| +[0-9.]+ M \| CPU +\| +2 \| +%s \| +[0-9.]+ ± [0-9.]+ \|$'
grep -Eq "$(printf "$row_re" pp64)" "$WORK/md" || fail "no pp64 row"
grep -Eq "$(printf "$row_re" tg16)" "$WORK/md" || fail "no tg16 row"
[[ $(wc -l < "$WORK/md") == 4 ]] || fail "expected 4 lines"
grep -q "^note: -ngl is accepted and ignored" "$WORK/err" || fail "-ngl note"
# Progress on stderr: one line per test, every stage with --progress.
[[ $(grep -c "^bench [12]/2: .*t/s$" "$WORK/err") == 2 ]] || fail "per-test progress lines: $(cat "$WORK/err")"
"$BITNET" bench -m "$MODEL" -p 16 -n 0 -t 1 -r 2 --progress >/dev/null 2>"$WORK/err" || fail "--progress"
for stage in starting warmup "repetition 1/2" "repetition 2/2"; do
  grep -q "^bench 1/1: pp16, np 1, 1 threads: $stage" "$WORK/err" || fail "--progress lacks '$stage': $(cat "$WORK/err")"
done
"$BITNET" bench -m "$MODEL" -p 16 -n 0 -t 1 -r 1 --progress --no-warmup >/dev/null 2>"$WORK/err" || fail "--no-warmup"
grep -q "warmup" "$WORK/err" && fail "--no-warmup still warms up"

# Non-default batch size and KV type get their columns; -np adds np and the per-sequence rate;
# -pg times a prompt and a generation together.
"$BITNET" bench -m "$MODEL" -p 32 -n 4 -pg 16,4 -np 1,3 -b 16 -ctk q8_0 -t 1 -r 2 >"$WORK/np" 2>"$WORK/err" || fail "-np: $(cat "$WORK/err")"
cat "$WORK/np"
sed -n 1p "$WORK/np" | grep -Eq '\| threads \| n_batch \| type_k \| type_v \| +np \| +test \| +t/s \| +t/s per seq \|$' || fail "-np header"
tests=$(sed -n '3,$p' "$WORK/np" | awk -F'|' '{gsub(/ /, "", $10); gsub(/ /, "", $11); printf "%s:%s,", $10, $11}')
[[ $tests == "1:pp32,1:tg4,1:pp16+tg4,3:pp32,3:tg4,3:pp16+tg4," ]] || fail "-np rows: $tests"
# Per-sequence rate = aggregate / np.
awk -F'|' 'NR > 2 { split($12, a, " "); split($13, b, " "); if ((a[1] / $10 - b[1]) ^ 2 > 0.01) exit 1 }' "$WORK/np" ||
  fail "t/s per seq is not t/s / np"
grep -q "16" <(sed -n 3p "$WORK/np" | awk -F'|' '{print $7}') || fail "n_batch column"
grep -q "q8_0" <(sed -n 3p "$WORK/np" | awk -F'|' '{print $8 $9}') || fail "type_k/type_v columns"
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
if "$BITNET" bench -m "$MODEL" -o xml 2>"$WORK/err"; then fail "accepted -o xml"; fi
grep -q "^error: .*xml.*md, csv, json or jsonl" "$WORK/err" || fail "-o xml message"
if "$BITNET" bench -m "$MODEL" -pg 512 2>"$WORK/err"; then fail "accepted -pg 512"; fi
grep -q "^error: .*-pg" "$WORK/err" || fail "-pg 512 message"
if "$BITNET" bench -m "$MODEL" -np 0 2>"$WORK/err"; then fail "accepted -np 0"; fi
grep -q "^error: .*-np" "$WORK/err" || fail "-np 0 message"

# CSV: llama-bench's header of field names, one quoted line per test; JSONL: one object per test.
"$BITNET" bench -m "$MODEL" -p 16 -n 4 -np 2 -t 1 -r 2 -o csv >"$WORK/csv" 2>/dev/null || fail "csv"
[[ $(wc -l < "$WORK/csv") == 3 ]] || fail "csv lines: $(cat "$WORK/csv")"
head -1 "$WORK/csv" | grep -q "^build_commit,.*,n_parallel,.*,avg_ts,.*samples_ts$" || fail "csv header: $(head -1 "$WORK/csv")"
sed -n 2p "$WORK/csv" | grep -Eq '^"[0-9a-f]{7,}(-dirty)?|"unknown"' || fail "csv row: $(sed -n 2p "$WORK/csv")"
"$BITNET" bench -m "$MODEL" -p 16 -n 4 -np 2 -t 1 -r 2 -o jsonl >"$WORK/jsonl" 2>/dev/null || fail "jsonl"
[[ $(wc -l < "$WORK/jsonl") == 2 ]] || fail "jsonl lines"
if command -v python3 >/dev/null; then
  python3 - "$WORK/jsonl" "$WORK/csv" <<'PY' || fail "jsonl/csv content"
import csv, json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
assert [(r["n_prompt"], r["n_gen"], r["n_parallel"]) for r in rows] == [(16, 0, 2), (0, 4, 2)], rows
for r in rows:
    assert r["build_commit"] and r["cpu_info"] and r["backends"] == "CPU" and r["kernels"], r
    assert r["type_k"] == "f16" and r["n_batch"] == 512 and len(r["samples_ts"]) == 2, r
    assert abs(r["avg_ts_per_seq"] * 2 - r["avg_ts"]) < 1e-6 * r["avg_ts"], r
c = list(csv.DictReader(open(sys.argv[2])))
assert [(int(r["n_prompt"]), int(r["n_parallel"])) for r in c] == [(16, 2), (0, 2)], c
PY
fi

# --roofline: the tg rows as a fraction of the bandwidth bound; with the AVX2 kernels (which have
# compute probes) every row also as a fraction of the peak MAC rates, and the lower bound named.
# Without probes (scalar) the table keeps its columns and stderr says why.
BITNET_ISA=scalar "$BITNET" bench -m "$MODEL" -p 16 -n 4 -t 1 -r 1 --roofline >"$WORK/roof" 2>"$WORK/err" || fail "roofline: $(cat "$WORK/err")"
sed -n 1p "$WORK/roof" | grep -Eq '\| +t/s \| +roofline \|$' || fail "scalar roofline header: $(sed -n 1p "$WORK/roof")"
# The limits are measured before each test (2 here), and stderr says so for each.
[[ $(grep -Ec '^bench [12]/2: .*: memory read bandwidth [0-9.]+ GB/s \(no compute probe for the scalar kernels: memory bound only\)$' "$WORK/err") == 2 ]] ||
  fail "scalar: no probe message per test: $(cat "$WORK/err")"
grep -Eq '^roofline = .*; bandwidth measured before each test: [0-9.]+ [0-9.]+ GB/s$' "$WORK/roof" || fail "scalar bandwidth footer: $(tail -1 "$WORK/roof")"
if grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo && grep -qw f16c /proc/cpuinfo; then
  BITNET_ISA=avx2 "$BITNET" bench -m "$MODEL" -p 16 -n 4 -np 1,2 -t 1 -r 1 --roofline >"$WORK/roof" 2>"$WORK/err" ||
    fail "avx2 roofline: $(cat "$WORK/err")"
  cat "$WORK/roof"
  sed -n 1p "$WORK/roof" | grep -Eq '\| +t/s per seq \| +roofline \| +compute \| limit +\|$' || fail "avx2 roofline header: $(sed -n 1p "$WORK/roof")"
  grep -Eq '\| +pp16 \|.*\| +\| +[0-9.]+ % \| compute \|$' "$WORK/roof" || fail "pp16 compute cell"
  [[ $(grep -Ec '\| +tg4 \|.*\| +[0-9.]+ % \| +[0-9.]+ % \| (memory|compute) +\|$' "$WORK/roof") == 2 ]] || fail "tg4 roofline cells"
  grep -Eq '^compute = .*peak rates \(avx2\) before each test:( [0-9.]+/[0-9.]+){4} G int8 MAC/s / G FMA/s$' "$WORK/roof" || fail "compute footer"
  BITNET_ISA=avx2 "$BITNET" bench -m "$MODEL" -p 0 -n 2 -t 1 -r 1 --roofline -o json >"$WORK/roof.json" 2>/dev/null || fail "roofline json"
  if command -v python3 >/dev/null; then
    python3 - "$WORK/roof.json" <<'PY' || fail "roofline json content"
import json, sys
r = json.load(open(sys.argv[1]))[0]
# 2 layers x (q, o: 256x256; k, v: 128x256; gate, up, down: 512x256), head 1000 x 256 in f16.
assert r["ternary_macs_per_token"] == 2 * (2 * 256 * 256 + 2 * 128 * 256 + 3 * 512 * 256), r
assert r["other_macs_per_token"] == 1000 * 256, r
assert r["int8_macs_per_s"] > 1e9 and r["f32_fmas_per_s"] > 1e8, r
bound = 1 / (r["ternary_macs_per_token"] / r["int8_macs_per_s"] + r["other_macs_per_token"] / r["f32_fmas_per_s"])
assert abs(r["compute_fraction"] - r["avg_ts"] / bound) < 1e-9, r
assert r["limit"] in ("memory", "compute") and 0 < r["roofline_fraction"], r
PY
  fi
fi
echo "bench: all ok"
