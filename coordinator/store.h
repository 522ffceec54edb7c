// The coordinator's durable state: sweeps, their trials and the attempts to run
// them, accepted results, workers and model artifacts, in one SQLite file (WAL)
// and, for the artifacts' bytes, a folder beside it (artifact_files.h).
//
//   auto store = Store::Open("coordinator.db");
//   auto sweep = (*store)->SubmitSweep(spec.name, text, path, plan, now);
//   (*store)->RegisterWorker("w1", capabilities_json, now);
//   auto lease = (*store)->LeaseNext("w1", now);   // a trial whose source model exists,
//                                                  // with its whole spec (trial_json)
//   (*store)->Heartbeat(lease->attempt_id, now);   // renews; kCancelled, kLost: stop
//   (*store)->Complete(lease->attempt_id, result, now);
//
// A trial's life:
//
//   pending --lease--> leased --complete--> done (completed or diverged)
//      ^                  |
//      +--fail, expire ---+--> failed, at the max_attempts-th failed or expired attempt
//         or release          (a release is not counted)
//
//   pending --> blocked    its source failed or diverged (transitively)
//   pending --> cancelled  its sweep was cancelled; so does a leased trial whose
//                          attempt then fails, expires or is released
//
// A sweep is running until every trial is done, failed, blocked or cancelled (and,
// with confirmation seeds or sequential seeds, the later trials are added: ExtendSweep), then
// done; or cancelled. Only a pending trial of a running sweep whose source trial
// (if any) completed is leased: the oldest sweep's first such trial in plan order.
//
// An attempt is current from its lease until it completes, fails, is released or
// ExpireLeases finds it past its deadline. A call naming an attempt that is no
// longer current changes nothing (Complete returns false, Heartbeat kLost); an
// attempt id the store never issued is NOT_FOUND.
//
// Every call commits its change before it returns. The in-memory queue of leasable
// trials is rebuilt from the database on Open, so after a crash nothing is lost:
// leases issued before it stay current (AdoptLeases); done trials stay done.
// All times are milliseconds the caller passes in. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/artifact_files.h"
#include "experiments/sweep.h"
#include "experiments/trial_result.h"

namespace seedproof {

struct StoreOptions {
  int max_attempts = 3;      // failed or expired attempts after which a trial has failed
  int64_t lease_ms = 30000;  // a lease's deadline after its lease or last heartbeat
  // All artifacts together (models, shipped datasets): a put or a submission
  // that would store more is RESOURCE_EXHAUSTED.
  int64_t max_artifact_bytes = int64_t{64} << 30;
  // Worker ids the store keeps (every id ever registered: a worker's row stays
  // with its attempts); registering one more is RESOURCE_EXHAUSTED.
  int64_t max_workers = 100000;
  // Create or upgrade the schema. false (readers such as `seedproof report`): an
  // older or empty database is FAILED_PRECONDITION and stays as it was.
  bool migrate = true;
};

enum class SweepState { kRunning, kCancelled, kDone };
enum class TrialState { kPending, kLeased, kDone, kFailed, kBlocked, kCancelled };
// "running", "cancelled", "done"; "pending", "leased", "done", "failed", "blocked",
// "cancelled": the words the database and the wire use.
const char* SweepStateName(SweepState state);
const char* TrialStateName(TrialState state);

struct SweepStatus {
  std::string sweep_id;
  std::string name;
  std::string spec_path;
  SweepState state = SweepState::kRunning;
  int64_t created_ms = 0;
  int64_t finished_ms = 0;  // when it became done or was cancelled; 0 while running
  // Trials by state; done counts completed and diverged trials.
  int total = 0, pending = 0, leased = 0, done = 0, failed = 0, blocked = 0, cancelled = 0;
};

struct TrialStatus {
  std::string trial_id;
  int plan_index = 0;  // position in the sweep's Plan::trials
  TrialKind kind = TrialKind::kPretrain;
  std::string arm, target;
  int seed_index = 0;
  std::string source_trial;  // "" when it needs no other trial's model
  TrialState state = TrialState::kPending;
  int failed_attempts = 0;              // failed or expired, not released
  std::vector<std::string> failures;    // one per failed or expired attempt, oldest first:
                                        // "attempt 1 (worker w3): REASON"
  std::optional<TrialOutcome> outcome;  // done: kCompleted or kDiverged
  std::string blocked_by;               // blocked: the trial that failed or diverged
  std::string model_sha256;             // a completed pretrain trial's model
};

struct Lease {
  std::string sweep_id, trial_id;
  TrialKind kind = TrialKind::kPretrain;
  int64_t attempt_id = 0;  // names this attempt in every later call
  int attempt = 1;         // 1-based: the trial's failed or expired attempts + 1
  int64_t deadline_ms = 0;
  std::string source_sha256;  // the model of the trial's source trial; "" when none
  // The trial's TrialSpec as JSON (experiments/trial_json.h), as SubmitSweep or
  // ExtendSweep stored it; "" for a trial stored before the store kept specs
  // and not yet filled in (FillTrialSpecs).
  std::string trial_json;
};

// What a heartbeat tells the worker.
enum class HeartbeatVerdict {
  kContinue,   // the lease is renewed
  kCancelled,  // the sweep was cancelled: stop and Release
  kLost,       // the attempt is no longer current (expired, or superseded): stop
};

// A registered worker.
struct WorkerInfo {
  std::string worker_id;
  std::string capabilities_json;  // as it registered
  int64_t last_seen_ms = 0;       // registration, lease or heartbeat
};

// Whether Store::Results lists the trials that never ran because their source failed.
enum class BlockedTrials { kLeftOut, kIncluded };

// A sweep's spec as it was submitted.
struct SpecText {
  std::string text;
  std::string path;  // for messages
  // The datasets its trials read, with their content hashes, and the model it
  // imported, as JSON (StudyInputsToJsonText); "" for a sweep submitted before the
  // store kept them.
  std::string datasets_json;
};

class Store {
 public:
  // Opens or creates the database at path and migrates an older schema.
  // FAILED_PRECONDITION naming the file when it is not an SQLite database, is
  // another program's, or has a newer schema than this code (both versions named);
  // INVALID_ARGUMENT for options out of range.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path,
                                                     const StoreOptions& options = {});
  virtual ~Store() = default;

  // ---- Sweeps ----

  // Stores the sweep and one pending trial per plan trial, with its dependency on
  // source_trial, and returns the sweep's id: "s" and the first 12 hex digits of
  // SHA-256(name, spec_text, the submission's sequence number), so resubmitting a
  // spec makes a new sweep. INVALID_ARGUMENT naming the trial for an empty plan, a
  // trial id that appears twice, or a source_trial that is not an earlier trial.
  // The sweep keeps plan.datasets (SpecText::datasets_json). `artifacts` (by their
  // SHA-256, checked) are stored in the same transaction: the encodings of the
  // datasets the coordinator ships to workers.
  virtual absl::StatusOr<std::string> SubmitSweep(
      const std::string& name, const std::string& spec_text, const std::string& spec_path,
      const Plan& plan, int64_t now_ms,
      const std::map<std::string, std::string>& artifacts = {}) = 0;
  // Stops leasing the sweep's trials: pending ones become cancelled; leased ones
  // run on (their heartbeats say kCancelled) and a result they complete is kept.
  // Cancelling a cancelled sweep does nothing; a done one is FAILED_PRECONDITION.
  virtual absl::Status Cancel(const std::string& sweep_id, int64_t now_ms) = 0;
  // NOT_FOUND for an unknown sweep id, here and in every call taking one.
  virtual absl::StatusOr<SweepStatus> GetSweep(const std::string& sweep_id) = 0;
  // Every sweep, oldest first.
  virtual absl::StatusOr<std::vector<SweepStatus>> ListSweeps() = 0;
  // The sweep's trials in plan order.
  virtual absl::StatusOr<std::vector<TrialStatus>> Trials(const std::string& sweep_id) = 0;
  // The accepted results in plan order; with BlockedTrials::kIncluded also, in
  // its place, a kBlocked result for each blocked trial (BlockedResultFor its
  // stored spec), as a results file lists them. DATA_LOSS naming the trial for a
  // stored result or spec that does not parse.
  virtual absl::StatusOr<std::vector<TrialResult>> Results(const std::string& sweep_id,
                                                           BlockedTrials blocked) = 0;
  virtual absl::StatusOr<SpecText> SweepSpecText(const std::string& sweep_id) = 0;
  // Sweeps with a trial whose spec the store does not have (stored before it kept
  // them), oldest first.
  virtual std::vector<std::string> SweepsMissingTrialSpecs() = 0;
  // Keeps, for each trial of the sweep that has no spec, the spec of that id in
  // trials (the sweep's spec expanded again); others are left as they are.
  // Returns how many were filled in.
  virtual absl::StatusOr<int> FillTrialSpecs(const std::string& sweep_id,
                                             const std::vector<TrialSpec>& trials) = 0;

  // ---- Later trials: confirmation seeds, sequential steps ----
  //
  // A sweep submitted with plan.later_candidates is awaiting later trials: it
  // stays running when its trials have all ended, until ExtendSweep adds the last
  // of them (coordinator/later_trials.h decides which).

  // Running sweeps awaiting later trials whose trials have all ended.
  virtual std::vector<std::string> SweepsReadyToExtend() = 0;
  // Appends the trials (of the sweep's later candidates) to the sweep in one
  // transaction; it waits for more only with more_later (and when something was
  // added), else with no trials it is done. A trial whose source failed, diverged
  // or was blocked is blocked at once. FAILED_PRECONDITION when the sweep is not
  // awaiting later trials (another call came first); INVALID_ARGUMENT as
  // SubmitSweep for a bad trial.
  virtual absl::Status ExtendSweep(const std::string& sweep_id,
                                   const std::vector<TrialSpec>& trials, bool more_later,
                                   int64_t now_ms) = 0;

  // ---- Workers and leases ----

  // Records a worker (again: its capabilities are replaced). A worker leases only
  // after registering. A new id past max_workers is RESOURCE_EXHAUSTED.
  virtual absl::Status RegisterWorker(const std::string& worker_id,
                                      const std::string& capabilities_json, int64_t now_ms) = 0;
  // Every registered worker, by id.
  virtual absl::StatusOr<std::vector<WorkerInfo>> Workers() = 0;
  // The next leasable trial, or nullopt when there is none now. NOT_FOUND for a
  // worker that never registered.
  virtual absl::StatusOr<std::optional<Lease>> LeaseNext(const std::string& worker_id,
                                                         int64_t now_ms) = 0;
  // Renews a current attempt's deadline to now + lease_ms, unless its sweep was
  // cancelled.
  virtual absl::StatusOr<HeartbeatVerdict> Heartbeat(int64_t attempt_id, int64_t now_ms) = 0;
  // Keeps one epoch's metrics of a current attempt.
  virtual absl::Status RecordEpoch(int64_t attempt_id, const EpochRecord& epoch,
                                   int64_t now_ms) = 0;
  // Accepts a current attempt's result, once: true when accepted, false when the
  // attempt is no longer current (a late or duplicate completion; nothing changes).
  // The result is stored as its JSON (experiments/results.h). A diverged trial
  // blocks the trials that need its model, transitively.
  // INVALID_ARGUMENT when the result is for another trial or is kBlocked; a
  // completed pretrain trial's result.model_sha256 must name an artifact already
  // put (FAILED_PRECONDITION otherwise; the attempt stays current).
  virtual absl::StatusOr<bool> Complete(int64_t attempt_id, const TrialResult& result,
                                        int64_t now_ms) = 0;
  // A current attempt failed: its trial is pending again, or after max_attempts
  // failed or expired attempts failed, with every reason kept (Trials; each cut
  // to kMaxReasonBytes, proto/wire_limits.h) and the
  // trials that need its model blocked.
  virtual absl::Status Fail(int64_t attempt_id, const std::string& reason, int64_t now_ms) = 0;
  // A worker gives a current lease back (shutting down): its trial is pending
  // again, and the attempt does not count towards max_attempts.
  virtual absl::Status Release(int64_t attempt_id, int64_t now_ms) = 0;
  // Ends every current attempt whose deadline is before now as Fail does, with
  // the expiry as its reason; an adopted one (AdoptLeases) that was not renewed
  // since is released instead: the coordinator's restart interrupted it, so it
  // does not count towards max_attempts. Returns how many ended.
  virtual absl::StatusOr<int> ExpireLeases(int64_t now_ms) = 0;
  // The attempts current when this store was opened were leased by an earlier
  // process: each gets the deadline now + lease_ms, time for its worker to find
  // the coordinator again, and is adopted until its next heartbeat. Returns how many.
  virtual absl::StatusOr<int> AdoptLeases(int64_t now_ms) = 0;
  // The worker is known to be gone (its process died): ends each of its current
  // attempts as Fail does, with reason, without waiting for their deadlines.
  // Returns their ids; none when it held none (or never registered).
  virtual absl::StatusOr<std::vector<int64_t>> FailWorker(const std::string& worker_id,
                                                          const std::string& reason,
                                                          int64_t now_ms) = 0;

  // ---- Artifacts ----
  //
  // Their bytes are files beside the database (coordinator/artifact_files.h): an
  // upload is written and hashed without the store's lock, which is held only to
  // record it, and a download reads its file without the lock.

  // A file to write an upload into, for PutArtifact.
  virtual absl::StatusOr<std::unique_ptr<ArtifactWriter>> NewArtifact() = 0;
  // Stores what upload holds under its SHA-256 for a current attempt. FAILED_PRECONDITION
  // naming how it ended for an attempt no longer current; INVALID_ARGUMENT when
  // sha256 is not 64 lowercase hex digits or is not the SHA-256 of the bytes;
  // RESOURCE_EXHAUSTED past max_artifact_bytes. Either way nothing is stored.
  // What an attempt put is deleted when it ends without completing, unless a
  // trial's model, a sweep's input or another attempt's upload has the same bytes.
  virtual absl::Status PutArtifact(int64_t attempt_id, const std::string& sha256,
                                   ArtifactWriter& upload, int64_t now_ms) = 0;
  // The same for bytes in memory.
  absl::Status PutArtifact(int64_t attempt_id, const std::string& sha256, const std::string& bytes,
                           int64_t now_ms);
  // The artifact's file, open: readable to its end even if the store deletes it
  // meanwhile. NOT_FOUND when no artifact has that hash; INVALID_ARGUMENT for a
  // malformed one.
  virtual absl::StatusOr<ArtifactReader> OpenArtifact(const std::string& sha256) = 0;
  // Its bytes, errors as OpenArtifact.
  absl::StatusOr<std::string> GetArtifact(const std::string& sha256);
  // The model a completed pretrain trial produced; NOT_FOUND when it has none.
  virtual absl::StatusOr<std::string> ArtifactOf(const std::string& sweep_id,
                                                 const std::string& trial_id) = 0;
};

}  // namespace seedproof
