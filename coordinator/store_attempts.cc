// The Store on SQLite: workers, leases and the attempts they start, artifacts.
#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backends/model_file.h"
#include "coordinator/sqlite_store.h"
#include "experiments/fingerprint.h"
#include "experiments/results.h"
#include "experiments/trial_json.h"
#include "nlohmann/json.hpp"
#include "proto/wire_limits.h"

namespace seedproof::store_internal {

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
  if (!last_seen_.contains(worker_id) &&
      static_cast<int64_t>(last_seen_.size()) >= options_.max_workers) {
    return absl::ResourceExhaustedError(
        absl::StrCat("worker ", worker_id.substr(0, 80), ": ", last_seen_.size(),
                     " workers are registered, the most this store keeps (max_workers)"));
  }
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
  const std::optional<Scheduler::TrialRef> next = scheduler_.Next();
  if (!next) return std::nullopt;
  Sweep& sweep = *next->sweep;
  const Trial& trial = sweep.trials[next->trial];
  Lease lease;
  lease.sweep_id = sweep.id;
  lease.trial_id = trial.id;
  lease.kind = trial.kind;
  lease.attempt = trial.failed_attempts + 1;
  lease.deadline_ms = now_ms + options_.lease_ms;
  if (trial.source >= 0) lease.source_sha256 = sweep.trials[trial.source].model_sha256;
  if (trial.spec_json) lease.trial_json = *trial.spec_json;
  auto status = Change([&]() -> absl::Status {
    auto id = UnusedAttemptId();
    if (!id.ok()) return id.status();
    lease.attempt_id = *id;
    if (auto s = db_->Prepare("INSERT INTO attempts (id, sweep_id, trial_id, number, worker_id, "
                              "leased_ms, deadline_ms, state) VALUES "
                              "(?1, ?2, ?3, ?4, ?5, ?6, ?7, 'leased')",
                              lease.attempt_id, sweep.id, trial.id, lease.attempt, worker_id,
                              now_ms, lease.deadline_ms)
                     .Run();
        !s.ok()) {
      return s;
    }
    scheduler_.StartAttempt(lease.attempt_id, sweep, next->trial, worker_id, lease.deadline_ms);
    return SeeWorker(worker_id, now_ms);
  });
  if (!status.ok()) return status;
  return lease;
}

// An attempt's id is all a worker needs to heartbeat, fail, release or complete
// it, so it must not be guessable by another client holding the token: 62
// random bits (the kernel's generator), never an id issued before.
absl::StatusOr<int64_t> SqliteStore::UnusedAttemptId() {
  for (int tries = 0; tries < 8; ++tries) {
    const uint64_t bits = (static_cast<uint64_t>(random_()) << 32) | random_();
    const int64_t id = static_cast<int64_t>(bits >> 2);
    if (id == 0) continue;
    Query used = db_->Prepare("SELECT 1 FROM attempts WHERE id = ?1", id);
    auto row = used.Step();
    if (!row.ok()) return row.status();
    if (!*row) return id;
  }
  return absl::InternalError("no unused attempt id in 8 random draws");
}

absl::StatusOr<HeartbeatVerdict> SqliteStore::Heartbeat(int64_t attempt_id, int64_t now_ms) {
  return AtAttempt(
      attempt_id, HeartbeatVerdict::kLost,
      [&](const Attempt& attempt) -> absl::StatusOr<HeartbeatVerdict> {
        if (attempt.sweep->state == SweepState::kCancelled) return HeartbeatVerdict::kCancelled;
        const int64_t deadline_ms = now_ms + options_.lease_ms;
        auto status = Change([&]() -> absl::Status {
          scheduler_.Renew(attempt_id, deadline_ms);
          if (auto s = db_->Prepare("UPDATE attempts SET deadline_ms = ?1 WHERE id = ?2",
                                    deadline_ms, attempt_id)
                           .Run();
              !s.ok()) {
            return s;
          }
          return SeeWorker(attempt.worker_id, now_ms);
        });
        if (!status.ok()) return status;
        return HeartbeatVerdict::kContinue;
      });
}

absl::Status SqliteStore::RecordEpoch(int64_t attempt_id, const EpochRecord& epoch,
                                      int64_t now_ms) {
  return ChangeAttempt(attempt_id, [&] {
    return db_
        ->Prepare("INSERT INTO epochs (attempt_id, epoch_json, recorded_ms) VALUES (?1, ?2, ?3)",
                  attempt_id, EpochRecordToJson(epoch).dump(), now_ms)
        .Run();
  });
}

// A result's identity is the coordinator's, never the worker's: it must name
// the trial the attempt was leased for, as the coordinator expanded it (kind,
// arm, target, seed and its streams, dataset, source model), and report what a
// worker may report (CheckMeasuredValues) within the trial's own phases.
namespace {
absl::Status CheckAgainstTrial(const Scheduler::Sweep& sweep, const Scheduler::Trial& trial,
                               const TrialResult& result) {
  if (auto s = CheckMeasuredValues(result); !s.ok()) return s;
  auto differs = [](const char* field, const std::string& got, const std::string& trial_has) {
    return absl::InvalidArgumentError(absl::StrCat("result.", field, " is '", got.substr(0, 80),
                                                   "', but the trial's is '", trial_has, "'"));
  };
  if (result.trial_id != trial.id) return differs("trial_id", result.trial_id, trial.id);
  if (result.kind != trial.kind) {
    return differs("kind", TrialKindName(result.kind), TrialKindName(trial.kind));
  }
  const std::string source = trial.source >= 0 ? sweep.trials[trial.source].model_sha256 : "";
  if (trial.kind == TrialKind::kTransfer && !source.empty() &&
      result.provenance.source_model_sha256 != source) {
    return differs("provenance.source_model_sha256", result.provenance.source_model_sha256, source);
  }
  if (!trial.spec_json) return absl::OkStatus();  // a store from before specs were kept
  auto spec = TrialSpecFromJsonText(*trial.spec_json);
  if (!spec.ok()) return spec.status();
  const TrialResult expected = ResultFor(*spec);
  if (result.arm != expected.arm) return differs("arm", result.arm, expected.arm);
  if (result.target != expected.target) return differs("target", result.target, expected.target);
  if (result.seed_index != expected.seed_index) {
    return differs("seed_index", absl::StrCat(result.seed_index),
                   absl::StrCat(expected.seed_index));
  }
  const SeedStreams& got = result.provenance.seeds;
  const SeedStreams& want = expected.provenance.seeds;
  if (got.init != want.init || got.order != want.order || got.subset != want.subset) {
    return differs("provenance.seeds", absl::StrCat(got.init, "/", got.order, "/", got.subset),
                   absl::StrCat(want.init, "/", want.order, "/", want.subset));
  }
  if (result.provenance.dataset_sha256 != expected.provenance.dataset_sha256) {
    return differs("provenance.dataset_sha256", result.provenance.dataset_sha256,
                   expected.provenance.dataset_sha256);
  }
  // A fitted head (logistic, linear SVM) records its fit as one epoch.
  const bool fitted = spec->head.kind != HeadSpec::Kind::kDense;
  int64_t epochs = 0;
  for (const PhaseSpec& phase : spec->phases) epochs += phase.epochs;
  if (fitted) epochs = std::max<int64_t>(epochs, 1);
  const size_t phases = fitted ? std::max<size_t>(spec->phases.size(), 1) : spec->phases.size();
  if (static_cast<int64_t>(result.epochs.size()) > epochs) {
    return absl::InvalidArgumentError(absl::StrCat("result.epochs has ", result.epochs.size(),
                                                   " epochs; the trial trains ", epochs));
  }
  for (const EpochRecord& e : result.epochs) {
    if (e.phase >= static_cast<int>(phases)) {
      return absl::InvalidArgumentError(
          absl::StrCat("result.epochs: phase ", e.phase, "; the trial has ", phases));
    }
  }
  return absl::OkStatus();
}

// OK when an uploaded model loads as a model file.
absl::Status CheckModel(const ArtifactReader& file, const std::string& sha256) {
  auto bytes = file.ReadAll();
  if (!bytes.ok()) return bytes.status();
  return DecodeModelFile(*bytes, "artifact " + sha256).status();
}
}  // namespace

absl::StatusOr<bool> SqliteStore::Complete(int64_t attempt_id, const TrialResult& result,
                                           int64_t now_ms) {
  // A model this attempt put is read and checked before the lock is taken: it may
  // be hundreds of megabytes. (Put meanwhile, it is checked under the lock below.)
  std::optional<absl::Status> model_loads;
  if (IsSha256Hex(result.model_sha256)) {
    absl::StatusOr<std::optional<ArtifactReader>> upload;
    {
      std::lock_guard<std::mutex> lock(mu_);
      upload = UploadOf(attempt_id, result.model_sha256);
    }
    if (!upload.ok()) return upload.status();
    if (*upload) model_loads = CheckModel(**upload, result.model_sha256);
  }
  return AtAttempt(attempt_id, false, [&](const Attempt& attempt) -> absl::StatusOr<bool> {
    const Sweep& sweep = *attempt.sweep;
    const Trial& trial = sweep.trials[attempt.trial];
    const std::string what =
        absl::StrCat("attempt ", attempt_id, " (trial ", trial.id, " of sweep ", sweep.id, "): ");
    if (auto s = CheckAgainstTrial(sweep, trial, result); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat(what, s.message()));
    }
    // The trials that need this model are leased with its hash.
    const bool has_model =
        trial.kind == TrialKind::kPretrain && result.outcome == TrialOutcome::kCompleted;
    if (has_model) {
      if (auto s = CheckSha256Field(absl::StrCat(what, "result.model_sha256"), result.model_sha256);
          !s.ok()) {
        return s;
      }
      // The model must be one this attempt uploaded, and load as a model file.
      if (!model_loads) {
        auto upload = UploadOf(attempt_id, result.model_sha256);
        if (!upload.ok()) return upload.status();
        if (!*upload) {
          return absl::FailedPreconditionError(
              absl::StrCat(what, "result.model_sha256 ", result.model_sha256,
                           " was never put by this attempt; put it first"));
        }
        model_loads = CheckModel(**upload, result.model_sha256);
      }
      if (!model_loads->ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, "result.model_sha256 names no model: ", model_loads->message()));
      }
    }
    auto status = Change([&]() -> absl::Status {
      if (auto s = EndAttemptRow(attempt_id, AttemptEnd::kCompleted, "", now_ms); !s.ok()) {
        return s;
      }
      if (auto s = db_->Prepare("INSERT INTO results (attempt_id, result_json, recorded_ms) "
                                "VALUES (?1, ?2, ?3)",
                                attempt_id, TrialResultToJson(result).dump(), now_ms)
                       .Run();
          !s.ok()) {
        return s;
      }
      scheduler_.Complete(attempt_id, result.outcome, has_model ? result.model_sha256 : "", now_ms);
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
    return true;
  });
}

namespace {
// A failure's reason as stored: at most kMaxReasonBytes, cut at a character's start.
std::string StoredReason(const std::string& reason) {
  if (reason.empty()) return "no reason";
  if (reason.size() <= static_cast<size_t>(kMaxReasonBytes)) return reason;
  size_t end = kMaxReasonBytes - 64;
  while (end > 0 && (static_cast<unsigned char>(reason[end]) & 0xC0) == 0x80) --end;
  return absl::StrCat(reason.substr(0, end), " ... (", reason.size() - end, " more bytes)");
}
}  // namespace

absl::Status SqliteStore::Fail(int64_t attempt_id, const std::string& reason, int64_t now_ms) {
  return ChangeAttempt(attempt_id, [&] {
    return EndUnfinished(attempt_id, AttemptEnd::kFailed, StoredReason(reason), now_ms);
  });
}

absl::Status SqliteStore::Release(int64_t attempt_id, int64_t now_ms) {
  return ChangeAttempt(
      attempt_id, [&] { return EndUnfinished(attempt_id, AttemptEnd::kReleased, "", now_ms); });
}

absl::StatusOr<int> SqliteStore::ExpireLeases(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  const std::vector<int64_t> expired = scheduler_.ExpiredBefore(now_ms);
  if (expired.empty()) return 0;
  auto status = Change([&]() -> absl::Status {
    for (int64_t attempt_id : expired) {
      const Attempt& attempt = *scheduler_.FindAttempt(attempt_id);
      const bool interrupted = attempt.adopted;
      const std::string reason =
          interrupted
              ? absl::StrCat("interrupted: the coordinator restarted while worker ",
                             attempt.worker_id, " held the lease, and it did not return before ",
                             "its deadline (", attempt.deadline_ms, " ms); not counted as failed")
              : absl::StrCat("lease expired: no heartbeat from worker ", attempt.worker_id,
                             " before its deadline (", attempt.deadline_ms, " ms)");
      if (auto s =
              EndUnfinished(attempt_id, interrupted ? AttemptEnd::kReleased : AttemptEnd::kExpired,
                            reason, now_ms);
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return static_cast<int>(expired.size());
}

absl::StatusOr<int> SqliteStore::AdoptLeases(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  const std::vector<int64_t> adopted = scheduler_.Adopted();
  auto status = Change([&]() -> absl::Status {
    for (int64_t attempt_id : adopted) {
      Attempt& attempt = *scheduler_.FindAttempt(attempt_id);
      const int64_t deadline_ms = std::max(attempt.deadline_ms, now_ms + options_.lease_ms);
      scheduler_.Renew(attempt_id, deadline_ms);
      attempt.adopted = true;  // until its worker's heartbeat renews it
      if (auto s = db_->Prepare("UPDATE attempts SET deadline_ms = ?1 WHERE id = ?2", deadline_ms,
                                attempt_id)
                       .Run();
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return static_cast<int>(adopted.size());
}

absl::StatusOr<std::vector<int64_t>> SqliteStore::FailWorker(const std::string& worker_id,
                                                             const std::string& reason,
                                                             int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  const std::vector<int64_t> held = scheduler_.AttemptsOf(worker_id);
  if (held.empty()) return held;
  auto status = Change([&]() -> absl::Status {
    for (int64_t attempt_id : held) {
      if (auto s = EndUnfinished(attempt_id, AttemptEnd::kFailed, StoredReason(reason), now_ms);
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
                                      ArtifactWriter& upload, int64_t now_ms) {
  if (auto s = CheckSha256Field("sha256", sha256); !s.ok()) return s;
  // Synced and hashed outside the lock: a model may be hundreds of megabytes.
  auto actual = upload.Finish();
  if (!actual.ok()) return actual.status();
  if (*actual != sha256) {
    return absl::InvalidArgumentError(absl::StrCat("sha256: ", sha256, " does not match the ",
                                                   upload.size(), " bytes sent (their SHA-256 is ",
                                                   *actual, ")"));
  }
  const absl::Status named = NameOutsideLock({&upload});
  std::lock_guard<std::mutex> lock(mu_);
  const auto put = [&]() -> absl::Status {
    if (!named.ok()) return named;
    if (auto s = Usable(); !s.ok()) return s;
    if (scheduler_.FindAttempt(attempt_id) == nullptr) {
      // A worker must not go on as if its model were kept.
      Query ended = db_->Prepare("SELECT state FROM attempts WHERE id = ?1", attempt_id);
      auto row = ended.Step();
      if (!row.ok()) return row.status();
      if (!*row)
        return absl::NotFoundError(absl::StrCat("attempt ", attempt_id, ": no such attempt"));
      return absl::FailedPreconditionError(
          absl::StrCat("attempt ", attempt_id, " ended (", ended.Text(0),
                       ") and is no longer current: its upload was not stored"));
    }
    return Change([&]() -> absl::Status {
      if (auto s = InsertArtifact(absl::StrCat("artifact ", sha256), upload, now_ms); !s.ok()) {
        return s;
      }
      return db_
          ->Prepare(
              "INSERT INTO uploads (attempt_id, sha256) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
              attempt_id, sha256)
          .Run();
    });
  };
  const absl::Status status = put();
  Unnamed({&upload});
  return status;
}

absl::StatusOr<ArtifactReader> SqliteStore::OpenArtifact(const std::string& sha256) {
  if (auto s = CheckSha256Field("sha256", sha256); !s.ok()) return s;
  // Opened under the lock, so the file is the one its row lists (a delete removes
  // the file under the lock too); read without it.
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = Usable(); !s.ok()) return s;
  Query query = db_->Prepare("SELECT size FROM artifacts WHERE sha256 = ?1", sha256);
  auto row = query.Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("artifact ", sha256, ": no such artifact"));
  auto file = files_.Open(sha256);
  if (!file.ok() || file->size() != query.Int(0)) {
    return absl::DataLossError(absl::StrCat(
        "artifact ", sha256, " of ", query.Int(0), " bytes: ",
        file.ok() ? absl::StrCat("its file has ", file->size()) : file.status().message()));
  }
  return file;
}

absl::StatusOr<std::optional<ArtifactReader>> SqliteStore::UploadOf(int64_t attempt_id,
                                                                    const std::string& sha256) {
  Query uploaded = db_->Prepare("SELECT 1 FROM uploads WHERE attempt_id = ?1 AND sha256 = ?2",
                                attempt_id, sha256);
  auto row = uploaded.Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::nullopt;
  auto file = files_.Open(sha256);
  if (!file.ok()) return file.status();
  return std::optional<ArtifactReader>(*std::move(file));
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

}  // namespace seedproof::store_internal
