# Thin wrapper over CMake. `make` builds Release into build/; `make test` and `make run` first make
# sure the system packages are installed, so each works alone on a fresh machine.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all build deps test run clean

all: build

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)

deps:
	bash scripts/install-deps.sh

test: deps
	$(MAKE) build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

run: deps
	$(MAKE) build
	bash scripts/demo.sh $(BUILD_DIR)/bitnet

clean:
	rm -rf $(BUILD_DIR)
