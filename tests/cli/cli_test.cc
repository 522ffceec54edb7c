// The command line as users and scripts see it: exit codes, error lines, JSON,
// and a whole (tiny) study run by `seedproof run` on the real Fashion-MNIST.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/seedproof_cli.h"

namespace {

namespace fs = std::filesystem;
using seedproof::testing_support::ChildWithArg;
using seedproof::testing_support::CommandRun;
using seedproof::testing_support::CrashRunAndWorkers;
using seedproof::testing_support::kSeedproof;
using seedproof::testing_support::ReadFileText;
using seedproof::testing_support::ReadJsonLines;
using seedproof::testing_support::ResultsById;
using seedproof::testing_support::RunSeedproof;
using seedproof::testing_support::StartSeedproof;
using seedproof::testing_support::WaitUntil;
using ::testing::HasSubstr;

const fs::path kRepo = fs::path(__FILE__).parent_path().parent_path().parent_path();
fs::path WriteSpec(const std::string& name, const std::string& text) {
  const fs::path path = fs::path(testing::TempDir()) / name;
  std::ofstream(path) << text;
  return path;
}

constexpr char kTinySpec[] = R"(name: tiny
source: {classes: [0, 1, 2, 3, 4, 7, 8, 9], train_size: 1000}
target: {positive: [6], negative: [5], train_size: 100}
model: {input: [28, 28, 1], layers: [{dense: 32}, {dense: 16}], activation: selu}
pretrain: {lr: PRETRAIN_LR, epochs: PRETRAIN_EPOCHS}
transfer:
  reuse: [1, 2]
  schedules:
    frozen: [{epochs: 2, train: head, lr: 1.0e-2}]
baseline: {scratch: {epochs: 2, lr: 1.0e-2}}
seeds: 2
)";

// Some worker of the run in out wrote line into its log.
bool WorkerSaid(const fs::path& out, const std::string& line) {
  std::error_code missing;  // not made yet
  for (const auto& entry : fs::directory_iterator(out, missing)) {
    if (entry.path().filename().string().rfind("worker-", 0) == 0 &&
        ReadFileText(entry.path()).find(line) != std::string::npos) {
      return true;
    }
  }
  return false;
}

std::string TinySpec(const std::string& pretrain_lr, int pretrain_epochs = 1) {
  return absl::StrReplaceAll(kTinySpec, {{"PRETRAIN_LR", pretrain_lr},
                                         {"PRETRAIN_EPOCHS", std::to_string(pretrain_epochs)}});
}

TEST(SeedproofPlan, InvalidSpecExitsTwoWithOneFileLineColumnErrorPerLine) {
  const fs::path spec = WriteSpec("cli_bad.yaml", R"(name: bad
source: {classes: [0, 1]}
target: {positive: [6], negative: [6]}
model: {layers: [{dense: 10}]}
pretrain: {lr: -1, epochs: 0}
transfer: {reuse: [3], schedules: {a: [{epochs: 1, train: head}]}}
seeds: 1
)");
  const CommandRun run = RunSeedproof(absl::StrCat("plan ", spec.string()));
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_TRUE(run.out.empty()) << run.out;
  const std::regex line_format(R"(^.+:\d+:\d+: [a-z_.\[\]0-9]+: .+$)");
  std::vector<std::string> lines = absl::StrSplit(run.err, '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 4u) << run.err;  // overlap, lr, epochs, reuse depth: all at once
  for (const std::string& line : lines) {
    EXPECT_TRUE(std::regex_match(line, line_format)) << line;
    EXPECT_THAT(line, HasSubstr(spec.string()));
  }
  EXPECT_THAT(run.err, HasSubstr(":5:16: pretrain.lr: "));
  EXPECT_THAT(run.err, HasSubstr("pretrain.epochs: "));
  EXPECT_THAT(run.err, HasSubstr("transfer.reuse"));
}

TEST(SeedproofPlan, MissingSpecFileIsNamed) {
  const CommandRun run = RunSeedproof("plan /nonexistent/spec.yaml");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.err, HasSubstr("/nonexistent/spec.yaml"));
}

TEST(SeedproofPlan, JsonHasTrialsByKindAndArms) {
  const CommandRun run =
      RunSeedproof(absl::StrCat("plan --json ", (kRepo / "experiments/specs/geron.yaml").string()));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json plan = nlohmann::json::parse(run.out);
  EXPECT_EQ(plan["trials_by_kind"]["pretrain"], 20);  // a source model per seed
  EXPECT_EQ(plan["trials_by_kind"]["scratch"], 20);
  EXPECT_EQ(plan["trials_by_kind"]["transfer"], 300);
  EXPECT_EQ(plan["arms"].size(), 15u);
  EXPECT_GT(plan["estimated_gflop"].get<double>(), 0.0);
}

TEST(SeedproofPlan, TextPlanNamesTrialsArmsAndCompute) {
  const CommandRun run =
      RunSeedproof(absl::StrCat("plan ", (kRepo / "experiments/specs/geron.yaml").string()));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("340: pretrain 20, scratch 20, transfer 300"));
  EXPECT_THAT(run.out, HasSubstr("reuse5/gentle/dense"));
  EXPECT_THAT(run.out, HasSubstr("GFLOP"));
}

TEST(SeedproofRun, WritesAHeaderAndOneResultPerTrial) {
  const fs::path spec = WriteSpec("cli_tiny.yaml", TinySpec("0.01"));
  const fs::path out = fs::path(testing::TempDir()) / "cli_tiny_run";
  fs::remove_all(out);
  const CommandRun run = RunSeedproof(absl::StrCat("run ", spec.string(), " --out ", out.string()));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto lines = ReadJsonLines(out / "results.jsonl");
  ASSERT_EQ(lines.size(), 1u + 1u + 2u + 4u);  // header, pretrain, 2 scratch, 2 arms x 2 seeds
  EXPECT_EQ(lines[0]["sweep"]["name"], "tiny");
  EXPECT_EQ(lines[0]["sweep"]["trials"], 7);
  // Plan order: the pretrain trial before the transfer trials that need its model.
  bool pretrained = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["outcome"], "completed") << i;
    if (lines[i]["kind"] == "transfer") {
      EXPECT_TRUE(pretrained) << i;
      EXPECT_EQ(lines[i]["provenance"]["source_model_sha256"].get<std::string>().size(), 64u);
    }
    if (lines[i]["kind"] == "pretrain") {
      pretrained = true;
      EXPECT_EQ(lines[i]["model_sha256"].get<std::string>().size(), 64u);
    }
  }
  EXPECT_TRUE(pretrained);
}

TEST(SeedproofRun, DivergedPretrainBlocksItsTransfersButNotTheBaseline) {
  const fs::path spec = WriteSpec("cli_diverge.yaml", TinySpec("1.0e+30"));
  const fs::path out = fs::path(testing::TempDir()) / "cli_diverge_run";
  fs::remove_all(out);
  const CommandRun run = RunSeedproof(absl::StrCat("run ", spec.string(), " --out ", out.string()));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto lines = ReadJsonLines(out / "results.jsonl");
  ASSERT_EQ(lines.size(), 8u);
  std::string pretrain_id;
  int blocked = 0, completed = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    const nlohmann::json& r = lines[i];
    if (r["kind"] == "pretrain") {
      EXPECT_EQ(r["outcome"], "diverged");
      EXPECT_EQ(r["diverged_epoch"], 1);
      pretrain_id = r["trial_id"];
    } else if (r["kind"] == "transfer") {
      EXPECT_EQ(r["outcome"], "blocked");
      blocked += 1;
    } else {
      EXPECT_EQ(r["outcome"], "completed");
      completed += 1;
    }
  }
  EXPECT_EQ(blocked, 4);
  EXPECT_EQ(completed, 2);
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i]["kind"] == "transfer") {
      EXPECT_EQ(lines[i]["blocked_by"], pretrain_id);
    }
  }
}

// Killed mid-study (SIGKILL: no cleanup), run again: the study resumes from its
// SQLite file and ends with the results of an uninterrupted run.
TEST(SeedproofRun, ResumesAKilledStudyWithTheSameResults) {
  // A pretrain trial of 200 epochs: the transfers need its model, so the study
  // cannot end while it runs.
  const fs::path spec = WriteSpec("cli_resume.yaml", TinySpec("0.01", /*pretrain_epochs=*/200));
  const fs::path full = fs::path(testing::TempDir()) / "cli_resume_full";
  const fs::path cut = fs::path(testing::TempDir()) / "cli_resume_cut";
  fs::remove_all(full);
  fs::remove_all(cut);
  ASSERT_EQ(RunSeedproof(absl::StrCat("run ", spec.string(), " --out ", full.string())).exit_code,
            0);

  const fs::path err = fs::path(testing::TempDir()) / "cli_resume_cut.err";
  const pid_t pid = StartSeedproof({"run", spec.string(), "--out", cut.string()}, err);
  // Mid-study, as observed: a worker says the pretrain trial started. The workers
  // are frozen there (nothing can move on), then the run dies without cleanup.
  ASSERT_TRUE(WaitUntil([&] { return WorkerSaid(cut, "(pretrain, attempt 1) started"); }))
      << ReadFileText(err);
  ASSERT_TRUE(CrashRunAndWorkers(pid));
  EXPECT_FALSE(fs::exists(cut / "results.jsonl"));  // written only at the end

  const CommandRun resumed =
      RunSeedproof(absl::StrCat("run ", spec.string(), " --out ", cut.string()));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_THAT(resumed.err, HasSubstr("resuming"));
  EXPECT_EQ(ResultsById(cut / "results.jsonl"), ResultsById(full / "results.jsonl"));

  // Once finished, running it again runs nothing and changes nothing.
  const CommandRun again =
      RunSeedproof(absl::StrCat("run ", spec.string(), " --out ", cut.string()));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.err, HasSubstr("7 of 7 trials already finished"));
  EXPECT_EQ(ResultsById(cut / "results.jsonl"), ResultsById(full / "results.jsonl"));
}

// The OOM killer takes a worker mid-pretrain, then another mid-transfer: the run
// says so (which worker, the signal, its log), restarts them, and the study ends
// with the results of an undisturbed run (timings and attempt counts aside).
TEST(SeedproofRun, RestartsKilledWorkersAndEndsWithTheSameResults) {
  // Transfers long enough (a second or so each, 4 of them on 2 workers) that one
  // seen starting is still running when it is killed.
  const fs::path spec = WriteSpec(
      "cli_crash.yaml",
      absl::StrReplaceAll(TinySpec("0.01", /*pretrain_epochs=*/200),
                          {{"negative: [5], train_size: 100", "negative: [5], train_size: 2000"},
                           {"frozen: [{epochs: 2, train: head, lr: 1.0e-2}]",
                            "frozen: [{epochs: 2, train: head, lr: 1.0e-2}, "
                            "{epochs: 100, train: all, lr: 1.0e-3}]"}}));
  const fs::path full = fs::path(testing::TempDir()) / "cli_crash_full";
  const fs::path crashed = fs::path(testing::TempDir()) / "cli_crash_killed";
  fs::remove_all(full);
  fs::remove_all(crashed);
  ASSERT_EQ(RunSeedproof(absl::StrCat("run ", spec.string(), " --out ", full.string())).exit_code,
            0);

  const fs::path err = fs::path(testing::TempDir()) / "cli_crash_killed.err";
  const pid_t pid =
      StartSeedproof({"run", spec.string(), "--out", crashed.string(), "--workers", "2"}, err);
  // Kills the worker whose log says `line`, once it says it.
  const auto kill_worker_that_said = [&](const std::string& line) {
    int which = -1;
    EXPECT_TRUE(WaitUntil([&] {
      for (int i = 0; i < 2 && which < 0; ++i) {
        if (ReadFileText(crashed / absl::StrCat("worker-", i, ".log")).find(line) !=
            std::string::npos) {
          which = i;
        }
      }
      return which >= 0;
    })) << line
        << "\n"
        << ReadFileText(err);
    if (which < 0) return;
    const pid_t worker = ChildWithArg(pid, absl::StrCat("local-", which));
    ASSERT_GT(worker, 0) << "local-" << which;
    kill(worker, SIGKILL);
  };
  kill_worker_that_said("(pretrain, attempt 1) started");
  kill_worker_that_said("(transfer, attempt 1) started");
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  const std::string said = ReadFileText(err);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << said;
  const std::regex killed(
      R"(worker local-[01] \(pid \d+\) killed by signal 9 \(Killed\); its trial goes back to the )"
      R"(queue; restarting in [0-9.]+ s \(restart 1 of at most 5 in a row\); log: .*/worker-[01]\.log)");
  EXPECT_EQ(
      std::distance(std::sregex_iterator(said.begin(), said.end(), killed), std::sregex_iterator()),
      2)
      << said;
  EXPECT_EQ(ResultsById(crashed / "results.jsonl"), ResultsById(full / "results.jsonl"));
}

// A trial that kills its worker every time fails after its attempts (3), as on a
// cluster; the trials that need it are blocked, the rest finish, and the run
// stops restarting nothing forever: it ends, exit code 1 for the failed trial.
TEST(SeedproofRun, ATrialThatKeepsKillingItsWorkerFailsAfterItsAttempts) {
  const fs::path spec = WriteSpec("cli_crashloop.yaml", TinySpec("0.01", /*pretrain_epochs=*/200));
  const fs::path out = fs::path(testing::TempDir()) / "cli_crashloop";
  fs::remove_all(out);
  const fs::path err = fs::path(testing::TempDir()) / "cli_crashloop.err";
  const pid_t pid =
      StartSeedproof({"run", spec.string(), "--out", out.string(), "--workers", "1"}, err);
  for (int attempt = 1; attempt <= 3; ++attempt) {
    const std::string line = absl::StrCat("(pretrain, attempt ", attempt, ") started");
    ASSERT_TRUE(WaitUntil([&] { return WorkerSaid(out, line); })) << line << "\n"
                                                                  << ReadFileText(err);
    const pid_t worker = ChildWithArg(pid, "local-0");
    ASSERT_GT(worker, 0);
    kill(worker, SIGKILL);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  const std::string said = ReadFileText(err);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << said;
  EXPECT_THAT(said, HasSubstr("2 done, 1 failed, 4 blocked, 0 cancelled of 7 trials"));
  // A failed trial has no result line: the two baselines and four blocked transfers.
  const auto lines = ReadJsonLines(out / "results.jsonl");
  ASSERT_EQ(lines.size(), 7u) << said;
  int blocked = 0, completed = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    blocked += lines[i]["outcome"] == "blocked";
    completed += lines[i]["outcome"] == "completed";
  }
  EXPECT_EQ(blocked, 4) << said;    // the transfers that need the pretrain trial's model
  EXPECT_EQ(completed, 2) << said;  // the baselines
  EXPECT_THAT(said, HasSubstr("3 worker restart(s) during this run"));
}

TEST(SeedproofRun, AnotherStudysFolderIsNeverTouched) {
  const fs::path spec = WriteSpec("cli_first.yaml", TinySpec("0.01"));
  std::string other_text = TinySpec("0.01");
  other_text.replace(0, std::string("name: tiny").size(), "name: other");
  const fs::path other = WriteSpec("cli_other.yaml", other_text);
  const fs::path out = fs::path(testing::TempDir()) / "cli_other_run";
  fs::remove_all(out);
  ASSERT_EQ(RunSeedproof(absl::StrCat("run ", spec.string(), " --out ", out.string())).exit_code,
            0);
  std::ifstream before_file(out / "results.jsonl");
  const std::string before((std::istreambuf_iterator<char>(before_file)),
                           std::istreambuf_iterator<char>());
  const CommandRun run =
      RunSeedproof(absl::StrCat("run ", other.string(), " --out ", out.string()));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("holds another study (tiny)"));
  std::ifstream after_file(out / "results.jsonl");
  EXPECT_EQ(
      std::string(std::istreambuf_iterator<char>(after_file), std::istreambuf_iterator<char>()),
      before);
}

TEST(SeedproofRun, DamagedDatabaseIsNamedAndLeftAlone) {
  const fs::path spec = WriteSpec("cli_damaged.yaml", TinySpec("0.01"));
  const fs::path out = fs::path(testing::TempDir()) / "cli_damaged_run";
  fs::remove_all(out);
  fs::create_directories(out);
  const std::string garbage(4096, 'x');
  std::ofstream(out / "seedproof.db") << garbage;
  const CommandRun run = RunSeedproof(absl::StrCat("run ", spec.string(), " --out ", out.string()));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("seedproof.db"));
  std::ifstream in(out / "seedproof.db");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()),
            garbage);
}

TEST(SeedproofRun, InvalidSpecRunsNothing) {
  const fs::path spec = WriteSpec("cli_run_bad.yaml", "name: x\nseeds: zero\n");
  const fs::path out = fs::path(testing::TempDir()) / "cli_run_bad";
  fs::remove_all(out);
  const CommandRun run = RunSeedproof(absl::StrCat("run ", spec.string(), " --out ", out.string()));
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("cli_run_bad.yaml:2:8: seeds: "));
  EXPECT_FALSE(fs::exists(out));
}

TEST(SeedproofBench, CacheBenchPrintsOneLinePerMode) {
  const CommandRun run = RunSeedproof(absl::StrCat(
      "bench cache --repeats 1 --spec ", (kRepo / "experiments/specs/geron.yaml").string()));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::vector<std::string> lines = absl::StrSplit(run.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << run.out;
  std::vector<std::string> states;
  for (const std::string& text : lines) {
    const nlohmann::json line = nlohmann::json::parse(text);
    EXPECT_THAT(line["phase"].get<std::string>(), HasSubstr("reuse5/geron/dense"));
    EXPECT_GT(line["seconds"].get<double>(), 0.0);
    EXPECT_GT(line["speedup"].get<double>(), 0.0);
    EXPECT_EQ(line["cached"].get<bool>(), line["cache_state"] != "none");
    states.push_back(line["cache_state"]);
  }
  EXPECT_EQ(states, (std::vector<std::string>{"none", "cold", "warm"}));
}

// The workers run the real worker loop and trial procedure on the no-op plugin.
TEST(SeedproofBench, CoordinatorBenchLosesAndDuplicatesNothing) {
  const CommandRun run = RunSeedproof("bench coordinator --workers 8 --trials 400");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json line = nlohmann::json::parse(run.out);
  EXPECT_EQ(line["workers"], 8);
  EXPECT_EQ(line["backend"], "libseedproof_noop_backend.so");
  EXPECT_EQ(line["trials"], 401);  // a pretrain trial, then a scratch and a transfer per seed
  EXPECT_EQ(line["lost"], 0);
  EXPECT_EQ(line["duplicated"], 0);
  EXPECT_GT(line["trials_per_s"].get<double>(), 0.0);
  EXPECT_LE(line["lease_p50_ms"].get<double>(), line["lease_p99_ms"].get<double>());
}

TEST(SeedproofBench, CoordinatorBenchNamesAMissingBackendPlugin) {
  const CommandRun run = RunSeedproof("bench coordinator --backend /nonexistent/libnoop.so");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.err, HasSubstr("no backend plugin at /nonexistent/libnoop.so"));
  // A file that is no plugin: the workers say so and the bench fails.
  const CommandRun not_plugin =
      RunSeedproof("bench coordinator --workers 2 --trials 4 --backend " + std::string(kSeedproof));
  EXPECT_NE(not_plugin.exit_code, 0);
  EXPECT_THAT(not_plugin.err, HasSubstr(kSeedproof));
}

// The conv path: geron-cnn.yaml's source model with its Adam, on 512 task-A
// images, one and two threads (the second splits each batch of 64).
TEST(SeedproofBench, EngineBenchTrainsASpecsSourceModel) {
  const CommandRun run = RunSeedproof(
      absl::StrCat("bench engine --batch 64 --threads 1 --threads 2 --examples 512 --spec ",
                   (kRepo / "experiments/specs/geron-cnn.yaml").string()));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::vector<std::string> lines = absl::StrSplit(run.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << run.out;
  for (int i = 0; i < 2; ++i) {
    const nlohmann::json line = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(line["model"], "geron-cnn");
    EXPECT_EQ(line["threads"], i + 1);
    EXPECT_EQ(line["samples"], 512);
    // Multiply-adds per example, by hand: conv 28x28x32x9, conv 14x14x64x9x32,
    // dense 3136x128, head 128x8; training doubles each (weight gradients) and
    // adds input gradients for all but the first conv.
    const double forward = 28 * 28 * 32 * 9 + 14 * 14 * 64 * 9 * 32 + 3136 * 128 + 128 * 8;
    const double flops = 2.0 * (2 * forward + (forward - 28 * 28 * 32 * 9));
    EXPECT_NEAR(line["gflops"].get<double>() * 1e9 / line["samples_per_s"].get<double>(), flops,
                1e-6 * flops);
  }
}

TEST(SeedproofBench, EngineBenchRefusesASpecWhoseModelIsNotForTaskA) {
  // geron-cnn.yaml with a two-class source task: its source model ends in 2 units.
  std::ifstream shipped(kRepo / "experiments/specs/geron-cnn.yaml");
  std::string text((std::istreambuf_iterator<char>(shipped)), std::istreambuf_iterator<char>());
  const std::string classes = "classes: [0, 1, 2, 3, 4, 7, 8, 9]";
  ASSERT_NE(text.find(classes), std::string::npos);
  text.replace(text.find(classes), classes.size(), "classes: [0, 1]");
  const fs::path spec = WriteSpec("bench_wrong_input.yaml", text);
  const CommandRun run = RunSeedproof("bench engine --batch 8 --threads 1 --spec " + spec.string());
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.err, HasSubstr("bench_wrong_input.yaml: model: the engine benchmark trains on "
                                 "task A"));
  EXPECT_EQ(run.out, "");
  const CommandRun missing = RunSeedproof("bench engine --spec /nonexistent/spec.yaml");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("--spec: File does not exist"));
  const CommandRun none = RunSeedproof("bench engine --examples 0");
  EXPECT_NE(none.exit_code, 0);
  EXPECT_THAT(none.err, HasSubstr("--examples: Value 0 not in range"));
  EXPECT_EQ(none.out, "");
}

TEST(SeedproofBench, PeakBenchStatesTheModelACeilingItImplies) {
  const CommandRun run = RunSeedproof("bench peak --threads 1 --threads 2 --seconds 0.1");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::vector<std::string> lines = absl::StrSplit(run.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << run.out;
  for (int i = 0; i < 2; ++i) {
    const nlohmann::json line = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(line["threads"], i + 1);
    EXPECT_GT(line["gflops"].get<double>(), 1.0);
    // Model A's example, counted by hand: 275,600 multiply-adds forward, as many
    // for the weight gradients, 40,400 for the input gradients above layer 1.
    EXPECT_EQ(line["geron_a_flops_per_sample"].get<double>(), 2.0 * (275'600 + 275'600 + 40'400));
    EXPECT_DOUBLE_EQ(line["geron_a_samples_per_s_ceiling"].get<double>(),
                     line["gflops"].get<double>() * 1e9 / 1'183'200.0);
  }
  for (const auto& [option, value] : std::vector<std::pair<std::string, std::string>>{
           {"--threads", "0"}, {"--seconds", "0"}, {"--seconds", "x"}}) {
    SCOPED_TRACE(option + " " + value);
    const CommandRun refused = RunSeedproof(absl::StrCat("bench peak ", option, " ", value));
    EXPECT_NE(refused.exit_code, 0);
    EXPECT_THAT(refused.err, HasSubstr(absl::StrCat(option, ": Value ", value, " not in range")));
    EXPECT_EQ(refused.out, "");
  }
}

// A bucket is 0 (one sum after the pass) up to 1 GiB; the option is refused, by
// name, before a worker group or the benchmark starts.
TEST(SeedproofCluster, BucketSizesOutOfRangeAreRefusedByName) {
  for (const std::string command : {"worker", "bench mpi"}) {
    for (const std::string value : {"-1", "1048577"}) {
      SCOPED_TRACE(command + " --bucket-kib " + value);
      const CommandRun refused = RunSeedproof(command + " --bucket-kib " + value);
      EXPECT_NE(refused.exit_code, 0);
      EXPECT_THAT(refused.err, HasSubstr("--bucket-kib: Value " + value + " not in range"));
      EXPECT_EQ(refused.out, "");
    }
  }
}

TEST(SeedproofCluster, MalformedCoordinatorAndListenAddressesAreRefusedAtOnce) {
  // A worker retries an unreachable coordinator forever; an address that can
  // never work must not get that far.
  const fs::path token = WriteSpec("address_token", "address-test-token-0123456789\n");
  const std::string auth = absl::StrCat(" --token-file ", token.string());
  const fs::path db = fs::path(testing::TempDir()) / "address_bad.db";
  fs::remove_all(db);
  for (const char* address : {"nonsense", "host:0", "host:", ":50051", "999.1.1.1:5",
                              "127.0.0.1:65536", "bad_host:1", "[::1:5"}) {
    SCOPED_TRACE(address);
    const std::string expected =
        absl::StrCat("--coordinator: expected HOST:PORT like node1:50051, got '", address, "'");
    for (const char* command : {"worker", "status", "cancel s0"}) {
      const CommandRun run =
          RunSeedproof(absl::StrCat(command, " --coordinator '", address, "'", auth));
      EXPECT_NE(run.exit_code, 0) << command;
      EXPECT_THAT(run.err, HasSubstr(expected)) << command;
    }
    if (std::string(address) == "host:0") continue;  // port 0 is a fine listening address
    const CommandRun coordinator = RunSeedproof(
        absl::StrCat("coordinator --listen '", address, "'", auth, " --db ", db.string()));
    EXPECT_NE(coordinator.exit_code, 0);
    EXPECT_THAT(coordinator.err,
                HasSubstr(absl::StrCat("--listen: expected HOST:PORT like 127.0.0.1:9464, got '",
                                       address, "'")));
  }
  EXPECT_FALSE(fs::exists(db));
}

TEST(SeedproofMetrics, BadOrBusyMetricsAddressesAreNamed) {
  const fs::path token = WriteSpec("metrics_token", "metrics-test-token-0123456789\n");
  const std::string common =
      absl::StrCat("--listen 127.0.0.1:0 --token-file ", token.string(), " --db ",
                   (fs::path(testing::TempDir()) / "metrics_bad.db").string());
  for (const char* address : {"999.1.1.1:5", "nonsense", "127.0.0.1:99999", "1.2.3:4"}) {
    SCOPED_TRACE(address);
    const CommandRun run =
        RunSeedproof(absl::StrCat("coordinator ", common, " --metrics-listen '", address, "'"));
    EXPECT_NE(run.exit_code, 0);
    EXPECT_THAT(run.err, HasSubstr(absl::StrCat("--metrics-listen: expected HOST:PORT like "
                                                "127.0.0.1:9464, got '",
                                                address, "'")));
    const CommandRun worker = RunSeedproof(
        absl::StrCat("worker --token-file ", token.string(), " --metrics-listen '", address, "'"));
    EXPECT_NE(worker.exit_code, 0);
    EXPECT_THAT(worker.err, HasSubstr("--metrics-listen: expected HOST:PORT"));
  }
  // A port something else holds.
  const int busy = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(busy, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(busy, 1), 0);
  socklen_t size = sizeof addr;
  getsockname(busy, reinterpret_cast<sockaddr*>(&addr), &size);
  const std::string taken = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  const CommandRun run =
      RunSeedproof(absl::StrCat("coordinator ", common, " --metrics-listen ", taken));
  close(busy);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr(absl::StrCat("metrics: cannot listen on ", taken)));
}

TEST(SeedproofCoordinator, AnUnwritablePortFileIsNamed) {
  const fs::path token = WriteSpec("port_file_token", "port-file-test-token-0123456789\n");
  const CommandRun run = RunSeedproof(absl::StrCat(
      "coordinator --listen 127.0.0.1:0 --metrics-listen '' --token-file ", token.string(),
      " --db ", (fs::path(testing::TempDir()) / "port_file.db").string(),
      " --port-file /nonexistent/folder/ports"));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("/nonexistent/folder/ports.tmp: cannot write"));
}

}  // namespace
