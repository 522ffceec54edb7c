// The Store on SQLite: opening and loading, and the transaction around every
// change (sqlite_store.h says how memory and the database stay in step).
#include "coordinator/store.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/schema.h"
#include "coordinator/sqlite_store.h"
#include "experiments/enum_names.h"

namespace seedproof {
namespace store_internal {
namespace {

constexpr std::pair<SweepState, const char*> kSweepStateNames[] = {
    {SweepState::kRunning, "running"},
    {SweepState::kCancelled, "cancelled"},
    {SweepState::kDone, "done"},
};
constexpr std::pair<TrialState, const char*> kTrialStateNames[] = {
    {TrialState::kPending, "pending"}, {TrialState::kLeased, "leased"},
    {TrialState::kDone, "done"},       {TrialState::kFailed, "failed"},
    {TrialState::kBlocked, "blocked"}, {TrialState::kCancelled, "cancelled"},
};
static_assert(std::size(kTrialStateNames) == kTrialStateCount);

// A column's value read back. The schema's CHECK constraints allow only known
// names, so anything else means the file was damaged.
template <typename Enum>
absl::StatusOr<Enum> Stored(std::optional<Enum> value, const std::string& text,
                            const char* column) {
  if (value) return *value;
  return absl::DataLossError(absl::StrCat(column, ": unknown value \"", text, "\""));
}

}  // namespace

absl::StatusOr<SweepState> ParseSweepState(const std::string& text) {
  return Stored(ValueNamed(kSweepStateNames, text), text, "sweeps.state");
}
absl::StatusOr<TrialState> ParseTrialState(const std::string& text) {
  return Stored(ValueNamed(kTrialStateNames, text), text, "trials.state");
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

absl::Status CheckSha256Field(const std::string& field, const std::string& sha256) {
  if (IsSha256Hex(sha256)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": \"", sha256, "\" is not a SHA-256 (64 lowercase hex digits)"));
}

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

// ---------------------------------------------------------------------------
// Memory and rows

absl::Status SqliteStore::Load() {
  scheduler_.Clear();
  last_seen_.clear();
  const auto damaged = [&](const auto& message) {
    return absl::DataLossError(absl::StrCat(db_->path(), ": ", message));
  };

  std::map<std::string, Sweep> sweeps;  // by id
  Query sweep_rows = db_->Prepare(
      "SELECT seq, id, name, spec_path, state, created_ms, IFNULL(finished_ms, 0), "
      "awaiting_confirmation FROM sweeps");
  const absl::Status sweeps_read = sweep_rows.ForEachRow([&]() -> absl::Status {
    auto state = ParseSweepState(sweep_rows.Text(4));
    if (!state.ok()) return damaged(state.status().message());
    Sweep& sweep = sweeps[sweep_rows.Text(1)];
    sweep.seq = sweep_rows.Int(0);
    sweep.id = sweep_rows.Text(1);
    sweep.name = sweep_rows.Text(2);
    sweep.spec_path = sweep_rows.Text(3);
    sweep.state = *state;
    sweep.created_ms = sweep_rows.Int(5);
    sweep.finished_ms = sweep_rows.Int(6);
    sweep.awaiting_trials = sweep_rows.Int(7) != 0;
    return absl::OkStatus();
  });
  if (!sweeps_read.ok()) return sweeps_read;

  // Plan order within each sweep; a trial's source always comes before it.
  Query trials = db_->Prepare(
      "SELECT sweep_id, trial_id, plan_index, kind, source_trial, state, failed_attempts, "
      "outcome, blocked_by, model_sha256, IFNULL(result_attempt_id, 0), s.spec_json FROM trials "
      "LEFT JOIN trial_specs s USING (sweep_id, trial_id) ORDER BY sweep_id, plan_index");
  const absl::Status trials_read = trials.ForEachRow([&]() -> absl::Status {
    const std::string trial_id = trials.Text(1);
    auto sweep = sweeps.find(trials.Text(0));
    if (sweep == sweeps.end() ||
        trials.Int(2) != static_cast<int64_t>(sweep->second.trials.size())) {
      return damaged(absl::StrCat("trial ", trial_id, " of sweep ", trials.Text(0),
                                  " is out of its sweep's plan"));
    }
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
    const std::string source = trials.IsNull(4) ? "" : trials.Text(4);
    if (!Scheduler::AppendStored(sweep->second, std::move(trial), source)) {
      return damaged(absl::StrCat("trial ", trial_id, " of sweep ", sweep->first, ": source trial ",
                                  source, " is not an earlier trial of the sweep"));
    }
    return absl::OkStatus();
  });
  if (!trials_read.ok()) return trials_read;
  for (auto& [id, sweep] : sweeps) scheduler_.AddSweep(std::move(sweep));

  Query attempts = db_->Prepare(
      "SELECT id, sweep_id, trial_id, worker_id, deadline_ms FROM attempts "
      "WHERE state = 'leased'");
  const absl::Status attempts_read = attempts.ForEachRow([&]() -> absl::Status {
    auto sweep = scheduler_.FindSweep(attempts.Text(1));
    if (!sweep.ok() || !(*sweep)->index.contains(attempts.Text(2))) {
      return damaged(absl::StrCat("attempt ", attempts.Int(0), " is for trial ", attempts.Text(2),
                                  " of sweep ", attempts.Text(1), ", which is not stored"));
    }
    scheduler_.AddAttempt(attempts.Int(0), **sweep, (*sweep)->index.at(attempts.Text(2)),
                          attempts.Text(3), attempts.Int(4));
    return absl::OkStatus();
  });
  if (!attempts_read.ok()) return attempts_read;

  Query artifact_bytes = db_->Prepare("SELECT IFNULL(sum(size), 0) FROM artifacts");
  auto counted = artifact_bytes.Step();
  if (!counted.ok()) return counted.status();
  artifact_bytes_ = *counted ? artifact_bytes.Int(0) : 0;

  Query workers = db_->Prepare("SELECT id, last_seen_ms FROM workers");
  const absl::Status workers_read = workers.ForEachRow([&]() -> absl::Status {
    last_seen_[workers.Text(0)] = workers.Int(1);
    return absl::OkStatus();
  });
  if (!workers_read.ok()) return workers_read;
  return absl::OkStatus();
}

absl::Status SqliteStore::TidyArtifactFiles() {
  if (auto s = files_.CreateDir(); !s.ok()) return s;
  if (auto s = files_.ClearIncoming(); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> listed;
  Query artifacts = db_->Prepare("SELECT sha256 FROM artifacts");
  if (auto s = artifacts.ForEachRow([&]() -> absl::Status {
        listed.insert(artifacts.Text(0));
        return absl::OkStatus();
      });
      !s.ok()) {
    return s;
  }
  return files_.RemoveUnlisted([&](const std::string& sha256) { return listed.contains(sha256); })
      .status();
}

absl::Status SqliteStore::Change(const std::function<absl::Status()>& change) {
  scheduler_.TakeChanges();  // nothing is left over from a read
  unlisted_in_change_.clear();
  absl::Status status = db_->Transaction([&]() -> absl::Status {
    if (auto s = change(); !s.ok()) return s;
    return WriteChanges(scheduler_.TakeChanges());
  });
  // A file goes only once no committed row lists it (artifact_files.h), and not
  // while a put that named it again is on its way. A commit is not synced
  // (synchronous = NORMAL), so the log is first: after a power cut the deleted
  // row must not come back without its file. What cannot be removed now is left
  // for TidyArtifactFiles.
  if (status.ok() && !unlisted_in_change_.empty() && SyncFile(db_->path() + "-wal").ok()) {
    for (const std::string& sha256 : unlisted_in_change_) {
      if (!naming_.contains(sha256)) files_.Remove(sha256).IgnoreError();
    }
  }
  if (!status.ok()) {
    if (auto reload = Load(); !reload.ok()) {
      broken_ = absl::UnavailableError(absl::StrCat(
          db_->path(), ": after a failed write (", status.message(),
          ") the store could not reload its state (", reload.message(), "); open the store again"));
    }
  }
  return status;
}

absl::Status SqliteStore::WriteChanges(const Scheduler::Changes& changes) {
  for (const auto& [sweep, index] : changes.trials) {
    const Trial& trial = sweep->trials[index];
    if (auto s =
            db_->Prepare("UPDATE trials SET state = ?1, failed_attempts = ?2, "
                         "outcome = NULLIF(?3, ''), blocked_by = NULLIF(?4, ''), "
                         "model_sha256 = NULLIF(?5, ''), result_attempt_id = NULLIF(?6, 0) "
                         "WHERE sweep_id = ?7 AND trial_id = ?8",
                         TrialStateName(trial.state), trial.failed_attempts,
                         trial.outcome ? TrialOutcomeName(*trial.outcome) : "", trial.blocked_by,
                         trial.model_sha256, trial.result_attempt, sweep->id, trial.id)
                .Run();
        !s.ok()) {
      return s;
    }
  }
  for (const Sweep* sweep : changes.sweeps) {
    if (auto s = db_->Prepare("UPDATE sweeps SET state = ?1, finished_ms = NULLIF(?2, 0), "
                              "awaiting_confirmation = ?3 WHERE id = ?4",
                              SweepStateName(sweep->state), sweep->finished_ms,
                              int64_t{sweep->awaiting_trials}, sweep->id)
                     .Run();
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::ChangeAttempt(int64_t attempt_id,
                                        const std::function<absl::Status()>& change) {
  return AtAttempt(attempt_id, true,
                   [&](const Attempt&) -> absl::StatusOr<bool> {
                     if (auto s = Change(change); !s.ok()) return s;
                     return true;
                   })
      .status();
}

absl::StatusOr<SqliteStore::Sweep*> SqliteStore::FindSweep(const std::string& sweep_id) {
  if (auto s = Usable(); !s.ok()) return s;
  return scheduler_.FindSweep(sweep_id);
}

absl::Status SqliteStore::SeeWorker(const std::string& worker_id, int64_t now_ms) {
  int64_t& last_seen = last_seen_.at(worker_id);
  if (now_ms - last_seen < kLastSeenResolutionMs) return absl::OkStatus();
  last_seen = now_ms;
  return db_->Prepare("UPDATE workers SET last_seen_ms = ?1 WHERE id = ?2", now_ms, worker_id)
      .Run();
}

absl::Status SqliteStore::EndAttemptRow(int64_t attempt_id, AttemptEnd end,
                                        const std::string& reason, int64_t now_ms) {
  return db_
      ->Prepare(
          "UPDATE attempts SET state = ?1, ended_ms = ?2, reason = NULLIF(?3, '') "
          "WHERE id = ?4",
          AttemptEndName(end), now_ms, reason, attempt_id)
      .Run();
}

absl::Status SqliteStore::EndUnfinished(int64_t attempt_id, AttemptEnd end,
                                        const std::string& reason, int64_t now_ms) {
  if (auto s = EndAttemptRow(attempt_id, end, reason, now_ms); !s.ok()) return s;
  if (auto s = CollectUploads(attempt_id); !s.ok()) return s;
  scheduler_.EndUnfinished(attempt_id, /*counted=*/end != AttemptEnd::kReleased, now_ms);
  return absl::OkStatus();
}

absl::Status SqliteStore::NameOutsideLock(const std::vector<ArtifactWriter*>& files) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const ArtifactWriter* file : files) ++naming_[file->sha256()];
  }
  for (ArtifactWriter* file : files) {
    if (auto s = files_.Name(*file); !s.ok()) return s;
  }
  return absl::OkStatus();
}

void SqliteStore::Unnamed(const std::vector<ArtifactWriter*>& files) {
  for (const ArtifactWriter* file : files) {
    const std::string& sha256 = file->sha256();
    if (--naming_[sha256] > 0) continue;
    naming_.erase(sha256);
    // Refused, or the transaction failed: no row lists the file, and no other put
    // is naming it.
    if (auto listed = Listed(sha256); listed.ok() && !*listed) files_.Remove(sha256).IgnoreError();
  }
}

absl::StatusOr<bool> SqliteStore::Listed(const std::string& sha256) {
  Query listed = db_->Prepare("SELECT 1 FROM artifacts WHERE sha256 = ?1", sha256);
  auto row = listed.Step();
  if (!row.ok()) return row.status();
  return *row;
}

absl::Status SqliteStore::InsertArtifact(const std::string& what, const ArtifactWriter& file,
                                         int64_t now_ms) {
  const std::string& sha256 = file.sha256();
  auto listed = Listed(sha256);
  if (!listed.ok()) return listed.status();
  if (*listed) return absl::OkStatus();
  const int64_t size = file.size();
  if (artifact_bytes_ + size > options_.max_artifact_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, ": its ", size, " bytes would take the store's artifacts to ", artifact_bytes_ + size,
        " bytes, past its limit of ", options_.max_artifact_bytes));
  }
  if (auto s = db_->Prepare("INSERT INTO artifacts (sha256, size, stored_ms) VALUES (?1, ?2, ?3)",
                            sha256, size, now_ms)
                   .Run();
      !s.ok()) {
    return s;
  }
  artifact_bytes_ += size;  // Load counts again after a failed transaction
  return absl::OkStatus();
}

absl::Status SqliteStore::CollectUploads(int64_t attempt_id) {
  std::vector<std::string> uploaded;
  Query uploads = db_->Prepare("SELECT sha256 FROM uploads WHERE attempt_id = ?1", attempt_id);
  if (auto s = uploads.ForEachRow([&]() -> absl::Status {
        uploaded.push_back(uploads.Text(0));
        return absl::OkStatus();
      });
      !s.ok()) {
    return s;
  }
  if (uploaded.empty()) return absl::OkStatus();
  if (auto s = db_->Prepare("DELETE FROM uploads WHERE attempt_id = ?1", attempt_id).Run();
      !s.ok()) {
    return s;
  }
  for (const std::string& sha256 : uploaded) {
    // A sweep names its inputs' hashes in datasets_json; a hash is 64 hex digits,
    // so finding it in that text is finding the input.
    Query used = db_->Prepare(
        "SELECT EXISTS (SELECT 1 FROM uploads WHERE sha256 = ?1) "
        "OR EXISTS (SELECT 1 FROM trials WHERE model_sha256 = ?1) "
        "OR EXISTS (SELECT 1 FROM sweeps WHERE instr(datasets_json, ?1) > 0), "
        "(SELECT size FROM artifacts WHERE sha256 = ?1)",
        sha256);
    auto row = used.Step();
    if (!row.ok()) return row.status();
    if (!*row || used.Int(0) != 0 || used.IsNull(1)) continue;
    const int64_t size = used.Int(1);
    if (auto s = db_->Prepare("DELETE FROM artifacts WHERE sha256 = ?1", sha256).Run(); !s.ok()) {
      return s;
    }
    artifact_bytes_ -= size;
    unlisted_in_change_.push_back(sha256);
  }
  return absl::OkStatus();
}

namespace {

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

// Schema 6 -> 7: the artifacts' bytes leave the database for files (artifact_files.h),
// written before the migration's script drops their column, in its transaction.
absl::Status MoveArtifactsToFiles(Database& db, const ArtifactFiles& files) {
  if (auto s = files.CreateDir(); !s.ok()) return s;
  Query blobs = db.Prepare("SELECT sha256, bytes FROM artifacts");
  return blobs.ForEachRow([&]() -> absl::Status {
    const std::string listed = blobs.Text(0);
    auto file = files.WriteAll(blobs.Bytes(1));
    if (!file.ok()) return file.status();
    if ((*file)->sha256() != listed) {
      return absl::DataLossError(absl::StrCat(db.path(), ": artifact ", listed,
                                              " holds bytes whose SHA-256 is ", (*file)->sha256()));
    }
    return files.Name(**file);
  });
}

}  // namespace
}  // namespace store_internal

using store_internal::kBusyTimeoutMs;
using store_internal::kSweepStateNames;
using store_internal::kTrialStateNames;
using store_internal::kWalSizeLimitBytes;
using store_internal::MoveArtifactsToFiles;
using store_internal::SqliteStore;
using store_internal::UseWal;

const char* SweepStateName(SweepState state) { return NameIn(kSweepStateNames, state); }

const char* TrialStateName(TrialState state) { return NameIn(kTrialStateNames, state); }

absl::Status Store::PutArtifact(int64_t attempt_id, const std::string& sha256,
                                const std::string& bytes, int64_t now_ms) {
  auto file = NewArtifact();
  if (!file.ok()) return file.status();
  if (auto s = (*file)->Append(bytes); !s.ok()) return s;
  return PutArtifact(attempt_id, sha256, **file, now_ms);  // finishes it
}

absl::StatusOr<std::string> Store::GetArtifact(const std::string& sha256) {
  auto file = OpenArtifact(sha256);
  if (!file.ok()) return file.status();
  return file->ReadAll();
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
  if (options.max_artifact_bytes < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_artifact_bytes: ", options.max_artifact_bytes, "; at least 1"));
  }
  if (options.max_workers < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_workers: ", options.max_workers, "; at least 1"));
  }
  auto db = Database::Open(path, kBusyTimeoutMs);
  if (!db.ok()) return db.status();
  ArtifactFiles files(ArtifactFiles::DirFor(path));
  if (auto s = MigrateSchema(**db, options.migrate,
                             [&](int64_t from) {
                               return from == 6 ? MoveArtifactsToFiles(**db, files)
                                                : absl::OkStatus();
                             });
      !s.ok()) {
    return s;
  }
  if (auto s = UseWal(**db); !s.ok()) return s;
  if (auto s = (*db)->Prepare("PRAGMA foreign_keys = ON").Run(); !s.ok()) return s;
  if (options.migrate) {
    // A store that writes checkpoints in the background (WalCheckpointer).
    if (auto s = (*db)->Prepare("PRAGMA wal_autocheckpoint = 0").Run(); !s.ok()) return s;
    // Once a checkpoint has copied the whole log, the next commit starts it over
    // and cuts the file to this size: one big submission does not leave a log
    // of its size behind for good.
    if (auto s =
            (*db)->Prepare(absl::StrCat("PRAGMA journal_size_limit = ", kWalSizeLimitBytes)).Run();
        !s.ok()) {
      return s;
    }
  }
  auto store = std::make_unique<SqliteStore>(std::move(*db), std::move(files), options);
  if (auto s = store->Load(); !s.ok()) return s;
  store->AdoptLoadedLeases();
  if (options.migrate) {
    if (auto s = store->TidyArtifactFiles(); !s.ok()) return s;
    if (auto s = store->CheckpointInBackground(); !s.ok()) return s;
  }
  return store;
}

}  // namespace seedproof
