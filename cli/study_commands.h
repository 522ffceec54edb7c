// `seedproof plan`, and the spec loading every command that takes a spec shares.
// Invalid specs print one error per line on stderr as
// FILE:LINE:COL: FIELD: message; the command exits 2 and nothing runs.
#pragma once

#include <optional>
#include <string>

#include "experiments/study.h"

namespace seedproof {

// Reads the spec file and loads it (LoadStudy). On failure prints every error and
// returns nullopt.
std::optional<LoadedStudy> LoadAndExpand(const std::string& path);

// 0, or 2 for an invalid spec.
int PlanCommand(const std::string& spec_path, bool json);

}  // namespace seedproof
