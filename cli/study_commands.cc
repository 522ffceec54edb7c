#include "cli/study_commands.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "experiments/plan.h"
#include "experiments/sweep_parse.h"
#include "nlohmann/json.hpp"

namespace seedproof {
namespace {

// Parses and validates the spec, against the dataset's class counts too. On
// failure prints every error and returns nullopt.
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

}  // namespace

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

int RunCommand(RunCommandOptions options) {
  auto loaded = LoadAndExpand(options.spec_path);
  if (!loaded) return 2;
  const auto& [spec, plan] = *loaded;
  if (options.study.out_dir.empty()) options.study.out_dir = "runs/" + spec.name;
  auto count = [&](TrialKind kind) {
    auto it = plan.trials_by_kind.find(kind);
    return it == plan.trials_by_kind.end() ? 0 : it->second;
  };
  std::fprintf(stderr, "%s: %zu trials (%d pretrain, %d scratch, %d transfer), %d at a time\n",
               spec.name.c_str(), plan.trials.size(), count(TrialKind::kPretrain),
               count(TrialKind::kScratch), count(TrialKind::kTransfer),
               options.study.parallel_trials);
  const bool tty = isatty(STDERR_FILENO);
  const auto start = std::chrono::steady_clock::now();
  int last_decile = -1;
  auto on_progress = [&](const StudyProgress& p) {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (p.done == p.resumed) {
      std::fprintf(stderr, "resuming %s: %d of %d trials already recorded\n",
                   options.study.out_dir.c_str(), p.resumed, p.total);
      return;
    }
    const int ran = p.done - p.resumed;  // the rate is this run's
    const double eta = elapsed * (p.total - p.done) / ran;
    if (tty) {
      constexpr int kWidth = 30;
      const int filled = p.total > 0 ? kWidth * p.done / p.total : kWidth;
      std::fprintf(stderr, "\r[%s%s] %d/%d trials  %.0fs elapsed  ETA %.0fs%s",
                   std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(),
                   p.done, p.total, elapsed, eta,
                   p.diverged + p.blocked > 0 ? "  (some diverged or blocked)" : "");
      if (p.done == p.total) std::fprintf(stderr, "\n");
    } else if (const int decile = p.total > 0 ? 10 * p.done / p.total : 10; decile != last_decile) {
      last_decile = decile;
      std::fprintf(stderr, "%d/%d trials, %.0fs elapsed, ETA %.0fs\n", p.done, p.total, elapsed,
                   eta);
    }
  };
  const absl::Status status = RunStudy(spec, plan, options.study, on_progress);
  if (!status.ok()) {
    std::fprintf(stderr, "\nseedproof: error: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  std::printf("results: %s/results.jsonl\nmodels: %s/artifacts/\n", options.study.out_dir.c_str(),
              options.study.out_dir.c_str());
  return 0;
}

}  // namespace seedproof
