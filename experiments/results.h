// Trial results as JSON: one object per trial, one per line in a results file
// (docs/RESULTS_FORMAT.md). The same objects travel to the coordinator and back
// and are what the store keeps; an epoch record travels alone as the epochs
// array's element while a trial runs.
#pragma once

#include "absl/status/statusor.h"
#include "experiments/trial_result.h"
#include "nlohmann/json_fwd.hpp"

namespace seedproof {

nlohmann::json TrialResultToJson(const TrialResult& result);
// Fails with the missing or mistyped field named.
absl::StatusOr<TrialResult> TrialResultFromJson(const nlohmann::json& json);

// One element of a result's "epochs" (steps and examples are not written).
nlohmann::json EpochRecordToJson(const EpochRecord& epoch);
absl::StatusOr<EpochRecord> EpochRecordFromJson(const nlohmann::json& json);

}  // namespace seedproof
