// The machine's arithmetic ceiling: fused multiply-adds per second per core, and
// what that allows Géron's model A at most (docs/PERFORMANCE.md). The engine
// benchmark's GFLOP/s is read against it.
#pragma once

#include <vector>

#include "absl/status/status.h"

namespace seedproof {

struct PeakBenchOptions {
  std::vector<int> threads = {1, 2};  // threads running the FMA loop at once
  double seconds = 1.0;               // timed per thread count, best of 5 slices
};

// Prints one JSON line per thread count: {"isa","threads","gflops",
// "gflops_per_thread","geron_a_samples_per_s_ceiling"}, the ceiling being gflops
// over the FLOPs of one training example of model A with every layer trainable.
absl::Status RunPeakBench(const PeakBenchOptions& options);

}  // namespace seedproof
