#!/usr/bin/env bash
# Installs the Debian packages bitnet needs. Idempotent: when every package is already present it
# changes nothing and needs no network.
#   scripts/install-deps.sh           what building the bitnet binary needs (make, make run)
#   scripts/install-deps.sh --test    that plus what the test suite and microbenchmarks need (make test)
#   scripts/install-deps.sh --train   that plus what training the demo model needs (make demo-model)
#   add --list to print the package names instead of installing them
set -euo pipefail

runtime=(
  build-essential cmake pkg-config
  nlohmann-json3-dev libcpp-httplib-dev libpcre2-dev libedit-dev libcurl4-openssl-dev libssl-dev
)
# GoogleTest and Google Benchmark, the aarch64 cross compiler + qemu that run the NEON kernel
# tests on x86, and clang with its libFuzzer runtime (make fuzz). GCC's sanitizer runtimes (make
# test-sanitize, make test-tsan: libasan8, libubsan1, libtsan2) come with build-essential's gcc-12
# (through libgcc-12-dev).
test_only=(
  libgtest-dev libgmock-dev libbenchmark-dev
  g++-aarch64-linux-gnu qemu-user
  tmux
  chromium curl nginx
  clang libclang-rt-dev
)
# The server tests' clients (tests/server: the openai npm package, playwright-core) need node and
# npm; a node from elsewhere (e.g. NodeSource, which bundles npm) is kept.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  test_only+=(nodejs npm)
fi

# Debian's PyTorch, and OpenBLAS in place of the reference BLAS it links (17x faster training).
train_only=(python3-torch python3-numpy libopenblas0-pthread)

packages=("${runtime[@]}")
list=0
for arg in "$@"; do
  case $arg in
    --test) packages+=("${test_only[@]}") ;;
    --train) packages+=("${train_only[@]}") ;;
    --list) list=1 ;;
    *) echo "install-deps: unknown argument '$arg' (--test, --train, --list)" >&2; exit 2 ;;
  esac
done
if ((list)); then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
