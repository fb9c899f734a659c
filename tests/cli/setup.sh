#!/usr/bin/env bash
# Setup: `make run` asks only for the build's packages and builds only the binary, `make test` adds
# the test packages; the install rule installs bin/bitnet; `make run` ends with next steps.
# Usage: setup.sh BITNET_BINARY SOURCE_DIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" setup "$@"

runtime=$(bash "$SRC/scripts/install-deps.sh" --list)
all=$(bash "$SRC/scripts/install-deps.sh" --test --list)
for p in g++-aarch64-linux-gnu qemu-user libgtest-dev libbenchmark-dev; do
  grep -qx "$p" <<<"$runtime" && fail "make run would install the test-only package $p" || ok
  grep -qx "$p" <<<"$all" && ok || fail "--test does not install $p"
done
for p in cmake libedit-dev libpcre2-dev nlohmann-json3-dev; do
  grep -qx "$p" <<<"$runtime" && ok || fail "the build package $p is missing from the runtime list"
done

# What make would run (-n: nothing is executed): run = runtime packages + the bitnet target only.
make -s -n -C "$SRC" run BUILD_DIR=/nonexistent >plan 2>&1 || true
grep -q "install-deps.sh$" plan && ok || fail "make run does not install the runtime packages: $(cat plan)"
grep -q "install-deps.sh --test" plan && fail "make run installs the test packages" || ok
make -s -n -C "$SRC" build BUILD_DIR=/nonexistent >plan 2>&1 || true
grep -q "BITNET_BUILD_TESTS=OFF" plan && grep -q -- "--target bitnet" plan && ok || fail "make build plan: $(cat plan)"
make -s -n -C "$SRC" test BUILD_DIR=/nonexistent >plan 2>&1 || true
grep -q "install-deps.sh --test" plan && ok || fail "make test does not install the test packages: $(cat plan)"
make -s -n -C "$SRC" run BUILD_DIR=/nonexistent | grep -q "next-steps.txt" && ok || fail "make run prints no next steps"
grep -q "bitnet -m .* -cnv" "$SRC/scripts/next-steps.txt" && grep -q "bench" "$SRC/scripts/next-steps.txt" &&
  grep -q "huggingface" "$SRC/scripts/next-steps.txt" && ok || fail "next steps lack chat, bench or a real model"

# cmake --install puts the binary (and only it) under the prefix; the installed one runs.
BUILD=$(dirname "$BIN")
cmake --install "$BUILD" --prefix "$PWD/prefix" >install.log 2>&1 && ok || fail "cmake --install: $(cat install.log)"
[[ -x prefix/bin/bitnet ]] && ok || fail "no prefix/bin/bitnet"
[[ $(find prefix -type f | wc -l) == 1 ]] && ok || fail "installed more than the binary: $(find prefix -type f)"
prefix/bin/bitnet --version | grep -q "^bitnet " && ok || fail "the installed binary does not run"
report
