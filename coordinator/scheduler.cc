#include "coordinator/scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "experiments/trial_json.h"
#include "proto/wire_limits.h"

namespace seedproof {

void Scheduler::Clear() {
  sweeps_.clear();
  by_id_.clear();
  queue_.clear();
  live_.clear();
  deadlines_.clear();
  TakeChanges();
}

absl::Status Scheduler::CheckTrialSpecSize(const std::string& field, const std::string& trial_id,
                                           size_t json_bytes) {
  if (json_bytes <= static_cast<size_t>(kMaxTrialSpecBytes)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " (trial ", trial_id, "): its spec is ", json_bytes,
                   " bytes as JSON; a lease carries at most ", kMaxTrialSpecBytes));
}

absl::StatusOr<std::vector<const TrialSpec*>> Scheduler::AppendTrials(
    Sweep& sweep, const std::vector<TrialSpec>& specs, bool skip_known) {
  std::vector<const TrialSpec*> added;
  for (const TrialSpec& spec : specs) {
    const int index = static_cast<int>(sweep.trials.size());
    const std::string field = absl::StrCat("plan.trials[", index, "]");
    if (spec.id.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ".id: empty"));
    if (auto [it, inserted] = sweep.index.emplace(spec.id, index); !inserted) {
      if (skip_known) continue;
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": trial ", spec.id, " is also plan.trials[", it->second, "]"));
    }
    Trial trial;
    trial.id = spec.id;
    trial.kind = spec.kind;
    trial.spec_json = std::make_shared<const std::string>(TrialSpecJsonText(spec));
    if (auto s = CheckTrialSpecSize(field, spec.id, trial.spec_json->size()); !s.ok()) return s;
    if (!spec.source_trial.empty()) {
      auto source = sweep.index.find(spec.source_trial);
      if (source == sweep.index.end() || source->second == index) {
        return absl::InvalidArgumentError(absl::StrCat(field, " (trial ", spec.id,
                                                       "): source_trial ", spec.source_trial,
                                                       " is not an earlier trial of the plan"));
      }
      trial.source = source->second;
      sweep.trials[source->second].dependents.push_back(index);
    }
    sweep.trials.push_back(std::move(trial));
    ++sweep.counts[static_cast<size_t>(TrialState::kPending)];
    added.push_back(&spec);
  }
  return added;
}

bool Scheduler::AppendStored(Sweep& sweep, Trial trial, const std::string& source_id) {
  const int index = static_cast<int>(sweep.trials.size());
  if (!source_id.empty()) {
    auto source = sweep.index.find(source_id);
    if (source == sweep.index.end()) return false;
    trial.source = source->second;
    sweep.trials[source->second].dependents.push_back(index);
  }
  ++sweep.counts[static_cast<size_t>(trial.state)];
  sweep.index[trial.id] = index;
  sweep.trials.push_back(std::move(trial));
  return true;
}

Scheduler::Sweep& Scheduler::AddSweep(Sweep sweep) {
  const int64_t seq = sweep.seq;
  Sweep& stored = sweeps_[seq] = std::move(sweep);
  by_id_[stored.id] = &stored;
  for (int t = 0; t < static_cast<int>(stored.trials.size()); ++t) Requeue(stored, t);
  return stored;
}

void Scheduler::AddAttempt(int64_t attempt_id, Sweep& sweep, int trial,
                           const std::string& worker_id, int64_t deadline_ms) {
  live_[attempt_id] = {&sweep, trial, worker_id, deadline_ms};
  deadlines_.emplace(deadline_ms, attempt_id);
}

absl::StatusOr<Scheduler::Sweep*> Scheduler::FindSweep(const std::string& sweep_id) {
  auto it = by_id_.find(sweep_id);
  if (it == by_id_.end()) {
    return absl::NotFoundError(absl::StrCat("sweep ", sweep_id, ": no such sweep"));
  }
  return it->second;
}

Scheduler::Attempt* Scheduler::FindAttempt(int64_t attempt_id) {
  auto it = live_.find(attempt_id);
  return it == live_.end() ? nullptr : &it->second;
}

std::optional<Scheduler::TrialRef> Scheduler::Next() {
  if (queue_.empty()) return std::nullopt;
  const auto [seq, index] = *queue_.begin();
  return TrialRef{&sweeps_.at(seq), index};
}

std::vector<int64_t> Scheduler::ExpiredBefore(int64_t now_ms) const {
  std::vector<int64_t> expired;
  for (auto it = deadlines_.begin(); it != deadlines_.end() && it->first < now_ms; ++it) {
    expired.push_back(it->second);
  }
  return expired;
}

std::vector<int64_t> Scheduler::Adopted() const {
  std::vector<int64_t> adopted;
  for (const auto& [attempt_id, attempt] : live_) {
    if (attempt.adopted) adopted.push_back(attempt_id);
  }
  std::sort(adopted.begin(), adopted.end());
  return adopted;
}

std::vector<int64_t> Scheduler::AttemptsOf(const std::string& worker_id) const {
  std::vector<int64_t> held;
  for (const auto& [attempt_id, attempt] : live_) {
    if (attempt.worker_id == worker_id) held.push_back(attempt_id);
  }
  std::sort(held.begin(), held.end());
  return held;
}

std::vector<std::string> Scheduler::ReadyToExtend() const {
  std::vector<std::string> ready;
  for (const auto& [seq, sweep] : sweeps_) {
    if (sweep.state == SweepState::kRunning && sweep.awaiting_trials &&
        sweep.count(TrialState::kPending) == 0 && sweep.count(TrialState::kLeased) == 0) {
      ready.push_back(sweep.id);
    }
  }
  return ready;
}

SweepStatus Scheduler::StatusOf(const Sweep& sweep) const {
  SweepStatus status;
  status.sweep_id = sweep.id;
  status.name = sweep.name;
  status.spec_path = sweep.spec_path;
  status.state = sweep.state;
  status.created_ms = sweep.created_ms;
  status.finished_ms = sweep.finished_ms;
  status.total = static_cast<int>(sweep.trials.size());
  status.pending = sweep.count(TrialState::kPending);
  status.leased = sweep.count(TrialState::kLeased);
  status.done = sweep.count(TrialState::kDone);
  status.failed = sweep.count(TrialState::kFailed);
  status.blocked = sweep.count(TrialState::kBlocked);
  status.cancelled = sweep.count(TrialState::kCancelled);
  return status;
}

void Scheduler::StartAttempt(int64_t attempt_id, Sweep& sweep, int trial,
                             const std::string& worker_id, int64_t deadline_ms) {
  AddAttempt(attempt_id, sweep, trial, worker_id, deadline_ms);
  MoveTrial(sweep, trial, TrialState::kLeased);
}

void Scheduler::Renew(int64_t attempt_id, int64_t deadline_ms) {
  Attempt& attempt = live_.at(attempt_id);
  deadlines_.erase({attempt.deadline_ms, attempt_id});
  attempt.deadline_ms = deadline_ms;
  attempt.adopted = false;
  deadlines_.emplace(deadline_ms, attempt_id);
}

void Scheduler::AdoptAll() {
  for (auto& [attempt_id, attempt] : live_) attempt.adopted = true;
}

void Scheduler::Complete(int64_t attempt_id, TrialOutcome outcome, const std::string& model_sha256,
                         int64_t now_ms) {
  const Attempt attempt = live_.at(attempt_id);
  Forget(attempt_id);
  Sweep& sweep = *attempt.sweep;
  Trial& trial = sweep.trials[attempt.trial];
  trial.result_attempt = attempt_id;
  trial.outcome = outcome;
  if (!model_sha256.empty()) trial.model_sha256 = model_sha256;
  MoveTrial(sweep, attempt.trial, TrialState::kDone);
  if (outcome == TrialOutcome::kCompleted) {
    for (int dependent : trial.dependents) Requeue(sweep, dependent);
  } else {
    BlockDependents(sweep, attempt.trial, trial.id);
  }
  FinishIfDone(sweep, now_ms);
}

void Scheduler::EndUnfinished(int64_t attempt_id, bool counted, int64_t now_ms) {
  const Attempt attempt = live_.at(attempt_id);
  Forget(attempt_id);
  Sweep& sweep = *attempt.sweep;
  Trial& trial = sweep.trials[attempt.trial];
  if (counted) ++trial.failed_attempts;
  if (sweep.state == SweepState::kCancelled) {
    MoveTrial(sweep, attempt.trial, TrialState::kCancelled);
  } else if (trial.failed_attempts < max_attempts_) {
    MoveTrial(sweep, attempt.trial, TrialState::kPending);
  } else {
    MoveTrial(sweep, attempt.trial, TrialState::kFailed);
    BlockDependents(sweep, attempt.trial, trial.id);
    FinishIfDone(sweep, now_ms);
  }
}

absl::Status Scheduler::Cancel(Sweep& sweep, int64_t now_ms) {
  if (sweep.state == SweepState::kCancelled) return absl::OkStatus();
  if (sweep.state == SweepState::kDone) {
    return absl::FailedPreconditionError(absl::StrCat("sweep ", sweep.id, ": already done"));
  }
  sweep.state = SweepState::kCancelled;
  sweep.finished_ms = now_ms;
  Changed(sweep);
  for (int t = 0; t < static_cast<int>(sweep.trials.size()); ++t) {
    if (sweep.trials[t].state == TrialState::kPending) MoveTrial(sweep, t, TrialState::kCancelled);
  }
  return absl::OkStatus();
}

absl::Status Scheduler::CanExtend(const Sweep& sweep) {
  if (sweep.state == SweepState::kRunning && sweep.awaiting_trials) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("sweep ", sweep.id, " is not awaiting later trials"));
}

absl::StatusOr<std::vector<const TrialSpec*>> Scheduler::Extend(Sweep& sweep,
                                                                const std::vector<TrialSpec>& specs,
                                                                bool more_later, int64_t now_ms) {
  if (auto s = CanExtend(sweep); !s.ok()) return s;
  auto added = AppendTrials(sweep, specs, /*skip_known=*/true);
  if (!added.ok()) return added.status();
  // Nothing new (a step added twice) must not leave the sweep waiting forever.
  sweep.awaiting_trials = more_later && !added->empty();
  Changed(sweep);
  for (int t = static_cast<int>(sweep.trials.size() - added->size());
       t < static_cast<int>(sweep.trials.size()); ++t) {
    Trial& trial = sweep.trials[t];
    if (trial.source >= 0) {
      const Trial& source = sweep.trials[trial.source];
      const bool unusable =
          source.state == TrialState::kFailed || source.state == TrialState::kBlocked ||
          source.state == TrialState::kCancelled || source.outcome == TrialOutcome::kDiverged;
      if (unusable) {
        trial.blocked_by = source.state == TrialState::kBlocked ? source.blocked_by : source.id;
        MoveTrial(sweep, t, TrialState::kBlocked);
        continue;
      }
    }
    Requeue(sweep, t);
  }
  FinishIfDone(sweep, now_ms);
  return added;
}

Scheduler::Changes Scheduler::TakeChanges() {
  changed_trials_.clear();
  changed_sweeps_.clear();
  return std::exchange(changes_, {});
}

bool Scheduler::Leasable(const Sweep& sweep, const Trial& trial) const {
  if (sweep.state != SweepState::kRunning || trial.state != TrialState::kPending) return false;
  if (trial.source < 0) return true;
  const Trial& source = sweep.trials[trial.source];
  return source.state == TrialState::kDone && source.outcome == TrialOutcome::kCompleted;
}

void Scheduler::Requeue(Sweep& sweep, int trial) {
  if (Leasable(sweep, sweep.trials[trial])) {
    queue_.emplace(sweep.seq, trial);
  } else {
    queue_.erase({sweep.seq, trial});
  }
}

void Scheduler::MoveTrial(Sweep& sweep, int index, TrialState state) {
  Trial& trial = sweep.trials[index];
  --sweep.counts[static_cast<size_t>(trial.state)];
  ++sweep.counts[static_cast<size_t>(state)];
  trial.state = state;
  Requeue(sweep, index);
  if (changed_trials_.emplace(sweep.seq, index).second) changes_.trials.push_back({&sweep, index});
}

void Scheduler::BlockDependents(Sweep& sweep, int trial, const std::string& cause) {
  for (int dependent : sweep.trials[trial].dependents) {
    if (sweep.trials[dependent].state != TrialState::kPending) continue;
    sweep.trials[dependent].blocked_by = cause;
    MoveTrial(sweep, dependent, TrialState::kBlocked);
    BlockDependents(sweep, dependent, cause);
  }
}

void Scheduler::FinishIfDone(Sweep& sweep, int64_t now_ms) {
  if (sweep.state != SweepState::kRunning || sweep.awaiting_trials ||
      sweep.count(TrialState::kPending) > 0 || sweep.count(TrialState::kLeased) > 0) {
    return;
  }
  sweep.state = SweepState::kDone;
  sweep.finished_ms = now_ms;
  Changed(sweep);
}

void Scheduler::Forget(int64_t attempt_id) {
  auto it = live_.find(attempt_id);
  deadlines_.erase({it->second.deadline_ms, attempt_id});
  live_.erase(it);
}

void Scheduler::Changed(const Sweep& sweep) {
  if (changed_sweeps_.insert(sweep.seq).second) changes_.sweeps.push_back(&sweep);
}

}  // namespace seedproof
