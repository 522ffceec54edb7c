// Trial results as JSON: one object per trial, one per line in a results file
// (docs/RESULTS_FORMAT.md). The same objects travel to the coordinator and back
// and are what the store keeps; an epoch record travels alone as the epochs
// array's element while a trial runs.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "experiments/trial_result.h"
#include "nlohmann/json_fwd.hpp"

namespace seedproof {

nlohmann::json TrialResultToJson(const TrialResult& result);
// Fails with the missing or mistyped field named; an integer field must hold a
// JSON integer within its type's range (no truncation).
absl::StatusOr<TrialResult> TrialResultFromJson(const nlohmann::json& json);

// What a worker may report, whatever its trial: completed or diverged (a diverged
// trial's diverged_epoch is the epoch after its last recorded one, a completed
// one's 0), epochs numbered 1, 2, ... with phases that never decrease, finite
// losses >= 0, accuracies in [0, 1], durations >= 0, bounded provenance strings,
// hashes of 64 hex digits. INVALID_ARGUMENT naming the field otherwise. The
// coordinator checks a result's identity against its own record separately.
absl::Status CheckMeasuredValues(const TrialResult& result);

// One element of a result's "epochs" (steps and examples are not written).
nlohmann::json EpochRecordToJson(const EpochRecord& epoch);
absl::StatusOr<EpochRecord> EpochRecordFromJson(const nlohmann::json& json);

}  // namespace seedproof
