// What leasing needs, in memory: the sweeps, each one's trial DAG with its
// states, the queue of leasable trials, the current attempts and their
// deadlines. The rules of coordinator/store.h (a trial's life, when a sweep is
// done, which trial is leased next) live here, with no SQLite: the store keeps
// the rows, asks the scheduler what a call changes and writes those rows
// (TakeChanges) in the same transaction. Not thread-safe: the store calls it
// under its lock.
//
//   Scheduler scheduler(/*max_attempts=*/3);
//   auto added = Scheduler::AppendTrials(sweep, plan.trials, false);
//   Scheduler::Sweep& s = scheduler.AddSweep(std::move(sweep));
//   if (auto next = scheduler.Next()) scheduler.StartAttempt(7, *next->sweep, next->trial, "w1",
//   d); scheduler.Complete(7, TrialOutcome::kCompleted, model_sha256, now); for (const auto&
//   [sweep, trial] : scheduler.TakeChanges().trials) { /* UPDATE its row */ }
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/store.h"

namespace seedproof {

inline constexpr size_t kTrialStateCount = 6;  // the values of TrialState

class Scheduler {
 public:
  struct Trial {
    std::string id;
    TrialKind kind = TrialKind::kPretrain;
    int source = -1;              // plan index of the trial whose model it needs; -1: none
    std::vector<int> dependents;  // plan indices of the trials that need its model
    TrialState state = TrialState::kPending;
    int failed_attempts = 0;
    std::optional<TrialOutcome> outcome;
    std::string blocked_by;
    std::string model_sha256;
    int64_t result_attempt = 0;  // done: the attempt whose result was accepted
    // Its TrialSpec as JSON, what its leases carry; null when the store has none.
    std::shared_ptr<const std::string> spec_json;
  };
  struct Sweep {
    int64_t seq = 0;  // submission order: the oldest sweep's trials are leased first
    std::string id, name, spec_path;
    SweepState state = SweepState::kRunning;
    int64_t created_ms = 0, finished_ms = 0;
    bool awaiting_trials = false;  // later trials may come (confirmation, sequential steps)
    std::vector<Trial> trials;     // in plan order
    std::unordered_map<std::string, int> index;  // trial id -> plan index
    std::array<int, kTrialStateCount> counts{};  // trials by TrialState
    int count(TrialState state) const { return counts[static_cast<size_t>(state)]; }
  };
  struct Attempt {
    Sweep* sweep = nullptr;
    int trial = 0;  // plan index
    std::string worker_id;
    int64_t deadline_ms = 0;
    // Leased by an earlier coordinator process, and not renewed since this one
    // started: if it expires, the restart interrupted it, not the trial.
    bool adopted = false;
  };
  struct TrialRef {
    Sweep* sweep = nullptr;
    int trial = 0;
  };
  // What calls since the last TakeChanges changed: trials whose state (or the
  // fields that go with it) moved, sweeps whose state, finish time or
  // confirmation wait changed. Each once, in the order first changed.
  struct Changes {
    std::vector<TrialRef> trials;
    std::vector<const Sweep*> sweeps;
  };

  explicit Scheduler(int max_attempts) : max_attempts_(max_attempts) {}

  // Forgets everything (before loading again).
  void Clear();

  // ---- Building the state ----

  // Appends specs to the sweep's trials (pending, sources wired by id) and
  // returns the ones added; with skip_known, a spec whose trial the sweep has is
  // skipped, else it is an error. INVALID_ARGUMENT naming plan.trials[i] for an
  // empty id, an id that appears twice, or a source that is not an earlier trial.
  static absl::StatusOr<std::vector<const TrialSpec*>> AppendTrials(
      Sweep& sweep, const std::vector<TrialSpec>& specs, bool skip_known);
  // INVALID_ARGUMENT naming field and trial when its spec, as JSON, is larger than
  // a lease may carry (kMaxTrialSpecBytes).
  static absl::Status CheckTrialSpecSize(const std::string& field, const std::string& trial_id,
                                         size_t json_bytes);
  // Appends one trial as it was stored, its source named by id; false when that
  // id is not an earlier trial of the sweep.
  static bool AppendStored(Sweep& sweep, Trial trial, const std::string& source_id);
  // The sequence number the next submitted sweep gets.
  int64_t NextSeq() const { return sweeps_.empty() ? 1 : sweeps_.rbegin()->first + 1; }
  // Takes the sweep (seq unused so far) and queues its leasable trials.
  Sweep& AddSweep(Sweep sweep);
  // A current attempt as it was stored.
  void AddAttempt(int64_t attempt_id, Sweep& sweep, int trial, const std::string& worker_id,
                  int64_t deadline_ms);

  // ---- Reading ----

  // NOT_FOUND naming the sweep when there is no such sweep.
  absl::StatusOr<Sweep*> FindSweep(const std::string& sweep_id);
  const std::map<int64_t, Sweep>& sweeps() const { return sweeps_; }
  // The current attempt, or nullptr.
  Attempt* FindAttempt(int64_t attempt_id);
  // The next trial to lease: the oldest running sweep's first pending trial, in
  // plan order, whose source trial (if any) completed.
  std::optional<TrialRef> Next();
  // Current attempts whose deadline is before now, by deadline.
  std::vector<int64_t> ExpiredBefore(int64_t now_ms) const;
  // The adopted current attempts, by id.
  std::vector<int64_t> Adopted() const;
  // The worker's current attempts, by id.
  std::vector<int64_t> AttemptsOf(const std::string& worker_id) const;
  // Running sweeps awaiting later trials whose trials have all ended.
  std::vector<std::string> ReadyToExtend() const;
  SweepStatus StatusOf(const Sweep& sweep) const;

  // ---- Changing ----

  // The trial is leased to a new attempt.
  void StartAttempt(int64_t attempt_id, Sweep& sweep, int trial, const std::string& worker_id,
                    int64_t deadline_ms);
  // A new deadline; the attempt is no longer adopted (its worker is back).
  void Renew(int64_t attempt_id, int64_t deadline_ms);
  // Every current attempt was leased by an earlier process (after loading).
  void AdoptAll();
  // A current attempt's result is accepted: its trial is done with outcome;
  // dependents become leasable (completed) or blocked (diverged).
  void Complete(int64_t attempt_id, TrialOutcome outcome, const std::string& model_sha256,
                int64_t now_ms);
  // A current attempt ended without a result; `counted` (failed or expired, not
  // released) counts towards max_attempts. Its trial is pending again, failed
  // (blocking its dependents) or, in a cancelled sweep, cancelled.
  void EndUnfinished(int64_t attempt_id, bool counted, int64_t now_ms);
  // Pending trials become cancelled, leased ones run on. A cancelled sweep stays
  // as it is; a done one is FAILED_PRECONDITION.
  absl::Status Cancel(Sweep& sweep, int64_t now_ms);
  // FAILED_PRECONDITION naming the sweep unless it is running and awaiting later trials.
  static absl::Status CanExtend(const Sweep& sweep);
  // Appends later trials (confirmation seeds, a sequential step: AppendTrials,
  // skipping known ones); the sweep waits for more only with more_later and when
  // something was added. A trial whose source failed, diverged, was blocked or
  // cancelled is blocked at once. FAILED_PRECONDITION when the sweep is not
  // awaiting later trials. Returns the specs added.
  absl::StatusOr<std::vector<const TrialSpec*>> Extend(Sweep& sweep,
                                                       const std::vector<TrialSpec>& specs,
                                                       bool more_later, int64_t now_ms);
  // What changed since the last call.
  Changes TakeChanges();

 private:
  bool Leasable(const Sweep& sweep, const Trial& trial) const;
  // Puts the trial into the lease queue or takes it out, as Leasable says.
  void Requeue(Sweep& sweep, int trial);
  // Moves a trial to state (with the fields that state needs already set on it),
  // keeping the sweep's counts and the queue in step.
  void MoveTrial(Sweep& sweep, int trial, TrialState state);
  // Blocks every pending trial that needs trial's model, directly or not.
  void BlockDependents(Sweep& sweep, int trial, const std::string& cause);
  // A running sweep whose trials have all ended is done (unless it awaits confirmation).
  void FinishIfDone(Sweep& sweep, int64_t now_ms);
  void Forget(int64_t attempt_id);
  void Changed(const Sweep& sweep);

  const int max_attempts_;
  std::map<int64_t, Sweep> sweeps_;  // by seq: oldest first
  std::unordered_map<std::string, Sweep*> by_id_;
  // Leasable trials as (sweep seq, plan index): begin() is the next lease.
  std::set<std::pair<int64_t, int>> queue_;
  std::unordered_map<int64_t, Attempt> live_;        // current attempts by id
  std::set<std::pair<int64_t, int64_t>> deadlines_;  // (deadline_ms, attempt id) of live_
  std::set<std::pair<int64_t, int>> changed_trials_;
  std::set<int64_t> changed_sweeps_;
  Changes changes_;
};

}  // namespace seedproof
