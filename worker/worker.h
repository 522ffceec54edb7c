// A worker: registers with the coordinator, leases trials (each lease carries its
// trial's whole spec, checked against the trial id), runs the trial procedure on
// them, heartbeats from a background thread, streams epoch metrics,
// uploads the models pretrain trials make, and reports results. A finished
// result is never dropped: while the coordinator is unreachable the worker
// retries with backoff.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "worker/mpi.h"

namespace seedproof {

struct DatasetSpec;

// What workers running as threads of one process share, as one worker process
// would have it once: the trial cache (data, task splits, prefix outputs). The
// coordinator benchmark runs 200 workers this way.
class WorkerShared;
std::shared_ptr<WorkerShared> MakeWorkerShared();
// Reads a dataset into it now instead of in the first trial that needs it.
absl::Status Preload(WorkerShared& shared, const DatasetSpec& dataset);

struct WorkerOptions {
  std::string coordinator = "127.0.0.1:50051";
  std::string token;      // bearer token
  std::string worker_id;  // empty: host:pid
  std::string backend = "onednn";
  int threads = 1;
  std::string root_cert;        // PEM file: connect with TLS
  int max_trials = 0;           // stop after this many (0: no limit)
  bool exit_when_idle = false;  // stop when a lease finds nothing to do
  // Prometheus /metrics (host:port, port 0: any free one), advertised to the
  // coordinator for its file_sd file; empty: not served.
  std::string metrics_listen;
  // A worker group (mpirun -np R): a trial with fewer training examples than this
  // runs on one rank, R such trials at once; larger ones run data parallel on all.
  int64_t split_min_examples = 5000;
  // A worker group's data-parallel steps: gradients are summed in buckets of this
  // many KiB while the backward pass runs (0: one sum after the pass).
  int64_t bucket_kib = kDefaultBucketKib;
  // Null: the worker's own.
  std::shared_ptr<WorkerShared> shared;
  // A line on stderr as each trial starts ("worker W: trial T (kind, attempt N)
  // started"), for its log; off where hundreds of workers share one process.
  bool log_trials = true;
  // Called after every call that asked for a trial (a Lease, or a Complete that
  // leased the next one) with its wall time and whether a trial came.
  std::function<void(double seconds, bool leased)> on_lease;
};

// Runs until *stop is set (SIGTERM: the current trial stops at its next epoch
// boundary and its lease is released), max_trials are done, or the worker is
// idle with exit_when_idle.
absl::Status RunWorker(const WorkerOptions& options, const std::atomic<bool>* stop);

}  // namespace seedproof
