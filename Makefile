# Thin wrapper over CMake. `make` builds the bitnet binary (Release, into build/); `make run` and
# `make test` first make sure the system packages they need are installed, so each works alone on
# a fresh machine. `make run` needs only the build's packages and builds only the binary; `make
# test` adds the test packages and builds everything.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
PREFIX ?= /usr/local
CMAKE_FLAGS ?=
MAKEFLAGS += --no-print-directory

CONFIGURE = cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release --log-level=WARNING $(CMAKE_FLAGS)

SANITIZE_DIR ?= build-sanitize
# cli_arm_kernels checks the aarch64 cross build under qemu, none of the host code.
SANITIZE_EXCLUDE ?= ^cli_arm_kernels$$

TSAN_DIR ?= build-tsan
# ThreadSanitizer covers the code that runs threads: the thread pool, the KV cache (parallel
# attention), the engine's scheduler, the server (its unit tests and every tests/cli/server*.sh).
TSAN_TARGETS ?= bitnet test_threadpool test_kv test_engine test_server
TSAN_LABELS ?= ^(test_threadpool|test_kv|test_engine|test_server|cli_server.*)$$
# KvMemory measures RSS, of which TSan's shadow memory is part (it failed by 1.6 MB once).
TSAN_EXCLUDE ?= ^KvMemory\.

FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all build build-all deps test-deps test test-sanitize test-tsan fuzz run bench demo-model install clean

all: build

# The bitnet binary alone: tests and microbenchmarks are not configured, so their packages are not needed.
build:
	@$(CONFIGURE) -DBITNET_BUILD_TESTS=OFF -DBITNET_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target bitnet

build-all:
	@$(CONFIGURE) -DBITNET_BUILD_TESTS=ON -DBITNET_BUILD_BENCH=ON >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

deps:
	@bash scripts/install-deps.sh

test-deps:
	@bash scripts/install-deps.sh --test

test: test-deps
	@$(MAKE) build-all
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# The suite built again with AddressSanitizer + UndefinedBehaviorSanitizer (separate build dir);
# any report fails (scripts/sanitized-ctest.sh: reports of the bitnet processes CLI tests start too).
test-sanitize: test-deps
	@cmake -S . -B $(SANITIZE_DIR) -DCMAKE_BUILD_TYPE=Release --log-level=WARNING -DBITNET_SANITIZE=ON \
	  -DBITNET_BUILD_TESTS=ON -DBITNET_BUILD_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(SANITIZE_DIR) -j $(JOBS)
	@bash scripts/sanitized-ctest.sh $(SANITIZE_DIR) -j $(JOBS) -E '$(SANITIZE_EXCLUDE)'

# The thread tests built with ThreadSanitizer (separate build dir); any report fails, as above.
test-tsan: test-deps
	@cmake -S . -B $(TSAN_DIR) -DCMAKE_BUILD_TYPE=Release --log-level=WARNING -DBITNET_TSAN=ON \
	  -DBITNET_BUILD_TESTS=ON -DBITNET_BUILD_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(TSAN_DIR) -j $(JOBS) --target $(TSAN_TARGETS)
	@bash scripts/sanitized-ctest.sh $(TSAN_DIR) -j $(JOBS) -L '$(TSAN_LABELS)' -E '$(TSAN_EXCLUDE)'

# The libFuzzer targets (clang, with ASan + UBSan; separate build dir), each run from its seeds
# under tests/fuzz/corpus/ for a fixed-seed 60000 inputs (at most FUZZ_SECONDS); fails on any finding (scripts/fuzz.sh).
fuzz: test-deps
	@cmake -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=Release --log-level=WARNING -DCMAKE_CXX_COMPILER=clang++ \
	  -DBITNET_FUZZ=ON -DBITNET_BUILD_TESTS=OFF -DBITNET_BUILD_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(FUZZ_DIR) -j $(JOBS) --target fuzzers
	@bash scripts/fuzz.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(JOBS)

run: deps
	@$(MAKE) build
	@bash scripts/demo.sh $(BUILD_DIR)/bitnet
	@sed 's|build/|$(BUILD_DIR)/|g' scripts/next-steps.txt

# Speed at the real size: a random-weight model of BitNet b1.58 2B4T's shape (written once), benchmarked.
bench: deps
	@$(MAKE) build
	@bash scripts/bench.sh $(BUILD_DIR)/bitnet

# Retrains models/bitnet-demo-stories.* from a fixed seed with Debian's PyTorch (for Debian's
# python3, hence the path), under nice.
demo-model:
	@bash scripts/install-deps.sh --train
	nice /usr/bin/python3 training/train_demo.py --out-dir models --work-dir $(BUILD_DIR)/demo-model

# Installs bin/bitnet under PREFIX (default /usr/local); same as cmake --install build --prefix PREFIX.
install: build
	@cmake --install $(BUILD_DIR) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD_DIR) $(SANITIZE_DIR) $(TSAN_DIR) $(FUZZ_DIR)
