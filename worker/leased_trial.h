// The trial a lease carries, decoded and checked. Internal to worker/.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "experiments/sweep.h"

namespace seedproof {

// The TrialSpec in trial_json (the lease's, or rank 0's broadcast of it), once it is
// the trial the coordinator named: its content hash (TrialId) and its own id must
// both be trial_id. FAILED_PRECONDITION when the coordinator had no spec to send;
// INVALID_ARGUMENT naming the field for a spec that does not decode, or both ids
// when it is another trial.
absl::StatusOr<TrialSpec> LeasedTrial(const std::string& trial_id, const std::string& trial_json);

}  // namespace seedproof
