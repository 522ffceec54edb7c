#include "coordinator/later_trials.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/analysis.h"
#include "experiments/plan.h"
#include "experiments/study.h"

namespace seedproof {
namespace {

// What one call adds to a sweep: trials, and whether more may follow.
struct Step {
  std::vector<TrialSpec> trials;
  bool more_later = false;
};

// Confirmation: the chosen arms' trials (and their targets' baselines) on the
// confirmation seeds, once.
Step ConfirmationStep(const StudyAnalysis& analysis, std::vector<TrialSpec> candidates) {
  const auto chosen = ArmsToConfirm(analysis);
  std::set<std::pair<std::string, std::string>> wanted(chosen.begin(), chosen.end());
  std::set<std::string> targets;
  for (const auto& [target, arm] : chosen) targets.insert(target);
  Step step;
  for (TrialSpec& trial : candidates) {
    const bool baseline = trial.kind == TrialKind::kScratch && targets.contains(trial.target);
    if (baseline || wanted.contains({trial.target, trial.arm})) {
      step.trials.push_back(std::move(trial));
    }
  }
  return step;
}

// Sequential seeds: the open arms' trials on the next look's seeds, their
// targets' baselines, and the source models those trials reuse. Nothing once no
// arm is open or the last look is reached.
Step SequentialStep(const StudyAnalysis& analysis, std::vector<TrialSpec> candidates) {
  Step step;
  if (analysis.looks_reached >= static_cast<int>(analysis.looks.size())) return step;
  const int first = analysis.looks[analysis.looks_reached - 1];
  const int last = analysis.looks[analysis.looks_reached];
  std::set<std::pair<std::string, std::string>> open;
  std::set<std::string> targets;
  for (const ArmAnalysis& a : analysis.arms) {
    if (!a.open) continue;
    open.insert({a.target, a.name});
    targets.insert(a.target);
  }
  std::set<std::string> sources;
  for (const TrialSpec& trial : candidates) {
    if (trial.kind == TrialKind::kTransfer && trial.seed_index >= first &&
        trial.seed_index < last && open.contains({trial.target, trial.arm})) {
      sources.insert(trial.source_trial);
    }
  }
  for (TrialSpec& trial : candidates) {
    const bool in_step = trial.seed_index >= first && trial.seed_index < last;
    const bool wanted = trial.kind == TrialKind::kPretrain
                            ? sources.contains(trial.id)
                            : in_step && (trial.kind == TrialKind::kScratch
                                              ? targets.contains(trial.target)
                                              : open.contains({trial.target, trial.arm}));
    if (wanted) step.trials.push_back(std::move(trial));
  }
  step.more_later =
      !step.trials.empty() && analysis.looks_reached + 1 < static_cast<int>(analysis.looks.size());
  return step;
}

absl::Status Extend(Store& store, const std::string& sweep_id, int64_t now_ms) {
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
  if (spec->seeds.sequential()) {
    // The step the sweep is at is the one its trials reached, whether or not any
    // of them left a result (a step whose every trial failed is still a step).
    auto trials = store.Trials(sweep_id);
    if (!trials.ok()) return trials.status();
    study.seeds_started = 0;
    for (const TrialStatus& t : *trials) {
      if (t.kind != TrialKind::kPretrain) {
        study.seeds_started = std::max(study.seeds_started, t.seed_index + 1);
      }
    }
  }
  auto analysis = AnalyzeStudy(study, OptionsFromSpec(spec->analysis));
  if (!analysis.ok()) return analysis.status();
  Step step = spec->seeds.sequential()
                  ? SequentialStep(*analysis, std::move(stored->plan.later_candidates))
                  : ConfirmationStep(*analysis, std::move(stored->plan.later_candidates));
  const absl::Status added = store.ExtendSweep(sweep_id, step.trials, step.more_later, now_ms);
  // Another thread extended it first: nothing more to do.
  return added.code() == absl::StatusCode::kFailedPrecondition ? absl::OkStatus() : added;
}

}  // namespace

absl::Status AddLaterTrials(Store& store, int64_t now_ms) {
  absl::Status first_error;
  for (const std::string& sweep_id : store.SweepsReadyToExtend()) {
    absl::Status s = Extend(store, sweep_id, now_ms);
    if (s.ok()) continue;
    if (s.code() != absl::StatusCode::kInvalidArgument && s.code() != absl::StatusCode::kDataLoss) {
      if (first_error.ok()) first_error = s;  // perhaps passing: the caller tries again later
      continue;
    }
    // It can never work (a spec or a stored result that does not parse): the
    // sweep must not wait forever, so it ends without later trials.
    std::fprintf(stderr, "seedproof coordinator: sweep %s: no later trials: %s\n", sweep_id.c_str(),
                 std::string(s.message()).c_str());
    if (auto ended = store.ExtendSweep(sweep_id, {}, false, now_ms);
        !ended.ok() && ended.code() != absl::StatusCode::kFailedPrecondition) {
      s = ended;
    }
    if (first_error.ok()) first_error = s;
  }
  return first_error;
}

}  // namespace seedproof
