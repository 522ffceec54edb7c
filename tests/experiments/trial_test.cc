// The trial procedure on the real Fashion-MNIST, on small subsets so each test
// takes a second or two: pretrain → transfer / scratch, the frozen-prefix cache,
// fitted heads, divergence, determinism, provenance and the results JSON.
#include "experiments/trial.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "experiments/fingerprint.h"
#include "experiments/plan.h"
#include "experiments/results.h"
#include "experiments/sweep_parse.h"
#include "experiments/training.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace seedproof {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Source: 8 classes on 3,000 images; target: shirt vs sandal on the first 200.
std::string SmallSpec(const std::string& extra_transfer = "",
                      const std::string& pretrain_lr = "0.01") {
  return absl::StrCat(R"(name: small
dataset: {name: fashion-mnist, validation: 5000}
source: {classes: [0, 1, 2, 3, 4, 7, 8, 9], train_size: 3000}
target: {positive: [6], negative: [5], train_size: 200, subset: first}
model:
  input: [28, 28, 1]
  layers: [{dense: 64}, {dense: 32}]
  activation: selu
pretrain: {optimizer: sgd, lr: )",
                      pretrain_lr, R"(, epochs: 2, batch_size: 32}
transfer:
  reuse: [2]
)",
                      extra_transfer, R"(  schedules:
    frozen: [{epochs: 3, train: head, lr: 1.0e-2}]
    geron: [{epochs: 2, train: head, lr: 1.0e-2}, {epochs: 2, train: all, lr: 1.0e-3}]
baseline: {scratch: {epochs: 3, lr: 1.0e-2}}
seeds: 2
)");
}

Plan PlanOf(const std::string& text) {
  auto spec = ParseSweepSpecText(text, "small.yaml");
  EXPECT_TRUE(spec.ok()) << spec.status().message();
  return ExpandSweep(*spec);
}

// Runs every trial of a plan in order (dependencies first), in one process.
class Runner {
 public:
  explicit Runner(const std::string& name, bool feature_cache = true,
                  const std::string& backend = "onednn")
      : dir_(fs::path(testing::TempDir()) / absl::StrCat("trial_test_", name)),
        store_(dir_.string()) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    backend_ = *MakeBackend(backend);
    ctx_.backend = backend_.get();
    ctx_.artifacts = &store_;
    ctx_.cache = &cache_;
    ctx_.feature_cache = feature_cache;
  }

  std::map<std::string, TrialResult> RunAll(const Plan& plan) {
    std::map<std::string, TrialResult> results;
    for (const TrialSpec& trial : plan.trials) {
      auto result = RunTrial(trial, ctx_);
      EXPECT_TRUE(result.ok()) << trial.arm << ": " << result.status();
      if (!result.ok()) break;
      if (trial.kind == TrialKind::kPretrain && result->outcome == TrialOutcome::kCompleted) {
        EXPECT_FALSE(result->model_sha256.empty());
      }
      results[absl::StrCat(TrialKindName(trial.kind), "/", trial.arm, "/", trial.seed_index)] =
          *result;
    }
    return results;
  }

  TrialContext& context() { return ctx_; }
  TrialCache& cache() { return cache_; }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
  DirectoryArtifactStore store_;
  TrialCache cache_;
  std::unique_ptr<Backend> backend_;
  TrialContext ctx_;
};

// Everything but wall-clock times.
nlohmann::json Timeless(const TrialResult& r) {
  nlohmann::json j = TrialResultToJson(r);
  j.erase("wall_seconds");
  j.erase("phase_seconds");
  for (auto& e : j["epochs"]) e.erase("seconds");
  return j;
}

TEST(Trial, SmallStudyRunsEndToEndAndLearns) {
  const Plan plan = PlanOf(SmallSpec());
  ASSERT_EQ(plan.trials.size(), 1u + 2u + 4u);  // pretrain, 2 scratch, 2 arms x 2 seeds
  Runner runner("end_to_end");
  auto results = runner.RunAll(plan);
  ASSERT_EQ(results.size(), plan.trials.size());
  const TrialResult& pretrain = results.at("pretrain/source/0");
  ASSERT_EQ(pretrain.epochs.size(), 2u);
  EXPECT_GT(pretrain.epochs.back().val_accuracy, 0.7);  // 8 classes: chance is 0.125
  EXPECT_EQ(pretrain.test_examples, 8000);
  EXPECT_EQ(pretrain.model_sha256.size(), 64u);
  EXPECT_TRUE(fs::exists(runner.dir() / absl::StrCat(pretrain.trial_id, ".spm")));

  const TrialResult& transfer = results.at("transfer/reuse2/geron/dense/1");
  EXPECT_EQ(transfer.outcome, TrialOutcome::kCompleted);
  ASSERT_EQ(transfer.epochs.size(), 4u);
  ASSERT_EQ(transfer.phase_seconds.size(), 2u);
  EXPECT_GT(transfer.phase_seconds[0], 0.0);
  EXPECT_EQ(transfer.epochs[0].phase, 0);
  EXPECT_EQ(transfer.epochs[3].phase, 1);
  EXPECT_EQ(transfer.epochs[3].epoch, 4);
  // 28 steps on 200 images: well above chance (0.5), far from converged.
  EXPECT_GT(transfer.test_accuracy, 0.65);
  EXPECT_EQ(transfer.test_examples, 2000);
  // Provenance of every number.
  EXPECT_EQ(transfer.provenance.source_model_sha256, pretrain.model_sha256);
  EXPECT_EQ(transfer.provenance.backend, "onednn");
  EXPECT_EQ(transfer.provenance.threads, 1);
  EXPECT_EQ(transfer.provenance.cpu_isa, CpuIsa());
  EXPECT_NE(transfer.provenance.seeds.init,
            results.at("transfer/reuse2/geron/dense/0").provenance.seeds.init);
  const TrialResult& scratch = results.at("scratch/baseline/0");
  EXPECT_TRUE(scratch.provenance.source_model_sha256.empty());
  EXPECT_EQ(scratch.epochs.size(), 3u);
}

TEST(Trial, SameSpecGivesBitIdenticalResults) {
  const Plan plan = PlanOf(SmallSpec());
  auto a = Runner("determinism_a").RunAll(plan);
  auto b = Runner("determinism_b").RunAll(plan);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [key, result] : a) EXPECT_EQ(Timeless(result), Timeless(b.at(key))) << key;
}

// Training a head on cached prefix outputs is training the whole model with the
// prefix frozen: same numbers, bit for bit, on the reference backend, whose every
// output row is computed alone. oneDNN's AVX2 sgemm rounds a row differently in a
// batch of fewer than 64 rows than in a larger one (seen on this project's AVX2
// machines: 432 of 8,192 prefix outputs differ between batches of 32 and 256), so
// there the cached run agrees to float rounding instead.
TEST(Trial, FrozenPhasesGiveTheSameResultsWithAndWithoutTheCache) {
  const Plan plan = PlanOf(SmallSpec());
  Runner cached("cache_on", true, "reference"), uncached("cache_off", false, "reference");
  auto a = cached.RunAll(plan);
  auto b = uncached.RunAll(plan);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [key, result] : a) EXPECT_EQ(Timeless(result), Timeless(b.at(key))) << key;
  // Both seeds' frozen phases of both arms reuse one source model's reuse-2 prefix:
  // computed once, then shared.
  EXPECT_EQ(cached.cache().feature_misses(), 1);
  EXPECT_EQ(cached.cache().feature_hits(), 3);
  EXPECT_EQ(uncached.cache().feature_misses() + uncached.cache().feature_hits(), 0);
}

TEST(Trial, FrozenPhasesOnOneDnnAgreeWithAndWithoutTheCacheToRounding) {
  const Plan plan = PlanOf(SmallSpec());
  Runner cached("onednn_cache_on", true), uncached("onednn_cache_off", false);
  auto a = cached.RunAll(plan);
  auto b = uncached.RunAll(plan);
  ASSERT_EQ(a.size(), b.size());
  auto close = [](double x, double y) { return std::abs(x - y) <= 1e-5 * std::max(1.0, std::abs(y)); };
  for (const auto& [key, result] : a) {
    const TrialResult& other = b.at(key);
    ASSERT_EQ(result.epochs.size(), other.epochs.size()) << key;
    for (size_t e = 0; e < result.epochs.size(); ++e) {
      const EpochRecord &x = result.epochs[e], &y = other.epochs[e];
      EXPECT_TRUE(close(x.train_loss, y.train_loss)) << key << " epoch " << e << ": "
                                                    << x.train_loss << " vs " << y.train_loss;
      EXPECT_TRUE(close(x.val_loss, y.val_loss)) << key << " epoch " << e;
      // One example of 200 (or of ~1,000) may flip where the rounding crosses 0.5.
      EXPECT_NEAR(x.train_accuracy, y.train_accuracy, 0.0051) << key << " epoch " << e;
      EXPECT_NEAR(x.val_accuracy, y.val_accuracy, 0.0011) << key << " epoch " << e;
    }
    EXPECT_TRUE(close(result.test_loss, other.test_loss)) << key;
    EXPECT_NEAR(result.test_accuracy, other.test_accuracy, 0.0006) << key;
  }
  EXPECT_EQ(cached.cache().feature_misses(), 1);
  EXPECT_EQ(cached.cache().feature_hits(), 3);
}

TEST(Trial, FittedHeadsClassifyTheFrozenFeatures) {
  const Plan plan = PlanOf(SmallSpec("  heads: [logistic, {linear_svm: {c: 0.5}}, dense]\n"));
  Runner runner("fitted");
  auto results = runner.RunAll(plan);
  for (const std::string arm : {"reuse2/logistic", "reuse2/linear_svm-c0.5"}) {
    const TrialResult& r = results.at(absl::StrCat("transfer/", arm, "/0"));
    EXPECT_EQ(r.outcome, TrialOutcome::kCompleted) << arm;
    ASSERT_EQ(r.epochs.size(), 1u) << arm;
    EXPECT_GT(r.epochs[0].train_accuracy, 0.9) << arm;
    EXPECT_GT(r.test_accuracy, 0.8) << arm;
  }
}

TEST(Trial, NonFiniteLossEndsTheTrialAsDiverged) {
  const Plan plan = PlanOf(SmallSpec("", "1.0e+30"));
  Runner runner("diverged");
  auto pretrain = RunTrial(plan.trials.front(), runner.context());
  ASSERT_TRUE(pretrain.ok()) << pretrain.status();
  EXPECT_EQ(pretrain->outcome, TrialOutcome::kDiverged);
  EXPECT_EQ(pretrain->diverged_epoch, 1);
  EXPECT_TRUE(pretrain->model_sha256.empty());
  EXPECT_FALSE(fs::exists(runner.dir() / absl::StrCat(pretrain->trial_id, ".spm")));
}

// Dropout masks and batch statistics are per replica's share of a batch: such a
// trial is refused across replicas (a worker group runs it on one rank).
TEST(Trial, DropoutOrBatchNormAcrossReplicasIsRefusedNotSilentlyDifferent) {
  for (const char* middle : {"{dropout: 0.2}", "{batchnorm: {activation: relu}}"}) {
    std::string text = SmallSpec();
    text.replace(text.find("[{dense: 64}, {dense: 32}]"), 26,
                 absl::StrCat("[{dense: 64}, ", middle, ", {dense: 32}]"));
    const Plan plan = PlanOf(text);
    EXPECT_FALSE(SplitsAcrossReplicas(plan.trials.front())) << middle;
    Runner runner("dropout_replicas");
    runner.context().replicas = 2;
    runner.context().reducer = &LocalGradientReducer();
    auto result = RunTrial(plan.trials.front(), runner.context());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnimplemented) << middle;
    EXPECT_THAT(result.status().message(),
                HasSubstr("dropout and batch normalisation layers are not supported across"));
  }
  EXPECT_TRUE(SplitsAcrossReplicas(PlanOf(SmallSpec()).trials.front()));
}

// A reducer for one replica that stands for `replicas`: it scales nothing and
// multiplies the example count, as if the others had sent zeros.
class PretendGroup final : public GradientReducer {
 public:
  absl::StatusOr<int64_t> Reduce(std::span<float>, int64_t local_examples) override {
    return local_examples * 4;
  }
};

TEST(Training, ABatchTooSmallToSplitOrNoReducerIsAnError) {
  Dataset data;
  data.example_shape = {2};
  data.x.assign(10, 0.5f);  // 5 examples
  data.y = {0, 1, 0, 1, 0};
  auto backend = *MakeBackend("reference");
  ModelSpec spec;
  spec.input = {2};
  spec.layers.push_back(LayerSpec::Dense(2, Activation::kSoftmax));
  spec.loss = Loss::kSparseCategoricalCrossEntropy;
  auto model = backend->Create(spec, 1);
  ASSERT_TRUE(model.ok()) << model.status();
  PretendGroup group;
  EpochOptions options;
  options.replicas = 4;
  EXPECT_THAT(TrainEpoch(**model, data, 4, 1, options).status().message(), HasSubstr("no reducer"));
  options.reducer = &group;
  // Batches of 4 and 1: replica 0 gets nothing of the second.
  EXPECT_THAT(TrainEpoch(**model, data, 4, 1, options).status().message(),
              HasSubstr("a batch of 1 examples cannot be split across 4 replicas"));
  options.replica = 4;
  EXPECT_THAT(TrainEpoch(**model, data, 4, 1, options).status().message(),
              HasSubstr("replica 4 of 4"));
}

TEST(Trial, StopFlagEndsTheTrialAsCancelled) {
  const Plan plan = PlanOf(SmallSpec());
  Runner runner("stopped");
  runner.context().should_stop = [] { return true; };
  auto result = RunTrial(plan.trials.front(), runner.context());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
}

TEST(Trial, MissingSourceModelNamesTheTrial) {
  const Plan plan = PlanOf(SmallSpec());
  Runner runner("missing_source");
  const TrialSpec* transfer = nullptr;
  for (const TrialSpec& t : plan.trials) {
    if (t.kind == TrialKind::kTransfer) transfer = &t;
  }
  ASSERT_NE(transfer, nullptr);
  auto result = RunTrial(*transfer, runner.context());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(result.status().message(), HasSubstr(transfer->source_trial));
}

// The workers of one process share the cache: an entry asked for by many at once
// is built once, and a failed build is not kept.
TEST(TrialCache, ConcurrentAsksBuildAnEntryOnceAndFailuresAreNotKept) {
  TrialCache cache;
  std::atomic<int> builds = 0, started = 0;
  // The build ends only once every asker has started: those not yet in the cache
  // then come while it runs, or after it is kept; never before.
  const auto build = [&]() -> absl::StatusOr<TaskSplits> {
    ++builds;
    while (started.load() < 8) std::this_thread::yield();
    TaskSplits splits;
    splits.train.y = {1, 2, 3};
    return splits;
  };
  std::vector<std::shared_ptr<const TaskSplits>> got(8);
  std::vector<std::thread> askers;
  for (size_t i = 0; i < got.size(); ++i) {
    askers.emplace_back([&, i] {
      ++started;
      auto entry = cache.Features("prefix", build);
      ASSERT_TRUE(entry.ok()) << entry.status();
      got[i] = *entry;
    });
  }
  for (std::thread& t : askers) t.join();
  EXPECT_EQ(builds, 1);
  EXPECT_EQ(cache.feature_misses(), 1);
  EXPECT_EQ(cache.feature_hits(), 7);
  for (const auto& entry : got) EXPECT_EQ(entry, got.front());

  auto failed = cache.Features(
      "flaky", [] { return absl::StatusOr<TaskSplits>(absl::UnavailableError("disk")); });
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  auto retried = cache.Features("flaky", build);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ((*retried)->train.y.size(), 3u);
  EXPECT_EQ(builds, 2);
}

TEST(TrialResultJson, RoundTripsEveryField) {
  TrialResult r;
  r.trial_id = "abc";
  r.kind = TrialKind::kTransfer;
  r.arm = "reuse4/geron/dense";
  r.target = "6-vs-5";
  r.seed_index = 7;
  r.outcome = TrialOutcome::kDiverged;
  r.diverged_epoch = 3;
  r.epochs = {{0, 1, 0.5, 0.75, 0.25, 0.875, 1.5}, {1, 2, 0.1, 0.9, 0.2, 0.95, 0.5}};
  r.test_loss = 0.125;
  r.test_accuracy = 0.96875;
  r.test_examples = 2000;
  r.wall_seconds = 2.5;
  r.phase_seconds = {0.5, 1.75};
  r.provenance.seeds = {18446744073709551615ull, 2, 3};
  r.provenance.threads = 2;
  r.provenance.cpu_isa = "avx2";
  r.provenance.backend = "reference";
  r.provenance.source_model_sha256 = std::string(64, 'f');
  const nlohmann::json j = TrialResultToJson(r);
  auto back = TrialResultFromJson(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(TrialResultToJson(*back), j);
  EXPECT_EQ(back->provenance.seeds.init, 18446744073709551615ull);
}

TEST(TrialResultJson, BadObjectsNameTheField) {
  TrialResult r;
  r.trial_id = "abc";
  const nlohmann::json good = TrialResultToJson(r);
  nlohmann::json missing = good;
  missing.erase("test_accuracy");
  EXPECT_THAT(TrialResultFromJson(missing).status().message(), HasSubstr("test_accuracy"));
  nlohmann::json mistyped = good;
  mistyped["provenance"]["threads"] = "two";
  EXPECT_THAT(TrialResultFromJson(mistyped).status().message(), HasSubstr("threads"));
  nlohmann::json outcome = good;
  outcome["outcome"] = "exploded";
  EXPECT_THAT(TrialResultFromJson(outcome).status().message(), HasSubstr("exploded"));
  EXPECT_FALSE(TrialResultFromJson(nlohmann::json::array()).ok());
}

}  // namespace
}  // namespace seedproof
