// A worker's Prometheus metrics (docs/OBSERVABILITY.md), served on /metrics:
// training throughput, step and allreduce times, the current trial kind, and how
// long ago the coordinator last answered. prometheus-cpp is used in metrics.cc
// only.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "backends/backend.h"
#include "experiments/trial_result.h"

namespace seedproof {

class WorkerMetrics {
 public:
  // Serves /metrics on listen (host:port; port 0 picks a free one).
  static absl::StatusOr<std::unique_ptr<WorkerMetrics>> Start(const std::string& listen);
  virtual ~WorkerMetrics() = default;
  virtual int port() const = 0;

  virtual void TrialStarted(TrialKind kind) = 0;
  virtual void TrialEnded(const std::string& outcome) = 0;  // completed, diverged, failed, released
  // The epoch's throughput.
  virtual void EpochDone(const EpochRecord& epoch) = 0;
  // One training step's wall time.
  virtual void StepDone(double seconds) = 0;
  // The coordinator answered a heartbeat or a lease poll.
  virtual void CoordinatorAnswered() = 0;
  // A reducer that times each Reduce of `inner` (nullptr: the local one).
  virtual std::unique_ptr<GradientReducer> TimedReducer(GradientReducer* inner) = 0;
};

}  // namespace seedproof
