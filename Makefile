# Thin wrapper: every target installs what is missing, configures and builds.
#   make demo   runs Géron's transfer study (20 seeds) on the real Fashion-MNIST
#   make test   runs every test
#   make bench  runs the benchmarks (installs the PyTorch peer too)
#   make flake  runs the process-level tests 5 times with every core loaded
#   make fuzz   runs every fuzz target for FUZZ_SECONDS each (tests/fuzz/README.md)
BUILD ?= build
FUZZ_BUILD ?= build-fuzz
CMAKE_FLAGS ?=
JOBS ?= 2
FUZZ_SECONDS ?= 200

.PHONY: deps build fuzz-build demo test bench flake fuzz clean

deps:
	deploy/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DSEEDPROOF_WERROR=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	$(BUILD)/cli/seedproof run experiments/specs/geron.yaml --out runs/geron

# The fuzz targets: clang 14, libFuzzer, AddressSanitizer, UndefinedBehaviorSanitizer.
fuzz-build: deps
	deploy/install-deps.sh --test
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DSEEDPROOF_FUZZ=ON \
	  -DCMAKE_CXX_COMPILER=clang++-14
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers

# Every test, then every fuzz target for a few seconds over its corpus.
test: build fuzz-build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	tests/fuzz/run.sh $(FUZZ_BUILD) $(BUILD) 4

fuzz: build fuzz-build
	tests/fuzz/run.sh $(FUZZ_BUILD) $(BUILD) $(FUZZ_SECONDS) fuzz-work

flake: build
	deploy/install-deps.sh --test
	tests/flake_check.sh $(BUILD) 5

bench: build
	deploy/install-deps.sh --bench
	bench/engine.sh $(BUILD)
	$(BUILD)/cli/seedproof bench cache
	bench/coordinator.sh $(BUILD)
	bench/data.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)
