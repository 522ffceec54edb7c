// Trial results as JSON: one object per trial, one per line in a results file
// (docs/RESULTS_FORMAT.md). The same objects travel to the coordinator and back.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "experiments/trial.h"
#include "nlohmann/json_fwd.hpp"

namespace seedproof {

nlohmann::json TrialResultToJson(const TrialResult& result);
// Fails with the missing or mistyped field named.
absl::StatusOr<TrialResult> TrialResultFromJson(const nlohmann::json& json);

const char* TrialOutcomeName(TrialOutcome outcome);

}  // namespace seedproof
