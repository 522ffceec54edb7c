// A trial's whole definition (TrialSpec) as JSON: what the coordinator stores with
// each trial and hands out in its lease, so a worker runs exactly the trial the
// coordinator expanded without the sweep's YAML. The receiver checks the decoded
// spec against the lease: TrialId(spec) must be the leased trial id (plan.h).
//
// Enums travel as their numbers (LayerKind, Activation, ... are numbered for the
// model file and never renumbered); floats and 64-bit seeds round-trip exactly.
#pragma once

#include <optional>
#include <string>
#include <vector>

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
// A dataset's part of the trial JSON, as text (a cache key for what it determines).
std::string DatasetJsonText(const DatasetSpec& dataset);
// What loading a study read from files: its datasets as they were loaded (content
// hashes and all) and its imported source model. As JSON (a plain array of the
// datasets when nothing is imported, as studies stored before imports have it),
// and back: what the store keeps so a spec expands again into the same trials.
struct StudyInputs {
  std::vector<DatasetSpec> datasets;
  std::optional<ImportedModel> imported;
};
std::string StudyInputsToJsonText(const std::vector<DatasetSpec>& datasets,
                                  const std::optional<ImportedModel>& imported);
// INVALID_ARGUMENT naming the dataset and field for anything malformed.
absl::StatusOr<StudyInputs> StudyInputsFromJsonText(const std::string& text);

}  // namespace seedproof
