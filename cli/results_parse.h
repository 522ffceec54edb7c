// Reading a results file (docs/RESULTS_FORMAT.md) back into a study's results:
// the reader `report` and `run` share, apart from the client code that fetches
// one (results_file.h), so it can be fuzzed alone (tests/fuzz).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "coordinator/analysis.h"

namespace seedproof {

// Parses a results file's text. Errors name `source`, the line and the field.
absl::StatusOr<StudyResults> ParseResultsFile(const std::string& text, const std::string& source);

}  // namespace seedproof
