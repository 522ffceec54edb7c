// The engine benchmark: Géron's model A trained on the real Fashion-MNIST task-A
// training set, one JSON line per configuration (docs/PERFORMANCE.md).
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
};

// Prints {"model","backend","batch","threads","frozen","samples","seconds",
// "samples_per_s","gflops"} per configuration to stdout.
absl::Status RunEngineBench(const EngineBenchOptions& options);

}  // namespace seedproof
