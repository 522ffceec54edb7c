// A trial's whole definition (TrialSpec) as JSON: what the coordinator stores with
// each trial and hands out in its lease, so a worker runs exactly the trial the
// coordinator expanded without the sweep's YAML. The receiver checks the decoded
// spec against the lease: TrialId(spec) must be the leased trial id (plan.h).
//
// Enums travel as their numbers (LayerKind, Activation, ... are numbered for the
// model file and never renumbered); floats and 64-bit seeds round-trip exactly.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "experiments/sweep.h"
#include "nlohmann/json_fwd.hpp"

namespace seedproof {

nlohmann::json TrialSpecToJson(const TrialSpec& trial);
// The same as text, for callers that store or send it without nlohmann's header.
std::string TrialSpecJsonText(const TrialSpec& trial);
absl::StatusOr<TrialSpec> TrialSpecFromJsonText(const std::string& text);
// INVALID_ARGUMENT naming the missing, mistyped or out-of-range field
// ("trial.phases[1].optimizer.kind: 7 is not an optimizer").
absl::StatusOr<TrialSpec> TrialSpecFromJson(const nlohmann::json& json);

}  // namespace seedproof
