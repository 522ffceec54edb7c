#include "coordinator/schema.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace seedproof {
namespace {

// kMigrations[v] takes a database from schema version v to v + 1. Append a script
// to change the schema; never edit one that has shipped.
const char* const kMigrations[kSchemaVersion] = {
    // 0 -> 1: the first schema. Times are milliseconds since the epoch, as the
    // coordinator passes them in.
    R"sql(
-- One row per submitted sweep. seq orders submission: older sweeps lease first.
CREATE TABLE sweeps (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  spec_text TEXT NOT NULL,
  spec_path TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('running', 'cancelled', 'done')),
  created_ms INTEGER NOT NULL,
  finished_ms INTEGER  -- when it became done or was cancelled; NULL while running
) STRICT;

-- The same trial id may appear in several sweeps (ids are content hashes), so a
-- trial is keyed by its sweep too.
CREATE TABLE trials (
  sweep_id TEXT NOT NULL REFERENCES sweeps (id),
  trial_id TEXT NOT NULL,
  plan_index INTEGER NOT NULL,  -- position in the sweep's Plan::trials
  kind TEXT NOT NULL CHECK (kind IN ('pretrain', 'scratch', 'transfer')),
  arm TEXT NOT NULL,
  target TEXT NOT NULL,
  seed_index INTEGER NOT NULL,
  source_trial TEXT,  -- the trial whose model this one needs; NULL: none
  state TEXT NOT NULL
      CHECK (state IN ('pending', 'leased', 'done', 'failed', 'blocked', 'cancelled')),
  failed_attempts INTEGER NOT NULL DEFAULT 0,  -- failed or expired; released ones do not count
  outcome TEXT CHECK (outcome IN ('completed', 'diverged')),  -- done only
  blocked_by TEXT,  -- blocked only: the failed or diverged trial that blocked it
  model_sha256 TEXT REFERENCES artifacts (sha256),  -- a completed pretrain's model
  result_attempt_id INTEGER REFERENCES results (attempt_id),  -- done: its accepted result
  PRIMARY KEY (sweep_id, trial_id),
  UNIQUE (sweep_id, plan_index),
  FOREIGN KEY (sweep_id, source_trial) REFERENCES trials (sweep_id, trial_id)
) STRICT, WITHOUT ROWID;

-- Every lease ever handed out. An id is 62 random bits (Store::LeaseNext), so
-- another client cannot guess a lease it was not given; rows are never deleted
-- and a drawn id already used is drawn again, so an id is never reused and a
-- stale attempt id never names a newer attempt. (Stores written before hold
-- sequential ids as well: ids are compared, never ordered.)
CREATE TABLE attempts (
  id INTEGER PRIMARY KEY,
  sweep_id TEXT NOT NULL,
  trial_id TEXT NOT NULL,
  number INTEGER NOT NULL,  -- 1-based: the trial's failed attempts before it + 1
  worker_id TEXT NOT NULL REFERENCES workers (id),
  leased_ms INTEGER NOT NULL,
  deadline_ms INTEGER NOT NULL,  -- renewed by heartbeats
  state TEXT NOT NULL CHECK (state IN ('leased', 'completed', 'failed', 'expired', 'released')),
  ended_ms INTEGER,
  reason TEXT,  -- failed, expired: why
  FOREIGN KEY (sweep_id, trial_id) REFERENCES trials (sweep_id, trial_id)
) STRICT;
-- Partial: a lease or a completion does not touch it.
CREATE INDEX failed_attempts ON attempts (sweep_id) WHERE state IN ('failed', 'expired');

-- Accepted results, as the workers sent them (one JSON object each,
-- docs/RESULTS_FORMAT.md), by the attempt that produced them. A trial names its
-- result (trials.result_attempt_id), so a trial has at most one.
CREATE TABLE results (
  attempt_id INTEGER PRIMARY KEY REFERENCES attempts (id),
  result_json TEXT NOT NULL,
  recorded_ms INTEGER NOT NULL
) STRICT;

-- Per-epoch progress of running attempts (EpochRecord objects as JSON).
CREATE TABLE epochs (
  attempt_id INTEGER NOT NULL REFERENCES attempts (id),
  epoch_json TEXT NOT NULL,
  recorded_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE workers (
  id TEXT PRIMARY KEY,
  capabilities_json TEXT NOT NULL,
  registered_ms INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL  -- registration, lease or heartbeat, to the second
) STRICT;

-- Model files by content: sha256 is the SHA-256 of bytes, 64 lowercase hex digits.
-- (Since version 7 the bytes are files beside the database; the table keeps size.)
CREATE TABLE artifacts (
  sha256 TEXT PRIMARY KEY,
  bytes BLOB NOT NULL,
  stored_ms INTEGER NOT NULL
) STRICT;
)sql",
    // 1 -> 2: confirmation seeds. A sweep whose spec asks for them is not done when
    // its exploration trials are: the coordinator first adds the confirmation trials
    // of the arms the analysis picks (ExtendSweep), then clears the flag.
    R"sql(
ALTER TABLE sweeps ADD COLUMN awaiting_confirmation INTEGER NOT NULL DEFAULT 0
    CHECK (awaiting_confirmation IN (0, 1));
)sql",
    // 2 -> 3: the lease carries the trial. Each trial keeps its whole TrialSpec as
    // JSON (experiments/trial_json.h), made once by the coordinator's expansion;
    // a worker runs it without the sweep's YAML. Trials stored before version 3
    // have NULL until the coordinator fills them in from their sweep's spec text
    // as it starts (Store::FillTrialSpecs).
    R"sql(
ALTER TABLE trials ADD COLUMN spec_json TEXT;
)sql",
    // 3 -> 4: the specs in a table of their own. A spec is ~2 KB, so in the trials
    // row it put two trials on a page instead of dozens and every state change
    // rewrote it: the coordinator's lease + complete rate fell from 2,400 to 1,900
    // trials/s (20 workers). A trial without a row here has no spec yet.
    R"sql(
CREATE TABLE trial_specs (
  sweep_id TEXT NOT NULL,
  trial_id TEXT NOT NULL,
  spec_json TEXT NOT NULL,
  PRIMARY KEY (sweep_id, trial_id),
  FOREIGN KEY (sweep_id, trial_id) REFERENCES trials (sweep_id, trial_id)
) STRICT;
INSERT INTO trial_specs (sweep_id, trial_id, spec_json)
  SELECT sweep_id, trial_id, spec_json FROM trials WHERE spec_json IS NOT NULL;
ALTER TABLE trials DROP COLUMN spec_json;
)sql",
    // 4 -> 5: datasets by content. A sweep keeps the datasets its trials read as
    // they were at submission (their content hashes: JSON, experiments/trial_json.h),
    // so its spec expands again into the same trials (confirmation seeds) without
    // reading the data, which may have changed since. NULL: submitted before.
    R"sql(
ALTER TABLE sweeps ADD COLUMN datasets_json TEXT;
)sql",
    // 5 -> 6: which attempt uploaded which artifact. A pretrain's result may only
    // name a model its own attempt uploaded (issue 19: any stored artifact was
    // accepted, a dataset's too, and its transfers then failed on it).
    R"sql(
CREATE TABLE uploads (
  attempt_id INTEGER NOT NULL REFERENCES attempts (id),
  sha256 TEXT NOT NULL REFERENCES artifacts (sha256),
  PRIMARY KEY (attempt_id, sha256)
) STRICT, WITHOUT ROWID;
)sql",
    // 6 -> 7: the artifacts' bytes in files beside the database (artifact_files.h),
    // written before this script runs; the table keeps their sizes. In a BLOB
    // column a 400 MiB upload held the store's lock for 1.4 s while it was written.
    R"sql(
ALTER TABLE artifacts ADD COLUMN size INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0);
UPDATE artifacts SET size = length(bytes);
ALTER TABLE artifacts DROP COLUMN bytes;
)sql",
};

absl::StatusOr<int64_t> PragmaValue(Database& db, const char* pragma) {
  Query query = db.Prepare(absl::StrCat("PRAGMA ", pragma));
  auto row = query.Step();
  if (!row.ok()) return row.status();
  return *row ? query.Int(0) : 0;
}

// A file seedproof may use: its own, or one with nothing in it yet.
absl::Status CheckOwner(Database& db, int64_t version) {
  auto application_id = PragmaValue(db, "application_id");
  if (!application_id.ok()) return application_id.status();
  if (*application_id == kApplicationId) {
    if (version > kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          db.path(), ": schema version ", version, " is newer than this seedproof knows (",
          kSchemaVersion, "); open it with the seedproof that wrote it, or a newer one"));
    }
    return absl::OkStatus();
  }
  Query tables = db.Prepare("SELECT count(*) FROM sqlite_schema");
  auto row = tables.Step();
  if (!row.ok()) return row.status();
  if (*application_id != 0 || version != 0 || tables.Int(0) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        db.path(), ": an SQLite database of another program (application_id ", *application_id,
        ", user_version ", version, "), not a seedproof coordinator's"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status MigrateSchema(Database& db, bool migrate,
                           const std::function<absl::Status(int64_t from)>& before) {
  // Checked before anything is written, so a file this code must not touch stays as it was.
  auto version = PragmaValue(db, "user_version");
  if (!version.ok()) return version.status();
  if (auto s = CheckOwner(db, *version); !s.ok()) return s;
  if (*version == kSchemaVersion) return absl::OkStatus();
  if (!migrate) {
    return absl::FailedPreconditionError(
        absl::StrCat(db.path(), ": schema version ", *version, " is older than this seedproof's (",
                     kSchemaVersion,
                     "); left as it is (run the study again with this seedproof to upgrade it)"));
  }
  return db.Transaction([&]() -> absl::Status {
    // Another process may have migrated the file since the check; the write lock settles it.
    auto current = PragmaValue(db, "user_version");
    if (!current.ok()) return current.status();
    if (auto s = CheckOwner(db, *current); !s.ok()) return s;
    for (int64_t v = *current; v < kSchemaVersion; ++v) {
      if (before) {
        if (auto s = before(v); !s.ok()) return s;
      }
      if (auto s = db.Exec(kMigrations[v]); !s.ok()) return s;
    }
    if (auto s = db.Exec(absl::StrCat("PRAGMA user_version = ", kSchemaVersion, ";",
                                      "PRAGMA application_id = ", kApplicationId, ";"));
        !s.ok()) {
      return s;
    }
    return absl::OkStatus();
  });
}

}  // namespace seedproof
