// The Store on SQLite. The database is the truth; memory mirrors what leasing
// needs (trial states, dependencies, the queue of leasable trials, the current
// attempts), so a lease is one small transaction and no query. Every change writes
// its rows and updates the mirror side by side inside one transaction; if the
// transaction fails, the mirror is reloaded from the database, so the two never
// disagree.
#include "coordinator/store.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/schema.h"
#include "coordinator/sqlite.h"
#include "experiments/fingerprint.h"
#include "experiments/results.h"
#include "experiments/trial_json.h"
#include "nlohmann/json.hpp"

namespace seedproof {
namespace {

constexpr int kBusyTimeoutMs = 5000;
// A worker's last_seen_ms is written at most this often: a lease would otherwise
// write one more page per commit.
constexpr int64_t kLastSeenResolutionMs = 1000;

// The write-ahead log is copied into the database file this often, off the
// write path; when it holds more frames than kMaxWalFrames the last copy runs
// between two commits, so the log starts over instead of growing under load.
constexpr auto kCheckpointPeriod = std::chrono::milliseconds(250);
constexpr int64_t kMaxWalFrames = 65536;  // 4 KiB pages: 256 MB

const char* const kSweepStateNames[] = {"running", "cancelled", "done"};
const char* const kTrialStateNames[] = {"pending", "leased",  "done",
                                        "failed",  "blocked", "cancelled"};
constexpr size_t kTrialStates = std::size(kTrialStateNames);

// The value of an enum whose names are `names`, indexed by value.
template <typename Enum, size_t N>
std::optional<Enum> NamedIn(const char* const (&names)[N], const std::string& text) {
  for (size_t i = 0; i < N; ++i) {
    if (text == names[i]) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

// A column's value read back. The schema's CHECK constraints allow only known
// names, so anything else means the file was damaged.
template <typename Enum>
absl::StatusOr<Enum> Stored(std::optional<Enum> value, const std::string& text,
                            const char* column) {
  if (value) return *value;
  return absl::DataLossError(absl::StrCat(column, ": unknown value \"", text, "\""));
}

absl::StatusOr<SweepState> ParseSweepState(const std::string& text) {
  return Stored(NamedIn<SweepState>(kSweepStateNames, text), text, "sweeps.state");
}
absl::StatusOr<TrialState> ParseTrialState(const std::string& text) {
  return Stored(NamedIn<TrialState>(kTrialStateNames, text), text, "trials.state");
}
absl::StatusOr<TrialKind> ParseTrialKind(const std::string& text) {
  return Stored(TrialKindNamed(text), text, "trials.kind");
}
absl::StatusOr<TrialOutcome> ParseOutcome(const std::string& text) {
  // A trial's outcome is what a worker reported; blocked trials have none.
  std::optional<TrialOutcome> outcome = TrialOutcomeNamed(text);
  if (outcome == TrialOutcome::kBlocked) outcome.reset();
  return Stored(outcome, text, "trials.outcome");
}

bool IsSha256Hex(const std::string& text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

absl::Status CheckSha256Field(const std::string& field, const std::string& sha256) {
  if (IsSha256Hex(sha256)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": \"", sha256, "\" is not a SHA-256 (64 lowercase hex digits)"));
}

// How an attempt ends. The names are the attempts table's states.
enum class AttemptEnd { kCompleted, kFailed, kExpired, kReleased };
const char* AttemptEndName(AttemptEnd end) {
  switch (end) {
    case AttemptEnd::kCompleted:
      return "completed";
    case AttemptEnd::kFailed:
      return "failed";
    case AttemptEnd::kExpired:
      return "expired";
    case AttemptEnd::kReleased:
      return "released";
  }
  return "unknown";
}

// Checkpoints from a connection and thread of its own, so that no commit waits
// for one: a checkpoint copies pages into the database file and fsyncs it, which
// took a commit 50+ ms here (the coordinator's lease p99 with 20 workers went
// from 61-67 ms to 13-15 ms once they left the write path). PASSIVE checkpoints never
// block the writer. `commits` is the lock every commit holds.
class WalCheckpointer {
 public:
  static absl::StatusOr<std::unique_ptr<WalCheckpointer>> Start(const std::string& path,
                                                                std::mutex& commits) {
    auto db = Database::Open(path, kBusyTimeoutMs);
    if (!db.ok()) return db.status();
    return std::unique_ptr<WalCheckpointer>(new WalCheckpointer(std::move(*db), commits));
  }

  ~WalCheckpointer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  WalCheckpointer(std::unique_ptr<Database> db, std::mutex& commits)
      : db_(std::move(db)), commits_(commits) {
    thread_ = std::thread([this] { Loop(); });
  }

  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!wake_.wait_for(lock, kCheckpointPeriod, [&] { return stopping_; })) {
      lock.unlock();
      // A failed checkpoint is tried again next period; the log keeps every commit.
      if (auto frames = Checkpoint(); frames.ok() && *frames > kMaxWalFrames) {
        std::lock_guard<std::mutex> between_commits(commits_);
        Checkpoint().IgnoreError();
      }
      lock.lock();
    }
  }

  // The frames in the log.
  absl::StatusOr<int64_t> Checkpoint() {
    Query checkpoint = db_->Prepare("PRAGMA wal_checkpoint(PASSIVE)");
    auto row = checkpoint.Step();
    if (!row.ok()) return row.status();
    return *row ? checkpoint.Int(1) : 0;
  }

  std::unique_ptr<Database> db_;
  std::mutex& commits_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(std::unique_ptr<Database> db, const StoreOptions& options)
      : db_(std::move(db)), options_(options) {}

  // Rebuilds the mirror from the database.
  absl::Status Load();

  // Checkpoints the log from a thread of its own from now on (a store that writes).
  absl::Status CheckpointInBackground() {
    auto started = WalCheckpointer::Start(db_->path(), mu_);
    if (!started.ok()) return started.status();
    checkpointer_ = std::move(*started);
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> SubmitSweep(const std::string& name, const std::string& spec_text,
                                          const std::string& spec_path, const Plan& plan,
                                          int64_t now_ms) override;
  absl::Status Cancel(const std::string& sweep_id, int64_t now_ms) override;
  absl::StatusOr<SweepStatus> GetSweep(const std::string& sweep_id) override;
  absl::StatusOr<std::vector<SweepStatus>> ListSweeps() override;
  absl::StatusOr<std::vector<TrialStatus>> Trials(const std::string& sweep_id) override;
  absl::StatusOr<std::vector<TrialResult>> Results(const std::string& sweep_id,
                                                   BlockedTrials blocked) override;
  absl::StatusOr<SpecText> SweepSpecText(const std::string& sweep_id) override;
  std::vector<std::string> SweepsMissingTrialSpecs() override;
  absl::StatusOr<int> FillTrialSpecs(const std::string& sweep_id,
                                     const std::vector<TrialSpec>& trials) override;
  std::vector<std::string> SweepsReadyForConfirmation() override;
  absl::Status AddConfirmation(const std::string& sweep_id, const std::vector<TrialSpec>& trials,
                               int64_t now_ms) override;

  absl::Status RegisterWorker(const std::string& worker_id, const std::string& capabilities_json,
                              int64_t now_ms) override;
  absl::StatusOr<std::vector<WorkerInfo>> Workers() override;
  absl::StatusOr<std::optional<Lease>> LeaseNext(const std::string& worker_id,
                                                 int64_t now_ms) override;
  absl::StatusOr<HeartbeatVerdict> Heartbeat(int64_t attempt_id, int64_t now_ms) override;
  absl::Status RecordEpoch(int64_t attempt_id, const EpochRecord& epoch, int64_t now_ms) override;
  absl::StatusOr<bool> Complete(int64_t attempt_id, const TrialResult& result,
                                int64_t now_ms) override;
  absl::Status Fail(int64_t attempt_id, const std::string& reason, int64_t now_ms) override;
  absl::Status Release(int64_t attempt_id, int64_t now_ms) override;
  absl::StatusOr<int> ExpireLeases(int64_t now_ms) override;
  absl::StatusOr<std::vector<int64_t>> FailWorker(const std::string& worker_id,
                                                  const std::string& reason,
                                                  int64_t now_ms) override;

  absl::Status PutArtifact(int64_t attempt_id, const std::string& sha256, const std::string& bytes,
                           int64_t now_ms) override;
  absl::StatusOr<std::string> GetArtifact(const std::string& sha256) override;
  absl::StatusOr<std::string> ArtifactOf(const std::string& sweep_id,
                                         const std::string& trial_id) override;

 private:
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
    int64_t seq = 0;
    std::string id, name, spec_path;
    SweepState state = SweepState::kRunning;
    int64_t created_ms = 0, finished_ms = 0;
    bool awaiting_confirmation = false;
    std::vector<Trial> trials;                   // in plan order
    std::unordered_map<std::string, int> index;  // trial id -> plan index
    std::array<int, kTrialStates> counts{};      // trials by TrialState
  };
  struct LiveAttempt {
    Sweep* sweep;
    int trial;  // plan index
    std::string worker_id;
    int64_t deadline_ms;
  };

  // OK unless a failed write left the mirror unrecoverable.
  absl::Status Usable() const { return broken_; }
  // Runs change in one transaction; see the file comment.
  absl::Status Change(const std::function<absl::Status()>& change);
  absl::StatusOr<Sweep*> FindSweep(const std::string& sweep_id);
  // The attempt if it is current; nullptr if it was issued but is no longer
  // current; NOT_FOUND if it was never issued.
  absl::StatusOr<LiveAttempt*> FindAttempt(int64_t attempt_id);

  bool Leasable(const Sweep& sweep, const Trial& trial) const;
  // Puts the trial into the lease queue or takes it out, as Leasable says.
  void Requeue(Sweep& sweep, int trial);
  // Moves a trial to state (with the fields that state needs already set on it) and
  // writes its row; keeps the sweep's counts and the lease queue in step.
  absl::Status MoveTrial(Sweep& sweep, int trial, TrialState state);
  // Blocks every pending trial that needs trial's model, directly or not.
  absl::Status BlockDependents(Sweep& sweep, int trial, const std::string& cause);
  // A running sweep whose trials have all ended is done (unless it awaits confirmation).
  absl::Status FinishIfDone(Sweep& sweep, int64_t now_ms);
  // Appends specs to the sweep's trials in memory (pending, sources wired) and
  // returns the ones added; with skip_known, specs whose trial the sweep has are
  // skipped, else they are an error. INVALID_ARGUMENT as SubmitSweep says.
  static absl::StatusOr<std::vector<const TrialSpec*>> AppendTrials(
      Sweep& sweep, const std::vector<TrialSpec>& specs, bool skip_known);
  // Writes the rows of the trials AppendTrials added (the sweep's last ones).
  absl::Status InsertTrialRows(const Sweep& sweep, const std::vector<const TrialSpec*>& added);
  // Records that the worker was seen now (see kLastSeenResolutionMs).
  absl::Status SeeWorker(const std::string& worker_id, int64_t now_ms);
  // Ends a current attempt's row and forgets it.
  absl::Status EndAttempt(int64_t attempt_id, AttemptEnd end, const std::string& reason,
                          int64_t now_ms);
  // Ends a current attempt that did not complete, and decides its trial's fate:
  // pending again, failed after max_attempts, or cancelled with its sweep.
  absl::Status EndUnfinished(int64_t attempt_id, AttemptEnd end, const std::string& reason,
                             int64_t now_ms);
  SweepStatus StatusOf(const Sweep& sweep) const;

  std::mutex mu_;
  std::unique_ptr<Database> db_;
  const StoreOptions options_;
  absl::Status broken_;
  std::map<int64_t, Sweep> sweeps_;  // by seq: oldest first
  std::unordered_map<std::string, Sweep*> sweep_by_id_;
  // Leasable trials as (sweep seq, plan index): begin() is the next lease.
  std::set<std::pair<int64_t, int>> queue_;
  std::unordered_map<int64_t, LiveAttempt> live_;       // current attempts by id
  std::set<std::pair<int64_t, int64_t>> deadlines_;     // (deadline_ms, attempt id) of live_
  std::unordered_map<std::string, int64_t> last_seen_;  // registered workers
  std::unique_ptr<WalCheckpointer> checkpointer_;       // last: stops first
};

// ---------------------------------------------------------------------------
// The mirror

absl::Status SqliteStore::Load() {
  sweeps_.clear();
  sweep_by_id_.clear();
  queue_.clear();
  live_.clear();
  deadlines_.clear();
  last_seen_.clear();
  const auto damaged = [&](const auto& message) {
    return absl::DataLossError(absl::StrCat(db_->path(), ": ", message));
  };

  Query sweeps = db_->Prepare(
      "SELECT seq, id, name, spec_path, state, created_ms, IFNULL(finished_ms, 0), "
      "awaiting_confirmation FROM sweeps");
  const absl::Status sweeps_read = sweeps.ForEachRow([&]() -> absl::Status {
    auto state = ParseSweepState(sweeps.Text(4));
    if (!state.ok()) return damaged(state.status().message());
    Sweep& sweep = sweeps_[sweeps.Int(0)];
    sweep.seq = sweeps.Int(0);
    sweep.id = sweeps.Text(1);
    sweep.name = sweeps.Text(2);
    sweep.spec_path = sweeps.Text(3);
    sweep.state = *state;
    sweep.created_ms = sweeps.Int(5);
    sweep.finished_ms = sweeps.Int(6);
    sweep.awaiting_confirmation = sweeps.Int(7) != 0;
    sweep_by_id_[sweep.id] = &sweep;
    return absl::OkStatus();
  });
  if (!sweeps_read.ok()) return sweeps_read;

  // Plan order within each sweep; a trial's source always comes before it.
  Query trials = db_->Prepare(
      "SELECT sweep_id, trial_id, plan_index, kind, source_trial, state, failed_attempts, "
      "outcome, blocked_by, model_sha256, IFNULL(result_attempt_id, 0), spec_json FROM trials "
      "ORDER BY sweep_id, plan_index");
  const absl::Status trials_read = trials.ForEachRow([&]() -> absl::Status {
    const std::string trial_id = trials.Text(1);
    auto sweep = sweep_by_id_.find(trials.Text(0));
    if (sweep == sweep_by_id_.end() ||
        trials.Int(2) != static_cast<int64_t>(sweep->second->trials.size())) {
      return damaged(absl::StrCat("trial ", trial_id, " of sweep ", trials.Text(0),
                                  " is out of its sweep's plan"));
    }
    Sweep& s = *sweep->second;
    auto kind = ParseTrialKind(trials.Text(3));
    if (!kind.ok()) return damaged(kind.status().message());
    auto state = ParseTrialState(trials.Text(5));
    if (!state.ok()) return damaged(state.status().message());
    Trial trial;
    trial.id = trial_id;
    trial.kind = *kind;
    trial.state = *state;
    trial.failed_attempts = static_cast<int>(trials.Int(6));
    if (!trials.IsNull(7)) {
      auto outcome = ParseOutcome(trials.Text(7));
      if (!outcome.ok()) return damaged(outcome.status().message());
      trial.outcome = *outcome;
    }
    trial.blocked_by = trials.Text(8);
    trial.model_sha256 = trials.Text(9);
    trial.result_attempt = trials.Int(10);
    if (!trials.IsNull(11)) trial.spec_json = std::make_shared<const std::string>(trials.Text(11));
    const int index = static_cast<int>(s.trials.size());
    if (!trials.IsNull(4)) {
      auto source = s.index.find(trials.Text(4));
      if (source == s.index.end()) {
        return damaged(absl::StrCat("trial ", trial_id, " of sweep ", s.id, ": source trial ",
                                    trials.Text(4), " is not an earlier trial of the sweep"));
      }
      trial.source = source->second;
      s.trials[source->second].dependents.push_back(index);
    }
    ++s.counts[static_cast<size_t>(trial.state)];
    s.index[trial.id] = index;
    s.trials.push_back(std::move(trial));
    return absl::OkStatus();
  });
  if (!trials_read.ok()) return trials_read;
  for (auto& [seq, sweep] : sweeps_) {
    for (int t = 0; t < static_cast<int>(sweep.trials.size()); ++t) Requeue(sweep, t);
  }

  Query attempts = db_->Prepare(
      "SELECT id, sweep_id, trial_id, worker_id, deadline_ms FROM attempts "
      "WHERE state = 'leased'");
  const absl::Status attempts_read = attempts.ForEachRow([&]() -> absl::Status {
    auto sweep = sweep_by_id_.find(attempts.Text(1));
    if (sweep == sweep_by_id_.end() || !sweep->second->index.contains(attempts.Text(2))) {
      return damaged(absl::StrCat("attempt ", attempts.Int(0), " is for trial ", attempts.Text(2),
                                  " of sweep ", attempts.Text(1), ", which is not stored"));
    }
    live_[attempts.Int(0)] = {sweep->second, sweep->second->index.at(attempts.Text(2)),
                              attempts.Text(3), attempts.Int(4)};
    deadlines_.emplace(attempts.Int(4), attempts.Int(0));
    return absl::OkStatus();
  });
  if (!attempts_read.ok()) return attempts_read;

  Query workers = db_->Prepare("SELECT id, last_seen_ms FROM workers");
  const absl::Status workers_read = workers.ForEachRow([&]() -> absl::Status {
    last_seen_[workers.Text(0)] = workers.Int(1);
    return absl::OkStatus();
  });
  if (!workers_read.ok()) return workers_read;
  return absl::OkStatus();
}

absl::Status SqliteStore::Change(const std::function<absl::Status()>& change) {
  absl::Status status = db_->Transaction(change);
  if (!status.ok()) {
    if (auto reload = Load(); !reload.ok()) {
      broken_ = absl::UnavailableError(absl::StrCat(
          db_->path(), ": after a failed write (", status.message(),
          ") the store could not reload its state (", reload.message(), "); open the store again"));
    }
  }
  return status;
}

absl::StatusOr<SqliteStore::Sweep*> SqliteStore::FindSweep(const std::string& sweep_id) {
  auto it = sweep_by_id_.find(sweep_id);
  if (it == sweep_by_id_.end()) {
    return absl::NotFoundError(absl::StrCat("sweep ", sweep_id, ": no such sweep"));
  }
  return it->second;
}

absl::StatusOr<SqliteStore::LiveAttempt*> SqliteStore::FindAttempt(int64_t attempt_id) {
  if (auto it = live_.find(attempt_id); it != live_.end()) return &it->second;
  Query query = db_->Prepare("SELECT 1 FROM attempts WHERE id = ?1", attempt_id);
  auto row = query.Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("attempt ", attempt_id, ": no such attempt"));
  return nullptr;
}

bool SqliteStore::Leasable(const Sweep& sweep, const Trial& trial) const {
  if (sweep.state != SweepState::kRunning || trial.state != TrialState::kPending) return false;
  if (trial.source < 0) return true;
  const Trial& source = sweep.trials[trial.source];
  return source.state == TrialState::kDone && source.outcome == TrialOutcome::kCompleted;
}

void SqliteStore::Requeue(Sweep& sweep, int trial) {
  if (Leasable(sweep, sweep.trials[trial])) {
    queue_.emplace(sweep.seq, trial);
  } else {
    queue_.erase({sweep.seq, trial});
  }
}

absl::Status SqliteStore::MoveTrial(Sweep& sweep, int index, TrialState state) {
  Trial& trial = sweep.trials[index];
  --sweep.counts[static_cast<size_t>(trial.state)];
  ++sweep.counts[static_cast<size_t>(state)];
  trial.state = state;
  Requeue(sweep, index);
  return db_
      ->Prepare(
          "UPDATE trials SET state = ?1, failed_attempts = ?2, outcome = NULLIF(?3, ''), "
          "blocked_by = NULLIF(?4, ''), model_sha256 = NULLIF(?5, ''), "
          "result_attempt_id = NULLIF(?6, 0) WHERE sweep_id = ?7 AND trial_id = ?8",
          TrialStateName(state), trial.failed_attempts,
          trial.outcome ? TrialOutcomeName(*trial.outcome) : "", trial.blocked_by,
          trial.model_sha256, trial.result_attempt, sweep.id, trial.id)
      .Run();
}

absl::Status SqliteStore::BlockDependents(Sweep& sweep, int trial, const std::string& cause) {
  for (int dependent : sweep.trials[trial].dependents) {
    if (sweep.trials[dependent].state != TrialState::kPending) continue;
    sweep.trials[dependent].blocked_by = cause;
    if (auto s = MoveTrial(sweep, dependent, TrialState::kBlocked); !s.ok()) return s;
    if (auto s = BlockDependents(sweep, dependent, cause); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::FinishIfDone(Sweep& sweep, int64_t now_ms) {
  if (sweep.state != SweepState::kRunning || sweep.awaiting_confirmation ||
      sweep.counts[static_cast<size_t>(TrialState::kPending)] > 0 ||
      sweep.counts[static_cast<size_t>(TrialState::kLeased)] > 0) {
    return absl::OkStatus();
  }
  sweep.state = SweepState::kDone;
  sweep.finished_ms = now_ms;
  return db_
      ->Prepare("UPDATE sweeps SET state = 'done', finished_ms = ?1 WHERE id = ?2", now_ms,
                sweep.id)
      .Run();
}

absl::Status SqliteStore::SeeWorker(const std::string& worker_id, int64_t now_ms) {
  int64_t& last_seen = last_seen_.at(worker_id);
  if (now_ms - last_seen < kLastSeenResolutionMs) return absl::OkStatus();
  last_seen = now_ms;
  return db_->Prepare("UPDATE workers SET last_seen_ms = ?1 WHERE id = ?2", now_ms, worker_id)
      .Run();
}

absl::Status SqliteStore::EndAttempt(int64_t attempt_id, AttemptEnd end, const std::string& reason,
                                     int64_t now_ms) {
  auto it = live_.find(attempt_id);
  deadlines_.erase({it->second.deadline_ms, attempt_id});
  live_.erase(it);
  return db_
      ->Prepare(
          "UPDATE attempts SET state = ?1, ended_ms = ?2, reason = NULLIF(?3, '') "
          "WHERE id = ?4",
          AttemptEndName(end), now_ms, reason, attempt_id)
      .Run();
}

absl::Status SqliteStore::EndUnfinished(int64_t attempt_id, AttemptEnd end,
                                        const std::string& reason, int64_t now_ms) {
  const LiveAttempt attempt = live_.at(attempt_id);
  Sweep& sweep = *attempt.sweep;
  Trial& trial = sweep.trials[attempt.trial];
  if (auto s = EndAttempt(attempt_id, end, reason, now_ms); !s.ok()) return s;
  if (end != AttemptEnd::kReleased) ++trial.failed_attempts;
  if (sweep.state == SweepState::kCancelled) {
    return MoveTrial(sweep, attempt.trial, TrialState::kCancelled);
  }
  if (trial.failed_attempts < options_.max_attempts) {
    return MoveTrial(sweep, attempt.trial, TrialState::kPending);
  }
  if (auto s = MoveTrial(sweep, attempt.trial, TrialState::kFailed); !s.ok()) return s;
  if (auto s = BlockDependents(sweep, attempt.trial, trial.id); !s.ok()) return s;
  return FinishIfDone(sweep, now_ms);
}

SweepStatus SqliteStore::StatusOf(const Sweep& sweep) const {
  const auto count = [&](TrialState state) { return sweep.counts[static_cast<size_t>(state)]; };
  SweepStatus status;
  status.sweep_id = sweep.id;
  status.name = sweep.name;
  status.spec_path = sweep.spec_path;
  status.state = sweep.state;
  status.created_ms = sweep.created_ms;
  status.finished_ms = sweep.finished_ms;
  status.total = static_cast<int>(sweep.trials.size());
  status.pending = count(TrialState::kPending);
  status.leased = count(TrialState::kLeased);
  status.done = count(TrialState::kDone);
  status.failed = count(TrialState::kFailed);
  status.blocked = count(TrialState::kBlocked);
  status.cancelled = count(TrialState::kCancelled);
  return status;
}

// ---------------------------------------------------------------------------
// Sweeps

absl::StatusOr<std::string> SqliteStore::SubmitSweep(const std::string& name,
                                                     const std::string& spec_text,
                                                     const std::string& spec_path, const Plan& plan,
                                                     int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  if (plan.trials.empty()) return absl::InvalidArgumentError("plan: no trials");
  const int64_t seq = sweeps_.empty() ? 1 : sweeps_.rbegin()->first + 1;
  Sweep sweep;
  sweep.seq = seq;
  const std::string hash = Sha256Hex(absl::StrCat(name, "\n", spec_text, "\n", seq));
  sweep.id = absl::StrCat("s", hash.substr(0, 12));
  sweep.name = name;
  sweep.spec_path = spec_path;
  sweep.created_ms = now_ms;
  sweep.awaiting_confirmation = !plan.confirmation_candidates.empty();
  auto added = AppendTrials(sweep, plan.trials, /*skip_known=*/false);
  if (!added.ok()) return added.status();

  auto status = Change([&]() -> absl::Status {
    if (auto s = db_->Prepare("INSERT INTO sweeps (seq, id, name, spec_text, spec_path, state, "
                              "created_ms, awaiting_confirmation) VALUES (?1, ?2, ?3, ?4, ?5, "
                              "'running', ?6, ?7)",
                              seq, sweep.id, name, spec_text, spec_path, now_ms,
                              int64_t{sweep.awaiting_confirmation})
                     .Run();
        !s.ok()) {
      return s;
    }
    if (auto s = InsertTrialRows(sweep, *added); !s.ok()) return s;
    Sweep& stored = sweeps_[seq] = std::move(sweep);
    sweep_by_id_[stored.id] = &stored;
    for (int t = 0; t < static_cast<int>(stored.trials.size()); ++t) Requeue(stored, t);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return sweeps_.at(seq).id;
}

absl::StatusOr<std::vector<const TrialSpec*>> SqliteStore::AppendTrials(
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

absl::Status SqliteStore::InsertTrialRows(const Sweep& sweep,
                                          const std::vector<const TrialSpec*>& added) {
  const size_t first = sweep.trials.size() - added.size();
  for (size_t i = 0; i < added.size(); ++i) {
    const TrialSpec& spec = *added[i];
    if (auto s = db_->Prepare("INSERT INTO trials (sweep_id, trial_id, plan_index, kind, arm, "
                              "target, seed_index, source_trial, state, spec_json) VALUES "
                              "(?1, ?2, ?3, ?4, ?5, ?6, ?7, NULLIF(?8, ''), 'pending', ?9)",
                              sweep.id, spec.id, static_cast<int64_t>(first + i),
                              TrialKindName(spec.kind), spec.arm, spec.target, spec.seed_index,
                              spec.source_trial, *sweep.trials[first + i].spec_json)
                     .Run();
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> SqliteStore::SweepsMissingTrialSpecs() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> missing;
  for (const auto& [seq, sweep] : sweeps_) {
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
      if (auto s = db_->Prepare("UPDATE trials SET spec_json = ?1 WHERE sweep_id = ?2 AND "
                                "trial_id = ?3",
                                *json, sweep.id, spec.id)
                       .Run();
          !s.ok()) {
        return s;
      }
      sweep.trials[index->second].spec_json = std::move(json);
      ++filled;
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return filled;
}

std::vector<std::string> SqliteStore::SweepsReadyForConfirmation() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> ready;
  for (const auto& [seq, sweep] : sweeps_) {
    if (sweep.state == SweepState::kRunning && sweep.awaiting_confirmation &&
        sweep.counts[static_cast<size_t>(TrialState::kPending)] == 0 &&
        sweep.counts[static_cast<size_t>(TrialState::kLeased)] == 0) {
      ready.push_back(sweep.id);
    }
  }
  return ready;
}

absl::Status SqliteStore::AddConfirmation(const std::string& sweep_id,
                                          const std::vector<TrialSpec>& trials, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  auto found = FindSweep(sweep_id);
  if (!found.ok()) return found.status();
  Sweep& sweep = **found;
  if (sweep.state != SweepState::kRunning || !sweep.awaiting_confirmation) {
    return absl::FailedPreconditionError(
        absl::StrCat("sweep ", sweep_id, " is not awaiting confirmation trials"));
  }
  // A failed write reloads the mirror from the database (Change), undoing this too.
  return Change([&]() -> absl::Status {
    auto added = AppendTrials(sweep, trials, /*skip_known=*/true);
    if (!added.ok()) return added.status();
    if (auto s = InsertTrialRows(sweep, *added); !s.ok()) return s;
    sweep.awaiting_confirmation = false;
    if (auto s = db_->Prepare("UPDATE sweeps SET awaiting_confirmation = 0 WHERE id = ?1", sweep_id)
                     .Run();
        !s.ok()) {
      return s;
    }
    for (int t = static_cast<int>(sweep.trials.size() - added->size());
         t < static_cast<int>(sweep.trials.size()); ++t) {
      const Trial& trial = sweep.trials[t];
      if (trial.source >= 0) {
        const Trial& source = sweep.trials[trial.source];
        const bool unusable =
            source.state == TrialState::kFailed || source.state == TrialState::kBlocked ||
            source.state == TrialState::kCancelled || source.outcome == TrialOutcome::kDiverged;
        if (unusable) {
          sweep.trials[t].blocked_by =
              source.state == TrialState::kBlocked ? source.blocked_by : source.id;
          if (auto s = MoveTrial(sweep, t, TrialState::kBlocked); !s.ok()) return s;
          continue;
        }
      }
      Requeue(sweep, t);
    }
    return FinishIfDone(sweep, now_ms);
  });
}

absl::Status SqliteStore::Cancel(const std::string& sweep_id, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  auto found = FindSweep(sweep_id);
  if (!found.ok()) return found.status();
  Sweep& sweep = **found;
  if (sweep.state == SweepState::kCancelled) return absl::OkStatus();
  if (sweep.state == SweepState::kDone) {
    return absl::FailedPreconditionError(absl::StrCat("sweep ", sweep_id, ": already done"));
  }
  return Change([&]() -> absl::Status {
    sweep.state = SweepState::kCancelled;
    sweep.finished_ms = now_ms;
    if (auto s = db_->Prepare("UPDATE sweeps SET state = 'cancelled', finished_ms = ?1 "
                              "WHERE id = ?2",
                              now_ms, sweep.id)
                     .Run();
        !s.ok()) {
      return s;
    }
    for (int t = 0; t < static_cast<int>(sweep.trials.size()); ++t) {
      if (sweep.trials[t].state != TrialState::kPending) continue;
      if (auto s = MoveTrial(sweep, t, TrialState::kCancelled); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<SweepStatus> SqliteStore::GetSweep(const std::string& sweep_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  auto sweep = FindSweep(sweep_id);
  if (!sweep.ok()) return sweep.status();
  return StatusOf(**sweep);
}

absl::StatusOr<std::vector<SweepStatus>> SqliteStore::ListSweeps() {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  std::vector<SweepStatus> list;
  for (const auto& [seq, sweep] : sweeps_) list.push_back(StatusOf(sweep));
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
      "WHERE sweep_id = ?1 AND state IN ('failed', 'expired') ORDER BY id",
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
      "SELECT t.trial_id, r.result_json, t.spec_json, t.blocked_by FROM trials t "
      "LEFT JOIN results r ON r.attempt_id = t.result_attempt_id WHERE t.sweep_id = ?1 AND "
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
    if (!spec.ok()) return damaged("trials.spec_json", spec.status());
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
  Query query = db_->Prepare("SELECT spec_text, spec_path FROM sweeps WHERE id = ?1", sweep_id);
  auto row = query.Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("sweep ", sweep_id, ": no such sweep"));
  return SpecText{query.Text(0), query.Text(1)};
}

// ---------------------------------------------------------------------------
// Workers and leases

absl::StatusOr<std::vector<WorkerInfo>> SqliteStore::Workers() {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  std::vector<WorkerInfo> workers;
  Query query = db_->Prepare("SELECT id, capabilities_json FROM workers ORDER BY id");
  const absl::Status read = query.ForEachRow([&]() -> absl::Status {
    auto seen = last_seen_.find(query.Text(0));
    workers.push_back({query.Text(0), query.Text(1), seen == last_seen_.end() ? 0 : seen->second});
    return absl::OkStatus();
  });
  if (!read.ok()) return read;
  return workers;
}

absl::Status SqliteStore::RegisterWorker(const std::string& worker_id,
                                         const std::string& capabilities_json, int64_t now_ms) {
  if (worker_id.empty()) return absl::InvalidArgumentError("worker_id: empty");
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  return Change([&]() -> absl::Status {
    last_seen_[worker_id] = now_ms;
    return db_
        ->Prepare(
            "INSERT INTO workers (id, capabilities_json, registered_ms, last_seen_ms) "
            "VALUES (?1, ?2, ?3, ?3) ON CONFLICT (id) DO UPDATE SET "
            "capabilities_json = excluded.capabilities_json, last_seen_ms = excluded.last_seen_ms",
            worker_id, capabilities_json, now_ms)
        .Run();
  });
}

absl::StatusOr<std::optional<Lease>> SqliteStore::LeaseNext(const std::string& worker_id,
                                                            int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  if (!last_seen_.contains(worker_id)) {
    return absl::NotFoundError(absl::StrCat("worker ", worker_id, ": not registered"));
  }
  if (queue_.empty()) return std::nullopt;
  const auto [seq, index] = *queue_.begin();
  Sweep& sweep = sweeps_.at(seq);
  const Trial& trial = sweep.trials[index];
  Lease lease;
  lease.sweep_id = sweep.id;
  lease.trial_id = trial.id;
  lease.kind = trial.kind;
  lease.attempt = trial.failed_attempts + 1;
  lease.deadline_ms = now_ms + options_.lease_ms;
  if (trial.source >= 0) lease.source_sha256 = sweep.trials[trial.source].model_sha256;
  if (trial.spec_json) lease.trial_json = *trial.spec_json;
  auto status = Change([&]() -> absl::Status {
    if (auto s =
            db_->Prepare("INSERT INTO attempts (sweep_id, trial_id, number, worker_id, "
                         "leased_ms, deadline_ms, state) VALUES "
                         "(?1, ?2, ?3, ?4, ?5, ?6, 'leased')",
                         sweep.id, trial.id, lease.attempt, worker_id, now_ms, lease.deadline_ms)
                .Run();
        !s.ok()) {
      return s;
    }
    lease.attempt_id = db_->LastInsertId();
    live_[lease.attempt_id] = {&sweep, index, worker_id, lease.deadline_ms};
    deadlines_.emplace(lease.deadline_ms, lease.attempt_id);
    if (auto s = MoveTrial(sweep, index, TrialState::kLeased); !s.ok()) return s;
    return SeeWorker(worker_id, now_ms);
  });
  if (!status.ok()) return status;
  return lease;
}

absl::StatusOr<HeartbeatVerdict> SqliteStore::Heartbeat(int64_t attempt_id, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  auto found = FindAttempt(attempt_id);
  if (!found.ok()) return found.status();
  if (*found == nullptr) return HeartbeatVerdict::kLost;
  LiveAttempt& attempt = **found;
  if (attempt.sweep->state == SweepState::kCancelled) return HeartbeatVerdict::kCancelled;
  auto status = Change([&]() -> absl::Status {
    deadlines_.erase({attempt.deadline_ms, attempt_id});
    attempt.deadline_ms = now_ms + options_.lease_ms;
    deadlines_.emplace(attempt.deadline_ms, attempt_id);
    if (auto s = db_->Prepare("UPDATE attempts SET deadline_ms = ?1 WHERE id = ?2",
                              attempt.deadline_ms, attempt_id)
                     .Run();
        !s.ok()) {
      return s;
    }
    return SeeWorker(attempt.worker_id, now_ms);
  });
  if (!status.ok()) return status;
  return HeartbeatVerdict::kContinue;
}

absl::Status SqliteStore::RecordEpoch(int64_t attempt_id, const EpochRecord& epoch,
                                      int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  auto found = FindAttempt(attempt_id);
  if (!found.ok()) return found.status();
  if (*found == nullptr) return absl::OkStatus();
  return Change([&]() -> absl::Status {
    return db_
        ->Prepare("INSERT INTO epochs (attempt_id, epoch_json, recorded_ms) VALUES (?1, ?2, ?3)",
                  attempt_id, EpochRecordToJson(epoch).dump(), now_ms)
        .Run();
  });
}

absl::StatusOr<bool> SqliteStore::Complete(int64_t attempt_id, const TrialResult& result,
                                           int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  auto found = FindAttempt(attempt_id);
  if (!found.ok()) return found.status();
  if (*found == nullptr) return false;
  Sweep& sweep = *(*found)->sweep;
  const int index = (*found)->trial;
  Trial& trial = sweep.trials[index];
  const std::string what =
      absl::StrCat("attempt ", attempt_id, " (trial ", trial.id, " of sweep ", sweep.id, "): ");
  if (result.trial_id != trial.id) {
    return absl::InvalidArgumentError(absl::StrCat(what, "result.trial_id is ", result.trial_id));
  }
  if (result.outcome != TrialOutcome::kCompleted && result.outcome != TrialOutcome::kDiverged) {
    return absl::InvalidArgumentError(absl::StrCat(what, "result.outcome is ",
                                                   TrialOutcomeName(result.outcome),
                                                   "; a worker reports completed or diverged"));
  }
  // The trials that need this model are leased with its hash.
  const bool has_model =
      trial.kind == TrialKind::kPretrain && result.outcome == TrialOutcome::kCompleted;
  if (has_model) {
    if (auto s = CheckSha256Field(absl::StrCat(what, "result.model_sha256"), result.model_sha256);
        !s.ok()) {
      return s;
    }
    Query stored = db_->Prepare("SELECT 1 FROM artifacts WHERE sha256 = ?1", result.model_sha256);
    auto row = stored.Step();
    if (!row.ok()) return row.status();
    if (!*row) {
      return absl::FailedPreconditionError(absl::StrCat(
          what, "result.model_sha256 ", result.model_sha256, " was never put; put it first"));
    }
  }
  auto status = Change([&]() -> absl::Status {
    if (auto s = EndAttempt(attempt_id, AttemptEnd::kCompleted, "", now_ms); !s.ok()) return s;
    if (auto s = db_->Prepare("INSERT INTO results (attempt_id, result_json, recorded_ms) "
                              "VALUES (?1, ?2, ?3)",
                              attempt_id, TrialResultToJson(result).dump(), now_ms)
                     .Run();
        !s.ok()) {
      return s;
    }
    trial.result_attempt = attempt_id;
    trial.outcome = result.outcome;
    if (has_model) trial.model_sha256 = result.model_sha256;
    if (auto s = MoveTrial(sweep, index, TrialState::kDone); !s.ok()) return s;
    if (result.outcome == TrialOutcome::kCompleted) {
      for (int dependent : trial.dependents) Requeue(sweep, dependent);
    } else if (auto s = BlockDependents(sweep, index, trial.id); !s.ok()) {
      return s;
    }
    return FinishIfDone(sweep, now_ms);
  });
  if (!status.ok()) return status;
  return true;
}

absl::Status SqliteStore::Fail(int64_t attempt_id, const std::string& reason, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  auto found = FindAttempt(attempt_id);
  if (!found.ok()) return found.status();
  if (*found == nullptr) return absl::OkStatus();
  return Change([&] {
    return EndUnfinished(attempt_id, AttemptEnd::kFailed, reason.empty() ? "no reason" : reason,
                         now_ms);
  });
}

absl::Status SqliteStore::Release(int64_t attempt_id, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  auto found = FindAttempt(attempt_id);
  if (!found.ok()) return found.status();
  if (*found == nullptr) return absl::OkStatus();
  return Change([&] { return EndUnfinished(attempt_id, AttemptEnd::kReleased, "", now_ms); });
}

absl::StatusOr<int> SqliteStore::ExpireLeases(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  std::vector<int64_t> expired;
  for (auto it = deadlines_.begin(); it != deadlines_.end() && it->first < now_ms; ++it) {
    expired.push_back(it->second);
  }
  if (expired.empty()) return 0;
  auto status = Change([&]() -> absl::Status {
    for (int64_t attempt_id : expired) {
      const LiveAttempt& attempt = live_.at(attempt_id);
      const std::string reason =
          absl::StrCat("lease expired: no heartbeat from worker ", attempt.worker_id,
                       " before its deadline (", attempt.deadline_ms, " ms)");
      if (auto s = EndUnfinished(attempt_id, AttemptEnd::kExpired, reason, now_ms); !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return static_cast<int>(expired.size());
}

absl::StatusOr<std::vector<int64_t>> SqliteStore::FailWorker(const std::string& worker_id,
                                                             const std::string& reason,
                                                             int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  std::vector<int64_t> held;
  for (const auto& [attempt_id, attempt] : live_) {
    if (attempt.worker_id == worker_id) held.push_back(attempt_id);
  }
  std::sort(held.begin(), held.end());
  if (held.empty()) return held;
  auto status = Change([&]() -> absl::Status {
    for (int64_t attempt_id : held) {
      if (auto s = EndUnfinished(attempt_id, AttemptEnd::kFailed,
                                 reason.empty() ? "no reason" : reason, now_ms);
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return held;
}

// ---------------------------------------------------------------------------
// Artifacts

absl::Status SqliteStore::PutArtifact(int64_t attempt_id, const std::string& sha256,
                                      const std::string& bytes, int64_t now_ms) {
  if (auto s = CheckSha256Field("sha256", sha256); !s.ok()) return s;
  // Hashed outside the lock: a model may be megabytes.
  if (const std::string actual = Sha256Hex(bytes); actual != sha256) {
    return absl::InvalidArgumentError(absl::StrCat("sha256: ", sha256, " does not match the ",
                                                   bytes.size(), " bytes sent (their SHA-256 is ",
                                                   actual, ")"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  auto found = FindAttempt(attempt_id);
  if (!found.ok()) return found.status();
  if (*found == nullptr) return absl::OkStatus();
  return Change([&]() -> absl::Status {
    return db_
        ->Prepare(
            "INSERT INTO artifacts (sha256, bytes, stored_ms) VALUES (?1, ?2, ?3) "
            "ON CONFLICT (sha256) DO NOTHING",
            sha256, Blob{bytes}, now_ms)
        .Run();
  });
}

absl::StatusOr<std::string> SqliteStore::GetArtifact(const std::string& sha256) {
  if (auto s = CheckSha256Field("sha256", sha256); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  Query query = db_->Prepare("SELECT bytes FROM artifacts WHERE sha256 = ?1", sha256);
  auto row = query.Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("artifact ", sha256, ": no such artifact"));
  return query.Bytes(0);
}

absl::StatusOr<std::string> SqliteStore::ArtifactOf(const std::string& sweep_id,
                                                    const std::string& trial_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  auto sweep = FindSweep(sweep_id);
  if (!sweep.ok()) return sweep.status();
  auto index = (*sweep)->index.find(trial_id);
  if (index == (*sweep)->index.end()) {
    return absl::NotFoundError(absl::StrCat("sweep ", sweep_id, ": no trial ", trial_id));
  }
  const Trial& trial = (*sweep)->trials[index->second];
  if (trial.model_sha256.empty()) {
    return absl::NotFoundError(absl::StrCat("trial ", trial_id, " of sweep ", sweep_id,
                                            ": no model (the trial is ",
                                            TrialStateName(trial.state), ")"));
  }
  return trial.model_sha256;
}

// WAL: readers never block the writer, and a commit appends to the log instead of
// rewriting pages. With synchronous=NORMAL a commit is not fsynced (the log is, at
// each checkpoint): a power cut may lose the last commits but never corrupts the
// file, and a crash of the process loses nothing.
absl::Status UseWal(Database& db) {
  Query journal = db.Prepare("PRAGMA journal_mode = WAL");
  auto row = journal.Step();
  if (!row.ok()) return row.status();
  const std::string mode = *row ? journal.Text(0) : "";
  if (mode != "wal") {
    return absl::FailedPreconditionError(absl::StrCat(
        db.path(), ": cannot use write-ahead logging (the journal mode stays \"", mode, "\")"));
  }
  return db.Prepare("PRAGMA synchronous = NORMAL").Run();
}

}  // namespace

const char* SweepStateName(SweepState state) {
  return kSweepStateNames[static_cast<size_t>(state)];
}

const char* TrialStateName(TrialState state) {
  return kTrialStateNames[static_cast<size_t>(state)];
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path,
                                                   const StoreOptions& options) {
  if (options.max_attempts < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_attempts: ", options.max_attempts, "; at least 1"));
  }
  if (options.lease_ms < 1) {
    return absl::InvalidArgumentError(absl::StrCat("lease_ms: ", options.lease_ms, "; at least 1"));
  }
  auto db = Database::Open(path, kBusyTimeoutMs);
  if (!db.ok()) return db.status();
  if (auto s = MigrateSchema(**db, options.migrate); !s.ok()) return s;
  if (auto s = UseWal(**db); !s.ok()) return s;
  if (auto s = (*db)->Prepare("PRAGMA foreign_keys = ON").Run(); !s.ok()) return s;
  if (options.migrate) {
    // A store that writes checkpoints in the background (WalCheckpointer).
    if (auto s = (*db)->Prepare("PRAGMA wal_autocheckpoint = 0").Run(); !s.ok()) return s;
  }
  auto store = std::make_unique<SqliteStore>(std::move(*db), options);
  if (auto s = store->Load(); !s.ok()) return s;
  if (options.migrate) {
    if (auto s = store->CheckpointInBackground(); !s.ok()) return s;
  }
  return store;
}

}  // namespace seedproof
