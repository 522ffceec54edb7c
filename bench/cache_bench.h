// The frozen-prefix cache benchmark: the frozen phase of Géron's reuse-5 transfer
// trial (experiments/specs/geron.yaml, schedule "geron", phase 1: 4 epochs, head
// only) run as a trial with and without the cache (docs/PERFORMANCE.md).
#pragma once

#include <string>

#include "absl/status/status.h"

namespace seedproof {

struct CacheBenchOptions {
  std::string spec_path = "experiments/specs/geron.yaml";
  std::string backend = "onednn";
  int threads = 1;
  int repeats = 5;  // timed runs per mode; the median is reported
};

// Prints one JSON line per mode to stdout: {"phase","cached","cache_state",
// "seconds","speedup",...}. cached=false recomputes the frozen layers every
// step; cache_state "cold" includes computing the prefix outputs, "warm" finds
// them computed by an earlier trial of the same process (every other trial of
// the study that reuses the same source model and depth).
absl::Status RunCacheBench(const CacheBenchOptions& options);

}  // namespace seedproof
