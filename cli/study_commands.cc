#include "cli/study_commands.h"

#include <cstdio>

#include "experiments/plan.h"
#include "experiments/sweep_parse.h"
#include "nlohmann/json.hpp"

namespace seedproof {

std::optional<std::pair<SweepSpec, Plan>> LoadAndExpand(const std::string& path) {
  std::vector<SpecError> errors;
  auto spec = ParseSweepSpec(path, &errors);
  std::vector<int64_t> counts;
  if (spec.ok()) {
    auto loaded = LoadTrainCountsPerClass(spec->dataset);
    if (!loaded.ok()) {
      std::fprintf(stderr, "seedproof: error: %s\n",
                   std::string(loaded.status().message()).c_str());
      return std::nullopt;
    }
    counts = *loaded;
    if (!ValidateAgainstData(*spec, counts, &errors).ok() && errors.empty()) {
      errors.push_back({1, 1, "dataset", "does not fit the spec"});
    }
  } else if (errors.empty()) {
    std::fprintf(stderr, "%s\n", std::string(spec.status().message()).c_str());
    return std::nullopt;
  }
  if (!errors.empty()) {
    for (const SpecError& e : errors)
      std::fprintf(stderr, "%s\n", FormatSpecError(path, e).c_str());
    return std::nullopt;
  }
  Plan plan = ExpandSweep(*spec, counts);
  return std::make_pair(std::move(*spec), std::move(plan));
}

int PlanCommand(const std::string& spec_path, bool json) {
  auto loaded = LoadAndExpand(spec_path);
  if (!loaded) return 2;
  if (json) {
    std::printf("%s\n", PlanToJson(loaded->second).dump().c_str());
  } else {
    std::printf("%s", FormatPlan(loaded->second, loaded->first).c_str());
  }
  return 0;
}

}  // namespace seedproof
