#!/usr/bin/env bash
# bitnet convert: a small bitnet_b1_58-style checkpoint (BitnetForCausalLM, F16 safetensors, a
# byte-fallback tokenizer.json) written here with printf, converted and run; the output path on
# stdout, refusal to overwrite, and one-line errors without an output file for bad input.
# (The float64 comparisons of every family are in tests/test_convert.cpp.)
# Usage: convert.sh BITNET_BINARY SOURCE_DIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" convert "$@"

EMBD=64 FF=96 VOCAB=260
CK=ckpt
mkdir -p $CK

# F16 values from a table of 8 (1, -1, 0.5, -0.5, 0.25, 0, 1.5, -0.25), as printf escapes.
F16=('\x00\x3c' '\x00\xbc' '\x00\x38' '\x00\xb8' '\x00\x34' '\x00\x00' '\x00\x3e' '\x00\xb4')
pattern() {  # n_values seed -> F16 bytes on stdout
  local n=$1 s=$2 i out=""
  for ((i = 0; i < n; i++)); do out+=${F16[$(((i * 7 + i / 13 + s) % 8))]}; done
  printf '%b' "$out"
}
pattern $((FF * EMBD)) 0 >weights.bin
pattern $((VOCAB * EMBD)) 3 >embed.bin
printf '\x00\x3c%.0s' $(seq $FF) >ones.bin

# Tensors: name, shape, data file, bytes.
names=() shapes=() files=() sizes=()
add() { names+=("$1"); shapes+=("$2"); files+=("$3"); sizes+=("$4"); }
add model.embed_tokens.weight "[$VOCAB,$EMBD]" embed.bin $((VOCAB * EMBD * 2))
add lm_head.weight "[$VOCAB,$EMBD]" embed.bin $((VOCAB * EMBD * 2))
add model.norm.weight "[$EMBD]" ones.bin $((EMBD * 2))
P=model.layers.0
add $P.input_layernorm.weight "[$EMBD]" ones.bin $((EMBD * 2))
add $P.post_attention_layernorm.weight "[$EMBD]" ones.bin $((EMBD * 2))
add $P.self_attn.inner_attn_ln.weight "[$EMBD]" ones.bin $((EMBD * 2))
add $P.mlp.ffn_layernorm.weight "[$FF]" ones.bin $((FF * 2))
for p in q k v o; do add $P.self_attn.${p}_proj.weight "[$EMBD,$EMBD]" weights.bin $((EMBD * EMBD * 2)); done
add $P.mlp.gate_proj.weight "[$FF,$EMBD]" weights.bin $((FF * EMBD * 2))
add $P.mlp.up_proj.weight "[$FF,$EMBD]" weights.bin $((FF * EMBD * 2))
add $P.mlp.down_proj.weight "[$EMBD,$FF]" weights.bin $((FF * EMBD * 2))

write_safetensors() {  # out
  local header="{" off=0 i
  for i in "${!names[@]}"; do
    header+="\"${names[$i]}\":{\"dtype\":\"F16\",\"shape\":${shapes[$i]},\"data_offsets\":[$off,$((off + sizes[i]))]},"
    off=$((off + sizes[i]))
  done
  header="${header%,}}"
  while (((${#header} % 8) != 0)); do header+=" "; done
  local n=${#header} len=""
  for i in 0 1 2 3 4 5 6 7; do len+=$(printf '\\x%02x' $(((n >> (8 * i)) & 255))); done
  {
    printf '%b' "$len"
    printf '%s' "$header"
    for i in "${!names[@]}"; do head -c "${sizes[$i]}" "${files[$i]}"; done
  } >"$1"
}
write_safetensors $CK/model.safetensors

cat >$CK/config.json <<EOF
{"architectures": ["BitnetForCausalLM"], "hidden_act": "silu", "hidden_size": $EMBD,
 "intermediate_size": $FF, "num_hidden_layers": 1, "num_attention_heads": 4,
 "num_key_value_heads": 4, "vocab_size": $VOCAB, "max_position_embeddings": 128,
 "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false}
EOF
# SentencePiece-style BPE with byte fallback: <unk> <s> </s>, the 256 byte tokens, U+2581.
{
  printf '{"model": {"type": "BPE", "byte_fallback": true, "unk_token": "<unk>", "merges": [], "vocab": {'
  printf '"<unk>": 0, "<s>": 1, "</s>": 2'
  for ((b = 0; b < 256; b++)); do printf ', "<0x%02X>": %d' $b $((b + 3)); done
  printf ', "\xe2\x96\x81": 259}},\n'
  printf '"added_tokens": [{"id": 0, "content": "<unk>", "special": true}, {"id": 1, "content": "<s>", "special": true}, {"id": 2, "content": "</s>", "special": true}],\n'
  printf '"normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\xe2\x96\x81"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\xe2\x96\x81"}]}}\n'
} >$CK/tokenizer.json
echo '{"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true}' >$CK/tokenizer_config.json

# Converts; the last stdout line is the output path; the model runs and keeps the tokenizer.
if "$BIN" convert $CK -o out.gguf >out.txt 2>err.txt && [[ $(tail -n 1 out.txt) == out.gguf ]]; then ok; else
  fail "convert: $(cat out.txt err.txt)"
fi
grep -q "convert: 100%" err.txt && ok || fail "no progress on stderr: $(cat err.txt)"
"$BIN" logits -m out.gguf --tokens 1,5,9,200 -o out.npy -t 1 2>/dev/null && ok || fail "logits on the converted model"
want=$("$BIN" tokenize --tokenizer $CK/tokenizer.json -p "Hi there" --ids 2>/dev/null)
got=$("$BIN" tokenize -m out.gguf -p "Hi there" --ids 2>/dev/null)
[[ -n $want && $got == "$want" ]] && ok || fail "tokenizer: GGUF gives '$got', tokenizer.json '$want'"

# Refuses to overwrite without --force; --force overwrites.
echo precious >keep.gguf
set +e
"$BIN" convert $CK -o keep.gguf >/dev/null 2>err.txt
rc=$?
set -e
[[ $rc == 1 && $(cat keep.gguf) == precious ]] && grep -q -- "--force" err.txt && ok ||
  fail "overwrite without --force: rc=$rc, $(cat err.txt)"
"$BIN" convert $CK -o keep.gguf --force >/dev/null 2>&1 && cmp -s keep.gguf out.gguf && ok ||
  fail "--force did not give the same file"

# Bad input: one line on stderr, exit 1, no output file.
expect_error() {  # pattern dir args...
  local pattern=$1 dir=$2
  shift 2
  set +e
  "$BIN" convert "$dir" -o rejected.gguf "$@" >/dev/null 2>err.txt
  local rc=$?
  set -e
  if [[ $rc == 1 ]] && grep -q -- "$pattern" err.txt && [[ $(wc -l <err.txt) == 1 && ! -e rejected.gguf &&
    ! -e rejected.gguf.partial ]]; then ok; else
    fail "convert $dir $*: rc=$rc, $(cat err.txt)"
  fi
}
expect_error "multiple of 256" $CK --type tq2_0
expect_error "i2_s, tq1_0 or tq2_0" $CK --type q8_0
mkdir noweights && cp $CK/config.json noweights/
expect_error "no model.safetensors" noweights
expect_error "config.json: cannot open" nonexistent
cp -r $CK bad && sed -i 's/BitnetForCausalLM/GPT2LMHeadModel/' bad/config.json
expect_error "'GPT2LMHeadModel' is not supported" bad
cp $CK/config.json bad/config.json && truncate -s -64 bad/model.safetensors
expect_error "outside the data section" bad
"$BIN" convert --help >/dev/null && ok || fail "convert --help"

report
