// The coordinator's store on real SQLite files: schema and migration checks,
// restart after a crash, dependency order, leases that expire, fail, are released
// or cancelled, results accepted exactly once, artifacts, and many threads at once.
#include "coordinator/store.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "backends/model_file.h"
#include "coordinator/schema.h"
#include "coordinator/sqlite.h"
#include "coordinator/sqlite_store.h"
#include "experiments/fingerprint.h"
#include "experiments/plan.h"
#include "experiments/results.h"
#include "experiments/sweep_parse.h"
#include "experiments/trial_json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "proto/wire_limits.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kT0 = 1'700'000'000'000;  // the tests' clock starts here (ms)
constexpr int64_t kLeaseMs = 30'000;        // StoreOptions' default

TrialSpec Trial(const std::string& id, TrialKind kind, const std::string& source = "") {
  TrialSpec trial;
  trial.id = id;
  trial.kind = kind;
  trial.arm = kind == TrialKind::kPretrain  ? "source"
              : kind == TrialKind::kScratch ? "baseline"
                                            : "reuse1";
  trial.target = kind == TrialKind::kPretrain ? "" : "shirt-vs-sandal";
  trial.source_trial = source;
  trial.phases.emplace_back().epochs = 10;
  return trial;
}

// A pretrain trial "p", a scratch baseline "s", and transfer trials "t0", "t1", ...
// reusing p's model: ExpandSweep's shape, in its order.
Plan PretrainPlan(int transfers) {
  Plan plan;
  plan.trials.push_back(Trial("p", TrialKind::kPretrain));
  plan.trials.push_back(Trial("s", TrialKind::kScratch));
  for (int i = 0; i < transfers; ++i) {
    plan.trials.push_back(Trial(absl::StrCat("t", i), TrialKind::kTransfer, "p"));
  }
  return plan;
}

// n independent scratch trials "x0", "x1", ...
Plan ScratchPlan(int n) {
  Plan plan;
  for (int i = 0; i < n; ++i)
    plan.trials.push_back(Trial(absl::StrCat("x", i), TrialKind::kScratch));
  return plan;
}

std::string ResultJson(const TrialResult& result) { return TrialResultToJson(result).dump(); }

// A model file's bytes, different for every name: what a pretrain uploads.
std::string ModelBytes(const std::string& name) {
  ModelFileContents model;
  model.spec.input = {2};
  model.spec.layers = {LayerSpec::Dense(1, Activation::kSigmoid)};
  model.spec.loss = Loss::kBinaryCrossEntropy;
  model.trainable = {true};
  model.seed = std::hash<std::string>{}(name);
  model.parameters = {0.5f, -0.5f, 0.0f};  // kernel (2, 1), bias (1)
  return EncodeModelFile(model);
}

TrialResult ResultOf(const Lease& lease, TrialOutcome outcome = TrialOutcome::kCompleted) {
  // The trial as the lease carries it, the way a worker reports it.
  TrialResult result;
  if (!lease.trial_json.empty()) {
    auto spec = TrialSpecFromJsonText(lease.trial_json);
    EXPECT_TRUE(spec.ok()) << spec.status();
    if (spec.ok()) result = ResultFor(*spec);
  }
  result.trial_id = lease.trial_id;
  result.kind = lease.kind;
  result.provenance.source_model_sha256 = lease.source_sha256;
  result.outcome = outcome;
  if (outcome == TrialOutcome::kDiverged) result.diverged_epoch = 1;  // no epoch recorded
  result.test_accuracy = 0.5 + static_cast<double>(lease.attempt_id % 100) / 1000.0;
  return result;
}

// SQL that takes the artifacts table back to how versions 1 to 6 kept it: the
// bytes in a column (empty here; MovesAVersionSixStoresArtifactsToFiles fills them).
#define ARTIFACTS_AS_VERSION_SIX_SQL                                  \
  "ALTER TABLE artifacts ADD COLUMN bytes BLOB NOT NULL DEFAULT x'';" \
  "ALTER TABLE artifacts DROP COLUMN size;"

class StoreTest : public testing::Test {
 protected:
  void SetUp() override {
    path_ = (fs::path(testing::TempDir()) /
             absl::StrCat("store_test_",
                          testing::UnitTest::GetInstance()->current_test_info()->name(), ".db"))
                .string();
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path_ + suffix);
    fs::remove_all(path_ + ".artifacts");
    store_ = Open();
    ASSERT_NE(store_, nullptr);
    ASSERT_TRUE(store_->RegisterWorker("w1", R"({"threads": 1})", kT0).ok());
  }

  std::unique_ptr<Store> Open(const StoreOptions& options = {}) {
    auto store = Store::Open(path_, options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // Forgets the store without any cleanup of its own, as a crash would, and opens
  // the file again.
  void Reopen(const StoreOptions& options = {}) {
    store_.reset();
    store_ = Open(options);
    ASSERT_NE(store_, nullptr);
  }

  std::string Submit(const Plan& plan, const std::string& name = "sweep", int64_t now = kT0) {
    auto id =
        store_->SubmitSweep(name, absl::StrCat("name: ", name, "\n"), name + ".yaml", plan, now);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? *id : "";
  }

  std::optional<Lease> LeaseNext(int64_t now = kT0, const std::string& worker = "w1") {
    auto lease = store_->LeaseNext(worker, now);
    EXPECT_TRUE(lease.ok()) << lease.status();
    return lease.ok() ? *lease : std::nullopt;
  }

  // The next lease, which the test expects to be for trial_id.
  Lease LeaseOf(const std::string& trial_id, int64_t now = kT0) {
    std::optional<Lease> lease = LeaseNext(now);
    EXPECT_TRUE(lease.has_value()) << "nothing to lease; expected " << trial_id;
    if (!lease) return Lease{};
    EXPECT_EQ(lease->trial_id, trial_id);
    return *lease;
  }

  bool Complete(const Lease& lease, TrialOutcome outcome = TrialOutcome::kCompleted,
                int64_t now = kT0) {
    const TrialResult result = ResultOf(lease, outcome);
    auto accepted = store_->Complete(lease.attempt_id, result, now);
    EXPECT_TRUE(accepted.ok()) << accepted.status();
    return accepted.ok() && *accepted;
  }

  // A pretrain trial's completion: its model goes up first. Returns the model's hash.
  std::string CompletePretrain(const Lease& lease, int64_t now = kT0) {
    const std::string model = ModelBytes(lease.trial_id);
    const std::string sha = Sha256Hex(model);
    EXPECT_TRUE(store_->PutArtifact(lease.attempt_id, sha, model, now).ok());
    TrialResult result = ResultOf(lease);
    result.model_sha256 = sha;
    auto accepted = store_->Complete(lease.attempt_id, result, now);
    EXPECT_TRUE(accepted.ok() && *accepted) << accepted.status();
    return sha;
  }

  SweepStatus Status(const std::string& sweep_id) {
    auto status = store_->GetSweep(sweep_id);
    EXPECT_TRUE(status.ok()) << status.status();
    return status.ok() ? *status : SweepStatus{};
  }

  TrialStatus TrialOf(const std::string& sweep_id, const std::string& trial_id) {
    auto trials = store_->Trials(sweep_id);
    EXPECT_TRUE(trials.ok()) << trials.status();
    if (trials.ok()) {
      for (const TrialStatus& t : *trials) {
        if (t.trial_id == trial_id) return t;
      }
    }
    ADD_FAILURE() << "no trial " << trial_id << " in sweep " << sweep_id;
    return TrialStatus{};
  }

  // The accepted results, each as its JSON text.
  std::vector<std::string> Results(const std::string& sweep_id) {
    auto results = store_->Results(sweep_id, BlockedTrials::kLeftOut);
    EXPECT_TRUE(results.ok()) << results.status();
    std::vector<std::string> texts;
    if (results.ok()) {
      for (const TrialResult& result : *results) texts.push_back(ResultJson(result));
    }
    return texts;
  }

  // The file through a second connection, for what the API does not show.
  std::unique_ptr<Database> Raw() {
    auto db = Database::Open(path_, 5000);
    EXPECT_TRUE(db.ok()) << db.status();
    return db.ok() ? std::move(*db) : nullptr;
  }
  int64_t RawInt(const std::string& sql) {
    auto db = Raw();
    Query query = db->Prepare(sql);
    auto row = query.Step();
    EXPECT_TRUE(row.ok() && *row) << sql;
    return row.ok() && *row ? query.Int(0) : -1;
  }

  std::string path_;
  std::unique_ptr<Store> store_;
};

// ---------------------------------------------------------------------------
// The file

TEST_F(StoreTest, CreatesAVersionedSchemaInWalMode) {
  EXPECT_EQ(RawInt("PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(RawInt("PRAGMA application_id"), kApplicationId);
  auto db = Raw();
  Query journal = db->Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(*journal.Step());
  EXPECT_EQ(journal.Text(0), "wal");
  std::set<std::string> tables;
  Query names = db->Prepare("SELECT name FROM sqlite_schema WHERE type = 'table'");
  while (*names.Step()) tables.insert(names.Text(0));
  for (const char* table :
       {"sweeps", "trials", "attempts", "results", "epochs", "workers", "artifacts"}) {
    EXPECT_TRUE(tables.contains(table)) << table;
  }
  // Opening it again migrates nothing and keeps the version.
  Reopen();
  EXPECT_EQ(RawInt("PRAGMA user_version"), kSchemaVersion);
}

TEST_F(StoreTest, MigratesAVersionOneDatabaseKeepingItsSweeps) {
  const std::string id = Submit(ScratchPlan(2));
  store_.reset();
  // What version 1 wrote: no awaiting_confirmation column, no trial specs.
  ASSERT_TRUE(Raw()
                  ->Exec("ALTER TABLE sweeps DROP COLUMN awaiting_confirmation;"
                         "ALTER TABLE sweeps DROP COLUMN datasets_json;"
                         "DROP TABLE trial_specs;"
                         "DROP TABLE uploads;" ARTIFACTS_AS_VERSION_SIX_SQL
                         "PRAGMA user_version = 1;")
                  .ok());
  Reopen();
  EXPECT_EQ(RawInt("PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(Status(id).total, 2);
  EXPECT_TRUE(Complete(LeaseOf("x0")));
  EXPECT_TRUE(Complete(LeaseOf("x1")));
  EXPECT_EQ(Status(id).state, SweepState::kDone);  // a v1 sweep never awaits confirmation
}

// The lease carries the trial's whole spec, as it was stored at submission.
TEST_F(StoreTest, ALeaseCarriesItsTrialsSpec) {
  Plan plan = ScratchPlan(1);
  plan.trials[0].seeds.init = 77;
  Submit(plan);
  Reopen();  // read back from the file, not only the mirror
  const Lease lease = LeaseOf("x0");
  auto spec = TrialSpecFromJsonText(lease.trial_json);
  ASSERT_TRUE(spec.ok()) << spec.status() << " in " << lease.trial_json;
  EXPECT_EQ(spec->id, "x0");
  EXPECT_EQ(spec->seeds.init, 77u);
  EXPECT_EQ(spec->kind, TrialKind::kScratch);
}

// Version 2 kept no trial specs: the store says which sweeps lack them and takes
// them from the sweep's spec expanded again; leases then carry them.
TEST_F(StoreTest, AVersionTwoDatabaseGetsItsTrialSpecsFilledIn) {
  const std::string id = Submit(ScratchPlan(2));
  store_.reset();
  ASSERT_TRUE(Raw()
                  ->Exec("ALTER TABLE sweeps DROP COLUMN datasets_json;"
                         "DROP TABLE trial_specs; DROP TABLE uploads;" ARTIFACTS_AS_VERSION_SIX_SQL
                         "PRAGMA user_version = 2;")
                  .ok());
  Reopen();
  EXPECT_EQ(RawInt("PRAGMA user_version"), kSchemaVersion);
  EXPECT_THAT(store_->SweepsMissingTrialSpecs(), ElementsAre(id));
  EXPECT_EQ(LeaseOf("x0").trial_json, "");  // none yet
  Plan again = ScratchPlan(3);              // x2 is not one of the sweep's: ignored
  auto filled = store_->FillTrialSpecs(id, again.trials);
  ASSERT_TRUE(filled.ok()) << filled.status();
  EXPECT_EQ(*filled, 2);
  EXPECT_TRUE(store_->SweepsMissingTrialSpecs().empty());
  Reopen();
  auto spec = TrialSpecFromJsonText(LeaseOf("x1").trial_json);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->id, "x1");
  EXPECT_EQ(store_->FillTrialSpecs("s-nope", again.trials).status().code(),
            absl::StatusCode::kNotFound);
}

// Version 3 kept each spec in its trial's row; version 4 moves them to
// trial_specs, every one of them, and leases still carry them.
TEST_F(StoreTest, AVersionThreeDatabaseKeepsItsTrialSpecsInTheirOwnTable) {
  Plan plan = ScratchPlan(2);
  plan.trials[1].seeds.init = 91;
  const std::string id = Submit(plan);
  store_.reset();
  ASSERT_TRUE(Raw()
                  ->Exec("ALTER TABLE trials ADD COLUMN spec_json TEXT;"
                         "UPDATE trials SET spec_json = (SELECT s.spec_json FROM trial_specs s "
                         "WHERE s.sweep_id = trials.sweep_id AND s.trial_id = trials.trial_id);"
                         "DROP TABLE trial_specs;"
                         "ALTER TABLE sweeps DROP COLUMN datasets_json;"
                         "DROP TABLE uploads;" ARTIFACTS_AS_VERSION_SIX_SQL
                         "PRAGMA user_version = 3;")
                  .ok());
  Reopen();
  EXPECT_EQ(RawInt("PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(RawInt("SELECT count(*) FROM trial_specs"), 2);
  EXPECT_EQ(RawInt("SELECT count(*) FROM pragma_table_info('trials') WHERE name = 'spec_json'"), 0);
  EXPECT_TRUE(store_->SweepsMissingTrialSpecs().empty());
  LeaseOf("x0");
  auto spec = TrialSpecFromJsonText(LeaseOf("x1").trial_json);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->seeds.init, 91u);
  EXPECT_EQ(Status(id).leased, 2);
}

// Version 5 keeps the datasets a sweep was submitted with, as the plan had them;
// a version 4 sweep has none ("": its spec expands as parsed, as it did then).
TEST_F(StoreTest, ASweepKeepsItsDatasetsAndAVersionFourOneHasNone) {
  Plan plan = ScratchPlan(1);
  DatasetSpec digits;
  digits.name = "digits";
  digits.format = DatasetFormat::kCsv;
  digits.path = "/data/digits.csv";
  digits.sha256 = std::string(64, 'd');
  digits.example_shape = {8, 8, 1};
  plan.datasets = {digits};
  const std::string id = Submit(plan);
  Reopen();
  auto text = store_->SweepSpecText(id);
  ASSERT_TRUE(text.ok()) << text.status();
  auto inputs = StudyInputsFromJsonText(text->datasets_json);
  ASSERT_TRUE(inputs.ok()) << inputs.status() << " in " << text->datasets_json;
  const std::vector<DatasetSpec>& datasets = inputs->datasets;
  ASSERT_EQ(datasets.size(), 1u);
  EXPECT_EQ(datasets[0].sha256, digits.sha256);
  EXPECT_EQ(datasets[0].format, DatasetFormat::kCsv);
  EXPECT_EQ(datasets[0].example_shape, digits.example_shape);
  EXPECT_FALSE(inputs->imported);
  store_.reset();
  ASSERT_TRUE(Raw()
                  ->Exec("ALTER TABLE sweeps DROP COLUMN datasets_json;"
                         "DROP TABLE uploads;" ARTIFACTS_AS_VERSION_SIX_SQL
                         "PRAGMA user_version = 4;")
                  .ok());
  Reopen();
  EXPECT_EQ(RawInt("PRAGMA user_version"), kSchemaVersion);
  text = store_->SweepSpecText(id);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(text->datasets_json, "");
  EXPECT_EQ(Status(id).total, 1);
  // 5 -> 6: the table of which attempt uploaded which artifact.
  store_.reset();
  ASSERT_TRUE(
      Raw()
          ->Exec(ARTIFACTS_AS_VERSION_SIX_SQL "DROP TABLE uploads; PRAGMA user_version = 5;")
          .ok());
  Reopen();
  EXPECT_EQ(RawInt("PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(RawInt("SELECT count(*) FROM sqlite_schema WHERE name = 'uploads'"), 1);
}

TEST_F(StoreTest, AReaderLeavesAnOlderDatabaseAsItIs) {
  Submit(ScratchPlan(1));
  store_.reset();
  ASSERT_TRUE(Raw()
                  ->Exec("ALTER TABLE sweeps DROP COLUMN awaiting_confirmation;"
                         "ALTER TABLE sweeps DROP COLUMN datasets_json;"
                         "DROP TABLE trial_specs;"
                         "DROP TABLE uploads;" ARTIFACTS_AS_VERSION_SIX_SQL
                         "PRAGMA user_version = 1;")
                  .ok());
  StoreOptions reader;
  reader.migrate = false;
  auto store = Store::Open(path_, reader);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("schema version 1 is older"));
  EXPECT_THAT(store.status().message(), HasSubstr(path_));
  EXPECT_EQ(RawInt("PRAGMA user_version"), 1);
  Reopen();  // the coordinator itself still upgrades it
  EXPECT_EQ(RawInt("PRAGMA user_version"), kSchemaVersion);
}

TEST_F(StoreTest, NewerSchemaIsAClearErrorNamingFileAndVersions) {
  store_.reset();
  ASSERT_TRUE(Raw()->Prepare("PRAGMA user_version = 99").Run().ok());
  auto store = Store::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr(path_));
  EXPECT_THAT(store.status().message(), HasSubstr("schema version 99"));
  EXPECT_THAT(store.status().message(), HasSubstr(absl::StrCat("(", kSchemaVersion, ")")));
}

TEST_F(StoreTest, GarbageFileIsAClearErrorAndStaysUntouched) {
  const std::string path = path_ + ".garbage";
  const std::string garbage(4096, 'x');
  std::ofstream(path, std::ios::binary) << garbage;
  auto store = Store::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr(path + ": not an SQLite database"));
  std::ifstream in(path, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), garbage);
}

TEST_F(StoreTest, AnotherProgramsDatabaseIsRefused) {
  const std::string path = path_ + ".other";
  fs::remove(path);
  {
    auto db = Database::Open(path, 5000);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("CREATE TABLE notes (text TEXT)").ok());
  }
  auto store = Store::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(),
              HasSubstr(path + ": an SQLite database of another program"));
}

TEST_F(StoreTest, OptionsOutOfRangeAreRejected) {
  auto store = Store::Open(path_, {.max_attempts = 0});
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("max_attempts"));
  store = Store::Open(path_, {.lease_ms = 0});
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("lease_ms"));
  store = Store::Open(path_, {.max_artifact_bytes = 0});
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("max_artifact_bytes: 0; at least 1"));
  store = Store::Open(path_, {.max_workers = 0});
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("max_workers: 0; at least 1"));
}

// Issue 19: the workers a store keeps are bounded. At max_workers a new id is
// refused, naming the limit, and stores nothing; a registered one may register
// again; the count survives a reopen (it is the table's).
TEST_F(StoreTest, WorkersAreKeptUpToTheirLimit) {
  Reopen({.max_workers = 2});  // w1 is registered
  ASSERT_TRUE(store_->RegisterWorker("w2", "{}", kT0).ok());
  const absl::Status refused = store_->RegisterWorker("w3", "{}", kT0);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.message(),
              HasSubstr("worker w3: 2 workers are registered, the most this store keeps"));
  EXPECT_EQ(RawInt("SELECT count(*) FROM workers"), 2);
  EXPECT_TRUE(store_->RegisterWorker("w1", R"({"threads": 2})", kT0).ok());
  Reopen({.max_workers = 2});
  EXPECT_EQ(store_->RegisterWorker("w3", "{}", kT0).code(), absl::StatusCode::kResourceExhausted);
  Reopen({.max_workers = 3});
  EXPECT_TRUE(store_->RegisterWorker("w3", "{}", kT0).ok());
}

// ---------------------------------------------------------------------------
// Sweeps

TEST_F(StoreTest, SubmittedSweepHasEveryTrialPendingWithItsDependency) {
  const std::string id = Submit(PretrainPlan(2), "geron", kT0 + 5);
  EXPECT_EQ(id.size(), 13u);
  EXPECT_EQ(id[0], 's');
  const SweepStatus status = Status(id);
  EXPECT_EQ(status.sweep_id, id);
  EXPECT_EQ(status.name, "geron");
  EXPECT_EQ(status.spec_path, "geron.yaml");
  EXPECT_EQ(status.state, SweepState::kRunning);
  EXPECT_EQ(status.created_ms, kT0 + 5);
  EXPECT_EQ(status.finished_ms, 0);
  EXPECT_EQ(status.total, 4);
  EXPECT_EQ(status.pending, 4);
  auto trials = store_->Trials(id);
  ASSERT_TRUE(trials.ok());
  ASSERT_EQ(trials->size(), 4u);
  EXPECT_EQ((*trials)[0].trial_id, "p");
  EXPECT_EQ((*trials)[0].kind, TrialKind::kPretrain);
  EXPECT_EQ((*trials)[0].arm, "source");
  EXPECT_EQ((*trials)[0].source_trial, "");
  EXPECT_EQ((*trials)[3].trial_id, "t1");
  EXPECT_EQ((*trials)[3].plan_index, 3);
  EXPECT_EQ((*trials)[3].kind, TrialKind::kTransfer);
  EXPECT_EQ((*trials)[3].target, "shirt-vs-sandal");
  EXPECT_EQ((*trials)[3].source_trial, "p");
  auto spec = store_->SweepSpecText(id);
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->text, "name: geron\n");
  EXPECT_EQ(spec->path, "geron.yaml");
}

TEST_F(StoreTest, ResubmittingAPlanMakesAnotherSweepWithItsOwnTrials) {
  const std::string a = Submit(PretrainPlan(1));
  const std::string b = Submit(PretrainPlan(1));
  EXPECT_NE(a, b);
  CompletePretrain(LeaseOf("p"));
  EXPECT_EQ(Status(a).done, 1);
  EXPECT_EQ(Status(b).done, 0);
  EXPECT_EQ(TrialOf(b, "p").state, TrialState::kPending);
  auto list = store_->ListSweeps();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].sweep_id, a);  // oldest first
  EXPECT_EQ((*list)[1].sweep_id, b);
}

// Issue 19, finding 1: a trial whose spec no lease could carry is refused at
// submission, naming it, instead of failing every worker that leases it.
TEST_F(StoreTest, ATrialSpecNoLeaseCouldCarryIsRefusedAtItsLimit) {
  auto plan_with_arm = [](size_t arm_bytes, bool later) {
    Plan plan = ScratchPlan(2);
    TrialSpec& big = later ? plan.later_candidates.emplace_back(Trial("c1", TrialKind::kScratch))
                           : plan.trials[1];
    big.arm = std::string(arm_bytes, 'a');
    return plan;
  };
  // The JSON around the arm: its size with an empty one.
  const size_t frame = TrialSpecJsonText(plan_with_arm(0, false).trials[1]).size();
  const size_t fits = kMaxTrialSpecBytes - frame;
  EXPECT_TRUE(
      store_->SubmitSweep("fits", "name: fits\n", "fits.yaml", plan_with_arm(fits, false), kT0)
          .ok());
  for (bool later : {false, true}) {
    auto id =
        store_->SubmitSweep("big", "name: big\n", "big.yaml", plan_with_arm(fits + 1, later), kT0);
    ASSERT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << later;
    EXPECT_THAT(id.status().message(),
                HasSubstr(absl::StrCat(
                    later ? "plan.later_candidates[0] (trial c1)" : "plan.trials[1] (trial x1)",
                    ": its spec is ", kMaxTrialSpecBytes + 1,
                    " bytes as JSON; a lease carries at most ", kMaxTrialSpecBytes)));
  }
  EXPECT_EQ(RawInt("SELECT count(*) FROM sweeps"), 1);
}

// Finding 5: a reason is kept up to kMaxReasonBytes, cut at a character.
TEST_F(StoreTest, AFailureReasonIsCutToItsLimit) {
  const std::string id = Submit(ScratchPlan(1));
  std::string huge;
  while (huge.size() < (1u << 20)) huge += "é";  // two bytes each
  ASSERT_TRUE(store_->Fail(LeaseOf("x0").attempt_id, huge, kT0).ok());
  const std::string at_limit(kMaxReasonBytes, 'r');
  ASSERT_TRUE(store_->Fail(LeaseOf("x0").attempt_id, at_limit, kT0).ok());
  const std::vector<std::string> failures = TrialOf(id, "x0").failures;
  ASSERT_EQ(failures.size(), 2u);
  EXPECT_LE(failures[0].size(), static_cast<size_t>(kMaxReasonBytes) + 64);
  EXPECT_THAT(failures[0], testing::EndsWith("é ... (1044544 more bytes)"));
  EXPECT_EQ(failures[1], "attempt 2 (worker w1): " + at_limit);
}

TEST_F(StoreTest, MalformedPlansAreRejectedNamingTheTrial) {
  auto empty = store_->SubmitSweep("e", "", "e.yaml", Plan{}, kT0);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);

  Plan twice = ScratchPlan(2);
  twice.trials[1].id = "x0";
  auto duplicate = store_->SubmitSweep("d", "", "d.yaml", twice, kT0);
  EXPECT_EQ(duplicate.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(duplicate.status().message(), HasSubstr("plan.trials[1]: trial x0"));

  Plan backwards;
  backwards.trials.push_back(Trial("t", TrialKind::kTransfer, "p"));
  backwards.trials.push_back(Trial("p", TrialKind::kPretrain));
  auto order = store_->SubmitSweep("o", "", "o.yaml", backwards, kT0);
  EXPECT_EQ(order.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(order.status().message(), HasSubstr("source_trial p is not an earlier trial"));

  auto list = store_->ListSweeps();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_F(StoreTest, UnknownIdsAreNotFoundNamingThem) {
  for (const absl::Status& s :
       {store_->GetSweep("s0000").status(), store_->Trials("s0000").status(),
        store_->Results("s0000", BlockedTrials::kLeftOut).status(),
        store_->SweepSpecText("s0000").status(), store_->Cancel("s0000", kT0),
        store_->ArtifactOf("s0000", "p").status()}) {
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
    EXPECT_THAT(s.message(), HasSubstr("sweep s0000"));
  }
  for (const absl::Status& s :
       {store_->Heartbeat(42, kT0).status(), store_->Fail(42, "x", kT0), store_->Release(42, kT0),
        store_->RecordEpoch(42, EpochRecord{}, kT0),
        store_->Complete(42, TrialResult{}, kT0).status()}) {
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
    EXPECT_THAT(s.message(), HasSubstr("attempt 42"));
  }
  auto lease = store_->LeaseNext("stranger", kT0);
  EXPECT_EQ(lease.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(lease.status().message(), HasSubstr("worker stranger"));
}

TEST_F(StoreTest, ExpandedSpecIsLeasedInDependencyOrder) {
  auto spec = ParseSweepSpecText(R"(name: tiny
source: {classes: [0, 1, 3, 8]}
targets:
  - {name: shirt-vs-sandal, positive: [6], negative: [5], train_size: 200}
model: {layers: [{dense: 30}, {dense: 10}]}
pretrain: {lr: 0.01, epochs: 1}
transfer:
  reuse: [1]
  schedules: {a: [{epochs: 1, train: head}]}
seeds: {count: 3, source: 2}
)",
                                 "tiny.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const Plan plan = ExpandSweep(*spec);
  const std::string id = Submit(plan, "tiny");
  std::map<std::string, std::string> model_of;  // pretrain trial -> its model
  std::set<std::string> done;
  for (size_t n = 0; n < plan.trials.size(); ++n) {
    std::optional<Lease> lease = LeaseNext();
    ASSERT_TRUE(lease.has_value());
    const auto trial = std::find_if(plan.trials.begin(), plan.trials.end(),
                                    [&](const TrialSpec& t) { return t.id == lease->trial_id; });
    ASSERT_NE(trial, plan.trials.end());
    if (trial->kind == TrialKind::kTransfer) {
      EXPECT_TRUE(done.contains(trial->source_trial));
      EXPECT_EQ(lease->source_sha256, model_of[trial->source_trial]);
    } else {
      EXPECT_EQ(lease->source_sha256, "");
    }
    if (trial->kind == TrialKind::kPretrain) {
      model_of[trial->id] = CompletePretrain(*lease);
    } else {
      EXPECT_TRUE(Complete(*lease));
    }
    done.insert(trial->id);
  }
  EXPECT_FALSE(LeaseNext().has_value());
  EXPECT_EQ(Status(id).state, SweepState::kDone);
  const std::vector<std::string> results = Results(id);
  ASSERT_EQ(results.size(), plan.trials.size());
  for (size_t i = 0; i < plan.trials.size(); ++i) {  // in plan order
    EXPECT_EQ(nlohmann::json::parse(results[i])["trial_id"], plan.trials[i].id);
  }
}

// ---------------------------------------------------------------------------
// Leasing

TEST_F(StoreTest, TransfersWaitForTheirPretrainedModel) {
  const std::string id = Submit(PretrainPlan(2));
  const Lease pretrain = LeaseOf("p");
  EXPECT_EQ(pretrain.sweep_id, id);
  EXPECT_EQ(pretrain.attempt, 1);
  EXPECT_EQ(pretrain.deadline_ms, kT0 + kLeaseMs);
  LeaseOf("s");
  EXPECT_FALSE(LeaseNext().has_value());  // t0 and t1 need p's model
  EXPECT_EQ(Status(id).pending, 2);

  const std::string model = CompletePretrain(pretrain);
  const Lease t0 = LeaseOf("t0");
  EXPECT_EQ(t0.source_sha256, model);
  EXPECT_EQ(LeaseOf("t1").source_sha256, model);
  auto artifact = store_->ArtifactOf(id, "p");
  ASSERT_TRUE(artifact.ok());
  EXPECT_EQ(*artifact, model);
  EXPECT_EQ(TrialOf(id, "p").model_sha256, model);
  EXPECT_EQ(store_->ArtifactOf(id, "t0").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, OlderSweepsLeaseFirstThenPlanOrder) {
  const std::string first = Submit(ScratchPlan(2), "first");
  const std::string second = Submit(ScratchPlan(2), "second");
  std::vector<std::pair<std::string, std::string>> order;
  while (std::optional<Lease> lease = LeaseNext())
    order.emplace_back(lease->sweep_id, lease->trial_id);
  EXPECT_THAT(order, ElementsAre(std::pair(first, "x0"), std::pair(first, "x1"),
                                 std::pair(second, "x0"), std::pair(second, "x1")));
}

// `seedproof run` saw a worker process die: its attempts fail now, not at their
// deadlines, each counting as a failed attempt; other workers' attempts go on.
TEST_F(StoreTest, FailWorkerEndsOnlyThatWorkersAttemptsAsFailures) {
  const std::string id = Submit(PretrainPlan(1));
  ASSERT_TRUE(store_->RegisterWorker("w2", "{}", kT0).ok());
  const Lease p = LeaseOf("p", kT0);
  auto other = store_->LeaseNext("w2", kT0);
  ASSERT_TRUE(other.ok() && other->has_value());
  EXPECT_EQ((*other)->trial_id, "s");

  auto failed = store_->FailWorker("w1", "worker w1 was killed by signal 9", kT0 + 5);
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_THAT(*failed, ElementsAre(p.attempt_id));
  const TrialStatus pretrain = TrialOf(id, "p");
  EXPECT_EQ(pretrain.state, TrialState::kPending);
  EXPECT_EQ(pretrain.failed_attempts, 1);
  EXPECT_THAT(pretrain.failures,
              ElementsAre("attempt 1 (worker w1): worker w1 was killed by signal 9"));
  EXPECT_EQ(TrialOf(id, "s").state, TrialState::kLeased);  // w2's
  auto lost = store_->Heartbeat(p.attempt_id, kT0 + 6);
  ASSERT_TRUE(lost.ok());
  EXPECT_EQ(*lost, HeartbeatVerdict::kLost);

  // Nothing held, or nobody known: nothing to fail.
  auto again = store_->FailWorker("w1", "again", kT0 + 7);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
  auto stranger = store_->FailWorker("nobody", "gone", kT0 + 7);
  ASSERT_TRUE(stranger.ok());
  EXPECT_TRUE(stranger->empty());

  // A worker that dies on the same trial max_attempts times fails it, and its
  // dependents are blocked, as expired leases would.
  for (int attempt = 2; attempt <= 3; ++attempt) {
    EXPECT_EQ(LeaseOf("p", kT0 + 10 * attempt).attempt, attempt);
    ASSERT_TRUE(store_->FailWorker("w1", "killed", kT0 + 10 * attempt + 1).ok());
  }
  EXPECT_EQ(TrialOf(id, "p").state, TrialState::kFailed);
  EXPECT_EQ(TrialOf(id, "t0").state, TrialState::kBlocked);
}

TEST_F(StoreTest, HeartbeatsRenewTheDeadlineAndWorkersAreSeen) {
  Submit(ScratchPlan(1));
  const Lease lease = LeaseOf("x0", kT0);
  auto verdict = store_->Heartbeat(lease.attempt_id, kT0 + 20'000);
  ASSERT_TRUE(verdict.ok());
  EXPECT_EQ(*verdict, HeartbeatVerdict::kContinue);
  // Past the first deadline, inside the renewed one.
  auto expired = store_->ExpireLeases(kT0 + kLeaseMs + 1);
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(*expired, 0);
  EXPECT_EQ(RawInt(absl::StrCat("SELECT deadline_ms FROM attempts WHERE id = ", lease.attempt_id)),
            kT0 + 20'000 + kLeaseMs);
  EXPECT_EQ(RawInt("SELECT last_seen_ms FROM workers WHERE id = 'w1'"), kT0 + 20'000);
  EXPECT_EQ(RawInt("SELECT registered_ms FROM workers WHERE id = 'w1'"), kT0);
}

TEST_F(StoreTest, ExpiredLeaseRequeuesTrialWithNextAttemptThenFailsAndBlocksDependents) {
  const std::string id = Submit(PretrainPlan(2));
  int64_t now = kT0;
  const Lease first = LeaseOf("p", now);
  LeaseOf("s", now);                                    // expires alongside p
  auto none = store_->ExpireLeases(first.deadline_ms);  // the deadline itself still counts
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);
  auto expired = store_->ExpireLeases(first.deadline_ms + 1);
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(*expired, 2);  // p and s
  auto lost = store_->Heartbeat(first.attempt_id, first.deadline_ms + 2);
  ASSERT_TRUE(lost.ok());
  EXPECT_EQ(*lost, HeartbeatVerdict::kLost);

  now = first.deadline_ms + 10;
  const Lease second = LeaseOf("p", now);
  EXPECT_EQ(second.attempt, 2);
  EXPECT_NE(second.attempt_id, first.attempt_id);  // ids are random, never reused
  ASSERT_TRUE(store_->Fail(second.attempt_id, "out of memory", now + 5).ok());
  EXPECT_EQ(TrialOf(id, "p").state, TrialState::kPending);

  const Lease third = LeaseOf("p", now + 10);
  EXPECT_EQ(third.attempt, 3);
  EXPECT_EQ(LeaseOf("s", now + 10).attempt, 2);
  ASSERT_TRUE(store_->ExpireLeases(third.deadline_ms + 1).ok());

  const TrialStatus p = TrialOf(id, "p");
  EXPECT_EQ(p.state, TrialState::kFailed);
  EXPECT_EQ(p.failed_attempts, 3);
  ASSERT_EQ(p.failures.size(), 3u);
  EXPECT_THAT(p.failures[0], HasSubstr("attempt 1 (worker w1): lease expired"));
  EXPECT_EQ(p.failures[1], "attempt 2 (worker w1): out of memory");
  EXPECT_THAT(p.failures[2], HasSubstr("attempt 3 (worker w1): lease expired"));
  for (const char* t : {"t0", "t1"}) {
    EXPECT_EQ(TrialOf(id, t).state, TrialState::kBlocked);
    EXPECT_EQ(TrialOf(id, t).blocked_by, "p");
  }
  // s expired a second time and waits for its third attempt.
  EXPECT_EQ(TrialOf(id, "s").failed_attempts, 2);
  EXPECT_EQ(Status(id).state, SweepState::kRunning);
  EXPECT_TRUE(Complete(LeaseOf("s", now + 20), TrialOutcome::kCompleted, now + 30));
  const SweepStatus status = Status(id);
  EXPECT_EQ(status.state, SweepState::kDone);
  EXPECT_EQ(status.finished_ms, now + 30);
  EXPECT_EQ(status.done, 1);
  EXPECT_EQ(status.failed, 1);
  EXPECT_EQ(status.blocked, 2);
}

TEST_F(StoreTest, MaxAttemptsIsAnOption) {
  Reopen({.max_attempts = 1});
  const std::string id = Submit(ScratchPlan(1));
  ASSERT_TRUE(store_->Fail(LeaseOf("x0").attempt_id, "segfault", kT0).ok());
  EXPECT_EQ(TrialOf(id, "x0").state, TrialState::kFailed);
  EXPECT_EQ(Status(id).state, SweepState::kDone);
}

TEST_F(StoreTest, ReleaseRequeuesWithoutConsumingAnAttempt) {
  const std::string id = Submit(ScratchPlan(1));
  for (int i = 0; i < 5; ++i) {  // more releases than max_attempts
    const Lease lease = LeaseOf("x0", kT0 + i);
    EXPECT_EQ(lease.attempt, 1);
    ASSERT_TRUE(store_->Release(lease.attempt_id, kT0 + i).ok());
    EXPECT_EQ(TrialOf(id, "x0").state, TrialState::kPending);
  }
  const TrialStatus trial = TrialOf(id, "x0");
  EXPECT_EQ(trial.failed_attempts, 0);
  EXPECT_TRUE(trial.failures.empty());
  EXPECT_TRUE(Complete(LeaseOf("x0")));
}

TEST_F(StoreTest, DuplicateAndLateCompletionsChangeNothing) {
  const std::string id = Submit(ScratchPlan(1));
  const Lease stale = LeaseOf("x0", kT0);
  ASSERT_TRUE(store_->ExpireLeases(stale.deadline_ms + 1).ok());
  const Lease current = LeaseOf("x0", stale.deadline_ms + 2);

  // The expired attempt finishes late: refused; the current attempt keeps the trial.
  EXPECT_FALSE(Complete(stale));
  EXPECT_TRUE(Results(id).empty());
  EXPECT_EQ(TrialOf(id, "x0").state, TrialState::kLeased);

  TrialResult result = ResultOf(current);
  result.test_accuracy = 0.875;
  const std::string json = ResultJson(result);
  auto accepted = store_->Complete(current.attempt_id, result, stale.deadline_ms + 3);
  ASSERT_TRUE(accepted.ok());
  EXPECT_TRUE(*accepted);

  // A retried Complete, and the stale attempt once more, with other results.
  result.test_accuracy = 0.25;
  for (const Lease& again : {current, stale}) {
    accepted = store_->Complete(again.attempt_id, result, kT0 + kLeaseMs * 3);
    ASSERT_TRUE(accepted.ok());
    EXPECT_FALSE(*accepted);
    auto verdict = store_->Heartbeat(again.attempt_id, kT0 + kLeaseMs * 3);
    ASSERT_TRUE(verdict.ok());
    EXPECT_EQ(*verdict, HeartbeatVerdict::kLost);
    ASSERT_TRUE(store_->Fail(again.attempt_id, "late", kT0 + kLeaseMs * 3).ok());
    ASSERT_TRUE(store_->Release(again.attempt_id, kT0 + kLeaseMs * 3).ok());
  }
  EXPECT_THAT(Results(id), ElementsAre(json));
  const TrialStatus trial = TrialOf(id, "x0");
  EXPECT_EQ(trial.state, TrialState::kDone);
  EXPECT_EQ(trial.outcome, TrialOutcome::kCompleted);
  EXPECT_EQ(trial.failed_attempts, 1);  // the expiry only
  EXPECT_EQ(RawInt("SELECT count(*) FROM results"), 1);
  EXPECT_EQ(RawInt("SELECT attempt_id FROM results"), current.attempt_id);
  const SweepStatus status = Status(id);
  EXPECT_EQ(status.state, SweepState::kDone);
  EXPECT_EQ(status.finished_ms, stale.deadline_ms + 3);
}

TEST_F(StoreTest, CompletionMustMatchTheLeasedTrial) {
  const std::string id = Submit(PretrainPlan(1));
  const Lease p = LeaseOf("p");
  TrialResult other = ResultOf(p);
  other.trial_id = "s";
  auto wrong = store_->Complete(p.attempt_id, other, kT0);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.status().message(), HasSubstr("result.trial_id is 's'"));

  TrialResult blocked = ResultOf(p, TrialOutcome::kBlocked);
  EXPECT_EQ(store_->Complete(p.attempt_id, blocked, kT0).status().code(),
            absl::StatusCode::kInvalidArgument);

  // A completed pretrain trial without its model: refused, and the lease stays.
  const auto complete_naming = [&](const std::string& model_sha256) {
    TrialResult result = ResultOf(p);
    result.model_sha256 = model_sha256;
    return store_->Complete(p.attempt_id, result, kT0).status();
  };
  const absl::Status missing = complete_naming("");
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.message(), HasSubstr("result.model_sha256"));
  const absl::Status absent = complete_naming(Sha256Hex("never uploaded"));
  EXPECT_EQ(absent.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(absent.message(), HasSubstr("was never put"));

  // Issue 19, finding 3: a pretrain named any stored artifact as its model. An
  // artifact another attempt uploaded is refused, and so is one of its own that
  // is not a model file.
  const Lease s = LeaseOf("s");
  const std::string others = ModelBytes("uploaded by the scratch trial's attempt");
  ASSERT_TRUE(store_->PutArtifact(s.attempt_id, Sha256Hex(others), others, kT0).ok());
  const absl::Status not_its_own = complete_naming(Sha256Hex(others));
  EXPECT_EQ(not_its_own.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(not_its_own.message(), HasSubstr("was never put by this attempt"));
  const std::string garbage = "not a model file at all";
  ASSERT_TRUE(store_->PutArtifact(p.attempt_id, Sha256Hex(garbage), garbage, kT0).ok());
  const absl::Status unloadable = complete_naming(Sha256Hex(garbage));
  EXPECT_EQ(unloadable.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unloadable.message(), HasSubstr("names no model"));

  EXPECT_EQ(TrialOf(id, "p").state, TrialState::kLeased);
  EXPECT_TRUE(Results(id).empty());
  CompletePretrain(p);
  EXPECT_EQ(TrialOf(id, "p").state, TrialState::kDone);
}

// A result's epochs must fit the trial's own phases; a fitted head (logistic,
// linear SVM) records its fit as one epoch even with no phases.
TEST_F(StoreTest, CompletionEpochsMustFitTheTrialsPhases) {
  Plan plan;
  plan.trials.push_back(Trial("x0", TrialKind::kScratch));  // one phase of 10 epochs
  TrialSpec fitted = Trial("f0", TrialKind::kScratch);
  fitted.phases.clear();
  fitted.head.kind = HeadSpec::Kind::kLogistic;
  plan.trials.push_back(fitted);
  Submit(plan);
  for (const char* id : {"x0", "f0"}) {
    const Lease lease = LeaseOf(id);
    const int allowed = std::string(id) == "x0" ? 10 : 1;
    TrialResult result = ResultOf(lease);
    result.epochs.resize(allowed + 1);
    for (int e = 0; e <= allowed; ++e) result.epochs[e].epoch = e + 1;
    auto refused = store_->Complete(lease.attempt_id, result, kT0);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << id;
    EXPECT_THAT(refused.status().message(),
                HasSubstr(absl::StrCat("result.epochs has ", allowed + 1, " epochs")));
    result.epochs.resize(allowed);
    auto accepted = store_->Complete(lease.attempt_id, result, kT0);
    ASSERT_TRUE(accepted.ok()) << accepted.status();
    EXPECT_TRUE(*accepted) << id;
  }
}

TEST_F(StoreTest, DivergedPretrainBlocksItsDependentsTransitively) {
  Plan plan = PretrainPlan(2);
  plan.trials.push_back(Trial("u", TrialKind::kTransfer, "t0"));  // needs t0's model
  const std::string id = Submit(plan);
  EXPECT_TRUE(Complete(LeaseOf("p"), TrialOutcome::kDiverged));
  EXPECT_TRUE(Complete(LeaseOf("s")));
  EXPECT_FALSE(LeaseNext().has_value());
  const TrialStatus p = TrialOf(id, "p");
  EXPECT_EQ(p.state, TrialState::kDone);
  EXPECT_EQ(p.outcome, TrialOutcome::kDiverged);
  EXPECT_EQ(p.model_sha256, "");
  for (const char* t : {"t0", "t1", "u"}) {
    EXPECT_EQ(TrialOf(id, t).state, TrialState::kBlocked) << t;
    EXPECT_EQ(TrialOf(id, t).blocked_by, "p") << t;
  }
  const SweepStatus status = Status(id);
  EXPECT_EQ(status.state, SweepState::kDone);
  EXPECT_EQ(status.done, 2);
  EXPECT_EQ(status.blocked, 3);
  EXPECT_EQ(Results(id).size(), 2u);
}

// ---------------------------------------------------------------------------
// Confirmation seeds

TEST_F(StoreTest, ASweepAwaitingConfirmationRunsOnUntilItsTrialsAreAdded) {
  Plan plan = ScratchPlan(2);
  plan.later_candidates = {Trial("c0", TrialKind::kScratch), Trial("c1", TrialKind::kScratch)};
  const std::string id = Submit(plan);
  EXPECT_TRUE(store_->SweepsReadyToExtend().empty());  // exploration not done
  EXPECT_TRUE(Complete(LeaseOf("x0")));
  EXPECT_TRUE(Complete(LeaseOf("x1")));
  EXPECT_EQ(Status(id).state, SweepState::kRunning);
  EXPECT_EQ(store_->SweepsReadyToExtend(), std::vector<std::string>{id});
  Reopen();  // the wait survives a restart
  EXPECT_EQ(store_->SweepsReadyToExtend(), std::vector<std::string>{id});
  // A trial the sweep has is skipped; the new one joins in plan order.
  ASSERT_TRUE(
      store_
          ->ExtendSweep(id, {Trial("x1", TrialKind::kScratch), Trial("c1", TrialKind::kScratch)},
                        false, kT0)
          .ok());
  EXPECT_TRUE(store_->SweepsReadyToExtend().empty());
  SweepStatus status = Status(id);
  EXPECT_EQ(status.total, 3);
  EXPECT_EQ(status.pending, 1);
  EXPECT_EQ(TrialOf(id, "c1").plan_index, 2);
  // Once only: a second extension (another thread, a restart) is refused.
  const absl::Status again =
      store_->ExtendSweep(id, {Trial("c0", TrialKind::kScratch)}, false, kT0);
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.message(), HasSubstr(id));
  EXPECT_TRUE(Complete(LeaseOf("c1")));
  status = Status(id);
  EXPECT_EQ(status.state, SweepState::kDone);
  EXPECT_EQ(status.done, 3);
  EXPECT_EQ(Results(id).size(), 3u);
}

// Sequential seeds: step after step, each added when the last has ended, the
// wait kept across a restart until the step that says it is the last.
TEST_F(StoreTest, ASequentialSweepWaitsAfterEachStepUntilTheLast) {
  Plan plan = ScratchPlan(1);
  plan.later_candidates = {Trial("s1", TrialKind::kScratch), Trial("s2", TrialKind::kScratch)};
  const std::string id = Submit(plan);
  EXPECT_TRUE(Complete(LeaseOf("x0")));
  ASSERT_TRUE(store_->ExtendSweep(id, {Trial("s1", TrialKind::kScratch)}, true, kT0).ok());
  EXPECT_TRUE(store_->SweepsReadyToExtend().empty());  // s1 has not run
  EXPECT_TRUE(Complete(LeaseOf("s1")));
  EXPECT_EQ(Status(id).state, SweepState::kRunning);
  Reopen();
  EXPECT_EQ(store_->SweepsReadyToExtend(), std::vector<std::string>{id});
  // A step whose trials the sweep has already adds nothing: the sweep must not
  // wait forever for a step that never comes.
  ASSERT_TRUE(store_->ExtendSweep(id, {Trial("s1", TrialKind::kScratch)}, true, kT0).ok());
  EXPECT_EQ(Status(id).state, SweepState::kDone);
  EXPECT_EQ(Status(id).total, 2);
}

TEST_F(StoreTest, NothingToConfirmEndsTheSweep) {
  Plan plan = ScratchPlan(1);
  plan.later_candidates = {Trial("c0", TrialKind::kScratch)};
  const std::string id = Submit(plan);
  EXPECT_TRUE(Complete(LeaseOf("x0")));
  ASSERT_TRUE(store_->ExtendSweep(id, {}, false, kT0 + 5).ok());
  EXPECT_EQ(Status(id).state, SweepState::kDone);
  EXPECT_EQ(Status(id).finished_ms, kT0 + 5);
}

TEST_F(StoreTest, ConfirmationTrialsWhoseSourceDivergedAreBlockedAtOnce) {
  Plan plan = PretrainPlan(0);
  plan.later_candidates = {Trial("t9", TrialKind::kTransfer, "p")};
  const std::string id = Submit(plan);
  EXPECT_TRUE(Complete(LeaseOf("p"), TrialOutcome::kDiverged));
  EXPECT_TRUE(Complete(LeaseOf("s")));
  ASSERT_TRUE(store_->ExtendSweep(id, plan.later_candidates, false, kT0).ok());
  EXPECT_EQ(TrialOf(id, "t9").state, TrialState::kBlocked);
  EXPECT_EQ(TrialOf(id, "t9").blocked_by, "p");
  EXPECT_EQ(Status(id).state, SweepState::kDone);
  // A confirmation trial needing a trial the sweep does not have is refused whole.
  Plan other = ScratchPlan(1);
  other.later_candidates = {Trial("c", TrialKind::kScratch)};
  const std::string second = Submit(other, "second");
  EXPECT_TRUE(Complete(LeaseOf("x0")));
  const absl::Status bad =
      store_->ExtendSweep(second, {Trial("u", TrialKind::kTransfer, "nowhere")}, false, kT0);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(), HasSubstr("nowhere"));
  EXPECT_EQ(Status(second).total, 1);
  EXPECT_EQ(store_->SweepsReadyToExtend(), std::vector<std::string>{second});
}

TEST_F(StoreTest, CancelStopsLeasingAndHeartbeatsSayCancelled) {
  const std::string id = Submit(PretrainPlan(2));
  const std::string other = Submit(ScratchPlan(1), "other");
  const Lease p = LeaseOf("p");
  const Lease s = LeaseOf("s");
  ASSERT_TRUE(store_->Cancel(id, kT0 + 100).ok());
  SweepStatus status = Status(id);
  EXPECT_EQ(status.state, SweepState::kCancelled);
  EXPECT_EQ(status.finished_ms, kT0 + 100);
  EXPECT_EQ(status.cancelled, 2);
  EXPECT_EQ(status.leased, 2);

  // Only the other sweep is leased now.
  EXPECT_EQ(LeaseNext()->sweep_id, other);
  EXPECT_FALSE(LeaseNext().has_value());
  auto verdict = store_->Heartbeat(p.attempt_id, kT0 + 200);
  ASSERT_TRUE(verdict.ok());
  EXPECT_EQ(*verdict, HeartbeatVerdict::kCancelled);

  // The running attempts end: one gives its lease back, one finishes and is kept.
  ASSERT_TRUE(store_->Release(p.attempt_id, kT0 + 300).ok());
  EXPECT_TRUE(Complete(s));
  EXPECT_EQ(TrialOf(id, "p").state, TrialState::kCancelled);
  EXPECT_EQ(TrialOf(id, "s").state, TrialState::kDone);
  status = Status(id);
  EXPECT_EQ(status.state, SweepState::kCancelled);
  EXPECT_EQ(status.cancelled, 3);
  EXPECT_EQ(status.done, 1);
  EXPECT_EQ(status.finished_ms, kT0 + 100);
  EXPECT_FALSE(LeaseNext().has_value());

  EXPECT_TRUE(store_->Cancel(id, kT0 + 400).ok());  // again: nothing changes
  EXPECT_EQ(Status(id).finished_ms, kT0 + 100);
  Reopen();  // and it stays cancelled
  EXPECT_EQ(Status(id).state, SweepState::kCancelled);
  EXPECT_FALSE(LeaseNext().has_value());
}

TEST_F(StoreTest, CancellingADoneSweepIsRefused) {
  const std::string id = Submit(ScratchPlan(1));
  EXPECT_TRUE(Complete(LeaseOf("x0")));
  const absl::Status s = store_->Cancel(id, kT0);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr(id));
  EXPECT_EQ(Status(id).state, SweepState::kDone);
}

TEST_F(StoreTest, EpochsOfCurrentAttemptsAreKept) {
  Submit(ScratchPlan(1));
  const Lease lease = LeaseOf("x0");
  ASSERT_TRUE(store_->RecordEpoch(lease.attempt_id, EpochRecord{.epoch = 1}, kT0).ok());
  ASSERT_TRUE(store_->RecordEpoch(lease.attempt_id, EpochRecord{.epoch = 2}, kT0).ok());
  EXPECT_TRUE(Complete(lease));
  ASSERT_TRUE(store_->RecordEpoch(lease.attempt_id, EpochRecord{.epoch = 3}, kT0).ok());  // dropped
  EXPECT_EQ(
      RawInt(absl::StrCat("SELECT count(*) FROM epochs WHERE attempt_id = ", lease.attempt_id)), 2);
}

// A write that fails midway (here a trigger aborts it) is rolled back, and the
// store's memory of leases and states goes back to what the database says.
TEST_F(StoreTest, AFailedWriteChangesNeitherTheFileNorTheStore) {
  const std::string id = Submit(ScratchPlan(2));
  const Lease lease = LeaseOf("x0");
  ASSERT_TRUE(Raw()
                  ->Exec("CREATE TRIGGER refuse BEFORE INSERT ON results "
                         "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
                  .ok());
  const TrialResult result = ResultOf(lease);
  auto accepted = store_->Complete(lease.attempt_id, result, kT0);
  ASSERT_FALSE(accepted.ok());
  EXPECT_THAT(accepted.status().message(), HasSubstr("disk on fire"));
  EXPECT_THAT(accepted.status().message(), HasSubstr(path_));

  const SweepStatus status = Status(id);
  EXPECT_EQ(status.leased, 1);
  EXPECT_EQ(status.pending, 1);
  auto verdict = store_->Heartbeat(lease.attempt_id, kT0 + 1);
  ASSERT_TRUE(verdict.ok());
  EXPECT_EQ(*verdict, HeartbeatVerdict::kContinue);
  EXPECT_EQ(RawInt("SELECT count(*) FROM attempts WHERE state = 'leased'"), 1);

  ASSERT_TRUE(Raw()->Exec("DROP TRIGGER refuse").ok());
  EXPECT_TRUE(Complete(lease));
  EXPECT_TRUE(Complete(LeaseOf("x1")));
  EXPECT_EQ(Status(id).state, SweepState::kDone);
}

// ---------------------------------------------------------------------------
// Artifacts

TEST_F(StoreTest, ArtifactsAreStoredByVerifiedHash) {
  Submit(PretrainPlan(0));
  const Lease lease = LeaseOf("p");
  // SHA-256("abc") from FIPS 180-2.
  const std::string abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  ASSERT_TRUE(store_->PutArtifact(lease.attempt_id, abc, "abc", kT0).ok());
  ASSERT_TRUE(store_->PutArtifact(lease.attempt_id, abc, "abc", kT0).ok());  // again: no change
  auto bytes = store_->GetArtifact(abc);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, "abc");
  // Binary content survives.
  const std::string binary("\0\x01\xff model", 9);
  ASSERT_TRUE(store_->PutArtifact(lease.attempt_id, Sha256Hex(binary), binary, kT0).ok());
  EXPECT_EQ(*store_->GetArtifact(Sha256Hex(binary)), binary);
  EXPECT_EQ(RawInt("SELECT count(*) FROM artifacts"), 2);
}

TEST_F(StoreTest, ArtifactHashMismatchIsRejectedAndNothingStored) {
  Submit(ScratchPlan(1));
  const Lease lease = LeaseOf("x0");
  const std::string sha = Sha256Hex("the model");
  const absl::Status s = store_->PutArtifact(lease.attempt_id, sha, "the modeL", kT0);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("sha256: " + sha + " does not match the 9 bytes sent"));
  EXPECT_EQ(store_->GetArtifact(sha).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetArtifact(Sha256Hex("the modeL")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(RawInt("SELECT count(*) FROM artifacts"), 0);
}

TEST_F(StoreTest, MalformedShaIdsAreRejectedNamingTheField) {
  Submit(ScratchPlan(1));
  const Lease lease = LeaseOf("x0");
  const std::string upper = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
  for (const std::string& bad :
       {std::string("abc"), upper, std::string(64, 'g'), std::string("../../etc/passwd")}) {
    const absl::Status put = store_->PutArtifact(lease.attempt_id, bad, "abc", kT0);
    EXPECT_EQ(put.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(put.message(), HasSubstr("sha256: \"" + bad + "\" is not a SHA-256"));
    const absl::Status get = store_->GetArtifact(bad).status();
    EXPECT_EQ(get.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(get.message(), HasSubstr("sha256"));
  }
}

// An upload for an attempt that ended is refused, naming how it ended, so the
// worker does not go on as if its model were kept.
TEST_F(StoreTest, UploadsOfAttemptsNoLongerCurrentAreRefusedAndNothingStored) {
  Submit(ScratchPlan(3));
  const Lease completed = LeaseOf("x0");
  EXPECT_TRUE(Complete(completed));
  const Lease released = LeaseOf("x1");
  ASSERT_TRUE(store_->Release(released.attempt_id, kT0).ok());
  const Lease expired = LeaseOf("x1");
  ASSERT_EQ(*store_->ExpireLeases(expired.deadline_ms + 1), 1);
  for (const auto& [lease, how] :
       {std::pair{completed, "completed"}, std::pair{released, "released"},
        std::pair{expired, "expired"}}) {
    const absl::Status put = store_->PutArtifact(lease.attempt_id, Sha256Hex("late"), "late", kT0);
    EXPECT_EQ(put.code(), absl::StatusCode::kFailedPrecondition) << how;
    EXPECT_THAT(put.message(),
                HasSubstr(absl::StrCat("attempt ", lease.attempt_id, " ended (", how, ")")));
  }
  EXPECT_EQ(store_->GetArtifact(Sha256Hex("late")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(fs::path(path_ + ".artifacts") / Sha256Hex("late")));
  EXPECT_EQ(RawInt("SELECT count(*) FROM uploads"), 0);
  EXPECT_EQ(store_->PutArtifact(12345, Sha256Hex("late"), "late", kT0).code(),
            absl::StatusCode::kNotFound);
}

// ---------------------------------------------------------------------------
// Restart

// pending, leased and done trials, a failed attempt and a model, all come back.
TEST_F(StoreTest, ReopenRestoresEverything) {
  const std::string id = Submit(PretrainPlan(2));
  const Lease p = LeaseOf("p");
  const std::string model = CompletePretrain(p);
  const Lease s1 = LeaseOf("s");
  ASSERT_TRUE(store_->Fail(s1.attempt_id, "disk full", kT0).ok());
  const Lease s2 = LeaseOf("s", kT0 + 1000);
  const SweepStatus before = Status(id);

  Reopen();
  const SweepStatus after = Status(id);
  EXPECT_EQ(after.pending, before.pending);
  EXPECT_EQ(after.leased, 1);
  EXPECT_EQ(after.done, 1);
  EXPECT_EQ(after.created_ms, before.created_ms);
  EXPECT_EQ(after.name, before.name);
  EXPECT_EQ(TrialOf(id, "s").failures,
            std::vector<std::string>{"attempt 1 (worker w1): disk full"});
  EXPECT_EQ(*store_->ArtifactOf(id, "p"), model);

  // The done trial is never redone; the lease from before the restart is still current.
  EXPECT_FALSE(Complete(p));
  auto verdict = store_->Heartbeat(s2.attempt_id, kT0 + 2000);
  ASSERT_TRUE(verdict.ok());
  EXPECT_EQ(*verdict, HeartbeatVerdict::kContinue);
  EXPECT_EQ(LeaseOf("t0").source_sha256, model);
  EXPECT_EQ(LeaseOf("t1").source_sha256, model);
  EXPECT_FALSE(LeaseNext().has_value());

  // Attempt ids keep growing across the restart.
  EXPECT_EQ(RawInt("SELECT count(DISTINCT id) FROM attempts"), 5);
  EXPECT_TRUE(Complete(s2));
  EXPECT_EQ(Results(id).size(), 2u);
}

// A lease from before a crash that expires without a heartbeat since was cut
// short by the coordinator, not by its trial: it is given back, uncounted. One
// whose worker came back and then went silent counts as usual.
TEST_F(StoreTest, LeasesACrashInterruptedAreGivenBackUncounted) {
  const std::string id = Submit(ScratchPlan(2));
  const Lease a = LeaseOf("x0", kT0);
  const Lease b = LeaseOf("x1", kT0 + 10'000);
  Reopen();
  ASSERT_TRUE(store_->Heartbeat(b.attempt_id, kT0 + 10'001).ok());  // b's worker is back
  ASSERT_EQ(*store_->ExpireLeases(a.deadline_ms + 1), 1);
  EXPECT_EQ(TrialOf(id, "x0").failed_attempts, 0);
  EXPECT_TRUE(TrialOf(id, "x0").failures.empty());
  EXPECT_EQ(RawInt(absl::StrCat("SELECT count(*) FROM attempts WHERE id = ", a.attempt_id,
                                " AND state = 'released' AND reason LIKE 'interrupted: the "
                                "coordinator restarted while worker w1 held the lease%'")),
            1);
  const Lease again = LeaseOf("x0", a.deadline_ms + 2);
  EXPECT_EQ(again.attempt, 1);

  ASSERT_EQ(*store_->ExpireLeases(kT0 + 10'001 + kLeaseMs + 1), 1);
  EXPECT_EQ(TrialOf(id, "x1").failed_attempts, 1);
  EXPECT_EQ(TrialOf(id, "x1").failures.size(), 1u);
}

// Three crashes in a row never fail a healthy trial.
TEST_F(StoreTest, RepeatedCrashesNeverFailATrial) {
  const std::string id = Submit(ScratchPlan(1));
  int64_t now = kT0;
  for (int crash = 0; crash < 4; ++crash) {
    const Lease lease = LeaseOf("x0", now);
    EXPECT_EQ(lease.attempt, 1);
    Reopen();
    now = lease.deadline_ms + 1;
    ASSERT_EQ(*store_->ExpireLeases(now), 1);
  }
  EXPECT_EQ(TrialOf(id, "x0").state, TrialState::kPending);
  EXPECT_EQ(TrialOf(id, "x0").failed_attempts, 0);
}

// After a restart each adopted lease has a full lease_ms for its worker to find
// the coordinator again, however long the coordinator was down.
TEST_F(StoreTest, AdoptedLeasesGetAFreshDeadline) {
  const std::string id = Submit(ScratchPlan(2));
  const Lease a = LeaseOf("x0", kT0);
  const Lease b = LeaseOf("x1", kT0 + 50'000);
  Reopen();
  const int64_t restart = kT0 + 40'000;  // past a's deadline, before b's
  ASSERT_EQ(*store_->AdoptLeases(restart), 2);
  EXPECT_EQ(*store_->ExpireLeases(restart + kLeaseMs - 1), 0);
  EXPECT_EQ(*store_->Heartbeat(a.attempt_id, restart + kLeaseMs - 2), HeartbeatVerdict::kContinue);
  EXPECT_EQ(RawInt(absl::StrCat("SELECT deadline_ms FROM attempts WHERE id = ", b.attempt_id)),
            b.deadline_ms);  // already later than restart + lease_ms
  ASSERT_EQ(*store_->ExpireLeases(b.deadline_ms + 1), 1);
  EXPECT_EQ(TrialOf(id, "x1").failed_attempts, 0);  // released: the restart interrupted it
  EXPECT_EQ(TrialOf(id, "x0").state, TrialState::kLeased);
}

// A process that dies mid-sweep without closing anything: the WAL holds every
// committed change, and the next process sees all of them.
TEST_F(StoreTest, StateSurvivesAProcessKilledWithoutClosing) {
  store_.reset();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store = Store::Open(path_);
    if (!store.ok()) _exit(2);
    auto id = (*store)->SubmitSweep("crash", "name: crash\n", "crash.yaml", PretrainPlan(1), kT0);
    if (!id.ok()) _exit(3);
    auto p = (*store)->LeaseNext("w1", kT0);
    if (!p.ok() || !*p) _exit(4);
    const std::string model = ModelBytes("p");
    if (!(*store)->PutArtifact((*p)->attempt_id, Sha256Hex(model), model, kT0).ok()) _exit(5);
    TrialResult result = ResultOf(**p);
    result.model_sha256 = Sha256Hex(model);
    auto accepted = (*store)->Complete((*p)->attempt_id, result, kT0);
    if (!accepted.ok() || !*accepted) _exit(6);
    auto s = (*store)->LeaseNext("w1", kT0);  // left leased
    if (!s.ok() || !*s || (*s)->trial_id != "s") _exit(7);
    _exit(0);  // no destructors, no sqlite3_close, no checkpoint
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(fs::exists(path_ + "-wal"));

  store_ = Open();
  ASSERT_NE(store_, nullptr);
  auto sweeps = store_->ListSweeps();
  ASSERT_TRUE(sweeps.ok());
  ASSERT_EQ(sweeps->size(), 1u);
  const std::string id = (*sweeps)[0].sweep_id;
  EXPECT_EQ((*sweeps)[0].done, 1);
  EXPECT_EQ((*sweeps)[0].leased, 1);
  EXPECT_EQ((*sweeps)[0].pending, 1);
  EXPECT_EQ(Results(id).size(), 1u);
  EXPECT_EQ(LeaseOf("t0").source_sha256, Sha256Hex(ModelBytes("p")));
  EXPECT_EQ(*store_->GetArtifact(Sha256Hex(ModelBytes("p"))), ModelBytes("p"));
}

// ---------------------------------------------------------------------------
// Many workers at once

// Threads lease, fail now and then, release now and then, and complete, with
// dependencies in the way: no trial is ever leased to two attempts at once, no
// transfer before its pretrain trial completed, and every trial ends with
// exactly one stored result.
TEST_F(StoreTest, ConcurrentWorkersNeverShareATrialAndStoreEachResultOnce) {
  constexpr int kThreads = 8;
  constexpr int kPretrains = 20, kTransfersEach = 40;
  Plan plan;
  std::map<std::string, std::string> source_of;
  for (int p = 0; p < kPretrains; ++p) {
    plan.trials.push_back(Trial(absl::StrCat("p", p), TrialKind::kPretrain));
  }
  for (int t = 0; t < kTransfersEach; ++t) {
    for (int p = 0; p < kPretrains; ++p) {
      const std::string trial = absl::StrCat("t", p, "-", t), source = absl::StrCat("p", p);
      plan.trials.push_back(Trial(trial, TrialKind::kTransfer, source));
      source_of[trial] = source;
    }
  }
  const std::string id = Submit(plan);
  for (int w = 0; w < kThreads; ++w) {
    ASSERT_TRUE(store_->RegisterWorker(absl::StrCat("w", w), "{}", kT0).ok());
  }

  // A thread ends its attempt while holding mu, so by the time another thread may
  // lease the trial again (or a dependent), the bookkeeping below agrees.
  std::mutex mu;
  std::set<std::string> running;           // trials a thread holds now
  std::map<std::string, int> completions;  // accepted completions by trial
  std::set<std::string> failed_once, released_once;
  int overlaps = 0, early = 0, wrong_model = 0, errors = 0;
  const auto work = [&](int w) {
    const std::string worker = absl::StrCat("w", w);
    for (int n = 0;; ++n) {
      auto lease = store_->LeaseNext(worker, kT0);
      if (!lease.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        ++errors;
        return;
      }
      if (!*lease) {
        auto status = store_->GetSweep(id);
        if (!status.ok() || status->state == SweepState::kDone) return;
        std::this_thread::yield();  // others hold the pretrain trials
        continue;
      }
      const Lease l = **lease;
      const bool pretrain = !source_of.contains(l.trial_id);
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!running.insert(l.trial_id).second) ++overlaps;
        if (!pretrain) {
          const std::string& source = source_of.at(l.trial_id);
          if (completions[source] != 1) ++early;
          if (l.source_sha256 != Sha256Hex(ModelBytes(source))) ++wrong_model;
        }
      }
      TrialResult result = ResultOf(l);
      if (pretrain) {
        const std::string model = ModelBytes(l.trial_id);
        result.model_sha256 = Sha256Hex(model);
        if (!store_->PutArtifact(l.attempt_id, result.model_sha256, model, kT0).ok()) {
          std::lock_guard<std::mutex> lock(mu);
          ++errors;
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      running.erase(l.trial_id);
      // Each trial fails at most once (max_attempts is never reached) and is
      // released at most once.
      if (n % 7 == 3 && failed_once.insert(l.trial_id).second) {
        if (!store_->Fail(l.attempt_id, "flaky", kT0).ok()) ++errors;
      } else if (n % 11 == 5 && released_once.insert(l.trial_id).second) {
        if (!store_->Release(l.attempt_id, kT0).ok()) ++errors;
      } else {
        auto accepted = store_->Complete(l.attempt_id, result, kT0);
        if (accepted.ok() && *accepted) {
          ++completions[l.trial_id];
        } else {
          ++errors;
        }
      }
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < kThreads; ++w) threads.emplace_back(work, w);
  for (std::thread& t : threads) t.join();

  EXPECT_EQ(overlaps, 0);
  EXPECT_EQ(early, 0);
  EXPECT_EQ(wrong_model, 0);
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(completions.size(), plan.trials.size());
  for (const auto& [trial, count] : completions) EXPECT_EQ(count, 1) << trial;
  const SweepStatus status = Status(id);
  EXPECT_EQ(status.state, SweepState::kDone);
  EXPECT_EQ(status.done, static_cast<int>(plan.trials.size()));
  const std::vector<std::string> results = Results(id);
  ASSERT_EQ(results.size(), plan.trials.size());
  for (size_t i = 0; i < plan.trials.size(); ++i) {
    EXPECT_EQ(nlohmann::json::parse(results[i])["trial_id"], plan.trials[i].id);
  }
  EXPECT_EQ(RawInt("SELECT count(*) FROM results"), static_cast<int64_t>(plan.trials.size()));
  EXPECT_EQ(RawInt("SELECT count(*) FROM attempts WHERE state = 'leased'"), 0);
  EXPECT_GT(failed_once.size(), 0u);
  EXPECT_GT(released_once.size(), 0u);
}

// Commits never wait for a checkpoint: a thread of the store copies the log into
// the database file while it runs (before, that happened inside the commit that
// crossed 10,000 log pages, and these few hundred would not have).
TEST_F(StoreTest, TheLogIsCopiedIntoTheFileInTheBackground) {
  const std::string id = Submit(ScratchPlan(300));
  const auto file_size = [&] { return fs::file_size(path_); };
  const auto before = file_size();
  for (int i = 0; i < 300; ++i) {
    auto lease = store_->LeaseNext("w1", kT0);
    ASSERT_TRUE(lease.ok() && lease->has_value());
    ASSERT_TRUE(store_->Complete((*lease)->attempt_id, ResultOf(**lease), kT0).ok());
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (file_size() == before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GT(file_size(), before);
  EXPECT_EQ(Status(id).state, SweepState::kDone);
}

// Finding 5: an artifact's bytes are a file beside the database, not a row of it,
// so an upload is written without the store's lock, and a big one leaves neither
// the database nor its log big.
TEST_F(StoreTest, AnArtifactIsAFileBesideTheDatabase) {
  Submit(ScratchPlan(1));
  const Lease lease = LeaseOf("x0");
  const std::string big(100 << 20, 'b');
  ASSERT_TRUE(store_->PutArtifact(lease.attempt_id, Sha256Hex(big), big, kT0).ok());
  const fs::path file = fs::path(path_ + ".artifacts") / Sha256Hex(big);
  EXPECT_EQ(fs::file_size(file), big.size());
  EXPECT_EQ(RawInt("SELECT size FROM artifacts"), static_cast<int64_t>(big.size()));
  EXPECT_LT(fs::file_size(path_) + fs::file_size(path_ + "-wal"), 1u << 20);
  EXPECT_EQ(*store_->GetArtifact(Sha256Hex(big)), big);
  // A file opened before the store deletes it reads to its end.
  auto reader = store_->OpenArtifact(Sha256Hex(big));
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_TRUE(store_->Fail(lease.attempt_id, "crashed", kT0).ok());
  EXPECT_FALSE(fs::exists(file));
  EXPECT_EQ(store_->GetArtifact(Sha256Hex(big)).status().code(), absl::StatusCode::kNotFound);
  auto tail = reader->Read(reader->size() - 3, 100);
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_EQ(*tail, "bbb");
}

// An upload in progress is a file of its own: other calls go on meanwhile, and
// one dropped before it was put leaves nothing behind.
TEST_F(StoreTest, AnUploadInProgressTakesNoLockAndLeavesNothingIfDropped) {
  Submit(ScratchPlan(2));
  const Lease lease = LeaseOf("x0");
  auto upload = store_->NewArtifact();
  ASSERT_TRUE(upload.ok()) << upload.status();
  ASSERT_TRUE((*upload)->Append("half a model").ok());
  EXPECT_TRUE(Complete(LeaseOf("x1")));  // while the upload is open
  const fs::path incoming = fs::path(path_ + ".artifacts") / ".incoming";
  EXPECT_FALSE(fs::is_empty(incoming));
  upload->reset();
  EXPECT_TRUE(fs::is_empty(incoming));
  EXPECT_EQ(RawInt("SELECT count(*) FROM artifacts"), 0);
  EXPECT_TRUE(Complete(lease));
}

// A crash may leave a file no row lists (named before its row committed) or a
// file half written; the next store that writes removes both, a reader neither.
// A row whose file is missing or cut short is DATA_LOSS, naming the artifact.
TEST_F(StoreTest, FilesACrashLeftAreRemovedAndAMissingOneIsDataLoss) {
  Submit(ScratchPlan(1));
  const Lease lease = LeaseOf("x0");
  ASSERT_TRUE(store_->PutArtifact(lease.attempt_id, Sha256Hex("kept"), "kept", kT0).ok());
  store_.reset();
  const fs::path dir = path_ + ".artifacts";
  const fs::path orphan = dir / Sha256Hex("orphan"), partial = dir / ".incoming" / "1234";
  std::ofstream(orphan) << "orphan";
  std::ofstream(partial) << "part";
  std::ofstream(dir / "notes.txt") << "not an artifact's name: left alone";
  {
    auto reader = Store::Open(path_, {.migrate = false});
    ASSERT_TRUE(reader.ok()) << reader.status();
    EXPECT_EQ(*(*reader)->GetArtifact(Sha256Hex("kept")), "kept");
  }
  EXPECT_TRUE(fs::exists(orphan));
  EXPECT_TRUE(fs::exists(partial));
  Reopen();
  EXPECT_FALSE(fs::exists(orphan));
  EXPECT_FALSE(fs::exists(partial));
  EXPECT_TRUE(fs::exists(dir / "notes.txt"));
  EXPECT_EQ(*store_->GetArtifact(Sha256Hex("kept")), "kept");

  fs::resize_file(dir / Sha256Hex("kept"), 2);
  absl::Status cut = store_->GetArtifact(Sha256Hex("kept")).status();
  EXPECT_EQ(cut.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(cut.message(), HasSubstr(absl::StrCat("artifact ", Sha256Hex("kept"),
                                                    " of 4 bytes: "
                                                    "its file has 2")));
  fs::remove(dir / Sha256Hex("kept"));
  absl::Status missing = store_->GetArtifact(Sha256Hex("kept")).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(missing.message(), HasSubstr("cannot open"));
}

// Version 6 kept the bytes in the database; opening it moves each to its file, and
// a store whose bytes no longer match their hash is refused, unchanged.
TEST_F(StoreTest, AVersionSixStoresArtifactsMoveToFiles) {
  Submit(ScratchPlan(1));
  store_.reset();
  ASSERT_TRUE(Raw()->Exec(ARTIFACTS_AS_VERSION_SIX_SQL "PRAGMA user_version = 6;").ok());
  const auto keep = [&](const std::string& bytes, const std::string& listed_as) {
    fs::remove_all(path_ + ".artifacts");
    auto db = Raw();
    ASSERT_TRUE(db->Exec("DELETE FROM artifacts").ok());
    ASSERT_TRUE(db->Prepare("INSERT INTO artifacts (sha256, bytes, stored_ms) VALUES (?1, ?2, 0)",
                            listed_as, Blob{bytes})
                    .Run()
                    .ok());
  };
  const std::string model = ModelBytes("p");
  keep("damaged", Sha256Hex(model));
  auto refused = Store::Open(path_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(refused.status().message(),
              HasSubstr(absl::StrCat("artifact ", Sha256Hex(model),
                                     " holds bytes whose SHA-256 is ", Sha256Hex("damaged"))));
  EXPECT_EQ(RawInt("PRAGMA user_version"), 6);
  keep(model, Sha256Hex(model));
  Reopen();
  EXPECT_EQ(RawInt("PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(RawInt("SELECT count(*) FROM pragma_table_info('artifacts') WHERE name = 'bytes'"), 0);
  EXPECT_EQ(RawInt("SELECT size FROM artifacts"), static_cast<int64_t>(model.size()));
  EXPECT_EQ(*store_->GetArtifact(Sha256Hex(model)), model);
}

// Finding 5: storage has a bound. A put past max_artifact_bytes is refused,
// naming the limit, and stores nothing; at the limit it is taken. What an
// attempt that did not complete uploaded is deleted, and the room it took is
// free again, unless something else refers to the same bytes.
TEST_F(StoreTest, ArtifactsHaveAQuotaAndWhatNoOneNeedsIsCollected) {
  Reopen({.max_artifact_bytes = 1000});
  const std::string id = Submit(PretrainPlan(1));
  const Lease p = LeaseOf("p");
  const std::string a(600, 'a'), b(400, 'b'), c(1, 'c');
  ASSERT_TRUE(store_->PutArtifact(p.attempt_id, Sha256Hex(a), a, kT0).ok());
  const absl::Status over = store_->PutArtifact(p.attempt_id, Sha256Hex(b + "b"), b + "b", kT0);
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(over.message(), HasSubstr("its 401 bytes would take the store's artifacts to 1001 "
                                        "bytes, past its limit of 1000"));
  EXPECT_EQ(store_->GetArtifact(Sha256Hex(b + "b")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(fs::path(path_ + ".artifacts") / Sha256Hex(b + "b")));
  ASSERT_TRUE(store_->PutArtifact(p.attempt_id, Sha256Hex(b), b, kT0).ok());  // exactly 1000
  ASSERT_TRUE(store_->PutArtifact(p.attempt_id, Sha256Hex(a), a, kT0).ok());  // stored already
  // The scratch trial's attempt uploads the same bytes as the pretrain's.
  const Lease s = LeaseOf("s");
  ASSERT_TRUE(store_->PutArtifact(s.attempt_id, Sha256Hex(b), b, kT0).ok());
  // The pretrain fails: a is nobody's and goes; b is still s's upload.
  ASSERT_TRUE(store_->Fail(p.attempt_id, "crashed", kT0).ok());
  EXPECT_EQ(store_->GetArtifact(Sha256Hex(a)).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*store_->GetArtifact(Sha256Hex(b)), b);
  ASSERT_TRUE(store_->PutArtifact(s.attempt_id, Sha256Hex(c), c, kT0).ok());  // 401 of 1000
  ASSERT_TRUE(store_->Release(s.attempt_id, kT0).ok());
  EXPECT_EQ(RawInt("SELECT count(*) FROM artifacts"), 0);
  EXPECT_EQ(RawInt("SELECT count(*) FROM uploads"), 0);
  // The pretrain's next attempt has the whole room, and its model, once its
  // trial completed with it, stays when a later attempt that put it too fails.
  const std::string model = ModelBytes("p");
  ASSERT_LE(model.size(), 1000u) << "the quota above must hold a model";
  Reopen({.max_artifact_bytes = static_cast<int64_t>(model.size())});
  const Lease p2 = LeaseOf("p");
  EXPECT_EQ(CompletePretrain(p2), Sha256Hex(model));
  LeaseOf("s");
  const Lease t = LeaseOf("t0");
  ASSERT_TRUE(store_->PutArtifact(t.attempt_id, Sha256Hex(model), model, kT0).ok());
  ASSERT_TRUE(store_->Fail(t.attempt_id, "crashed", kT0).ok());
  EXPECT_EQ(*store_->GetArtifact(Sha256Hex(model)), model);
  EXPECT_EQ(*store_->ArtifactOf(id, "p"), Sha256Hex(model));
}

// A sweep's shipped inputs are never collected, even when an attempt that did
// not complete uploaded the same bytes; and they count towards the quota.
TEST_F(StoreTest, ASweepsInputsAreNeverCollectedAndCountTowardsTheQuota) {
  const std::string input = "an encoded dataset";
  Plan plan = ScratchPlan(1);
  plan.datasets.emplace_back().sha256 = Sha256Hex(input);
  Reopen({.max_artifact_bytes = static_cast<int64_t>(input.size())});
  auto refused = store_->SubmitSweep("big", "name: big\n", "big.yaml", plan, kT0,
                                     {{Sha256Hex(input + "!"), input + "!"}});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("past its limit"));
  EXPECT_EQ(RawInt("SELECT count(*) FROM sweeps"), 0);
  const fs::path dir = path_ + ".artifacts";
  EXPECT_FALSE(fs::exists(dir / Sha256Hex(input + "!")));  // named, refused, removed
  EXPECT_TRUE(fs::is_empty(dir / ".incoming"));
  ASSERT_TRUE(
      store_->SubmitSweep("s", "name: s\n", "s.yaml", plan, kT0, {{Sha256Hex(input), input}}).ok());
  EXPECT_TRUE(fs::exists(dir / Sha256Hex(input)));
  const Lease x = LeaseOf("x0");
  ASSERT_TRUE(store_->PutArtifact(x.attempt_id, Sha256Hex(input), input, kT0).ok());
  ASSERT_TRUE(store_->Fail(x.attempt_id, "crashed", kT0).ok());
  EXPECT_EQ(*store_->GetArtifact(Sha256Hex(input)), input);
}

// Not a timed assertion: it shows the design does thousands of lease + complete
// cycles per second (each two committed transactions) and prints the rate.
// Also prints the store's own lease+complete rate (no assertion on time: the
// speed is bench coordinator's job, docs/PERFORMANCE.md).
TEST_F(StoreTest, FiveThousandLeaseCompleteCyclesFinishTheSweep) {
  constexpr int kTrials = 5000;
  const std::string id = Submit(ScratchPlan(kTrials));
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kTrials; ++i) {
    auto lease = store_->LeaseNext("w1", kT0);
    ASSERT_TRUE(lease.ok() && lease->has_value());
    TrialResult result = ResultOf(**lease);
    result.epochs.resize(10);  // a result of a realistic size (~2 KB)
    for (int e = 0; e < 10; ++e) result.epochs[e].epoch = e + 1;
    auto accepted = store_->Complete((*lease)->attempt_id, result, kT0);
    ASSERT_TRUE(accepted.ok() && *accepted);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double rate = kTrials / seconds;
  std::printf("lease + complete: %d cycles in %.3f s = %.0f trials/s\n", kTrials, seconds, rate);
  RecordProperty("trials_per_s", static_cast<int>(rate));
  EXPECT_EQ(Status(id).state, SweepState::kDone);
}

}  // namespace
}  // namespace seedproof
