// The coordinator benchmark: trials per second through the gRPC services and the
// SQLite store, and lease latency, with many concurrent workers on loopback.
// The workers train nothing: each leases a trial, completes it at once with a
// well-formed result for that trial (a pretrain trial uploads a small model
// artifact first), and leases again. What is measured is the coordinator.
#pragma once

#include "absl/status/status.h"

namespace seedproof {

struct CoordinatorBenchOptions {
  int workers = 200;   // concurrent workers, each with its own connection
  int trials = 20000;  // about this many (a sweep of trials / 2 seeds)
  // All workers' calls over one connection (gRPC's default for channels of one
  // process), as if one process served them all: a comparison, not a real cluster.
  bool shared_connection = false;
};

// Prints one JSON line: {"workers","connections","trials","seconds","trials_per_s",
// "lease_p50_ms","lease_p99_ms","lost","duplicated"}.
absl::Status RunCoordinatorBench(const CoordinatorBenchOptions& options);

}  // namespace seedproof
