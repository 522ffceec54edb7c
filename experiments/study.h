// A study from its spec text, the one way the CLI and the coordinator load one:
// parse and validate the YAML, check it against the dataset's class counts, and
// expand it into its trials.
//
//   std::vector<SpecError> errors;
//   auto study = LoadStudy(text, "spec.yaml", &errors);
//   if (!study.ok()) { for (auto& e : errors) ... FormatSpecError(path, e) ...; }
//   store.SubmitSweep(study->spec.name, text, path, study->plan, now);
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/sweep.h"
#include "experiments/sweep_parse.h"

namespace seedproof {

struct LoadedStudy {
  SweepSpec spec;
  Plan plan;
};

// INVALID_ARGUMENT with every problem of the spec, one "FILE:LINE:COL: FIELD:
// message" per line (FILE is path_for_messages), also appended to *errors; the
// dataset's own errors (its labels cannot be read) keep their codes and leave
// *errors empty.
absl::StatusOr<LoadedStudy> LoadStudy(const std::string& text, const std::string& path_for_messages,
                                      std::vector<SpecError>* errors = nullptr);

}  // namespace seedproof
