#!/usr/bin/env bash
# Proves the NEON and NEON-dotprod kernels on this x86 machine: cross-builds the kernel library and
# its test for aarch64 and runs the test under qemu-user twice, once on a CPU with the dot-product
# extension and once on one without, so both ARM backends are checked against the scalar reference.
# Usage: arm_kernels.sh [bitnet binary (unused)] [source dir]. Exit 77 = skipped (no cross tools).
set -euo pipefail
# qemu-user passes the environment to the ARM binary: a BITNET_ISA the caller set (say scalar)
# would force that backend there and the checks below would fail.
unset BITNET_ISA

src_dir="${2:-$(cd "$(dirname "$0")/../.." && pwd)}"
for tool in aarch64-linux-gnu-g++ qemu-aarch64; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "arm_kernels: $tool not found (install g++-aarch64-linux-gnu and qemu-user); skipping"
    exit 77
  fi
done
if [ ! -f /usr/src/googletest/CMakeLists.txt ]; then
  echo "arm_kernels: /usr/src/googletest not found (install the googletest package); skipping"
  exit 77
fi

build_dir="$PWD/aarch64-kernels"
cmake -S "$src_dir" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$src_dir/cmake/toolchain-aarch64.cmake" \
  -DBITNET_KERNELS_ONLY=ON -DBITNET_BUILD_BENCH=OFF >/dev/null
cmake --build "$build_dir" --target test_kernels -j2 >/dev/null

run() {
  local cpu="$1" expect="$2"
  echo "== qemu-aarch64 -cpu $cpu (expects the $expect backend to be selected)"
  qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu "$cpu" "$build_dir/test_kernels" --gtest_brief=1 | tee "$build_dir/qemu-$cpu.log"
  grep -q "selected: $expect ]" "$build_dir/qemu-$cpu.log" || { echo "arm_kernels: $expect was not selected on -cpu $cpu"; exit 1; }
}
run max neon-dotprod
run cortex-a53 neon
echo "arm_kernels: NEON and NEON-dotprod kernels match the scalar reference"
