// The engine benchmark: Géron's model A (or a sweep spec's source model, such as
// geron-cnn.yaml's CNN) trained on the real Fashion-MNIST task-A training set, one
// JSON line per configuration (docs/PERFORMANCE.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace seedproof {

struct EngineBenchOptions {
  std::string backend = "onednn";
  std::vector<int64_t> batches = {32, 256};
  std::vector<int> threads = {1, 2};
  std::vector<bool> frozen = {false, true};  // true: the 5 hidden layers frozen, head only
  int epochs = 1;                            // timed epochs per configuration (after a warm-up)
  std::string dataset_dir;                   // empty: Debian's Fashion-MNIST
  // Empty: model A with SGD(lr=1e-3). Else a sweep spec whose source model (on
  // 28x28x1 inputs, 8 classes) trains with the spec's pretrain optimizer.
  std::string spec_path;
  int64_t examples = 0;  // > 0: only the first `examples` training images
};

// Prints {"model","backend","batch","threads","frozen","samples","seconds",
// "samples_per_s","gflops"} per configuration to stdout; "model" is "geron_a" or
// the spec's file name without its extension.
absl::Status RunEngineBench(const EngineBenchOptions& options);

}  // namespace seedproof
