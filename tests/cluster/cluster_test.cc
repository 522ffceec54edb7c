// The distributed system as real processes on loopback: a coordinator with an
// SQLite file, workers, and the submitting CLI. Studies are tiny (a few seconds
// of training) so each test ends by itself in well under a minute.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "backends/model_file.h"
#include "experiments/fingerprint.h"
#include "experiments/plan.h"
#include "experiments/results.h"
#include "experiments/study.h"
#include "experiments/sweep_parse.h"
#include "experiments/trial.h"
#include "experiments/trial_json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "proto/seedproof.grpc.pb.h"
#include "tests/testing/format_files.h"
#include "tests/testing/seedproof_cli.h"
#include "worker/mpi.h"
#include "worker/rpc_client.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing_support::CommandRun;
using testing_support::HttpGet;
using testing_support::kSeedproof;
using testing_support::MetricValue;
using testing_support::ReadFileText;
using testing_support::ResultsById;
using testing_support::RunSeedproof;
using testing_support::WaitUntil;

constexpr char kToken[] = "test-token-0123456789abcdef";

// A child process, killed (SIGKILL) if the test leaves it running.
class Process {
 public:
  Process(const std::vector<std::string>& args, const fs::path& log) {
    pid_ = fork();
    if (pid_ == 0) {
      FILE* out = std::fopen(log.c_str(), "w");
      dup2(fileno(out), STDOUT_FILENO);
      dup2(fileno(out), STDERR_FILENO);
      std::vector<char*> argv;
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~Process() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      Wait();
    }
  }
  void Signal(int sig) { kill(pid_, sig); }
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
};

constexpr char kTinySpec[] = R"(name: cluster-tiny
source: {classes: [0, 1, 2, 3, 4, 7, 8, 9], train_size: 1000}
target: {positive: [6], negative: [5], train_size: 100}
model: {input: [28, 28, 1], layers: [{dense: 32}, {dense: 16}], activation: selu}
pretrain: {lr: 0.01, epochs: EPOCHS}
transfer:
  reuse: [1, 2]
  schedules:
    frozen: [{epochs: 2, train: head, lr: 1.0e-2}]
    tuned: [{epochs: 1, train: head, lr: 1.0e-2}, {epochs: 2, train: all, lr: 1.0e-3}]
baseline: {scratch: {epochs: 2, lr: 1.0e-2}}
seeds: 2
)";

// A coordinator in its own folder with its own SQLite file, and the workers and
// CLI calls that talk to it.
class Cluster {
 public:
  explicit Cluster(const std::string& name, int64_t lease_ms = 30000, int64_t heartbeat_ms = 1000)
      : dir_(fs::path(testing::TempDir()) / absl::StrCat("cluster_", name)),
        lease_ms_(lease_ms),
        heartbeat_ms_(heartbeat_ms) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "token") << kToken << "\n";
  }

  // More flags for the coordinator, from its next start.
  void AddServerArgs(const std::vector<std::string>& args) {
    server_args_.insert(server_args_.end(), args.begin(), args.end());
  }

  // TLS from here on: the coordinator serves cert/key, clients trust cert.
  void UseTls(const fs::path& cert, const fs::path& key) {
    server_args_ = {"--tls-cert", cert.string(), "--tls-key", key.string()};
    client_args_ = {"--tls-root", cert.string()};
  }

  void StartCoordinator(int port = 0) {
    fs::remove(dir_ / "port");
    std::vector<std::string> args = {kSeedproof,
                                     "coordinator",
                                     "--listen",
                                     absl::StrCat("127.0.0.1:", port),
                                     "--db",
                                     (dir_ / "seedproof.db").string(),
                                     "--token-file",
                                     (dir_ / "token").string(),
                                     "--port-file",
                                     (dir_ / "port").string(),
                                     "--lease-ms",
                                     std::to_string(lease_ms_),
                                     "--heartbeat-ms",
                                     std::to_string(heartbeat_ms_),
                                     "--metrics-listen",
                                     "127.0.0.1:0"};
    args.insert(args.end(), server_args_.begin(), server_args_.end());
    coordinator_ = std::make_unique<Process>(
        args, dir_ / absl::StrCat("coordinator", ++coordinators_, ".log"));
    // Written whole once it listens (line 1: gRPC, line 2: metrics).
    ASSERT_TRUE(WaitUntil([&] { return fs::exists(dir_ / "port"); }))
        << "the coordinator did not start: " << ReadFileText(dir_ / "coordinator1.log");
    std::ifstream(dir_ / "port") >> port_ >> metrics_port_;
    ASSERT_GT(port_, 0) << "the coordinator did not start";
  }
  Process& coordinator() { return *coordinator_; }

  std::unique_ptr<Process> StartWorker(const std::string& id,
                                       const std::vector<std::string>& extra_args = {}) {
    std::vector<std::string> args = {
        kSeedproof, "worker", "--coordinator", address(),
        "--id",     id,       "--token-file",  (dir_ / "token").string()};
    args.insert(args.end(), client_args_.begin(), client_args_.end());
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    return std::make_unique<Process>(args, dir_ / absl::StrCat("worker-", id, ".log"));
  }

  CommandRun Cli(const std::string& command, const std::string& args) {
    return RunSeedproof(absl::StrCat(command, " --coordinator ", address(), " --token-file ",
                                     (dir_ / "token").string(), " ",
                                     absl::StrJoin(client_args_, " "), " ", args));
  }

  std::string Submit(int pretrain_epochs = 1) {
    const std::string text =
        absl::StrReplaceAll(kTinySpec, {{"EPOCHS", std::to_string(pretrain_epochs)}});
    std::ofstream(dir_ / "spec.yaml") << text;
    const CommandRun run = Cli("submit", (dir_ / "spec.yaml").string());
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return std::string(absl::StripAsciiWhitespace(run.out));
  }

  // The `status` line's fields, e.g. {"done": 3, "state": "running"}.
  std::map<std::string, std::string> Status(const std::string& sweep) {
    const CommandRun run = Cli("status", sweep);
    std::map<std::string, std::string> fields;
    const std::vector<std::string> words = absl::StrSplit(run.out, ' ', absl::SkipEmpty());
    if (words.size() > 2) fields["state"] = words[2];
    for (size_t i = 0; i + 1 < words.size(); ++i) {
      std::string key = words[i];
      std::string value = words[i + 1];
      if (absl::StartsWith(key, "(")) key.erase(0, 1);
      while (!value.empty() && (value.back() == ',' || value.back() == ')')) value.pop_back();
      fields[key] = value;
    }
    return fields;
  }

  bool WaitFor(const std::string& sweep,
               const std::function<bool(std::map<std::string, std::string>&)>& done,
               int seconds = 120) {
    for (int i = 0; i < seconds * 10; ++i) {
      auto status = Status(sweep);
      if (done(status)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // Results by trial id, timings removed (they differ run to run).
  std::map<std::string, nlohmann::json> Results(const std::string& sweep) {
    const fs::path out = dir_ / "results.jsonl";
    const CommandRun run = Cli("results", absl::StrCat(sweep, " --out ", out.string()));
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return ResultsById(out);
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  int port() const { return port_; }
  const fs::path& dir() const { return dir_; }
  // An unlabelled series from the coordinator's /metrics; -1 when absent.
  double Metric(const std::string& name) const {
    return MetricValue(HttpGet(metrics_port_, "/metrics"), name);
  }

 private:
  fs::path dir_;
  int64_t lease_ms_, heartbeat_ms_;
  std::vector<std::string> server_args_, client_args_;
  std::unique_ptr<Process> coordinator_;
  int coordinators_ = 0;
  int metrics_port_ = 0;
  int port_ = 0;
};

bool Finished(std::map<std::string, std::string>& s) { return s["state"] == "done"; }

// The same spec run by `seedproof run` in one process: the reference results.
std::map<std::string, nlohmann::json> LocalResults(const fs::path& spec, const fs::path& out) {
  fs::remove_all(out);
  const CommandRun run = RunSeedproof(absl::StrCat("run ", spec.string(), " --out ", out.string()));
  EXPECT_EQ(run.exit_code, 0) << run.err;
  return ResultsById(out / "results.jsonl");
}

TEST(Cluster, TwoWorkersCompleteASweepAndStatusAgreesWithTheResults) {
  Cluster cluster("two_workers");
  cluster.StartCoordinator();
  const std::string sweep = cluster.Submit();
  ASSERT_FALSE(sweep.empty());
  auto a = cluster.StartWorker("a");
  auto b = cluster.StartWorker("b");
  ASSERT_TRUE(cluster.WaitFor(sweep, Finished));
  auto status = cluster.Status(sweep);
  EXPECT_EQ(status["done"], "11");  // pretrain, 2 scratch, 4 arms x 2 seeds
  EXPECT_EQ(status["failed"], "0");
  const auto results = cluster.Results(sweep);
  EXPECT_EQ(results.size(), 11u);
  // Bit-identical to the same study run in one process.
  EXPECT_EQ(results, LocalResults(cluster.dir() / "spec.yaml", cluster.dir() / "local"));
}

// ---- Users' data across processes ----

// The tiny study over the formats' NumPy arrays (tests/testing/format_files.h),
// copied to `data`, shipped by the coordinator or read where they are.
std::string ArraysSpec(const fs::path& data, bool ship) {
  return absl::StrReplaceAll(
      kTinySpec, {{"EPOCHS", "1"},
                  {"name: cluster-tiny\n",
                   absl::StrCat("name: cluster-arrays\ndataset: {name: "
                                "mine, format: npy, validation: 500, path: ",
                                data.string(), ", ship: ", ship ? "true" : "false", "}\n")},
                  {"train_size: 1000", "train_size: 600"}});
}

fs::path CopyArrays(const fs::path& to) {
  const fs::path files = testing_support::FormatFiles();
  fs::remove_all(to);
  fs::create_directories(to);
  fs::copy(files / "npy", to, fs::copy_options::recursive);
  return to;
}

// A worker on a host that cannot see the data's files: the coordinator read them
// at submission and sends them by content hash, in chunks.
TEST(ClusterData, AShippedDatasetReachesAWorkerThatCannotSeeItsFiles) {
  Cluster cluster("shipped");
  cluster.StartCoordinator();
  const fs::path data = CopyArrays(cluster.dir() / "data");
  std::ofstream(cluster.dir() / "spec.yaml") << ArraysSpec(data, /*ship=*/true);
  const CommandRun submitted = cluster.Cli("submit", (cluster.dir() / "spec.yaml").string());
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string sweep(absl::StripAsciiWhitespace(submitted.out));
  fs::remove_all(data);  // gone from this "host": only the coordinator's copy is left
  auto worker = cluster.StartWorker("far", {"--exit-when-idle"});
  EXPECT_EQ(worker->Wait(), 0);
  auto status = cluster.Status(sweep);
  EXPECT_EQ(status["done"], "11") << ReadFileText(cluster.dir() / "worker-far.log");
  EXPECT_EQ(status["failed"], "0");
  const auto results = cluster.Results(sweep);
  ASSERT_EQ(results.size(), 11u);
  for (const auto& [id, r] : results) {
    EXPECT_EQ(r["provenance"]["dataset_sha256"].get<std::string>().size(), 64u) << id;
  }
}

// A shared filesystem (Slurm's norm): workers read the path and check its hash. The
// same spec on changed data is another study; data that changes after submission
// is refused, naming the dataset and both hashes, and nothing trains on it.
TEST(ClusterData, AWorkerReadsASharedPathAndRefusesDataThatChangedAfterSubmission) {
  Cluster cluster("shared_path");
  cluster.StartCoordinator();
  const fs::path data = CopyArrays(cluster.dir() / "shared");
  std::ofstream(cluster.dir() / "spec.yaml") << ArraysSpec(data, /*ship=*/false);
  const auto submit = [&] {
    const CommandRun run = cluster.Cli("submit", (cluster.dir() / "spec.yaml").string());
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return std::string(absl::StripAsciiWhitespace(run.out));
  };
  const std::string first = submit();
  auto worker = cluster.StartWorker("near", {"--exit-when-idle"});
  EXPECT_EQ(worker->Wait(), 0);
  EXPECT_EQ(cluster.Status(first)["done"], "11");
  const auto first_results = cluster.Results(first);
  const std::string sha = first_results.begin()->second["provenance"]["dataset_sha256"];

  // One test label changed: the same spec is another study, with other trial ids.
  const auto change = [&] {
    std::string labels = ReadFileText(data / "y_test.npy");
    labels[labels.size() - 8] ^= 1;  // the last int64 label, 9 <-> 8 or 0 <-> 1
    std::ofstream(data / "y_test.npy", std::ios::binary | std::ios::trunc) << labels;
  };
  change();
  const std::string second = submit();
  change();  // and back, after the second submission
  worker = cluster.StartWorker("near2", {"--exit-when-idle"});
  EXPECT_EQ(worker->Wait(), 0);
  auto status = cluster.Status(second);
  EXPECT_EQ(status["done"], "0");
  EXPECT_EQ(status["failed"], "3");   // the pretrain and the 2 baselines, 3 attempts each
  EXPECT_EQ(status["blocked"], "8");  // the transfers, which needed the pretrain
  const std::string log = ReadFileText(cluster.dir() / "worker-near2.log");
  EXPECT_THAT(log, HasSubstr(absl::StrCat("dataset 'mine' at ", data.string(), " hashes to ", sha,
                                          " but the study was submitted with ")));
  EXPECT_THAT(log, HasSubstr("the data changed after submission"));
  const auto second_results = cluster.Results(second);
  EXPECT_EQ(second_results.size(), 8u);  // the blocked transfers; failed trials have no result
  for (const auto& [id, r] : first_results) EXPECT_EQ(second_results.count(id), 0u) << id;
}

TEST(Cluster, ReportOfASweepIdWhileItRunsAndWhenItIsDone) {
  Cluster cluster("report");
  cluster.StartCoordinator();
  const std::string sweep = cluster.Submit();
  ASSERT_FALSE(sweep.empty());
  // No worker yet: the report says the sweep is running and has no seeds.
  CommandRun early = cluster.Cli("report", sweep + " --format json");
  ASSERT_EQ(early.exit_code, 0) << early.err;
  nlohmann::json report = nlohmann::json::parse(early.out);
  EXPECT_EQ(report["complete"], false);
  EXPECT_EQ(report["trials_finished"], 0);
  EXPECT_EQ(report["arms"][0]["n_seeds"], 0);
  EXPECT_EQ(report["arms"][0]["verdict"], "too_few_seeds");
  auto worker = cluster.StartWorker("a");
  ASSERT_TRUE(cluster.WaitFor(sweep, Finished));
  const CommandRun done = cluster.Cli("report", sweep + " --format json");
  ASSERT_EQ(done.exit_code, 0) << done.err;
  report = nlohmann::json::parse(done.out);
  EXPECT_EQ(report["complete"], true);
  EXPECT_EQ(report["arms"].size(), 4u);
  EXPECT_EQ(report["arms"][0]["n_seeds"], 2);
  // The same analysis from the results file `seedproof results` writes.
  cluster.Results(sweep);
  const CommandRun from_file = RunSeedproof(
      absl::StrCat("report ", (cluster.dir() / "results.jsonl").string(), " --format json"));
  ASSERT_EQ(from_file.exit_code, 0) << from_file.err;
  EXPECT_EQ(nlohmann::json::parse(from_file.out), report);
  const CommandRun unknown = cluster.Cli("report", "s000000000000");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("s000000000000"));
}

TEST(Cluster, KilledWorkersTrialIsLeasedAgainAndStoredOnce) {
  Cluster cluster("killed_worker", /*lease_ms=*/1500, /*heartbeat_ms=*/200);
  cluster.StartCoordinator();
  // A pretrain trial of a few seconds: the kill lands in it.
  const std::string sweep = cluster.Submit(/*pretrain_epochs=*/200);
  auto doomed = cluster.StartWorker("doomed");
  ASSERT_TRUE(WaitUntil([&] {
    return ReadFileText(cluster.dir() / "worker-doomed.log")
               .find("(pretrain, attempt 1) started") != std::string::npos;
  }));
  doomed->Signal(SIGKILL);
  doomed->Wait();
  auto rescuer = cluster.StartWorker("rescuer");
  ASSERT_TRUE(cluster.WaitFor(sweep, Finished));
  EXPECT_EQ(cluster.Status(sweep)["done"], "11");
  const auto results = cluster.Results(sweep);  // fails on any trial stored twice
  EXPECT_EQ(results.size(), 11u);
}

TEST(Cluster, SigtermedWorkerReleasesItsLeaseAndExits) {
  Cluster cluster("sigterm");
  cluster.StartCoordinator();
  const std::string sweep = cluster.Submit(/*pretrain_epochs=*/40);
  auto leaving = cluster.StartWorker("leaving");
  ASSERT_TRUE(cluster.WaitFor(
      sweep, [](auto& s) { return s["leased"] == "1"; }, 30));
  leaving->Signal(SIGTERM);
  EXPECT_EQ(leaving->Wait(), 0);
  // Released at once (the lease is 30 s): nothing leased, nothing failed.
  auto status = cluster.Status(sweep);
  EXPECT_EQ(status["leased"], "0");
  EXPECT_EQ(status["failed"], "0");
  auto staying = cluster.StartWorker("staying");
  ASSERT_TRUE(cluster.WaitFor(sweep, Finished));
  EXPECT_EQ(cluster.Status(sweep)["done"], "11");
}

TEST(Cluster, SweepSurvivesACoordinatorCrashBitIdentically) {
  Cluster cluster("coordinator_crash");
  cluster.StartCoordinator();
  const int port = cluster.port();
  const std::string sweep = cluster.Submit(/*pretrain_epochs=*/3);
  auto worker = cluster.StartWorker("w");
  ASSERT_TRUE(cluster.WaitFor(
      sweep, [](auto& s) { return std::stoi(s["done"]) >= 2; }, 60));
  cluster.coordinator().Signal(SIGKILL);
  cluster.coordinator().Wait();
  // The worker has found it gone (its log says it retries) before it comes back.
  ASSERT_TRUE(WaitUntil([&] {
    return ReadFileText(cluster.dir() / "worker-w.log")
               .find("retrying until the coordinator answers") != std::string::npos;
  }));
  cluster.StartCoordinator(port);
  ASSERT_TRUE(cluster.WaitFor(sweep, Finished));
  const auto results = cluster.Results(sweep);
  EXPECT_EQ(results.size(), 11u);
  EXPECT_EQ(results, LocalResults(cluster.dir() / "spec.yaml", cluster.dir() / "local"));
}

TEST(Cluster, CancelStopsLeasingAndTheStatusSaysSo) {
  Cluster cluster("cancel");
  cluster.StartCoordinator();
  const std::string sweep = cluster.Submit();
  const CommandRun cancel = cluster.Cli("cancel", sweep);
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_THAT(cancel.out, HasSubstr("cancelled"));
  // A worker that leaves once a lease finds nothing: it asked, and got nothing.
  auto worker = cluster.StartWorker("idle", {"--exit-when-idle"});
  EXPECT_EQ(worker->Wait(), 0);
  auto status = cluster.Status(sweep);
  EXPECT_EQ(status["state"], "cancelled");
  EXPECT_EQ(status["done"], "0");
  EXPECT_EQ(status["leased"], "0");
}

TEST(Cluster, CancelTellsARunningWorkerAtItsNextHeartbeat) {
  Cluster cluster("cancel_running", /*lease_ms=*/30000, /*heartbeat_ms=*/200);
  cluster.StartCoordinator();
  // Far longer than a heartbeat: the cancel finds the pretrain trial running.
  const std::string sweep = cluster.Submit(/*pretrain_epochs=*/2000);
  auto worker = cluster.StartWorker("busy");
  ASSERT_TRUE(WaitUntil([&] {
    return ReadFileText(cluster.dir() / "worker-busy.log").find("(pretrain, attempt 1) started") !=
           std::string::npos;
  }));
  ASSERT_EQ(cluster.Cli("cancel", sweep).exit_code, 0);
  // The worker hears it within a heartbeat or two, stops at an epoch boundary and
  // releases: nothing stays leased, nothing was stored.
  EXPECT_TRUE(cluster.WaitFor(
      sweep, [](auto& s) { return s["leased"] == "0"; }, 10));
  auto status = cluster.Status(sweep);
  EXPECT_EQ(status["state"], "cancelled");
  EXPECT_EQ(status["done"], "0");
  EXPECT_EQ(status["cancelled"], "11");
}

TEST(Cluster, TlsWhenCertificatesAreGiven) {
  Cluster cluster("tls");
  const fs::path cert = cluster.dir() / "cert.pem", key = cluster.dir() / "key.pem";
  ASSERT_EQ(std::system(absl::StrCat("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
                                     "/CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout ",
                                     key.string(), " -out ", cert.string(), " 2>/dev/null")
                            .c_str()),
            0);
  cluster.UseTls(cert, key);
  cluster.StartCoordinator();
  const std::string sweep = cluster.Submit();
  ASSERT_FALSE(sweep.empty());
  auto worker = cluster.StartWorker("tls");
  ASSERT_TRUE(cluster.WaitFor(sweep, Finished));
  EXPECT_EQ(cluster.Status(sweep)["done"], "11");
  // A plaintext client gets nowhere.
  const CommandRun plain =
      RunSeedproof(absl::StrCat("status --coordinator ", cluster.address(), " --token-file ",
                                (cluster.dir() / "token").string()));
  EXPECT_NE(plain.exit_code, 0);
  EXPECT_THAT(plain.err, HasSubstr("UNAVAILABLE"));
}

// The storage limits are flags: out of range is refused, naming the flag, and
// no database is created.
TEST(Cluster, StorageLimitFlagsOutOfRangeAreNamed) {
  const fs::path dir = fs::path(testing::TempDir()) / "cluster_limit_flags";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "token") << kToken << "\n";
  const std::string db = (dir / "x.db").string();
  for (const std::string flag :
       {"--max-artifact-bytes 0", "--max-upload-bytes -5", "--max-workers 0", "--max-streams 0"}) {
    const CommandRun run = RunSeedproof(absl::StrCat("coordinator --db ", db, " --token-file ",
                                                     (dir / "token").string(), " ", flag));
    EXPECT_NE(run.exit_code, 0) << flag;
    EXPECT_THAT(run.err, HasSubstr(flag.substr(0, flag.find(' ')) + ": Value ")) << flag;
    EXPECT_THAT(run.err, HasSubstr("not in range 1 to")) << flag;
  }
  EXPECT_FALSE(fs::exists(db));
}

TEST(Cluster, TokenAndCertificateProblemsAreNamed) {
  const fs::path dir = fs::path(testing::TempDir()) / "cluster_token_problems";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "short") << "abc\n";
  const std::string db = (dir / "x.db").string();
  CommandRun run = RunSeedproof(
      absl::StrCat("coordinator --db ", db, " --token-file ", (dir / "missing").string()));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.err, HasSubstr((dir / "missing").string()));
  run = RunSeedproof(
      absl::StrCat("coordinator --db ", db, " --token-file ", (dir / "short").string()));
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("at least 16 characters"));
  EXPECT_FALSE(fs::exists(db));  // nothing was created
  std::ofstream(dir / "token") << kToken << "\n";
  run = RunSeedproof(absl::StrCat("status --token-file ", (dir / "token").string(), " --tls-root ",
                                  (dir / "no-cert.pem").string()));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.err, HasSubstr("no-cert.pem"));
  run =
      RunSeedproof(absl::StrCat("coordinator --db ", db, " --token-file ", (dir / "token").string(),
                                " --listen 127.0.0.1:0 --tls-cert ", (dir / "no-cert.pem").string(),
                                " --tls-key ", (dir / "no-key.pem").string()));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.err, HasSubstr("no-cert.pem"));
}

TEST(Cluster, InvalidSpecIsRejectedWithItsPosition) {
  Cluster cluster("bad_spec");
  cluster.StartCoordinator();
  std::ofstream(cluster.dir() / "bad.yaml") << "name: x\nseeds: zero\n";
  const CommandRun run = cluster.Cli("submit", (cluster.dir() / "bad.yaml").string());
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("bad.yaml:2:8: seeds: "));
  EXPECT_EQ(cluster.Cli("status", "").out, "");  // nothing stored
}

// The call was refused with code, its message naming what.
void ExpectRefused(const grpc::Status& s, grpc::StatusCode code, const std::string& what) {
  EXPECT_EQ(s.error_code(), code) << what << ": " << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr(what));
}

// Direct gRPC calls: the security checks and malformed requests.
class Rpc : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ =
        std::make_unique<Cluster>(::testing::UnitTest::GetInstance()->current_test_info()->name());
    cluster_->StartCoordinator();
    auto channel = *MakeChannel(cluster_->address(), "");
    trials_ = rpc::Trials::NewStub(channel);
    studies_ = rpc::Studies::NewStub(channel);
  }
  void Authorize(grpc::ClientContext& ctx, const std::string& token = kToken) {
    RpcAuth{token}.Apply(ctx, 10000);
  }
  // Registers a worker of one thread, as `seedproof worker` does, with edit's
  // changes to the request.
  grpc::Status Register(const std::string& worker_id,
                        const std::function<void(rpc::RegisterRequest&)>& edit = {}) {
    grpc::ClientContext ctx;
    Authorize(ctx);
    rpc::RegisterRequest request;
    request.set_worker_id(worker_id);
    request.set_threads(1);
    if (edit) edit(request);
    rpc::RegisterReply reply;
    return trials_->Register(&ctx, request, &reply);
  }
  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<rpc::Trials::Stub> trials_;
  std::unique_ptr<rpc::Studies::Stub> studies_;
};

TEST_F(Rpc, NoTokenOrAWrongTokenIsUnauthenticated) {
  rpc::ListReply reply;
  {
    grpc::ClientContext ctx;
    EXPECT_EQ(studies_->List(&ctx, rpc::ListRequest(), &reply).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;
    Authorize(ctx, "test-token-0123456789abcdeX");
    EXPECT_EQ(studies_->List(&ctx, rpc::ListRequest(), &reply).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;
    Authorize(ctx, "short");
    rpc::SubmitRequest request;
    request.set_spec_text("name: x\n");
    rpc::SweepStatus status;
    EXPECT_EQ(studies_->Submit(&ctx, request, &status).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  grpc::ClientContext ctx;
  Authorize(ctx);
  ASSERT_TRUE(studies_->List(&ctx, rpc::ListRequest(), &reply).ok());
  EXPECT_EQ(reply.sweeps_size(), 0);  // nothing was stored
}

TEST_F(Rpc, MalformedRequestsNameTheField) {
  {
    grpc::ClientContext ctx;
    Authorize(ctx);
    rpc::RegisterRequest request;  // no worker id
    rpc::RegisterReply reply;
    const grpc::Status s = trials_->Register(&ctx, request, &reply);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("worker_id"));
  }
  {
    grpc::ClientContext ctx;
    Authorize(ctx);
    rpc::CompleteRequest request;
    request.set_attempt_id(1);
    request.set_result_json("{\"trial_id\": 5}");
    rpc::CompleteReply reply;
    const grpc::Status s = trials_->Complete(&ctx, request, &reply);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("result_json"));
  }
  for (const char* epoch : {"[1, 2]", "{\"epoch\": 1}", "{\"phase\": \"zero\"}"}) {
    // An epoch record that is not one (not an object, fields missing or mistyped):
    // refused naming the field; nothing is kept.
    grpc::ClientContext ctx;
    Authorize(ctx);
    rpc::EpochReport request;
    request.set_attempt_id(1);
    request.add_epoch_json(epoch);
    rpc::Ack reply;
    const grpc::Status s = trials_->ReportEpoch(&ctx, request, &reply);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << epoch;
    EXPECT_THAT(s.error_message(), HasSubstr("epoch_json")) << epoch;
    if (std::string(epoch) != "[1, 2]") {
      EXPECT_THAT(s.error_message(), HasSubstr("phase")) << epoch;
    }
  }
  {
    grpc::ClientContext ctx;
    Authorize(ctx);
    rpc::ArtifactRef ref;
    ref.set_sha256("../../etc/passwd");
    auto reader = trials_->DownloadArtifact(&ctx, ref);
    rpc::ArtifactChunk chunk;
    while (reader->Read(&chunk)) {
    }
    const grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("sha256"));
  }
  {
    // The server's message limit, at it and one byte past it, from a client
    // that sends anything (seedproof's own stops at the limit itself).
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(2 * kMaxMessageBytes);
    auto studies = rpc::Studies::NewStub(
        grpc::CreateCustomChannel(cluster_->address(), grpc::InsecureChannelCredentials(), args));
    rpc::SubmitRequest request;
    request.set_spec_text(std::string(kMaxMessageBytes - 5, '#'));  // tag + 4-byte length
    ASSERT_EQ(request.ByteSizeLong(), static_cast<size_t>(kMaxMessageBytes));
    grpc::ClientContext at;
    Authorize(at);
    rpc::SweepStatus status;
    const grpc::Status taken = studies->Submit(&at, request, &status);
    EXPECT_EQ(taken.error_code(), grpc::StatusCode::INVALID_ARGUMENT);  // read, then refused
    EXPECT_THAT(taken.error_message(), HasSubstr("spec_text"));
    request.mutable_spec_text()->push_back('#');
    grpc::ClientContext past;
    Authorize(past);
    EXPECT_EQ(studies->Submit(&past, request, &status).error_code(),
              grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  {
    grpc::ClientContext ctx;
    Authorize(ctx);
    rpc::SweepRef ref;
    ref.set_sweep_id("no-such-sweep");
    rpc::SweepStatus status;
    EXPECT_EQ(studies_->Get(&ctx, ref, &status).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  grpc::ClientContext ctx;
  Authorize(ctx);
  rpc::ListReply reply;
  ASSERT_TRUE(studies_->List(&ctx, rpc::ListRequest(), &reply).ok());
  EXPECT_EQ(reply.sweeps_size(), 0);
}

// The long poll: a Lease that finds nothing waits without a thread of its own,
// and is answered once, by whichever comes first.
// Issue 19: a worker has one waiting Lease call. A newer one takes the older
// one's place, which is answered UNAVAILABLE (a worker retries after a pause),
// so thousands of calls from one client hold no more than one; another worker's
// call waits beside it.
TEST_F(Rpc, AWorkerHasOneWaitingLeaseCall) {
  ASSERT_TRUE(Register("w").ok());
  ASSERT_TRUE(Register("v").ok());
  const auto lease = [&](const std::string& worker_id, int64_t wait_ms, rpc::LeaseReply* reply) {
    grpc::ClientContext ctx;
    RpcAuth{kToken}.Apply(ctx, 60000);
    rpc::LeaseRequest request;
    request.set_worker_id(worker_id);
    request.set_wait_ms(wait_ms);
    return trials_->Lease(&ctx, request, reply);
  };
  const auto waiting = [&] { return cluster_->Metric("seedproof_lease_calls_waiting"); };
  rpc::LeaseReply older_reply, newer_reply, other_reply;
  grpc::Status older, newer, other;
  std::thread first([&] { older = lease("w", 30000, &older_reply); });
  ASSERT_TRUE(WaitUntil([&] { return waiting() == 1; }));
  std::thread second([&] { newer = lease("w", 30000, &newer_reply); });
  first.join();  // answered as the newer call took its place
  EXPECT_EQ(older.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(older.error_message(), HasSubstr("a newer Lease call of worker w took its place"));
  std::thread third([&] { other = lease("v", 30000, &other_reply); });
  ASSERT_TRUE(WaitUntil([&] { return waiting() == 2; }));
  ASSERT_FALSE(cluster_->Submit().empty());  // trials for both
  second.join();
  third.join();
  EXPECT_TRUE(newer.ok()) << newer.error_message();
  EXPECT_TRUE(newer_reply.leased());
  EXPECT_TRUE(other.ok()) << other.error_message();
  EXPECT_TRUE(other_reply.leased());
  EXPECT_EQ(waiting(), 0);
}

TEST_F(Rpc, WaitingLeasesAreAnsweredByATrialTheirDeadlineCancelOrShutdown) {
  using Clock = std::chrono::steady_clock;
  const auto seconds_since = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };
  const auto lease = [&](int64_t wait_ms, int64_t client_deadline_ms, rpc::LeaseReply* reply) {
    grpc::ClientContext ctx;
    RpcAuth{kToken}.Apply(ctx, client_deadline_ms);
    rpc::LeaseRequest request;
    request.set_worker_id("poller");
    request.set_wait_ms(wait_ms);
    return trials_->Lease(&ctx, request, reply);
  };
  {
    grpc::ClientContext ctx;
    Authorize(ctx);
    rpc::RegisterRequest request;
    request.set_worker_id("poller");
    request.set_threads(1);
    rpc::RegisterReply reply;
    ASSERT_TRUE(trials_->Register(&ctx, request, &reply).ok());
  }
  {
    rpc::LeaseReply reply;
    ASSERT_EQ(lease(-1, 10000, &reply).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }

  // Nothing to lease: the reply comes at wait_ms, leased = false.
  auto start = Clock::now();
  rpc::LeaseReply empty;
  ASSERT_TRUE(lease(300, 10000, &empty).ok());
  EXPECT_FALSE(empty.leased());
  EXPECT_GE(seconds_since(start), 0.29);
  EXPECT_LT(seconds_since(start), 5.0);

  // A client that gives up (its deadline) leaves no waiting call behind that
  // would take the next trial.
  rpc::LeaseReply abandoned;
  EXPECT_EQ(lease(10000, 200, &abandoned).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);

  // A waiting call gets the trial a submission makes ready, long before wait_ms.
  rpc::LeaseReply got;
  grpc::Status got_status;
  double waited = 0;
  std::thread poller([&] {
    const auto t = Clock::now();
    got_status = lease(20000, 30000, &got);
    waited = seconds_since(t);
  });
  // Once the coordinator says the call waits (its /metrics).
  ASSERT_TRUE(WaitUntil([&] { return cluster_->Metric("seedproof_lease_calls_waiting") == 1; }));
  const std::string sweep = cluster_->Submit();
  poller.join();
  ASSERT_TRUE(got_status.ok()) << got_status.error_message();
  EXPECT_TRUE(got.leased());
  EXPECT_LT(waited, 10.0);
  auto status = cluster_->Status(sweep);
  EXPECT_EQ(status["leased"], "1");  // that one, and none for the abandoned call

  // Shutdown answers a waiting call UNAVAILABLE (a worker retries), promptly.
  // First lease what is ready (the baselines); the rest needs the pretrain trial.
  for (rpc::LeaseReply ready; lease(0, 10000, &ready).ok() && ready.leased();) ready.Clear();
  grpc::Status stopping;
  std::thread waiter([&] {
    rpc::LeaseReply reply;
    stopping = lease(20000, 30000, &reply);
  });
  ASSERT_TRUE(WaitUntil([&] { return cluster_->Metric("seedproof_lease_calls_waiting") == 1; }));
  start = Clock::now();
  cluster_->coordinator().Signal(SIGTERM);
  waiter.join();
  EXPECT_EQ(stopping.error_code(), grpc::StatusCode::UNAVAILABLE) << stopping.error_message();
  EXPECT_LT(seconds_since(start), 5.0);
  EXPECT_EQ(cluster_->coordinator().Wait(), 0);
}

// A completion that also asks for the next trial gets it in the same reply, or
// no lease when none is ready; either way the result is stored.
TEST_F(Rpc, CompleteLeasesTheNextTrialInTheSameCall) {
  const std::string text = absl::StrReplaceAll(kTinySpec, {{"EPOCHS", "1"}});
  // Loaded as the coordinator loads it: the trial ids name the data by its hash.
  auto study = LoadStudy(text, "spec.yaml");
  ASSERT_TRUE(study.ok()) << study.status();
  std::map<std::string, TrialKind> kinds;
  for (const TrialSpec& t : study->plan.trials) kinds[t.id] = t.kind;
  ASSERT_TRUE(Register("chain").ok());
  const std::string sweep = cluster_->Submit();
  // What is ready at first: the pretrain trial and the two scratch baselines.
  std::vector<rpc::LeaseReply> held;
  for (;;) {
    grpc::ClientContext ctx;
    Authorize(ctx);
    rpc::LeaseRequest request;
    request.set_worker_id("chain");
    rpc::LeaseReply reply;
    ASSERT_TRUE(trials_->Lease(&ctx, request, &reply).ok());
    if (!reply.leased()) break;
    held.push_back(reply);
  }
  ASSERT_EQ(held.size(), 3u);
  std::partition(held.begin(), held.end(),
                 [&](const auto& l) { return kinds.at(l.trial_id()) == TrialKind::kScratch; });
  ASSERT_EQ(kinds.at(held[2].trial_id()), TrialKind::kPretrain);
  const auto complete = [&](const rpc::LeaseReply& lease, const std::string& lease_next_for,
                            const std::string& model_sha256, rpc::CompleteReply* reply) {
    // The trial the lease carries, as the worker would report it.
    auto spec = TrialSpecFromJsonText(lease.trial_json());
    EXPECT_TRUE(spec.ok()) << spec.status();
    TrialResult result = spec.ok() ? ResultFor(*spec) : TrialResult{};
    result.model_sha256 = model_sha256;
    result.provenance.source_model_sha256 = lease.source_sha256();
    grpc::ClientContext ctx;
    Authorize(ctx);
    rpc::CompleteRequest request;
    request.set_attempt_id(lease.attempt_id());
    request.set_result_json(TrialResultToJson(result).dump());
    request.set_model_sha256(model_sha256);
    request.set_lease_next_for(lease_next_for);
    return trials_->Complete(&ctx, request, reply);
  };

  // Nothing else is ready (the transfers need the source model): no lease.
  rpc::CompleteReply reply;
  ASSERT_TRUE(complete(held[0], "chain", "", &reply).ok());
  EXPECT_TRUE(reply.accepted());
  EXPECT_FALSE(reply.next().leased());
  // A worker the coordinator does not know gets none, and the result still counts.
  reply.Clear();
  ASSERT_TRUE(complete(held[1], "nobody", "", &reply).ok());
  EXPECT_TRUE(reply.accepted());
  EXPECT_FALSE(reply.next().leased());
  EXPECT_EQ(cluster_->Status(sweep)["done"], "2");

  // The source model makes the transfers ready: the same reply leases one.
  ModelFileContents source;  // any model file will do: the coordinator only checks it loads
  source.spec.input = {2};
  source.spec.layers = {LayerSpec::Dense(1, Activation::kSigmoid)};
  source.spec.loss = Loss::kBinaryCrossEntropy;
  source.trainable = {true};
  source.parameters = {0.5f, -0.5f, 0.0f};
  const std::string model = EncodeModelFile(source);
  const std::string sha = Sha256Hex(model);
  {
    grpc::ClientContext ctx;
    Authorize(ctx);
    rpc::ArtifactRef ref;
    auto writer = trials_->UploadArtifact(&ctx, &ref);
    rpc::ArtifactChunk chunk;
    chunk.set_sha256(sha);
    chunk.set_attempt_id(held[2].attempt_id());
    chunk.set_data(model);
    ASSERT_TRUE(writer->Write(chunk));
    writer->WritesDone();
    ASSERT_TRUE(writer->Finish().ok());
  }
  reply.Clear();
  ASSERT_TRUE(complete(held[2], "chain", sha, &reply).ok());
  EXPECT_TRUE(reply.accepted());
  ASSERT_TRUE(reply.next().leased());
  EXPECT_EQ(kinds.at(reply.next().trial_id()), TrialKind::kTransfer);
  EXPECT_EQ(reply.next().source_sha256(), sha);
  EXPECT_EQ(reply.next().sweep_id(), sweep);
  auto status = cluster_->Status(sweep);
  EXPECT_EQ(status["done"], "3");
  EXPECT_EQ(status["leased"], "1");

  // Without lease_next_for nothing is leased.
  reply.Clear();
  ASSERT_TRUE(complete(held[2], "", sha, &reply).ok());
  EXPECT_FALSE(reply.accepted());  // that attempt is done already
  EXPECT_FALSE(reply.next().leased());
  EXPECT_EQ(cluster_->Status(sweep)["leased"], "1");
}

// Issue 19, finding 2: a result's identity is the coordinator's record of the
// trial, and every measured value is checked; each of these was once stored as
// sent. Nothing of them is kept, and the honest result is accepted afterwards.
TEST_F(Rpc, CompleteRefusesResultsThatAreNotTheLeasedTrialsOrOutOfRange) {
  ASSERT_TRUE(Register("honest").ok());
  const std::string sweep = cluster_->Submit();
  // A scratch trial's lease.
  rpc::LeaseReply lease;
  TrialSpec spec;
  for (;;) {
    grpc::ClientContext ctx;
    Authorize(ctx);
    rpc::LeaseRequest request;
    request.set_worker_id("honest");
    ASSERT_TRUE(trials_->Lease(&ctx, request, &lease).ok());
    ASSERT_TRUE(lease.leased()) << "no scratch trial was leased";
    auto parsed = TrialSpecFromJsonText(lease.trial_json());
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    if (parsed->kind == TrialKind::kScratch) {
      spec = *parsed;
      break;
    }
  }
  TrialResult honest = ResultFor(spec);
  honest.test_accuracy = 0.75;
  honest.test_loss = 0.5;
  honest.test_examples = 2000;
  const auto complete = [&](const std::string& json, const std::string& model_sha256 = "") {
    grpc::ClientContext ctx;
    Authorize(ctx);
    rpc::CompleteRequest request;
    request.set_attempt_id(lease.attempt_id());
    request.set_result_json(json);
    request.set_model_sha256(model_sha256);
    rpc::CompleteReply reply;
    return trials_->Complete(&ctx, request, &reply);
  };
  const nlohmann::json good = TrialResultToJson(honest);
  const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> attacks = {
      {[](nlohmann::json& j) { j["test_accuracy"] = 7; }, "result.test_accuracy is 7"},
      {[](nlohmann::json& j) { j["kind"] = "transfer"; }, "result.kind is 'transfer'"},
      {[](nlohmann::json& j) { j["kind"] = "pretrain"; }, "result.kind is 'pretrain'"},
      {[](nlohmann::json& j) { j["arm"] = "reuse1/geron/dense"; }, "result.arm is"},
      {[](nlohmann::json& j) { j["target"] = "another"; }, "result.target is"},
      {[](nlohmann::json& j) { j["seed_index"] = int64_t{1} << 40; }, "out of range"},
      {[](nlohmann::json& j) { j["seed_index"] = 2.5; }, "expected an integer"},
      {[&](nlohmann::json& j) { j["seed_index"] = spec.seed_index + 1; }, "result.seed_index is"},
      {[](nlohmann::json& j) { j["test_examples"] = -5; }, "result.test_examples is -5"},
      {[](nlohmann::json& j) {
         j["outcome"] = "diverged";
         j["diverged_epoch"] = 99;
       },
       "result.diverged_epoch is 99"},
      {[](nlohmann::json& j) { j["diverged_epoch"] = 3; }, "result.diverged_epoch is 3"},
      {[](nlohmann::json& j) { j["provenance"]["seeds"]["init"] = 12345; }, "provenance.seeds"},
      {[](nlohmann::json& j) { j["provenance"]["threads"] = 0; }, "provenance.threads is 0"},
      {[](nlohmann::json& j) { j["provenance"]["cpu_isa"] = std::string(4096, 'x'); },
       "provenance.cpu_isa"},
      {[](nlohmann::json& j) { j["wall_seconds"] = -1.0; }, "result.wall_seconds is -1"},
      {[](nlohmann::json& j) {
         j["epochs"] = nlohmann::json::array({{{"phase", 0},
                                               {"epoch", 2},
                                               {"train_loss", 0.1},
                                               {"train_accuracy", 0.9},
                                               {"val_loss", 0.2},
                                               {"val_accuracy", 0.8},
                                               {"seconds", 0.1}}});
       },
       "result.epochs[0].epoch is 2"},
      {[](nlohmann::json& j) { j["model_sha256"] = "../../etc/passwd"; }, "model_sha256"},
  };
  for (const auto& [attack, expected] : attacks) {
    nlohmann::json bad = good;
    attack(bad);
    const grpc::Status s = complete(bad.dump());
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << expected;
    EXPECT_THAT(s.error_message(), HasSubstr(expected)) << bad.dump();
  }
  {
    // Finding 3: the request's own model hash was ignored; now it must be the
    // result's.
    const grpc::Status s = complete(good.dump(), std::string(64, 'a'));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("model_sha256"));
  }
  // None of them was stored; the trial is still leased to its worker, whose
  // honest result is accepted.
  {
    grpc::ClientContext ctx;
    Authorize(ctx);
    rpc::SweepRef ref;
    ref.set_sweep_id(sweep);
    auto reader = studies_->Results(&ctx, ref);
    rpc::ResultLine line;
    int lines = 0;
    while (reader->Read(&line)) ++lines;
    EXPECT_EQ(lines, 0);
  }
  ASSERT_TRUE(complete(good.dump()).ok());
}

// Issue 19, finding 4: attempt ids were sequential, so any client holding the
// token could fail, release or complete a lease it was never given (three
// guessed Fails blocked a pretrain and its transfers). Now an id is 62 random
// bits: guessing the neighbours of ids one has seen finds nothing, and the
// leased trial is untouched.
TEST_F(Rpc, AnAttemptCannotBeReachedByGuessingItsId) {
  ASSERT_TRUE(Register("owner").ok());
  const std::string sweep = cluster_->Submit();
  std::vector<int64_t> ids;
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext ctx;
    Authorize(ctx);
    rpc::LeaseRequest request;
    request.set_worker_id("owner");
    rpc::LeaseReply lease;
    ASSERT_TRUE(trials_->Lease(&ctx, request, &lease).ok());
    ASSERT_TRUE(lease.leased());
    ids.push_back(lease.attempt_id());
  }
  EXPECT_GT(std::abs(ids[1] - ids[0]), 1 << 20) << "attempt ids look sequential";
  // The attacker knows one id of its own and tries the ones around it, and the
  // first ids a fresh store would have issued.
  std::vector<int64_t> guesses;
  for (int64_t d = -50; d <= 50; ++d) {
    if (d != 0) guesses.push_back(ids[0] + d);
  }
  for (int64_t id = 1; id <= 50; ++id) guesses.push_back(id);
  int found = 0;
  for (int64_t guess : guesses) {
    if (guess == ids[1]) continue;
    grpc::ClientContext ctx;
    Authorize(ctx);
    rpc::FailRequest request;
    request.set_attempt_id(guess);
    request.set_reason("sabotage");
    rpc::Ack ack;
    const grpc::Status s = trials_->Fail(&ctx, request, &ack);
    if (s.error_code() != grpc::StatusCode::NOT_FOUND) ++found;
  }
  EXPECT_EQ(found, 0);
  // Both leases still hold: their heartbeats say continue.
  for (int64_t id : ids) {
    grpc::ClientContext ctx;
    Authorize(ctx);
    rpc::AttemptRef ref;
    ref.set_attempt_id(id);
    rpc::HeartbeatReply reply;
    ASSERT_TRUE(trials_->Heartbeat(&ctx, ref, &reply).ok());
    EXPECT_EQ(reply.verdict(), rpc::HeartbeatReply::CONTINUE);
  }
}

// Issue 19, finding 6: from ~45 errors the text overflowed gRPC's metadata
// limit and the client saw "received initial metadata size exceeds limit"
// instead of the errors. Now it sees the first 20 and a count.
TEST_F(Rpc, ASpecWithHundredsOfErrorsIsRefusedWithTheFirstErrorsAndACount) {
  std::string text = "name: x\n";
  for (int i = 0; i < 500; ++i) absl::StrAppend(&text, "unknown_key_number_", i, ": 1\n");
  grpc::ClientContext ctx;
  Authorize(ctx);
  rpc::SubmitRequest request;
  request.set_spec_text(text);
  request.set_spec_path("many-errors.yaml");
  rpc::SweepStatus status;
  const grpc::Status s = studies_->Submit(&ctx, request, &status);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("unknown_key_number_0: unknown key"));
  EXPECT_THAT(s.error_message(), testing::ContainsRegex("\\.\\.\\. and [0-9]+ more errors"));
}

// Issue 19, findings 1 and 5: what a client may make the coordinator store is
// bounded, each limit accepted at its value and refused, naming the field and
// the limit, one past it. A spec the size of the whole message limit was once
// accepted and then could not be served.
TEST_F(Rpc, StoredStringsAreAcceptedAtTheirLimitAndRefusedOnePast) {
  auto submit = [&](const std::string& text, const std::string& path) {
    grpc::ClientContext ctx;
    Authorize(ctx);
    rpc::SubmitRequest request;
    request.set_spec_text(text);
    request.set_spec_path(path);
    rpc::SweepStatus status;
    return studies_->Submit(&ctx, request, &status);
  };
  std::string spec = absl::StrReplaceAll(kTinySpec, {{"EPOCHS", "1"}});
  spec += "#";
  spec.resize(kMaxSpecBytes, 'x');  // a comment to the limit
  EXPECT_TRUE(submit(spec, "spec.yaml").ok());
  ExpectRefused(submit(spec + "x", "spec.yaml"), grpc::StatusCode::INVALID_ARGUMENT,
                absl::StrCat("spec_text: ", kMaxSpecBytes + 1, " bytes; at most ", kMaxSpecBytes));
  const std::string tiny = absl::StrReplaceAll(kTinySpec, {{"EPOCHS", "1"}});
  EXPECT_TRUE(submit(tiny, std::string(kMaxPathBytes, 'p')).ok());
  ExpectRefused(submit(tiny, std::string(kMaxPathBytes + 1, 'p')),
                grpc::StatusCode::INVALID_ARGUMENT, "spec_path: 4097 bytes; at most 4096");

  auto register_worker = [&](const std::function<void(rpc::RegisterRequest&)>& edit) {
    return Register("w", edit);
  };
  const std::string name(kMaxNameBytes, 'n'), longer(kMaxNameBytes + 1, 'n');
  struct Case {
    const char* field;
    std::function<void(rpc::RegisterRequest&, const std::string&)> set;
  };
  const std::vector<Case> cases = {
      {"worker_id", [](auto& r, const auto& v) { r.set_worker_id(v); }},
      {"cpu_isa", [](auto& r, const auto& v) { r.set_cpu_isa(v); }},
      {"metrics_address", [](auto& r, const auto& v) { r.set_metrics_address(v); }},
      {"backends[0]", [](auto& r, const auto& v) { r.add_backends(v); }},
  };
  for (const Case& c : cases) {
    EXPECT_TRUE(register_worker([&](auto& r) { c.set(r, name); }).ok()) << c.field;
    const grpc::Status refused = register_worker([&](auto& r) { c.set(r, longer); });
    ExpectRefused(refused, grpc::StatusCode::INVALID_ARGUMENT,
                  absl::StrCat(c.field, ": 257 bytes; "));
    EXPECT_THAT(refused.error_message(), HasSubstr("256"));
  }
  auto backends = [&](int n) {
    return register_worker([&](auto& r) {
      for (int i = 0; i < n; ++i) r.add_backends("onednn");
    });
  };
  EXPECT_TRUE(backends(kMaxBackends).ok());
  ExpectRefused(backends(kMaxBackends + 1), grpc::StatusCode::INVALID_ARGUMENT,
                "backends: 17 names; at most 16");
  for (int threads : {0, 4097}) {
    ExpectRefused(register_worker([&](auto& r) { r.set_threads(threads); }),
                  grpc::StatusCode::INVALID_ARGUMENT,
                  absl::StrCat("threads: ", threads, "; 1 to 4096"));
  }
  EXPECT_TRUE(register_worker([](auto& r) { r.set_threads(4096); }).ok());
  EXPECT_TRUE(register_worker([](auto& r) { r.set_mpi_size(1 << 20); }).ok());
  ExpectRefused(register_worker([](auto& r) { r.set_mpi_size((1 << 20) + 1); }),
                grpc::StatusCode::INVALID_ARGUMENT, "mpi_size: 1048577; 0 to 1048576");
  {
    grpc::ClientContext ctx;
    Authorize(ctx);
    rpc::LeaseRequest request;
    request.set_worker_id(longer);
    rpc::LeaseReply lease;
    ExpectRefused(trials_->Lease(&ctx, request, &lease), grpc::StatusCode::INVALID_ARGUMENT,
                  "worker_id: 257 bytes");
  }
}

// Issue 19: the streams open at once are bounded, watches and artifact transfers
// each on their own. At --max-streams one more of a kind is UNAVAILABLE (a worker
// retries), naming the limit, while the other kind is still served; once a
// stream ends its place is free again.
TEST(Cluster, StreamsAreServedUpToTheirLimit) {
  Cluster cluster("stream_limit");
  cluster.AddServerArgs({"--max-streams", "2"});
  cluster.StartCoordinator();
  const std::string sweep = cluster.Submit();  // no worker: it stays running
  ASSERT_FALSE(sweep.empty());
  auto channel = *MakeChannel(cluster.address(), "");
  auto studies = rpc::Studies::NewStub(channel);
  auto trials = rpc::Trials::NewStub(channel);
  rpc::SweepRef ref;
  ref.set_sweep_id(sweep);
  struct Watch {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<rpc::SweepStatus>> reader;
    rpc::SweepStatus first;
  };
  // A watch whose first message arrived: its stream is open on the server.
  auto watch = [&](Watch& w) {
    RpcAuth{kToken}.Apply(w.ctx, 60000);
    w.reader = studies->Watch(&w.ctx, ref);
    return w.reader->Read(&w.first);
  };
  Watch one, two;
  ASSERT_TRUE(watch(one));
  ASSERT_TRUE(watch(two));
  {
    Watch three;
    EXPECT_FALSE(watch(three));
    const grpc::Status refused = three.reader->Finish();
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_THAT(refused.error_message(),
                HasSubstr("2 watch and result streams are open, the most this coordinator "
                          "serves at once (--max-streams)"));
  }
  {
    // A download has a budget of its own: served (no such artifact).
    grpc::ClientContext ctx;
    RpcAuth{kToken}.Apply(ctx, 60000);
    rpc::ArtifactRef artifact;
    artifact.set_sha256(Sha256Hex("anything"));
    auto download = trials->DownloadArtifact(&ctx, artifact);
    rpc::ArtifactChunk chunk;
    EXPECT_FALSE(download->Read(&chunk));
    EXPECT_EQ(download->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  one.ctx.TryCancel();
  one.reader->Finish().IgnoreError();
  // The server notices the cancel at its next look (a ring, or half a second).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool served = false;
  while (!served && std::chrono::steady_clock::now() < deadline) {
    Watch again;
    served = watch(again);
    if (served) again.ctx.TryCancel();
    again.reader->Finish().IgnoreError();
  }
  EXPECT_TRUE(served);
  two.ctx.TryCancel();
  two.reader->Finish().IgnoreError();

  // Three uploads held open at once (each sends a chunk and waits): one is
  // refused, whichever the server saw last; the other two hold their places.
  struct Upload {
    grpc::ClientContext ctx;
    rpc::ArtifactRef ref;
    grpc::Status status;
  };
  Upload uploads[3];
  std::atomic<int> ended{0};
  std::vector<std::thread> threads;
  for (Upload& u : uploads) {
    threads.emplace_back([&] {
      RpcAuth{kToken}.Apply(u.ctx, 60000);
      auto writer = trials->UploadArtifact(&u.ctx, &u.ref);
      rpc::ArtifactChunk chunk;
      chunk.set_sha256(Sha256Hex("a model"));
      chunk.set_attempt_id(1);
      chunk.set_data("a model");
      writer->Write(chunk);
      u.status = writer->Finish();  // the refused one ends here; the others wait
      ended.fetch_add(1);
    });
  }
  ASSERT_TRUE(WaitUntil([&] { return ended.load() >= 1; }));
  for (Upload& u : uploads) u.ctx.TryCancel();
  for (std::thread& t : threads) t.join();
  int refused = 0;
  for (const Upload& u : uploads) {
    if (u.status.error_code() != grpc::StatusCode::UNAVAILABLE) continue;
    ++refused;
    EXPECT_THAT(u.status.error_message(), HasSubstr("2 artifact transfers are open"));
  }
  EXPECT_EQ(refused, 1);
}

// Finding 5's limits on artifacts: one upload is taken at --max-upload-bytes
// and refused one byte past it, and all of them together at
// --max-artifact-bytes; a refused upload stores nothing.
TEST(Cluster, UploadsAreTakenAtTheirLimitsAndRefusedOnePast) {
  constexpr int64_t kUpload = 3'000'000;  // three chunks
  Cluster cluster("upload_limits");
  cluster.AddServerArgs({"--max-upload-bytes", std::to_string(kUpload), "--max-artifact-bytes",
                         std::to_string(2 * kUpload)});
  cluster.StartCoordinator();
  auto channel = *MakeChannel(cluster.address(), "");
  auto trials = rpc::Trials::NewStub(channel);
  auto call = [](grpc::ClientContext& ctx) { RpcAuth{kToken}.Apply(ctx, 30000); };
  {
    grpc::ClientContext ctx;
    call(ctx);
    rpc::RegisterRequest request;
    request.set_worker_id("w");
    request.set_threads(1);
    rpc::RegisterReply reply;
    ASSERT_TRUE(trials->Register(&ctx, request, &reply).ok());
  }
  ASSERT_FALSE(cluster.Submit().empty());
  rpc::LeaseReply lease;
  {
    grpc::ClientContext ctx;
    call(ctx);
    rpc::LeaseRequest request;
    request.set_worker_id("w");
    ASSERT_TRUE(trials->Lease(&ctx, request, &lease).ok());
    ASSERT_TRUE(lease.leased());
  }
  auto upload = [&](const std::string& bytes) {
    grpc::ClientContext ctx;
    call(ctx);
    rpc::ArtifactRef ref;
    auto writer = trials->UploadArtifact(&ctx, &ref);
    for (size_t offset = 0; offset < bytes.size(); offset += kChunkBytes) {
      rpc::ArtifactChunk chunk;
      if (offset == 0) {
        chunk.set_sha256(Sha256Hex(bytes));
        chunk.set_attempt_id(lease.attempt_id());
      }
      chunk.set_data(bytes.substr(offset, kChunkBytes));
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  };
  auto stored = [&](const std::string& bytes) {
    grpc::ClientContext ctx;
    call(ctx);
    rpc::ArtifactRef ref;
    ref.set_sha256(Sha256Hex(bytes));
    auto reader = trials->DownloadArtifact(&ctx, ref);
    rpc::ArtifactChunk chunk;
    while (reader->Read(&chunk)) {
    }
    return reader->Finish().ok();
  };
  const std::string a(kUpload, 'a'), b(kUpload, 'b'), c(kUpload + 1, 'c'), d(1, 'd');
  EXPECT_TRUE(upload(a).ok());
  EXPECT_TRUE(stored(a));
  ExpectRefused(upload(c), grpc::StatusCode::RESOURCE_EXHAUSTED,
                "artifact larger than 3000000 bytes");
  EXPECT_FALSE(stored(c));
  EXPECT_TRUE(upload(b).ok());  // the store now holds exactly --max-artifact-bytes
  ExpectRefused(upload(d), grpc::StatusCode::RESOURCE_EXHAUSTED, "past its limit of 6000000");
  EXPECT_FALSE(stored(d));
}

TEST_F(Rpc, WatchStreamsUntilTheSweepEnds) {
  const std::string sweep = cluster_->Submit();
  ASSERT_FALSE(sweep.empty());
  grpc::ClientContext ctx;
  Authorize(ctx);
  rpc::SweepRef ref;
  ref.set_sweep_id(sweep);
  auto reader = studies_->Watch(&ctx, ref);
  std::vector<std::string> states;
  rpc::SweepStatus status;
  // The stream's first update is the running sweep; the cancel comes after it.
  ASSERT_TRUE(reader->Read(&status));
  states.push_back(SweepStateWord(status.state()));
  std::thread cancel([&] { cluster_->Cli("cancel", sweep); });
  while (reader->Read(&status)) states.push_back(SweepStateWord(status.state()));
  cancel.join();
  EXPECT_TRUE(reader->Finish().ok());
  ASSERT_GE(states.size(), 2u);
  EXPECT_EQ(states.front(), "running");
  EXPECT_EQ(states.back(), "cancelled");
  EXPECT_EQ(status.cancelled(), 11);
}

// How a worker knows it is one rank of several, from what its launcher set.
TEST(MpiGroup, LaunchedReadsMpirunsSizeOrSrunsPmixRankAndTaskCount) {
  const char* const kNames[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "PMIX_RANK",
                                "SLURM_STEP_NUM_TASKS"};
  const auto with = [&](std::map<std::string, std::string> env) {
    for (const char* name : kNames) unsetenv(name);
    for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
    const bool launched = MpiGroup::Launched();
    for (const char* name : kNames) unsetenv(name);
    return launched;
  };
  EXPECT_FALSE(with({}));
  EXPECT_TRUE(with({{"OMPI_COMM_WORLD_SIZE", "2"}}));
  EXPECT_FALSE(with({{"OMPI_COMM_WORLD_SIZE", "1"}}));
  // srun --mpi=pmix: a PMIx rank and the step's task count, no size variable.
  EXPECT_TRUE(with({{"PMIX_RANK", "1"}, {"SLURM_STEP_NUM_TASKS", "2"}}));
  EXPECT_FALSE(with({{"PMIX_RANK", "0"}, {"SLURM_STEP_NUM_TASKS", "1"}}));
  EXPECT_FALSE(with({{"SLURM_STEP_NUM_TASKS", "2"}}));  // a batch step, not an srun task
  // mpirun -np 1 inside a 2-task allocation: mpirun's size wins.
  EXPECT_FALSE(
      with({{"OMPI_COMM_WORLD_SIZE", "1"}, {"PMIX_RANK", "0"}, {"SLURM_STEP_NUM_TASKS", "2"}}));
  EXPECT_TRUE(with({{"PMI_SIZE", "4"}}));
}

}  // namespace
}  // namespace seedproof
