#include "experiments/study.h"

#include "absl/strings/str_join.h"
#include "experiments/plan.h"

namespace seedproof {
namespace {

absl::Status Invalid(const std::string& path, const std::vector<SpecError>& errors,
                     const absl::Status& fallback) {
  if (errors.empty()) return fallback;
  std::vector<std::string> lines;
  for (const SpecError& e : errors) lines.push_back(FormatSpecError(path, e));
  return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
}

}  // namespace

absl::StatusOr<LoadedStudy> LoadStudy(const std::string& text, const std::string& path,
                                      std::vector<SpecError>* errors_out) {
  std::vector<SpecError> errors;
  auto spec = ParseSweepSpecText(text, path, &errors);
  absl::Status status = spec.status();
  std::vector<int64_t> counts;
  if (spec.ok()) {
    auto loaded = LoadTrainCountsPerClass(spec->dataset);
    if (!loaded.ok()) return loaded.status();
    counts = *std::move(loaded);
    status = ValidateAgainstData(*spec, counts, &errors);
  }
  if (!status.ok()) {
    if (errors_out != nullptr) errors_out->insert(errors_out->end(), errors.begin(), errors.end());
    return Invalid(path, errors, status);
  }
  LoadedStudy study;
  study.plan = ExpandSweep(*spec, counts);
  study.spec = *std::move(spec);
  return study;
}

}  // namespace seedproof
