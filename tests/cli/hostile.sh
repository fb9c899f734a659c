#!/usr/bin/env bash
# Hostile files and signals (issue 14): outputs never replace a non-regular file, are written
# under a unique temporary and published atomically, leave nothing behind on failure or on
# SIGINT/SIGTERM; special files as inputs are refused at once; bad tensors and tokenizer ids are
# one-line errors. Usage: hostile.sh BITNET_BINARY SOURCE_DIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" hostile "$@"
FIXTURES=$SRC/../shared/fixtures

# Runs bitnet (with a deadline, as a FIFO could block it) expecting exit 1 and a stderr line
# matching the pattern (the only error line).
expect_error() {  # pattern args...
  local pattern=$1
  shift
  set +e
  timeout 20 "$BIN" "$@" >/dev/null 2>err.txt </dev/null
  local rc=$?
  set -e
  if [[ $rc == 1 ]] && grep -q -- "$pattern" err.txt && [[ $(grep -c "^error:" err.txt) == 1 ]]; then ok; else
    fail "bitnet $*: rc=$rc (expected 1 and '$pattern'): $(head -c 300 err.txt)"
  fi
}
# Files in the scratch directory whose names end in .partial (the writers' temporaries).
no_temporaries() { ! compgen -G "*.partial" >/dev/null && ! compgen -G "sub/*.partial" >/dev/null; }

"$BIN" dummy --shape 2b4t --type i2_s -o m.gguf "${SMALL[@]}" --seed 1 2>/dev/null
"$BIN" quantize m.gguf want-tq2.gguf tq2_0 2>/dev/null

# ---- 1. non-regular outputs are refused, symlinks are written through --------------------------
mkfifo out.fifo
expect_error "out.fifo' is a FIFO (named pipe), not a regular file; refusing to replace it" quantize m.gguf out.fifo tq2_0 --force
[[ -p out.fifo ]] && ok || fail "--force replaced a FIFO"
ln -s out.fifo link-to-fifo
expect_error "not a regular file" dummy --shape 2b4t --type i2_s -o link-to-fifo "${SMALL[@]}" --force
[[ -p out.fifo && -L link-to-fifo ]] && ok || fail "--force replaced a FIFO behind a symlink"
mkdir sub
expect_error "'sub' is a directory, not a regular file" dummy --shape 2b4t --type i2_s -o sub "${SMALL[@]}" --force
expect_error "'sub' is a directory" logits -m m.gguf --tokens 1,2 -o sub --force
[[ -d sub ]] && no_temporaries && ok || fail "a directory output left something behind"
cp m.gguf real.gguf
ln -s real.gguf link.gguf
"$BIN" quantize m.gguf link.gguf tq2_0 --force 2>/dev/null
[[ -L link.gguf ]] && cmp -s real.gguf want-tq2.gguf && ok || fail "writing through a symlink"

# ---- 2. unique temporaries, no-replace publish ---------------------------------------------------
cp m.gguf X.partial
"$BIN" quantize X.partial X tq2_0 2>err.txt && cmp -s X want-tq2.gguf && cmp -s X.partial m.gguf && ok ||
  fail "quantize X.partial X: $(cat err.txt)"
echo "someone else's" >Y.partial
"$BIN" quantize m.gguf Y tq2_0 2>/dev/null
[[ $(cat Y.partial) == "someone else's" ]] && ok || fail "an unrelated Y.partial was overwritten"
rm -f X.partial Y.partial

# ---- 3. no leftovers: failed writes and signals ---------------------------------------------------
# A file size limit makes writes fail as on a full disk; the old file must survive whole.
cp m.gguf victim.gguf
cp m.gguf victim.npy
set +e
(trap '' XFSZ; ulimit -f 64; "$BIN" quantize m.gguf victim.gguf tq2_0 --force) 2>err.txt
rc1=$?
(trap '' XFSZ; ulimit -f 2; "$BIN" logits -m m.gguf --tokens 1,2,3 -o victim.npy --force) 2>>err.txt
rc2=$?
set -e
[[ $rc1 == 1 && $rc2 == 1 ]] && cmp -s victim.gguf m.gguf && cmp -s victim.npy m.gguf && no_temporaries && ok ||
  fail "failed writes (rc $rc1 $rc2) damaged the old files or left temporaries: $(cat err.txt)"
# SIGTERM / SIGINT while dummy streams a 1.2 GB file. Job control (set -m) keeps SIGINT deliverable
# to a background job.
set -m
for sig in TERM INT; do
  "$BIN" dummy --shape 2b4t --type i2_s -o big.gguf 2>/dev/null &
  pid=$!
  for _ in $(seq 500); do
    compgen -G "big.gguf.*.partial" >/dev/null && break
    sleep 0.02
  done
  sleep 0.2
  kill -$sig $pid
  set +e
  wait $pid
  rc=$?
  set -e
  [[ $rc -gt 128 ]] && [[ ! -e big.gguf ]] && no_temporaries && ok ||
    fail "SIG$sig during dummy: rc=$rc, left $(ls big.gguf* 2>/dev/null)"
done
set +m

# ---- 6. special files as inputs ---------------------------------------------------------------
mkfifo in.fifo
expect_error "in.fifo: GGUF file is a FIFO (named pipe), not a regular file" -m in.fifo -p hi -n 1
expect_error "in.fifo: tokenizer file is a FIFO" tokenize --tokenizer in.fifo -p hi
expect_error "sub: tokenizer file is a directory" tokenize --tokenizer sub -p hi
expect_error "/dev/zero: tokenizer file is a character device" tokenize --tokenizer /dev/zero -p hi
for cmd in generate perplexity tokenize; do
  args=(-m m.gguf)
  [[ $cmd != generate ]] && args=("$cmd" -m m.gguf)
  expect_error "/dev/zero: text file is a character device" "${args[@]}" -f /dev/zero
  expect_error "sub: text file is a directory" "${args[@]}" -f sub
  expect_error "missing.txt: cannot open text file: No such file or directory" "${args[@]}" -f missing.txt
done
from_stdin=$(printf 'hello world' | "$BIN" tokenize -m m.gguf -f - --ids 2>/dev/null)
[[ $from_stdin == "$("$BIN" tokenize -m m.gguf -p 'hello world' --ids 2>/dev/null)" ]] && ok || fail "-f - does not read stdin"

# ---- 7. thread counts ---------------------------------------------------------------------------
if (($(nproc) < 64)); then
  "$BIN" -m m.gguf -p hi -n 1 -t 64 >/dev/null 2>err.txt
  grep -q "warning: -t 64 is more than the [0-9]* CPUs" err.txt && ok || fail "no warning for -t 64"
fi
expect_error "option '-t': invalid value '1048576' (expected an integer in \[1, 1024\])" bench -m m.gguf -t 1048576 -p 0 -n 1 -r 1
expect_error "option '--threads': invalid value '1025'" -m m.gguf -p hi -n 1 -t 1025

# ---- 8, 9. non-finite tensors and bad tokenizer ids (the defect reproducers) --------------------
if [[ -d $FIXTURES/defects ]]; then
  expect_error "blk.0.attn_norm.weight' holds a non-finite value" -m "$FIXTURES/defects/nan-attn-norm.gguf" -p hi -n 2
  expect_error "non-finite" -m "$FIXTURES/defects/model-nan-q8kv-ub.gguf" -p hi -n 2 -ctk q8_0 -ctv q8_0
  expect_error "vocab id 5.7 is not an integer" tokenize --tokenizer "$FIXTURES/defects/import-json-float-id-accepted.json" -p Hello
  expect_error "is not an integer" tokenize --tokenizer "$FIXTURES/defects/import-json-float-id-ub.json" -p Hello
else
  echo "note: $FIXTURES/defects absent; skipping the reproducer checks"
fi

report
