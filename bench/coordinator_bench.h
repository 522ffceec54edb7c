// The coordinator benchmark: trials per second through the gRPC services and the
// SQLite store, and lease latency, with many concurrent workers on loopback.
// The workers are `seedproof worker`'s loop, as threads of this process sharing
// what one worker process loads once (the dataset, each sweep's plan); each has
// its own connection. They run the whole trial procedure, heartbeats, epoch
// reports and model uploads included, on a backend plugin that trains nothing
// (bench/noop_backend.cc), so what is measured is the coordinator.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace seedproof {

struct CoordinatorBenchOptions {
  int workers = 200;   // concurrent workers, each with its own connection
  int trials = 20000;  // about this many (a sweep of trials / 2 seeds)
  // The workers' backend; empty: the no-op plugin the build puts in plugins/.
  std::string backend;
};

// Prints one JSON line: {"workers","backend","trials","seconds","trials_per_s",
// "lease_p50_ms","lease_p99_ms","lost","duplicated"}. Lease latency counts the
// calls that got a trial; lost and duplicated count the results the store lists
// afterwards (Store::Results: trials without one, trials listed twice).
absl::Status RunCoordinatorBench(const CoordinatorBenchOptions& options);

}  // namespace seedproof
