#!/usr/bin/env bash
# Runs ctest in a sanitizer build (make test-sanitize) with every sanitizer report written to a file
# under BUILD_DIR/sanitizer-reports/, also those of the bitnet processes the CLI tests start (a test
# may expect their non-zero exit, so the exit code alone cannot tell). Fails when ctest fails or any
# report was written, printing the reports.
#   scripts/sanitized-ctest.sh BUILD_DIR [CTEST_ARGS...]
set -uo pipefail
build=$(cd "$1" && pwd)
shift
reports=$build/sanitizer-reports
rm -rf "$reports" && mkdir -p "$reports"
# verify_asan_link_order=0: the server test preloads a small open() shim ahead of libasan.
export ASAN_OPTIONS=detect_leaks=1:verify_asan_link_order=0:log_path=$reports/asan
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan
(cd "$build" && ctest --output-on-failure "$@")
status=$?
if compgen -G "$reports/*" >/dev/null; then
  for f in "$reports"/*; do echo "== $f"; cat "$f"; done
  echo "sanitized-ctest: $(ls "$reports" | wc -l) sanitizer report(s), above" >&2
  exit 1
fi
exit $status
