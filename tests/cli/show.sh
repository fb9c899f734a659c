#!/usr/bin/env bash
# bitnet show: summary, metadata, chat template (recognised name) and tensor table of a model, and
# the chat template every `bitnet dummy` shape writes being recognised as its family's.
# Usage: show.sh BITNET_BINARY SOURCE_DIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" show "$@"

"$BIN" dummy --shape 2b4t --type i2_s "${SMALL[@]}" -o tiny.gguf 2>/dev/null
"$BIN" show tiny.gguf >out 2>err && ok || fail "show: $(cat err)"
[[ ! -s err ]] && ok || fail "show wrote to stderr: $(cat err)"
grep -Eq "^  architecture +bitnet-b1\.58$" out && ok || fail "summary architecture"
grep -Eq "^  embedding length +256$" out && ok || fail "summary embedding length"
grep -Eq "^  general\.architecture +string +\"bitnet-b1\.58\"$" out && ok || fail "metadata row"
grep -Eq "^  tokenizer\.ggml\.tokens +arr\[string,1000\] +\[.*, \.\.\. \(1000 items\)\]$" out && ok || fail "long array shortened"
grep -q "^  recognised as: bitnet$" out && ok || fail "chat template not recognised as bitnet"
# Tensor table: name, type, shape, bytes (an F16 256 x 1000 embedding is 512000 bytes).
grep -Eq "^  name +type +shape +bytes$" out && ok || fail "tensor header"
grep -Eq "^  token_embd\.weight +F16 +256 x 1000 +512000$" out && ok || fail "token_embd row: $(grep token_embd out)"
grep -Eq "^  blk\.0\.attn_q\.weight +I2_S +256 x 256 " out && ok || fail "attn_q row"
n_tensors=$(sed -n 's/^tensors (\([0-9]*\), .*/\1/p' out)
[[ $(sed -n '/^tensors (/,$p' out | tail -n +3 | wc -l) == "$n_tensors" ]] && ok || fail "tensor count $n_tensors"
"$BIN" show tiny.gguf --no-metadata --no-tensors >out2 && ok || fail "--no-metadata --no-tensors"
grep -q "general.architecture\|token_embd" out2 && fail "--no-metadata/--no-tensors still print them" || ok
"$BIN" show tiny.gguf --template >tmpl && ok || fail "--template"
grep -q "Assistant: " tmpl && ok || fail "--template text: $(cat tmpl)"

# Each shape family's template is recognised as that family's built-in one.
for pair in 2b4t:bitnet llama3-8b:llama3 falcon3-1b:falcon3 100b:bitnet; do
  shape=${pair%%:*} want=${pair#*:}
  "$BIN" dummy --shape "$shape" --type tq2_0 "${SMALL[@]}" -o "$shape.gguf" 2>/dev/null
  got=$("$BIN" show "$shape.gguf" --no-metadata --no-tensors | sed -n 's/^  recognised as: //p')
  [[ $got == "$want" ]] && ok || fail "$shape: template recognised as '$got', expected '$want'"
done
"$BIN" dummy --shape large --type tq2_0 "${SMALL[@]}" -o large.gguf 2>/dev/null
"$BIN" show large.gguf --no-tensors | grep -q "^  none in the file" && ok || fail "large: no template expected"
if "$BIN" show large.gguf --template >/dev/null 2>err; then fail "--template without one succeeded"; fi
grep -q "^error: .*has no chat template" err && ok || fail "--template without one: $(cat err)"

# Errors: one line, non-zero.
if "$BIN" show >/dev/null 2>err; then fail "show without a model succeeded"; fi
grep -q "^error: no model given" err && ok || fail "no model: $(cat err)"
if "$BIN" show missing.gguf >/dev/null 2>err; then fail "show of a missing file succeeded"; fi
[[ $(wc -l < err) == 1 ]] && grep -q "^error: .*missing.gguf" err && ok || fail "missing file: $(cat err)"
report
