#!/usr/bin/env bash
# Runs the libFuzzer targets of a BITNET_FUZZ build (make fuzz) for SECONDS each, JOBS at a time.
# Each starts from its committed seeds, tests/fuzz/corpus/<target>/ (read, never written), plus
# the inputs earlier runs found (BUILD_DIR/fuzz/<target>/corpus). Exits 1 when a target crashes,
# fails a check, leaks, or spends more than 10 s on one input, after printing the end of its log
# and the reproducer's path (add the reproducer to the seeds with a regression test).
# A run is reproducible: fixed seed FUZZ_SEED (default 1) and at most FUZZ_RUNS inputs (default
# 60000, about 1-20 s per target), so a clean run here is a clean run in CI; SECONDS caps each
# target's time. For long fuzzing: FUZZ_RUNS=-1 (no limit), SECONDS=3600, any FUZZ_SEED.
#   scripts/fuzz.sh BUILD_DIR [SECONDS=20] [JOBS=2] [TARGET...]   (default: every fuzz_* target)
set -euo pipefail
build=$1 seconds=${2:-20} jobs=${3:-2} runs=${FUZZ_RUNS:-60000} seed=${FUZZ_SEED:-1}
shift $(($# < 3 ? $# : 3))
src=$(cd "$(dirname "$0")/.." && pwd)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$build"/fuzz_*; do [ -x "$f" ] && targets+=("$(basename "$f")"); done
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no fuzz_* executables in $build (make fuzz builds them)" >&2; exit 1; }

run_one() {
  local t=$1 work=$build/fuzz/$1
  mkdir -p "$work/corpus" "$work/crashes"
  local seeds=$src/tests/fuzz/corpus/$t
  [ -d "$seeds" ] || { echo "fuzz: $t has no seed corpus $seeds" >&2; return 1; }
  if "$build/$t" -seed="$seed" -runs="$runs" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$work/crashes/" "$work/corpus" "$seeds" >"$work/log" 2>&1; then
    echo "fuzz: $t: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/log" | grep -o '[0-9]*$') runs (seed $seed), no finding"
  else
    echo "fuzz: $t FAILED; end of $work/log:" >&2
    tail -n 40 "$work/log" >&2
    ls "$work"/crashes/* >&2 2>/dev/null || true
    return 1
  fi
}
export -f run_one
export build seconds src runs seed
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'
