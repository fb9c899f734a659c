#!/usr/bin/env bash
# bitnet quantize: lossless round trips i2_s -> tq2_0 -> tq1_0 -> i2_s, scale handling, head
# requantization and the refusals. Usage: quantize.sh BITNET_BINARY SOURCE_DIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" quantize "$@"

dummy() { "$BIN" dummy "$@" "${SMALL[@]}" 2>/dev/null; }
quantize() { "$BIN" quantize "$@" 2>/dev/null; }
# Runs bitnet quantize expecting exit 1 and a message matching pattern, and no output file left.
expect_refusal() {  # pattern out args...
  local pattern=$1 out=$2
  shift 2
  set +e
  "$BIN" quantize "$@" 2>err.txt
  local rc=$?
  set -e
  if [[ $rc == 1 ]] && grep -q -- "$pattern" err.txt && [[ ! -e $out ]]; then ok; else
    fail "quantize $*: rc=$rc, $(cat err.txt)"
  fi
}
# Writes bytes (printf escapes) into a file at an offset.
patch_bytes() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

probe_engine

# Round trips through every type give back the same bytes, and each step equals the file dummy
# writes directly in that type (same values, same scales).
for shape in 2b4t large llama3-8b falcon3-1b; do
  for t in i2_s tq1_0 tq2_0; do dummy --shape "$shape" --type "$t" -o "$shape-$t.gguf" --seed 3; done
  quantize "$shape-i2_s.gguf" "$shape-a.gguf" tq2_0
  quantize "$shape-a.gguf" "$shape-b.gguf" tq1_0
  quantize "$shape-b.gguf" "$shape-c.gguf" i2_s
  cmp -s "$shape-c.gguf" "$shape-i2_s.gguf" && ok || fail "$shape: i2_s -> tq2_0 -> tq1_0 -> i2_s changed the file"
  cmp -s "$shape-a.gguf" "$shape-tq2_0.gguf" && ok || fail "$shape: i2_s -> tq2_0 differs from dummy tq2_0"
  cmp -s "$shape-b.gguf" "$shape-tq1_0.gguf" && ok || fail "$shape: tq2_0 -> tq1_0 differs from dummy tq1_0"
  quantize "$shape-tq1_0.gguf" "$shape-d.gguf" tq2_0
  cmp -s "$shape-d.gguf" "$shape-tq2_0.gguf" && ok || fail "$shape: tq1_0 -> tq2_0 differs from dummy tq2_0"
  if ((ENGINE)); then
    for f in "$shape-i2_s" "$shape-b"; do
      "$BIN" logits -m "$f.gguf" --tokens 3,1,4,1,5 -o "$f.npy" -t 1 2>/dev/null || fail "logits on $f.gguf"
    done
    cmp -s "$shape-i2_s.npy" "$shape-b.npy" && ok || fail "$shape: logits of the converted file differ"
  fi
done

# Progress goes to stderr and ends at 100%.
"$BIN" quantize 2b4t-i2_s.gguf progress.gguf tq2_0 2>err.txt >out.txt
grep -q "100%" err.txt && [[ ! -s out.txt ]] && ok || fail "no progress on stderr"

# An I2_S scale that f16 cannot hold: refused when going to TQ unless --allow-requant, which rounds
# it and says so. The last ternary tensor of the 2b4t layout is blk.1.ffn_down, followed by
# ffn_sub_norm (512 f32) and output_norm (256 f32); its scale is the first 4 bytes of its trailer.
cp 2b4t-i2_s.gguf odd-scale.gguf
size=$(stat -c %s odd-scale.gguf)
patch_bytes odd-scale.gguf $((size - 1024 - 2048 - 32)) '\xcd\xcc\xcc\x3d'  # 0.1f
expect_refusal "allow-requant" odd-tq2.gguf odd-scale.gguf odd-tq2.gguf tq2_0
"$BIN" quantize odd-scale.gguf odd-tq2.gguf tq2_0 --allow-requant 2>err.txt
grep -q "rounded the scales of 1 tensors" err.txt && ok || fail "--allow-requant did not report the rounding"
quantize odd-tq2.gguf odd-back.gguf i2_s
# Only the scale changed (0.1 -> its f16 neighbour 0.0999755859375).
changed=$( (cmp -l odd-scale.gguf odd-back.gguf || true) | wc -l)
((changed >= 1 && changed <= 4)) && ok || fail "rounding the scale changed $changed bytes"
quantize odd-scale.gguf odd-same.gguf i2_s
cmp -s odd-scale.gguf odd-same.gguf && ok || fail "i2_s -> i2_s changed a non-f16 scale"

# Rows with different scales are fine in TQ (a scale per block) but cannot become I2_S (one scale
# per tensor). The last row of blk.1.ffn_down in tq2_0 is two 66-byte blocks, d at byte 64 of each.
cp 2b4t-tq2_0.gguf row-scales.gguf
end=$(($(stat -c %s row-scales.gguf) - 1024 - 2048))
patch_bytes row-scales.gguf $((end - 68)) '\x00\x38'  # f16 0.5
patch_bytes row-scales.gguf $((end - 2)) '\x00\x38'
quantize row-scales.gguf row-scales-tq1.gguf tq1_0 && ok || fail "tq2_0 with per-row scales -> tq1_0 failed"
quantize row-scales-tq1.gguf row-scales-tq2.gguf tq2_0
cmp -s row-scales.gguf row-scales-tq2.gguf && ok || fail "per-row scales did not survive tq1_0"
expect_refusal "one scale per tensor" row-scales-i2s.gguf row-scales.gguf row-scales-i2s.gguf i2_s
# That refusal comes after most of the file was written: with --force over an existing file, the
# existing file must survive untouched and no partial file be left behind.
cp 2b4t-i2_s.gguf victim.gguf
set +e
"$BIN" quantize row-scales.gguf victim.gguf i2_s --force 2>/dev/null
rc=$?
set -e
[[ $rc == 1 ]] && cmp -s victim.gguf 2b4t-i2_s.gguf && ! ls ./*.partial >/dev/null 2>&1 && ok ||
  fail "a failed --force conversion damaged the existing output or left a partial file (rc=$rc)"

# --head-type requantizes token_embd/output only: q8_0 rows of 256 values take 8 * 34 bytes
# instead of 512, for 1000 rows in each of the two llama head tensors.
quantize llama3-8b-i2_s.gguf head-q8.gguf i2_s --head-type q8_0
diff_bytes=$(($(stat -c %s llama3-8b-i2_s.gguf) - $(stat -c %s head-q8.gguf)))
[[ $diff_bytes == $((2 * 1000 * (512 - 8 * 34))) ]] && ok || fail "--head-type q8_0 changed the size by $diff_bytes"
# q6_k: one 210-byte block per 256-value row of the tied 2b4t head; 210000 bytes pad to 210016.
quantize 2b4t-tq1_0.gguf head-q6.gguf tq1_0 --head-type q6_k
diff_bytes=$(($(stat -c %s 2b4t-tq1_0.gguf) - $(stat -c %s head-q6.gguf)))
[[ $diff_bytes == $((1000 * 512 - 210016)) ]] && ok || fail "--head-type q6_k changed the size by $diff_bytes"
if ((ENGINE)); then
  "$BIN" logits -m head-q8.gguf --tokens 3,1,4 -o head-q8.npy -t 1 2>/dev/null && ok ||
    fail "logits on the q8_0-head file"
fi

# Refusals: existing output without --force, input as output, a non-ternary TYPE, a bad head type.
cp 2b4t-tq1_0.gguf exists.gguf
expect_refusal "--force" none.gguf 2b4t-i2_s.gguf exists.gguf tq1_0
cmp -s exists.gguf 2b4t-tq1_0.gguf && ok || fail "the existing output was modified"
"$BIN" quantize 2b4t-i2_s.gguf exists.gguf tq2_0 --force 2>/dev/null
cmp -s exists.gguf 2b4t-tq2_0.gguf && ok || fail "--force did not overwrite"
expect_refusal "is the input file" none.gguf 2b4t-i2_s.gguf ./2b4t-i2_s.gguf tq2_0 --force
expect_refusal "i2_s, tq1_0 or tq2_0" q4.gguf 2b4t-i2_s.gguf q4.gguf q4_0
expect_refusal "head-type must be" tq.gguf 2b4t-i2_s.gguf tq.gguf i2_s --head-type tq2_0
expect_refusal "expected IN OUT TYPE" none.gguf 2b4t-i2_s.gguf

# A model without ternary weights is refused with the reason.
F32_MODEL="$SRC/../shared/fixtures/models/stories260K/stories260K.f32.gguf"
if [[ -f $F32_MODEL ]]; then
  expect_refusal "has no ternary weights" f32.gguf "$F32_MODEL" f32.gguf i2_s
else
  echo "note: $F32_MODEL absent; skipping the non-ternary input check" >&2
fi

report
