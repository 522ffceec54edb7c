# Thin wrapper: every target installs what is missing, configures and builds.
#   make demo   runs Géron's transfer study (20 seeds) on the real Fashion-MNIST
#   make test   runs every test
#   make bench  runs the benchmarks (installs the PyTorch peer too)
#   make flake  runs the process-level tests 5 times with every core loaded
BUILD ?= build
CMAKE_FLAGS ?=
JOBS ?= 2

.PHONY: deps build demo test bench flake clean

deps:
	deploy/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DSEEDPROOF_WERROR=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	$(BUILD)/cli/seedproof run experiments/specs/geron.yaml --out runs/geron

test: build
	deploy/install-deps.sh --test
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

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
	rm -rf $(BUILD)
