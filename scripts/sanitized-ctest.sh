#!/usr/bin/env bash
# Runs ctest in a sanitizer build (make test-sanitize: ASan + UBSan; make test-tsan: TSan) and fails
# when ctest fails or a sanitizer reported anything, also in the bitnet processes the CLI tests
# start (a test may expect their non-zero exit, so the exit code alone cannot tell): ASan's and
# TSan's reports go to files under BUILD_DIR/sanitizer-reports/; UBSan, which ignores log_path when
# combined with ASan (GCC 12), is found by its "runtime error:" lines in the tests' full output
# (BUILD_DIR/sanitized-ctest.log, ctest -V; the console shows the progress lines and the end of
# each failed test's output). The tests see BITNET_SANITIZED=1 (see tests/cli/flags.sh, server_load.sh).
#   scripts/sanitized-ctest.sh BUILD_DIR [CTEST_ARGS...]
set -uo pipefail
build=$(cd "$1" && pwd)
shift
reports=$build/sanitizer-reports
rm -rf "$reports" && mkdir -p "$reports"
export BITNET_SANITIZED=1
# verify_asan_link_order=0: the server test preloads a small open() shim ahead of libasan.
export ASAN_OPTIONS=detect_leaks=1:verify_asan_link_order=0:log_path=$reports/asan
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=log_path=$reports/tsan:second_deadlock_stack=1:suppressions=$(cd "$(dirname "$0")" && pwd)/tsan-suppressions.txt
run=()
if grep -q "^BITNET_TSAN:BOOL=ON" "$build/CMakeCache.txt"; then
  # GCC 12's TSan cannot map its shadow memory when the kernel randomizes mmap addresses with more
  # than 28 bits (vm.mmap_rnd_bits = 32 on some distributions): run without address randomization.
  if setarch "$(uname -m)" -R true 2>/dev/null; then run=(setarch "$(uname -m)" -R); fi
fi
log=$build/sanitized-ctest.log
(cd "$build" && "${run[@]}" ctest -V "$@") 2>&1 | tee "$log" | grep -E "^ *[0-9]+/[0-9]+ Test|tests passed|tests failed|^[[:space:]]+[0-9]+ - "
status=${PIPESTATUS[0]}
for n in $(grep -oE "^[[:space:]]+[0-9]+ - " "$log" | grep -oE "[0-9]+"); do
  echo "== output of failed test $n (end):"
  grep "^$n: " "$log" | tail -n 60
done
if grep -q "runtime error:" "$log"; then
  grep -B2 -A12 "runtime error:" "$log"
  echo "sanitized-ctest: UndefinedBehaviorSanitizer reports above (from $log)" >&2
  exit 1
fi
if compgen -G "$reports/*" >/dev/null; then
  for f in "$reports"/*; do echo "== $f"; cat "$f"; done
  echo "sanitized-ctest: $(ls "$reports" | wc -l) sanitizer report(s), above" >&2
  exit 1
fi
exit $status
