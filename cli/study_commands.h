// `seedproof plan`, and the spec loading every command that takes a spec shares.
// Invalid specs print one error per line on stderr as
// FILE:LINE:COL: FIELD: message; the command exits 2 and nothing runs.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "experiments/sweep.h"

namespace seedproof {

// Parses and validates the spec, against the dataset's class counts too, and
// expands it. On failure prints every error and returns nullopt.
std::optional<std::pair<SweepSpec, Plan>> LoadAndExpand(const std::string& path);

// 0, or 2 for an invalid spec.
int PlanCommand(const std::string& spec_path, bool json);

}  // namespace seedproof
