// The Store on SQLite, inside: the class and the helpers its three files share
// (store.cc: opening, loading, the transaction around every change;
// store_sweeps.cc; store_attempts.cc: workers, leases, artifacts). Included only by
// those files.
//
// The database is the truth; the Scheduler (scheduler.h) holds in memory what
// leasing needs (trial states, dependencies, the queue of leasable trials, the
// current attempts), so a lease is one small transaction and no query. Every
// change updates the scheduler and writes the rows of what it changed inside one
// transaction; if the transaction fails, the scheduler is reloaded from the
// database, so the two never disagree.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "coordinator/artifact_files.h"
#include "coordinator/scheduler.h"
#include "coordinator/sqlite.h"
#include "coordinator/store.h"
#include "coordinator/wal_checkpointer.h"

namespace seedproof::store_internal {

inline constexpr int kBusyTimeoutMs = 5000;
// A worker's last_seen_ms is written at most this often: a lease would otherwise
// write one more page per commit.
inline constexpr int64_t kLastSeenResolutionMs = 1000;
// The write-ahead log's size once a checkpoint has emptied it (PRAGMA journal_size_limit).
inline constexpr int64_t kWalSizeLimitBytes = int64_t{64} << 20;

// Column values read back: DATA_LOSS naming the column for a name the schema's
// CHECK constraints would not allow (the file was damaged).
absl::StatusOr<SweepState> ParseSweepState(const std::string& text);
absl::StatusOr<TrialState> ParseTrialState(const std::string& text);
absl::StatusOr<TrialKind> ParseTrialKind(const std::string& text);
absl::StatusOr<TrialOutcome> ParseOutcome(const std::string& text);

// INVALID_ARGUMENT naming field unless sha256 is 64 lowercase hex digits.
absl::Status CheckSha256Field(const std::string& field, const std::string& sha256);

// How an attempt ends. The names are the attempts table's states.
enum class AttemptEnd { kCompleted, kFailed, kExpired, kReleased };
const char* AttemptEndName(AttemptEnd end);

class SqliteStore final : public Store {
 public:
  SqliteStore(std::unique_ptr<Database> db, ArtifactFiles files, const StoreOptions& options)
      : db_(std::move(db)),
        files_(std::move(files)),
        options_(options),
        scheduler_(options.max_attempts) {}

  // Rebuilds the scheduler's state from the database.
  absl::Status Load();
  // The attempts Load found current were leased by an earlier process.
  void AdoptLoadedLeases() { scheduler_.AdoptAll(); }
  // For a store that writes: removes the artifact files a crash left behind
  // (artifact_files.h).
  absl::Status TidyArtifactFiles();

  // Checkpoints the log from a thread of its own from now on (a store that writes).
  absl::Status CheckpointInBackground() {
    auto started = WalCheckpointer::Start(db_->path(), kBusyTimeoutMs, mu_);
    if (!started.ok()) return started.status();
    checkpointer_ = std::move(*started);
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> SubmitSweep(
      const std::string& name, const std::string& spec_text, const std::string& spec_path,
      const Plan& plan, int64_t now_ms,
      const std::map<std::string, std::string>& artifacts) override;
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
  std::vector<std::string> SweepsReadyToExtend() override;
  absl::Status ExtendSweep(const std::string& sweep_id, const std::vector<TrialSpec>& trials,
                           bool more_later, int64_t now_ms) override;

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
  absl::StatusOr<int> AdoptLeases(int64_t now_ms) override;
  absl::StatusOr<std::vector<int64_t>> FailWorker(const std::string& worker_id,
                                                  const std::string& reason,
                                                  int64_t now_ms) override;

  absl::StatusOr<std::unique_ptr<ArtifactWriter>> NewArtifact() override { return files_.Write(); }
  using Store::PutArtifact;
  absl::Status PutArtifact(int64_t attempt_id, const std::string& sha256, ArtifactWriter& upload,
                           int64_t now_ms) override;
  absl::StatusOr<ArtifactReader> OpenArtifact(const std::string& sha256) override;
  absl::StatusOr<std::string> ArtifactOf(const std::string& sweep_id,
                                         const std::string& trial_id) override;

 private:
  using Sweep = Scheduler::Sweep;
  using Trial = Scheduler::Trial;
  using Attempt = Scheduler::Attempt;

  // OK unless a failed write left the memory state unrecoverable.
  absl::Status Usable() const { return broken_; }
  // Runs change in one transaction and writes the rows of what it changed in the
  // scheduler; see the file comment.
  absl::Status Change(const std::function<absl::Status()>& change);
  absl::Status WriteChanges(const Scheduler::Changes& changes);
  // Under the lock: body(attempt) for a current attempt, `gone` for one that is no
  // longer current, NOT_FOUND for an id never issued.
  template <typename T, typename Body>
  absl::StatusOr<T> AtAttempt(int64_t attempt_id, T gone, const Body& body);
  // Under the lock, Change(change) for a current attempt; OK, changing nothing,
  // for one that is no longer current; NOT_FOUND for an id never issued.
  absl::Status ChangeAttempt(int64_t attempt_id, const std::function<absl::Status()>& change);
  // The sweep, under the lock, for a usable store.
  absl::StatusOr<Sweep*> FindSweep(const std::string& sweep_id);

  // SubmitSweep under the lock, its artifacts' files named.
  absl::StatusOr<std::string> SubmitLocked(const std::string& name, const std::string& spec_text,
                                           const std::string& spec_path, const Plan& plan,
                                           int64_t now_ms,
                                           const std::vector<ArtifactWriter*>& files);
  // Keeps a trial's spec (its own table: a spec is ~2 KB, a trial's row ~200 bytes).
  absl::Status InsertSpecRow(const std::string& sweep_id, const std::string& trial_id,
                             const std::string& spec_json);
  // Writes the rows of the trials AppendTrials added (the sweep's last ones).
  absl::Status InsertTrialRows(const Sweep& sweep, const std::vector<const TrialSpec*>& added);
  // A fresh attempt id: random, unguessable, never issued before.
  absl::StatusOr<int64_t> UnusedAttemptId();
  // Records that the worker was seen now (see kLastSeenResolutionMs).
  absl::Status SeeWorker(const std::string& worker_id, int64_t now_ms);
  // Ends a current attempt's row.
  absl::Status EndAttemptRow(int64_t attempt_id, AttemptEnd end, const std::string& reason,
                             int64_t now_ms);
  // Names finished artifact files, without the lock: a rename and a sync of the
  // folder take up to 0.5 s while other uploads are written. Until Unnamed, the
  // files are not removed. Then, under the lock, a Change lists them
  // (InsertArtifact), and Unnamed removes those no row lists.
  absl::Status NameOutsideLock(const std::vector<ArtifactWriter*>& files);
  void Unnamed(const std::vector<ArtifactWriter*>& files);
  // Whether a row lists the artifact.
  absl::StatusOr<bool> Listed(const std::string& sha256);
  // Lists a named artifact file (once: the same bytes again change nothing)
  // within max_artifact_bytes; `what` names it in errors. Inside a Change.
  absl::Status InsertArtifact(const std::string& what, const ArtifactWriter& file, int64_t now_ms);
  // Under the lock: the file of an artifact the attempt put; nullopt if it put none
  // of that hash.
  absl::StatusOr<std::optional<ArtifactReader>> UploadOf(int64_t attempt_id,
                                                         const std::string& sha256);
  // Deletes what the attempt uploaded and nothing else refers to.
  absl::Status CollectUploads(int64_t attempt_id);
  // Ends a current attempt that did not complete (row and scheduler).
  absl::Status EndUnfinished(int64_t attempt_id, AttemptEnd end, const std::string& reason,
                             int64_t now_ms);

  std::mutex mu_;
  std::unique_ptr<Database> db_;
  const ArtifactFiles files_;
  // Artifact files named outside the lock and not yet listed, by hash, with how
  // many puts named each: nothing removes them meanwhile.
  std::map<std::string, int> naming_;
  // Artifacts whose rows the change in progress deleted: their files are removed
  // once it commits (artifact_files.h).
  std::vector<std::string> unlisted_in_change_;
  const StoreOptions options_;
  absl::Status broken_;
  Scheduler scheduler_;
  std::unordered_map<std::string, int64_t> last_seen_;  // registered workers
  int64_t artifact_bytes_ = 0;                          // all artifacts' bytes
  std::random_device random_;                           // attempt ids (UnusedAttemptId)
  std::unique_ptr<WalCheckpointer> checkpointer_;       // last: stops first
};

template <typename T, typename Body>
absl::StatusOr<T> SqliteStore::AtAttempt(int64_t attempt_id, T gone, const Body& body) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  if (Attempt* attempt = scheduler_.FindAttempt(attempt_id)) return body(*attempt);
  Query query = db_->Prepare("SELECT 1 FROM attempts WHERE id = ?1", attempt_id);
  auto row = query.Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("attempt ", attempt_id, ": no such attempt"));
  return gone;
}

}  // namespace seedproof::store_internal
