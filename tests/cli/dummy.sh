#!/usr/bin/env bash
# bitnet dummy: small models of every shape family and ternary type; sizes, reproducibility,
# refusal to overwrite, rejected shapes, and (when the engine runs) equal logits across types.
# Usage: dummy.sh BITNET_BINARY SOURCE_DIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" dummy "$@"

EMBD=256 LAYERS=2 FF=512 HD=64 NHEAD=4 NKV=2 VOCAB=1000
SHAPES=(2b4t large 3b llama3-8b falcon3-1b falcon3-3b falcon3-7b falcon3-10b 100b)
TYPES=(i2_s tq1_0 tq2_0)

pad32() { echo $((($1 + 31) / 32 * 32)); }
ternary_bytes() {  # type ne0 ne1
  case $1 in
    i2_s) pad32 $(($2 * $3 / 4 + 32)) ;;
    tq1_0) pad32 $(($3 * ($2 / 256) * 54)) ;;
    tq2_0) pad32 $(($3 * ($2 / 256) * 66)) ;;
  esac
}
# Bytes of tensor data the small overrides give for a shape's architecture and a type.
data_bytes() {  # arch type
  local arch=$1 t=$2 q=$((NHEAD * HD)) kv=$((NKV * HD)) layer head total
  layer=$(($(ternary_bytes "$t" $EMBD $q) + 2 * $(ternary_bytes "$t" $EMBD $kv) +
    $(ternary_bytes "$t" $q $EMBD) + 2 * $(ternary_bytes "$t" $EMBD $FF) + $(ternary_bytes "$t" $FF $EMBD) +
    2 * $(pad32 $((EMBD * 4)))))
  [[ $arch != llama ]] && layer=$((layer + $(pad32 $((q * 4))) + $(pad32 $((FF * 4)))))
  head=$(pad32 $((EMBD * VOCAB * 2)))
  total=$((head + LAYERS * layer + $(pad32 $((EMBD * 4)))))
  [[ $arch == llama ]] && total=$((total + head))
  echo $total
}
arch_of() { case $1 in 2b4t | 100b) echo bitnet-b1.58 ;; large | 3b) echo bitnet ;; *) echo llama ;; esac; }

probe_engine

for shape in "${SHAPES[@]}"; do
  arch=$(arch_of "$shape")
  header=""
  for t in "${TYPES[@]}"; do
    f="$shape-$t.gguf"
    if ! "$BIN" dummy --shape "$shape" --type "$t" -o "$f" "${SMALL[@]}" 2>err.txt; then
      fail "dummy --shape $shape --type $t: $(tail -c 300 err.txt)"
      continue
    fi
    size=$(stat -c %s "$f")
    h=$((size - $(data_bytes "$arch" "$t")))
    # Same metadata for every type, so the header (metadata + tensor table) must not change.
    if ((h <= 0)) || [[ -n $header && $h != "$header" ]]; then
      fail "$f: size $size does not fit the expected tensor data (header $h vs $header)"
    else ok; fi
    header=$h
  done
  if ((ENGINE)); then
    for t in "${TYPES[@]}"; do
      "$BIN" logits -m "$shape-$t.gguf" --tokens 1,5,9,42,7 -o "$shape-$t.npy" -t 1 2>/dev/null ||
        fail "logits on $shape-$t.gguf"
    done
    if cmp -s "$shape-i2_s.npy" "$shape-tq1_0.npy" && cmp -s "$shape-i2_s.npy" "$shape-tq2_0.npy"; then ok; else
      fail "$shape: logits differ between i2_s, tq1_0 and tq2_0"
    fi
  fi
done

# Architecture-specific tensor sets: sub-norms for BitNet, a separate output head for llama.
grep -q attn_sub_norm 2b4t-i2_s.gguf && ! grep -aqP '\x00output\.weight' 2b4t-i2_s.gguf && ok ||
  fail "2b4t: expected sub-norms and a tied head"
grep -aqP '\x00output\.weight' llama3-8b-i2_s.gguf && ! grep -q attn_sub_norm llama3-8b-i2_s.gguf && ok ||
  fail "llama3-8b: expected output.weight and no sub-norms"
grep -q 'bitnet-b1.58' 100b-i2_s.gguf && grep -q 'tokenizer.chat_template' falcon3-1b-tq2_0.gguf && ok ||
  fail "architecture name or chat template missing"

# --head-type: q8_0 embedding rows of 256 values = 8 blocks of 34 bytes instead of 512 bytes of f16.
"$BIN" dummy --shape llama3-8b --type tq2_0 --head-type q8_0 -o head-q8.gguf "${SMALL[@]}" 2>/dev/null
diff_bytes=$(($(stat -c %s llama3-8b-tq2_0.gguf) - $(stat -c %s head-q8.gguf)))
[[ $diff_bytes == $((2 * (EMBD * VOCAB * 2 - VOCAB * 8 * 34))) ]] && ok ||
  fail "--head-type q8_0 changed the size by $diff_bytes"

# Rows are generated and encoded on -t threads a slab at a time: any -t gives the bytes of -t 1
# (ff 200: I2_S groups of 128 values that straddle rows).
for ty in tq1_0 tq2_0 i2_s; do
  for t in 1 3; do
    "$BIN" dummy --shape 3b --type $ty --head-type q6_k -t $t -o threads-$ty-t$t.gguf "${SMALL[@]}" \
      $([[ $ty == i2_s ]] && echo --ff 200) 2>/dev/null
  done
  cmp -s threads-$ty-t1.gguf threads-$ty-t3.gguf && ok || fail "$ty, --head-type q6_k: -t 3 wrote other bytes than -t 1"
done

# Reproducible: equal seeds give identical bytes, another seed different weights.
"$BIN" dummy --shape large --type tq1_0 -o seed7a.gguf --seed 7 "${SMALL[@]}" 2>/dev/null
"$BIN" dummy --shape large --type tq1_0 -o seed7b.gguf --seed 7 "${SMALL[@]}" 2>/dev/null
"$BIN" dummy --shape large --type tq1_0 -o seed8.gguf --seed 8 "${SMALL[@]}" 2>/dev/null
cmp -s seed7a.gguf seed7b.gguf && ok || fail "--seed 7 twice gave different files"
cmp -s seed7a.gguf seed8.gguf && fail "--seed 7 and --seed 8 gave the same file" || ok

# Refuses to overwrite without --force (exit 1, a message, the file untouched); --force overwrites.
cp seed8.gguf keep.gguf
set +e
"$BIN" dummy --shape large --type tq1_0 -o keep.gguf --seed 7 "${SMALL[@]}" 2>err.txt
rc=$?
set -e
[[ $rc == 1 ]] && grep -q -- "--force" err.txt && cmp -s keep.gguf seed8.gguf && ok ||
  fail "overwrite without --force: rc=$rc, $(cat err.txt)"
"$BIN" dummy --shape large --type tq1_0 -o keep.gguf --seed 7 --force "${SMALL[@]}" 2>/dev/null
cmp -s keep.gguf seed7a.gguf && ok || fail "--force did not overwrite"

# Shapes a type cannot hold are rejected before anything is written, naming the tensor.
expect_error() {  # pattern args...
  local pattern=$1
  shift
  set +e
  "$BIN" dummy "$@" -o rejected.gguf 2>err.txt
  local rc=$?
  set -e
  if [[ $rc == 1 ]] && grep -q -- "$pattern" err.txt && [[ ! -e rejected.gguf ]]; then ok; else
    fail "dummy $*: rc=$rc, $(cat err.txt)"
  fi
}
expect_error "attn_q.weight.*multiple of 256" --shape 2b4t --type tq2_0 --embd 384 --heads 3 --heads-kv 1
expect_error "ffn_down.weight.*200.*multiple of 256" --shape 3b --type tq2_0 --embd 256 --heads 4 --heads-kv 4 --ff 200
expect_error "token_embd.weight.*Q6_K" --shape large --type i2_s --head-type q6_k --embd 128 --heads 2 --heads-kv 2
expect_error "unknown --shape" --shape 70b --type i2_s
expect_error "i2_s, tq1_0 or tq2_0" --shape 2b4t --type q8_0
expect_error "multiple of --heads-kv" --shape 2b4t --type i2_s --heads 5 --heads-kv 2

# I2_S packs the flattened tensor, so rows of any length (bitnet_b1_58-3B's FFN of 8640) are
# stored; the engine pads them with zeros at load and gives the same logits as TQ2_0 on rows that
# fit both (checked above), here it just has to run.
"$BIN" dummy --shape 3b --type i2_s -o ff200.gguf --embd 256 --heads 4 --heads-kv 4 --ff 200 --layers 1 --vocab 300 2>/dev/null &&
  ok || fail "dummy --shape 3b --ff 200 --type i2_s"
if ((ENGINE)); then
  "$BIN" logits -m ff200.gguf --tokens 1,5,9 -o ff200.npy -t 1 2>/dev/null && ok || fail "logits on an FFN of 200"
fi

# A head dimension other than embd / heads is recorded as key_length / value_length.
"$BIN" dummy --shape falcon3-1b --type tq2_0 --head-dim 128 -o hd.gguf "${SMALL[@]}" 2>/dev/null
grep -q 'llama.attention.key_length' hd.gguf && ! grep -q 'attention.key_length' falcon3-1b-tq2_0.gguf && ok ||
  fail "--head-dim did not write attention.key_length"

# A real tokenizer file is embedded and the vocabulary follows it.
TOKENIZER="$SRC/../shared/fixtures/tokenizers/llama2_tokenizer.model"
if [[ -f $TOKENIZER ]]; then
  args=(--embd 256 --layers 1 --ff 512 --heads 4 --heads-kv 4)
  "$BIN" dummy --shape large --type i2_s --tokenizer "$TOKENIZER" -o tok.gguf "${args[@]}" 2>/dev/null
  ids_model=$("$BIN" tokenize -m tok.gguf -p "Hello world" --ids 2>/dev/null)
  ids_file=$("$BIN" tokenize --tokenizer "$TOKENIZER" -p "Hello world" --ids 2>/dev/null)
  [[ -n $ids_model && $ids_model == "$ids_file" ]] && ok ||
    fail "embedded tokenizer gives '$ids_model', the file '$ids_file'"
else
  echo "note: $TOKENIZER absent; skipping the --tokenizer check" >&2
fi

# The real LLaMA 3 vocabulary (128256 ids) round-trips through a dummy GGUF: the embedded
# vocabulary tokenizes llama.cpp's 46 reference cases exactly as the tokenizer.json and the tiktoken
# ranks file do, and the model generates. A tiny embd keeps the f16 embedding (128256 x 256) at 63 MiB.
FIX="$SRC/../shared/fixtures"
L3_JSON="$FIX/tokenizers/llama3_tokenizer.json"
L3_TIKTOKEN="$FIX/tokenizers/bitnet_gpu_tokenizer.model"
L3_CASES="$FIX/vocab/ggml-vocab-llama-bpe.gguf"
if [[ ! -f $L3_JSON || ! -f $L3_TIKTOKEN || ! -f $L3_CASES.inp || ! -f $L3_CASES.out ]]; then
  echo "note: the LLaMA 3 fixtures under $FIX are absent; skipping the LLaMA 3 vocabulary round trip" >&2
elif ! command -v python3 >/dev/null; then
  echo "note: python3 absent (it writes the cases as JSON lines); skipping the LLaMA 3 vocabulary round trip" >&2
else
  args=(--shape 2b4t --type i2_s --embd 256 --layers 1 --ff 512 --heads 4 --heads-kv 2)
  if "$BIN" dummy "${args[@]}" --tokenizer "$L3_JSON" -o llama3.gguf 2>err.txt; then
    size=$(stat -c %s llama3.gguf)
    vocab_bytes=$((size - $(VOCAB=128256 LAYERS=1 data_bytes bitnet-b1.58 i2_s)))
    # Tokens and merges as metadata take about 7.6 MiB; more means something else grew.
    ((vocab_bytes > 4 << 20 && vocab_bytes < 12 << 20)) && ok ||
      fail "llama3.gguf: $size bytes, $vocab_bytes of them not tensor data"
    python3 - "$L3_CASES.inp" "$L3_CASES.out" <<'PY'
import json, sys
cases = open(sys.argv[1], encoding="utf-8").read().split("\n__ggml_vocab_test__\n")
if cases[-1] == "":
    cases.pop()
expected = open(sys.argv[2]).read().split("\n")[:-1]
assert len(cases) == len(expected) == 46, (len(cases), len(expected))
with open("cases.jsonl", "w") as f:
    f.writelines(json.dumps(c) + "\n" for c in cases)
with open("expected.jsonl", "w") as f:
    f.writelines(json.dumps([int(x) for x in e.split()], separators=(",", ":")) + "\n" for e in expected)
PY
    "$BIN" tokenize -m llama3.gguf --jsonl <cases.jsonl >ids-gguf.jsonl 2>err.txt || fail "tokenize -m llama3.gguf: $(cat err.txt)"
    "$BIN" tokenize --tokenizer "$L3_JSON" --jsonl <cases.jsonl >ids-json.jsonl 2>err.txt || fail "tokenize json: $(cat err.txt)"
    "$BIN" tokenize --tokenizer "$L3_TIKTOKEN" --jsonl <cases.jsonl >ids-tiktoken.jsonl 2>err.txt ||
      fail "tokenize tiktoken: $(cat err.txt)"
    [[ $(wc -l <ids-gguf.jsonl) == 46 ]] && cmp -s ids-gguf.jsonl ids-json.jsonl && ok ||
      fail "llama3.gguf and llama3_tokenizer.json tokenize differently: $(diff ids-gguf.jsonl ids-json.jsonl | head -4)"
    cmp -s ids-gguf.jsonl ids-tiktoken.jsonl && ok ||
      fail "llama3.gguf and bitnet_gpu_tokenizer.model tokenize differently: $(diff ids-gguf.jsonl ids-tiktoken.jsonl | head -4)"
    "$BIN" tokenize -m llama3.gguf --no-bos --jsonl <cases.jsonl >ids-nobos.jsonl 2>/dev/null
    cmp -s ids-nobos.jsonl expected.jsonl && ok ||
      fail "llama3.gguf differs from llama.cpp's ids: $(diff expected.jsonl ids-nobos.jsonl | head -4)"
    # The tiktoken file (128000 ranks) embedded as a vocabulary gives the same ids.
    if "$BIN" dummy "${args[@]}" --tokenizer "$L3_TIKTOKEN" -o tiktoken.gguf 2>err.txt; then
      "$BIN" tokenize -m tiktoken.gguf --jsonl <cases.jsonl >ids-tiktoken-gguf.jsonl 2>/dev/null
      cmp -s ids-gguf.jsonl ids-tiktoken-gguf.jsonl && ok ||
        fail "tiktoken.gguf tokenizes differently: $(diff ids-gguf.jsonl ids-tiktoken-gguf.jsonl | head -4)"
    else
      fail "dummy --tokenizer bitnet_gpu_tokenizer.model: $(tail -c 300 err.txt)"
    fi
    if ((ENGINE)); then
      "$BIN" -m llama3.gguf -p "Hello" -n 4 --temp 0 >gen.txt 2>err.txt && [[ $(head -c 5 gen.txt) == Hello ]] && ok ||
        fail "generating with llama3.gguf: $(tail -c 300 err.txt)"
    fi
  else
    fail "dummy --tokenizer llama3_tokenizer.json: $(tail -c 300 err.txt)"
  fi
fi

report
