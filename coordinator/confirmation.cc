#include "coordinator/confirmation.h"

#include <cstdio>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/analysis.h"
#include "experiments/plan.h"
#include "experiments/study.h"

namespace seedproof {
namespace {

absl::Status Confirm(Store& store, const std::string& sweep_id, int64_t now_ms) {
  auto text = store.SweepSpecText(sweep_id);
  if (!text.ok()) return text.status();
  // As submitted: the stored datasets' hashes, not the files as they are now.
  auto stored = LoadStoredStudy(text->text, text->path, text->datasets_json);
  if (!stored.ok()) return stored.status();
  const SweepSpec* spec = &stored->spec;
  auto results = store.Results(sweep_id, BlockedTrials::kLeftOut);
  if (!results.ok()) return results.status();
  StudyResults study;
  study.sweep = spec->name;
  study.sweep_id = sweep_id;
  study.spec = *spec;
  study.finished = true;
  study.results = *std::move(results);
  study.trials_total = static_cast<int>(study.results.size());
  auto analysis = AnalyzeStudy(study, OptionsFromSpec(spec->analysis));
  if (!analysis.ok()) return analysis.status();
  const auto chosen = ArmsToConfirm(*analysis);
  std::set<std::pair<std::string, std::string>> wanted(chosen.begin(), chosen.end());
  std::set<std::string> targets;
  for (const auto& [target, arm] : chosen) targets.insert(target);
  std::vector<TrialSpec> trials;
  for (TrialSpec& trial : stored->plan.confirmation_candidates) {
    const bool baseline = trial.kind == TrialKind::kScratch && targets.contains(trial.target);
    if (baseline || wanted.contains({trial.target, trial.arm})) trials.push_back(std::move(trial));
  }
  const absl::Status added = store.AddConfirmation(sweep_id, trials, now_ms);
  // Another thread extended it first: nothing more to do.
  return added.code() == absl::StatusCode::kFailedPrecondition ? absl::OkStatus() : added;
}

}  // namespace

absl::Status StartConfirmations(Store& store, int64_t now_ms) {
  absl::Status first_error;
  for (const std::string& sweep_id : store.SweepsReadyForConfirmation()) {
    absl::Status s = Confirm(store, sweep_id, now_ms);
    if (s.ok()) continue;
    if (s.code() != absl::StatusCode::kInvalidArgument && s.code() != absl::StatusCode::kDataLoss) {
      if (first_error.ok()) first_error = s;  // perhaps passing: the caller tries again later
      continue;
    }
    // It can never work (a spec or a stored result that does not parse): the
    // sweep must not wait forever, so it ends without confirmation trials.
    std::fprintf(stderr, "seedproof coordinator: sweep %s: no confirmation trials: %s\n",
                 sweep_id.c_str(), std::string(s.message()).c_str());
    if (auto ended = store.AddConfirmation(sweep_id, {}, now_ms);
        !ended.ok() && ended.code() != absl::StatusCode::kFailedPrecondition) {
      s = ended;
    }
    if (first_error.ok()) first_error = s;
  }
  return first_error;
}

}  // namespace seedproof
