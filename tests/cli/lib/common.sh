# Setup shared by the tests/cli scripts that make dummy models (kept out of tests/cli/ itself,
# where every *.sh becomes a ctest). Source it first, with the test's name and its arguments:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" NAME "$@"
# It turns on strict mode, sets BIN and SRC, moves into a scratch directory removed on exit, and
# gives ok/fail counters, the small model overrides, the engine probe and the summary.
set -euo pipefail
TEST_NAME=$1
BIN=$(realpath "$2")
SRC=$(realpath "$3")
WORK=$(mktemp -d "$PWD/$TEST_NAME-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }

SMALL=(--embd 256 --layers 2 --ff 512 --heads 4 --heads-kv 2 --vocab 1000)

# Does the engine load and run dummy models? Sets ENGINE to 1 if so; checks that need it are
# skipped (and said so) if not.
probe_engine() {
  "$BIN" dummy --shape 2b4t --type i2_s -o probe.gguf "${SMALL[@]}" 2>/dev/null
  ENGINE=0
  if "$BIN" -m probe.gguf -p hi -n 1 >/dev/null 2>&1; then ENGINE=1; else
    echo "note: the engine does not run dummy models yet; skipping the logits checks" >&2
  fi
}

# Prints the counts; fails if any check failed (call it last).
report() {
  echo "$TEST_NAME: $passed passed, $failed failed"
  ((failed == 0))
}
