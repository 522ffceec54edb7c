// The Store on SQLite: sweeps, their trials and results.
#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/sqlite_store.h"
#include "experiments/fingerprint.h"
#include "experiments/results.h"
#include "experiments/trial_json.h"
#include "nlohmann/json.hpp"

namespace seedproof::store_internal {

// ---------------------------------------------------------------------------
// Sweeps

absl::StatusOr<std::string> SqliteStore::SubmitSweep(
    const std::string& name, const std::string& spec_text, const std::string& spec_path,
    const Plan& plan, int64_t now_ms, const std::map<std::string, std::string>& artifacts) {
  // Written, hashed and named outside the lock: a dataset is tens of megabytes.
  std::vector<std::unique_ptr<ArtifactWriter>> files;
  std::vector<ArtifactWriter*> named;
  for (const auto& [sha256, bytes] : artifacts) {
    if (auto s = CheckSha256Field("artifacts", sha256); !s.ok()) return s;
    auto file = files_.WriteAll(bytes);
    if (!file.ok()) return file.status();
    if ((*file)->sha256() != sha256) {
      return absl::InvalidArgumentError(absl::StrCat("artifacts: ", sha256, " does not match its ",
                                                     bytes.size(), " bytes (", (*file)->sha256(),
                                                     ")"));
    }
    named.push_back(file->get());
    files.push_back(*std::move(file));
  }
  const absl::Status files_named = NameOutsideLock(named);
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<std::string> submitted =
      files_named.ok() ? SubmitLocked(name, spec_text, spec_path, plan, now_ms, named)
                       : files_named;
  Unnamed(named);
  return submitted;
}

absl::StatusOr<std::string> SqliteStore::SubmitLocked(const std::string& name,
                                                      const std::string& spec_text,
                                                      const std::string& spec_path,
                                                      const Plan& plan, int64_t now_ms,
                                                      const std::vector<ArtifactWriter*>& files) {
  if (auto s = Usable(); !s.ok()) return s;
  if (plan.trials.empty()) return absl::InvalidArgumentError("plan: no trials");
  const int64_t seq = scheduler_.NextSeq();
  Sweep sweep;
  sweep.seq = seq;
  const std::string hash = Sha256Hex(absl::StrCat(name, "\n", spec_text, "\n", seq));
  sweep.id = absl::StrCat("s", hash.substr(0, 12));
  sweep.name = name;
  sweep.spec_path = spec_path;
  sweep.created_ms = now_ms;
  sweep.awaiting_trials = !plan.later_candidates.empty();
  auto added = Scheduler::AppendTrials(sweep, plan.trials, /*skip_known=*/false);
  if (!added.ok()) return added.status();
  // Later trials are appended when their time comes, and must fit a lease as well.
  for (size_t i = 0; i < plan.later_candidates.size(); ++i) {
    const TrialSpec& later = plan.later_candidates[i];
    if (auto s = Scheduler::CheckTrialSpecSize(absl::StrCat("plan.later_candidates[", i, "]"),
                                               later.id, TrialSpecJsonText(later).size());
        !s.ok()) {
      return s;
    }
  }

  std::string id = sweep.id;
  auto status = Change([&]() -> absl::Status {
    if (auto s = db_->Prepare("INSERT INTO sweeps (seq, id, name, spec_text, spec_path, state, "
                              "created_ms, awaiting_confirmation, datasets_json) VALUES (?1, ?2, "
                              "?3, ?4, ?5, 'running', ?6, ?7, ?8)",
                              seq, sweep.id, name, spec_text, spec_path, now_ms,
                              int64_t{sweep.awaiting_trials},
                              StudyInputsToJsonText(plan.datasets, plan.imported))
                     .Run();
        !s.ok()) {
      return s;
    }
    if (auto s = InsertTrialRows(sweep, *added); !s.ok()) return s;
    for (const ArtifactWriter* file : files) {
      if (auto s = InsertArtifact(absl::StrCat("input ", file->sha256()), *file, now_ms); !s.ok()) {
        return s;
      }
    }
    scheduler_.AddSweep(std::move(sweep));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return id;
}

absl::Status SqliteStore::InsertSpecRow(const std::string& sweep_id, const std::string& trial_id,
                                        const std::string& spec_json) {
  return db_
      ->Prepare("INSERT INTO trial_specs (sweep_id, trial_id, spec_json) VALUES (?1, ?2, ?3)",
                sweep_id, trial_id, spec_json)
      .Run();
}

absl::Status SqliteStore::InsertTrialRows(const Sweep& sweep,
                                          const std::vector<const TrialSpec*>& added) {
  const size_t first = sweep.trials.size() - added.size();
  for (size_t i = 0; i < added.size(); ++i) {
    const TrialSpec& spec = *added[i];
    if (auto s = db_->Prepare("INSERT INTO trials (sweep_id, trial_id, plan_index, kind, arm, "
                              "target, seed_index, source_trial, state) VALUES "
                              "(?1, ?2, ?3, ?4, ?5, ?6, ?7, NULLIF(?8, ''), 'pending')",
                              sweep.id, spec.id, static_cast<int64_t>(first + i),
                              TrialKindName(spec.kind), spec.arm, spec.target, spec.seed_index,
                              spec.source_trial)
                     .Run();
        !s.ok()) {
      return s;
    }
    if (auto s = InsertSpecRow(sweep.id, spec.id, *sweep.trials[first + i].spec_json); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> SqliteStore::SweepsMissingTrialSpecs() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> missing;
  for (const auto& [seq, sweep] : scheduler_.sweeps()) {
    if (std::any_of(sweep.trials.begin(), sweep.trials.end(),
                    [](const Trial& t) { return t.spec_json == nullptr; })) {
      missing.push_back(sweep.id);
    }
  }
  return missing;
}

absl::StatusOr<int> SqliteStore::FillTrialSpecs(const std::string& sweep_id,
                                                const std::vector<TrialSpec>& trials) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  auto found = FindSweep(sweep_id);
  if (!found.ok()) return found.status();
  Sweep& sweep = **found;
  int filled = 0;
  auto status = Change([&]() -> absl::Status {
    for (const TrialSpec& spec : trials) {
      auto index = sweep.index.find(spec.id);
      if (index == sweep.index.end() || sweep.trials[index->second].spec_json) continue;
      auto json = std::make_shared<const std::string>(TrialSpecJsonText(spec));
      if (auto s = InsertSpecRow(sweep.id, spec.id, *json); !s.ok()) return s;
      sweep.trials[index->second].spec_json = std::move(json);
      ++filled;
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return filled;
}

std::vector<std::string> SqliteStore::SweepsReadyToExtend() {
  std::lock_guard<std::mutex> lock(mu_);
  return scheduler_.ReadyToExtend();
}

absl::Status SqliteStore::ExtendSweep(const std::string& sweep_id,
                                      const std::vector<TrialSpec>& trials, bool more_later,
                                      int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto found = FindSweep(sweep_id);
  if (!found.ok()) return found.status();
  Sweep& sweep = **found;
  if (auto s = Scheduler::CanExtend(sweep); !s.ok()) return s;  // before any write
  // A failed write reloads the scheduler from the database (Change), undoing this too.
  return Change([&]() -> absl::Status {
    auto added = scheduler_.Extend(sweep, trials, more_later, now_ms);
    if (!added.ok()) return added.status();
    return InsertTrialRows(sweep, *added);
  });
}

absl::Status SqliteStore::Cancel(const std::string& sweep_id, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto found = FindSweep(sweep_id);
  if (!found.ok()) return found.status();
  Sweep& sweep = **found;
  if (sweep.state == SweepState::kCancelled) return absl::OkStatus();
  return Change([&] { return scheduler_.Cancel(sweep, now_ms); });
}

absl::StatusOr<SweepStatus> SqliteStore::GetSweep(const std::string& sweep_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  auto sweep = FindSweep(sweep_id);
  if (!sweep.ok()) return sweep.status();
  return scheduler_.StatusOf(**sweep);
}

absl::StatusOr<std::vector<SweepStatus>> SqliteStore::ListSweeps() {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  std::vector<SweepStatus> list;
  for (const auto& [seq, sweep] : scheduler_.sweeps()) list.push_back(scheduler_.StatusOf(sweep));
  return list;
}

absl::StatusOr<std::vector<TrialStatus>> SqliteStore::Trials(const std::string& sweep_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  if (auto sweep = FindSweep(sweep_id); !sweep.ok()) return sweep.status();
  std::vector<TrialStatus> list;
  std::unordered_map<std::string, size_t> index;
  Query trials = db_->Prepare(
      "SELECT trial_id, plan_index, kind, arm, target, seed_index, source_trial, state, "
      "failed_attempts, outcome, blocked_by, model_sha256 FROM trials WHERE sweep_id = ?1 "
      "ORDER BY plan_index",
      sweep_id);
  const absl::Status trials_read = trials.ForEachRow([&]() -> absl::Status {
    auto kind = ParseTrialKind(trials.Text(2));
    if (!kind.ok()) return kind.status();
    auto state = ParseTrialState(trials.Text(7));
    if (!state.ok()) return state.status();
    TrialStatus trial;
    trial.trial_id = trials.Text(0);
    trial.plan_index = static_cast<int>(trials.Int(1));
    trial.kind = *kind;
    trial.arm = trials.Text(3);
    trial.target = trials.Text(4);
    trial.seed_index = static_cast<int>(trials.Int(5));
    trial.source_trial = trials.Text(6);
    trial.state = *state;
    trial.failed_attempts = static_cast<int>(trials.Int(8));
    if (!trials.IsNull(9)) {
      auto outcome = ParseOutcome(trials.Text(9));
      if (!outcome.ok()) return outcome.status();
      trial.outcome = *outcome;
    }
    trial.blocked_by = trials.Text(10);
    trial.model_sha256 = trials.Text(11);
    index[trial.trial_id] = list.size();
    list.push_back(std::move(trial));
    return absl::OkStatus();
  });
  if (!trials_read.ok()) return trials_read;
  Query failures = db_->Prepare(
      "SELECT trial_id, number, worker_id, reason FROM attempts "
      "WHERE sweep_id = ?1 AND state IN ('failed', 'expired') ORDER BY leased_ms, number, id",
      sweep_id);
  const absl::Status failures_read = failures.ForEachRow([&]() -> absl::Status {
    list[index.at(failures.Text(0))].failures.push_back(absl::StrCat(
        "attempt ", failures.Int(1), " (worker ", failures.Text(2), "): ", failures.Text(3)));
    return absl::OkStatus();
  });
  if (!failures_read.ok()) return failures_read;
  return list;
}

absl::StatusOr<std::vector<TrialResult>> SqliteStore::Results(const std::string& sweep_id,
                                                              BlockedTrials blocked) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  if (auto sweep = FindSweep(sweep_id); !sweep.ok()) return sweep.status();
  std::vector<TrialResult> results;
  Query query = db_->Prepare(
      "SELECT t.trial_id, r.result_json, s.spec_json, t.blocked_by FROM trials t "
      "LEFT JOIN results r ON r.attempt_id = t.result_attempt_id "
      "LEFT JOIN trial_specs s ON s.sweep_id = t.sweep_id AND s.trial_id = t.trial_id WHERE "
      "t.sweep_id = ?1 AND "
      "(r.attempt_id IS NOT NULL OR (?2 AND t.state = 'blocked')) ORDER BY t.plan_index",
      sweep_id, int64_t{blocked == BlockedTrials::kIncluded});
  const absl::Status query_read = query.ForEachRow([&]() -> absl::Status {
    const auto damaged = [&](const char* column, const absl::Status& status) {
      return absl::DataLossError(absl::StrCat(db_->path(), ": trial ", query.Text(0), " of sweep ",
                                              sweep_id, ": ", column, ": ", status.message()));
    };
    if (!query.IsNull(1)) {
      auto result =
          TrialResultFromJson(nlohmann::json::parse(query.Text(1), nullptr, /*exceptions=*/false));
      if (!result.ok()) return damaged("results.result_json", result.status());
      results.push_back(*std::move(result));
      return absl::OkStatus();
    }
    if (query.IsNull(2)) {
      return absl::FailedPreconditionError(
          absl::StrCat("trial ", query.Text(0), " of sweep ", sweep_id,
                       " has no stored spec yet (a database from before schema 3 that no "
                       "coordinator has opened since)"));
    }
    auto spec = TrialSpecFromJsonText(query.Text(2));
    if (!spec.ok()) return damaged("trial_specs.spec_json", spec.status());
    results.push_back(BlockedResultFor(*spec, query.Text(3)));
    return absl::OkStatus();
  });
  if (!query_read.ok()) return query_read;
  return results;
}

absl::StatusOr<SpecText> SqliteStore::SweepSpecText(const std::string& sweep_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  if (auto sweep = FindSweep(sweep_id); !sweep.ok()) return sweep.status();
  Query query = db_->Prepare(
      "SELECT spec_text, spec_path, coalesce(datasets_json, '') FROM sweeps WHERE id = ?1",
      sweep_id);
  auto row = query.Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("sweep ", sweep_id, ": no such sweep"));
  return SpecText{query.Text(0), query.Text(1), query.Text(2)};
}

}  // namespace seedproof::store_internal
