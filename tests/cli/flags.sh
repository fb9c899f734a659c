#!/usr/bin/env bash
# Flags and messages as a llama.cpp user expects them: the llama.cpp flags copied commands carry,
# sampling values checked at parse time, warnings, BITNET_ISA, --help and --version.
# Usage: flags.sh BITNET_BINARY SOURCE_DIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" flags "$@"

# Runs bitnet; out/err hold stdout/stderr, rc its exit status.
run() {
  rc=0
  "$BIN" "$@" >out 2>err || rc=$?
}
expect_error() {  # pattern, arguments...
  local pattern=$1; shift
  run "$@"
  if [[ $rc != 1 ]]; then fail "'$*' exited with $rc, expected 1"; return; fi
  if [[ $(wc -l < err) != 1 ]] || ! grep -q "^error: .*$pattern" err; then
    fail "'$*': stderr '$(cat err)' is not one error line with '$pattern'"; return
  fi
  [[ ! -s out ]] || { fail "'$*' printed on stdout: $(cat out)"; return; }
  ok
}

# Sampling values are checked while parsing, before the model (absent here) is opened.
expect_error "'--top-p': invalid value '2' (expected a number in \[0, 1\])" -m absent.gguf --top-p 2
expect_error "'--min-p': invalid value '-1'" -m absent.gguf --min-p -1
expect_error "'--temp': invalid value 'inf'" -m absent.gguf --temp inf
expect_error "'--temp': invalid value 'nan'" -m absent.gguf --temp nan
expect_error "'--repeat-penalty': invalid value '0' (expected a number in (0, inf))" -m absent.gguf --repeat-penalty 0
expect_error "'--top-k': invalid value '-3'" -m absent.gguf --top-k -3
expect_error "'--flash-attn': invalid value 'maybe'" -m absent.gguf --flash-attn=maybe

# --version anywhere on the line, with the commit.
for args in "--version" "-m absent.gguf --version" "bench --version" "show x --version"; do
  run $args
  if [[ $rc == 0 ]] && grep -Eq "^bitnet [0-9]+\.[0-9]+\.[0-9]+ \(commit ([0-9a-f]{7,}(-dirty)?|unknown)\)$" out; then ok
  else fail "'$args': $(cat out err)"; fi
done

# --help: subcommands, environment variables, chat template names, the compatibility flags.
run --help
for word in logits perplexity tokenize bench show dummy quantize BITNET_ISA avx2 llama3 bitnet falcon3 chatml \
            --mlock --no-mmap -ub -tb -fa --color --log-disable --simple-io -st -i --no-warmup; do
  grep -q -- "$word" out && ok || fail "--help lacks $word"
done

# BITNET_ISA: an unknown name is refused with the list; names are case-insensitive.
BITNET_ISA=bogus run -m absent.gguf -p hi
if [[ $rc == 1 ]] && grep -q "^error: BITNET_ISA=bogus is not a kernel set; valid names: scalar, avx2, avxvnni, avx512vnni, neon, neon-dotprod" err; then ok
else fail "BITNET_ISA=bogus: rc $rc, $(cat err)"; fi

"$BIN" dummy --shape 2b4t --type i2_s "${SMALL[@]}" --ctx 256 -o tiny.gguf 2>/dev/null
# A copied llama.cpp command line runs; every ignored flag says so in one line.
run -m tiny.gguf -p hi -n 4 --temp 0 -t 1 -ngl 99 -fa -fa on --color -tb 2 --no-warmup -ub 8 -b 16
if [[ $rc == 0 ]]; then ok; else fail "compat flags: $(cat err)"; fi
[[ $(grep -c "^note: .* is accepted and ignored" err) == 6 ]] && ok || fail "expected 6 ignored-flag notes: $(cat err)"
for f in -ngl -fa --color -tb --no-warmup; do grep -q "^note: $f is accepted and ignored: " err && ok || fail "no note for $f"; done
cp out compat.out
# -ub and -b only split the work: same greedy text; so does reading the file into memory.
run -m tiny.gguf -p hi -n 4 --temp 0 -t 1 --no-mmap
cmp -s out compat.out && ok || fail "--no-mmap / -ub changed the output: $(cat out) vs $(cat compat.out)"
# system_info names the kernel set, which BITNET_ISA (any case) selects.
BITNET_ISA=SCALAR run -m tiny.gguf -p hi -n 2 -t 1
grep -q "^system_info: .* | kernels = scalar$" err && ok || fail "system_info with BITNET_ISA=SCALAR: $(cat err)"
run -m tiny.gguf -p hi -n 2 -t 1
grep -Eq "^system_info: .* \| kernels = (scalar|avx2|avxvnni|avx512vnni|neon|neon-dotprod)$" err && ok || fail "system_info: $(cat err)"

# --mlock locks the weights (or says clearly why it cannot).
run -m tiny.gguf -p hi -n 2 -t 1 --mlock
if [[ $rc == 0 ]]; then
  mib=$(sed -n 's/^mlock: \([0-9.]*\) MiB locked in RAM$/\1/p' err)
  size=$(stat -c %s tiny.gguf)
  if [[ ${BITNET_SANITIZED:-} == 1 ]]; then
    # ASan and TSan intercept mlock() as a no-op returning 0 ("ignores mlock" in their runtimes),
    # so nothing is locked there: only the report line is checked.
    [[ -n $mib ]] && ok || fail "--mlock: no 'mlock: N MiB locked' line: $(cat err)"
  else
    awk -v m="$mib" -v s="$size" 'BEGIN { exit !(m * 1048576 >= 0.9 * s) }' && ok || fail "--mlock locked '$mib' MiB of a $size-byte model"
  fi
else
  grep -q "^error: cannot lock the weights in RAM (--mlock): .*ulimit -l" err && ok || fail "--mlock failure message: $(cat err)"
fi

# --log-disable: no progress or system_info lines, the text still comes.
run -m tiny.gguf -p hi -n 2 -t 1 --log-disable
grep -q "system_info\|sampler seed\|loading model" err && fail "--log-disable still logs: $(cat err)" || ok
[[ -s out ]] && ok || fail "--log-disable: no output"

# Warnings: -t beyond the CPUs, -c beyond the training context, chat-only flags without -cnv.
run -m tiny.gguf -t 1000 --help
grep -q "^warning: -t 1000 is more than the $(nproc) CPUs" err && ok || fail "-t 1000: $(cat err)"
run -m tiny.gguf -p hi -n 1 -t 1 -c 512
grep -q "^warning: -c 512 is beyond the model's training context (256)" err && ok || fail "-c 512: $(cat err)"
run -m tiny.gguf -p hi -n 1 -t 1 -sys "be brief" --chat-template chatml -st --simple-io
for f in -sys --chat-template -st --simple-io; do
  grep -q "^warning: $f only applies to chat mode (-cnv); ignored" err && ok || fail "no chat-only warning for $f: $(cat err)"
done
# The vocabulary and the embedding rows disagree: a 512-token tokenizer on a 1000-row embedding.
TOK=$SRC/../shared/fixtures/models/stories260K/tok512.model
if [[ -f $TOK ]]; then
  run -m tiny.gguf -p hi -n 1 -t 1 --tokenizer "$TOK"
  grep -q "^warning: the tokenizer has 512 tokens but the embedding has 1000 rows" err && ok || fail "vocab warning: $(cat err)"
else
  echo "note: $TOK absent, the vocabulary warning check is skipped"
fi

# Nothing reaches stdout before the prompt is known to fit.
long=$(printf 'word %.0s' $(seq 400))
expect_error "context" -m tiny.gguf -p "$long" -n 1 -t 1 -c 64 --log-disable

# Chat: -st answers one message and exits; -i is chat mode too.
printf 'hello\nsecond\n' | "$BIN" -m tiny.gguf -cnv -st -n 3 -t 1 >out 2>err && ok || fail "-st: $(cat err)"
[[ $(grep -c "^\[ Prompt: " err) == 1 ]] && ok || fail "-st answered $(grep -c "^\[ Prompt: " err) messages"
printf 'hello\n' | "$BIN" -m tiny.gguf -i -n 3 -t 1 >out 2>err && ok || fail "-i: $(cat err)"
[[ $(grep -c "^\[ Prompt: " err) == 1 ]] && ok || fail "-i is not chat mode: $(cat err)"
# The 2B4T template `bitnet dummy` writes is recognised (no fallback message).
grep -q "none recognised" err && fail "the 2b4t dummy's chat template is not recognised: $(cat err)" || ok

report
