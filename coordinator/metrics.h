// The coordinator's Prometheus metrics (docs/OBSERVABILITY.md), served on
// /metrics. Events (leases, completions, failures) are counted as they happen;
// state (trials by state, sweep progress, live workers, per-arm figures) is read
// from the store when Prometheus scrapes. prometheus-cpp is used in metrics.cc
// only.
//
//   auto metrics = CoordinatorMetrics::Start({.listen = "127.0.0.1:9464"}, store);
//   metrics->LeaseGranted(lease, seconds);   // from the Lease handler
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/store.h"

namespace seedproof {

struct CoordinatorMetricsOptions {
  std::string listen;  // host:port of /metrics; port 0 picks a free one
  // Prometheus file_sd file listing the workers' /metrics addresses (from their
  // registrations); empty: none.
  std::string worker_sd_file;
  // A worker seen (registration, lease, heartbeat) within this window is live.
  int64_t live_window_ms = 15000;
};

class CoordinatorMetrics {
 public:
  // Serves /metrics; rebuilds the per-arm figures from the stored results.
  static absl::StatusOr<std::unique_ptr<CoordinatorMetrics>> Start(
      const CoordinatorMetricsOptions& options, Store& store);
  virtual ~CoordinatorMetrics() = default;
  virtual int port() const = 0;

  // A lease handed out after `seconds` in the Lease call.
  virtual void LeaseGranted(const Lease& lease, double seconds) = 0;
  // A result the store accepted, for the attempt `attempt_id`.
  virtual void TrialCompleted(int64_t attempt_id, const TrialResult& result) = 0;
  // A worker reported a failed attempt.
  virtual void AttemptFailed(int64_t attempt_id) = 0;
  virtual void AttemptReleased(int64_t attempt_id) = 0;
  virtual void LeasesExpired(int count) = 0;
  // A worker registered: its metrics address may join the file_sd file.
  virtual void WorkerRegistered() = 0;
  // Lease calls waiting in the long poll now (idle workers' calls).
  virtual void LeaseCallsWaiting(int count) = 0;
};

}  // namespace seedproof
