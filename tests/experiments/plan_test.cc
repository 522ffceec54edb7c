// Expanding sweep specs into trial DAGs: counts, pretrain sharing, dependency
// order, ids, seed streams, the compute estimate and the two renderings.
#include "experiments/plan.h"

#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backends/random.h"
#include "experiments/geron.h"
#include "experiments/sweep_parse.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace seedproof {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const fs::path kRepo = fs::path(__FILE__).parent_path().parent_path().parent_path();

SweepSpec Shipped(const std::string& name) {
  auto spec = ParseSweepSpec((kRepo / "experiments" / "specs" / name).string());
  EXPECT_TRUE(spec.ok()) << spec.status().message();
  return spec.ok() ? *spec : SweepSpec{};
}

SweepSpec FromText(const std::string& text) {
  auto spec = ParseSweepSpecText(text, "plan.yaml");
  EXPECT_TRUE(spec.ok()) << spec.status().message();
  return spec.ok() ? *spec : SweepSpec{};
}

// Two targets of one source task; seeds and extra lines vary per test.
std::string TwoTargetSpec(const std::string& seeds) {
  return absl::StrCat(R"(name: two-targets
source: {classes: [0, 1, 3, 8]}
targets:
  - {name: shirt-vs-sandal, positive: [6], negative: [5], train_size: 200}
  - {name: pullover-vs-coat, positive: [2], negative: [4], train_size: 100, subset: random}
model: {layers: [{dense: 30}, {dense: 20}, {dense: 10}]}
pretrain: {lr: 0.01, epochs: 2}
transfer:
  reuse: [1, 3]
  schedules:
    a: [{epochs: 1, train: head}]
    b: [{epochs: 1, train: head}, {epochs: 1, train: top-1}]
seeds: )",
                      seeds, "\n");
}

std::map<std::string, size_t> IndexById(const Plan& plan) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < plan.trials.size(); ++i) index[plan.trials[i].id] = i;
  return index;
}

// Each trial reads its own task's dataset: the source model the source's, the
// baselines and transfers the target's (a study across datasets).
TEST(ExpandSweep, EachTrialReadsTheDatasetOfItsTask) {
  const SweepSpec spec = FromText(R"(name: across
datasets:
  fashion-mnist: {validation: 5000}
  digits: {format: csv, path: /data/digits.csv, header: false, shape: [8, 8, 1], validation: 100,
           resize: true}
source: {dataset: fashion-mnist, classes: [0, 1, 2]}
target: {dataset: digits, positive: [8], negative: [3], train_size: 40}
model: {input: [28, 28, 1], layers: [{dense: 30}]}
pretrain: {lr: 0.01, epochs: 1}
transfer: {reuse: [1], schedules: {a: [{epochs: 1, train: head}]}}
seeds: 2
)");
  const Plan plan = ExpandSweep(spec);
  ASSERT_EQ(plan.trials.size(), 1u + 2u + 2u);
  for (const TrialSpec& t : plan.trials) {
    const bool source = t.kind == TrialKind::kPretrain;
    EXPECT_EQ(t.task.dataset, source ? "fashion-mnist" : "digits") << TrialKindName(t.kind);
    EXPECT_EQ(t.dataset.name, t.task.dataset) << TrialKindName(t.kind);
    EXPECT_EQ(t.dataset.format, source ? DatasetFormat::kIdx : DatasetFormat::kCsv);
  }
  ASSERT_EQ(plan.datasets.size(), 2u);
}

// Sequential seeds with a source model per seed: the first look's seeds and
// their source models run from the start; every later seed's trials, its source
// model first, are candidates the coordinator adds step by step.
TEST(ExpandSweep, SequentialSeedsPlanTheFirstLookAndLeaveTheRestAsCandidates) {
  SweepSpec spec = Shipped("geron.yaml");
  spec.seeds.count = 12;
  spec.seeds.source_seeds = 12;
  spec.seeds.min = 5;
  spec.seeds.step = 5;
  const Plan plan = ExpandSweep(spec);
  EXPECT_EQ(plan.trials_by_kind.at(TrialKind::kPretrain), 5);
  EXPECT_EQ(plan.trials.size(), 5u + 5u + 15u * 5u);
  for (const TrialSpec& t : plan.trials) EXPECT_LT(t.seed_index, 5);
  ASSERT_EQ(plan.later_candidates.size(), 7u + 7u + 15u * 7u);
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < plan.later_candidates.size(); ++i) {
    const TrialSpec& t = plan.later_candidates[i];
    EXPECT_GE(t.seed_index, 5);
    EXPECT_EQ(t.kind == TrialKind::kPretrain, i < 7) << i;
    index[t.id] = i;
    if (t.kind == TrialKind::kTransfer) {
      ASSERT_TRUE(index.contains(t.source_trial)) << "its source model comes before it";
      EXPECT_EQ(plan.later_candidates[index[t.source_trial]].seed_index, t.seed_index);
    }
  }
}

TEST(ExpandSweep, GeronPretrainsAFreshSourceModelPerSeedSharedByThatSeedsArms) {
  const SweepSpec spec = Shipped("geron.yaml");
  const Plan plan = ExpandSweep(spec);
  EXPECT_EQ(plan.trials_by_kind.at(TrialKind::kPretrain), 20);
  EXPECT_EQ(plan.trials_by_kind.at(TrialKind::kScratch), 20);
  EXPECT_EQ(plan.trials_by_kind.at(TrialKind::kTransfer), 5 * 3 * 20);
  EXPECT_EQ(plan.trials.size(), 340u);
  EXPECT_EQ(plan.arms.size(), 15u);
  EXPECT_THAT(plan.targets, ElementsAre("6-vs-5"));
  // Pretrain trial j is source seed j; seed s's arms all reuse source model s.
  for (int j = 0; j < 20; ++j) {
    const TrialSpec& pretrain = plan.trials[j];
    ASSERT_EQ(pretrain.kind, TrialKind::kPretrain);
    EXPECT_EQ(pretrain.seed_index, j);
    EXPECT_EQ(pretrain.model, GeronModelA());
    EXPECT_THAT(pretrain.task.classes, ElementsAre(0, 1, 2, 3, 4, 7, 8, 9));
  }
  for (const TrialSpec& t : plan.trials) {
    if (t.kind == TrialKind::kTransfer) {
      EXPECT_EQ(t.source_trial, plan.trials[t.seed_index].id);
      EXPECT_EQ(t.model, GeronModelA());
    }
  }
}

TEST(ExpandSweep, TrialsComeAfterTheirDependencies) {
  for (const char* name : {"geron.yaml", "geron-cnn.yaml", "change-the-classes.yaml"}) {
    const Plan plan = ExpandSweep(Shipped(name));
    const std::map<std::string, size_t> index = IndexById(plan);
    TrialKind previous = TrialKind::kPretrain;
    for (size_t i = 0; i < plan.trials.size(); ++i) {
      const TrialSpec& t = plan.trials[i];
      EXPECT_GE(static_cast<int>(t.kind), static_cast<int>(previous)) << name;
      previous = t.kind;
      if (t.kind == TrialKind::kTransfer) {
        ASSERT_TRUE(index.count(t.source_trial)) << name;
        EXPECT_LT(index.at(t.source_trial), i);
        EXPECT_EQ(plan.trials[index.at(t.source_trial)].kind, TrialKind::kPretrain);
      } else {
        EXPECT_TRUE(t.source_trial.empty());
      }
    }
  }
}

TEST(ExpandSweep, SeveralTargetsShareTheirSourceModel) {
  const Plan plan = ExpandSweep(FromText(TwoTargetSpec("10")));
  EXPECT_EQ(plan.trials_by_kind.at(TrialKind::kPretrain), 1);
  EXPECT_EQ(plan.trials_by_kind.at(TrialKind::kScratch), 2 * 10);
  EXPECT_EQ(plan.trials_by_kind.at(TrialKind::kTransfer),
            2 * 2 * 2 * 10);  // reuse x sched x target x seed
  EXPECT_THAT(plan.targets, ElementsAre("shirt-vs-sandal", "pullover-vs-coat"));
}

TEST(ExpandSweep, SourceSeedsAreSharedRoundRobin) {
  const Plan plan = ExpandSweep(FromText(TwoTargetSpec("{count: 10, source: 3}")));
  ASSERT_EQ(plan.trials_by_kind.at(TrialKind::kPretrain), 3);
  std::vector<std::string> sources;
  for (const TrialSpec& t : plan.trials) {
    if (t.kind == TrialKind::kPretrain) {
      EXPECT_EQ(t.seed_index, static_cast<int>(sources.size()));
      sources.push_back(t.id);
    }
  }
  std::map<std::string, int> uses;
  for (const TrialSpec& t : plan.trials) {
    if (t.kind != TrialKind::kTransfer) continue;
    EXPECT_EQ(t.source_trial, sources[static_cast<size_t>(t.seed_index % 3)]);
    ++uses[t.source_trial];
  }
  EXPECT_EQ(uses.size(), 3u);
  EXPECT_EQ(uses[sources[0]], 4 * 2 * 4);  // seeds 0, 3, 6, 9
  EXPECT_EQ(uses[sources[1]], 4 * 2 * 3);
}

TEST(ExpandSweep, PerTargetSourcesArePretrainedOncePerDistinctTask) {
  const Plan classes = ExpandSweep(Shipped("change-the-classes.yaml"));
  EXPECT_EQ(classes.trials_by_kind.at(TrialKind::kPretrain), 4 * 20);  // 4 tasks x 20 source seeds
  EXPECT_EQ(classes.trials_by_kind.at(TrialKind::kScratch), 4 * 20);
  EXPECT_EQ(classes.trials_by_kind.at(TrialKind::kTransfer), 2 * 2 * 4 * 20);

  // 6 vs 5 and 5 vs 6 leave the same 8 classes: one source model for both.
  const Plan mirrored = ExpandSweep(FromText(R"(name: mirrored
source: {classes: others}
targets:
  - {name: a, positive: [6], negative: [5]}
  - {name: b, positive: [5], negative: [6]}
  - {name: c, positive: [2], negative: [4]}
model: {layers: [{dense: 10}]}
pretrain: {lr: 0.01, epochs: 1}
transfer: {reuse: 1, schedules: {s: [{epochs: 1, train: head}]}}
seeds: {count: 4, source: 2}
)"));
  EXPECT_EQ(mirrored.trials_by_kind.at(TrialKind::kPretrain), 2 * 2);
  std::map<std::string, std::set<std::string>> targets_by_source;
  for (const TrialSpec& t : mirrored.trials) {
    if (t.kind == TrialKind::kTransfer) targets_by_source[t.source_trial].insert(t.target);
  }
  std::set<std::set<std::string>> groups;
  for (const auto& [source, targets] : targets_by_source) groups.insert(targets);
  EXPECT_THAT(groups, ElementsAre(std::set<std::string>{"a", "b"}, std::set<std::string>{"c"}));
}

TEST(ExpandSweep, IdsAreStableUniqueAndContentDerived) {
  const Plan a = ExpandSweep(Shipped("geron.yaml"));
  const Plan b = ExpandSweep(Shipped("geron.yaml"));
  ASSERT_EQ(a.trials.size(), b.trials.size());
  std::set<std::string> ids;
  for (size_t i = 0; i < a.trials.size(); ++i) {
    EXPECT_EQ(a.trials[i].id, b.trials[i].id);
    EXPECT_EQ(a.trials[i].id.size(), 32u);
    EXPECT_EQ(a.trials[i].id, TrialId(a.trials[i]));
    ids.insert(a.trials[i].id);
  }
  EXPECT_EQ(ids.size(), a.trials.size());

  // Another seed, another id; the sweep's name does not enter ids.
  TrialSpec t = a.trials[5];
  t.seed_index += 1;
  EXPECT_NE(TrialId(t), a.trials[5].id);
  SweepSpec renamed = Shipped("geron.yaml");
  renamed.name = "another-name";
  EXPECT_EQ(ExpandSweep(renamed).trials[0].id, a.trials[0].id);
  // A changed learning rate changes every trial that uses it.
  SweepSpec slower = Shipped("geron.yaml");
  slower.pretrain.optimizer.learning_rate = 2e-3f;
  const Plan c = ExpandSweep(slower);
  EXPECT_NE(c.trials[0].id, a.trials[0].id);
  EXPECT_NE(c.trials.back().source_trial, a.trials.back().source_trial);
  EXPECT_EQ(c.trials[20].id, a.trials[20].id);  // the first scratch baseline did not change
}

TEST(ExpandSweep, SeedStreamsAreIndependentPairedAndFixable) {
  const Plan plan = ExpandSweep(Shipped("geron.yaml"));
  std::map<int, SeedStreams> scratch;
  for (const TrialSpec& t : plan.trials) {
    if (t.kind == TrialKind::kScratch) scratch[t.seed_index] = t.seeds;
  }
  for (const TrialSpec& t : plan.trials) {
    if (t.kind != TrialKind::kTransfer) continue;
    // Paired: a transfer trial draws what its baseline of the same seed draws.
    EXPECT_EQ(t.seeds.init, scratch[t.seed_index].init);
    EXPECT_EQ(t.seeds.order, scratch[t.seed_index].order);
    EXPECT_EQ(t.seeds.subset, scratch[t.seed_index].subset);
  }
  EXPECT_EQ(scratch[3].init, StreamSeed(0, 3, 1));
  EXPECT_EQ(scratch[3].order, StreamSeed(0, 3, 2));
  EXPECT_EQ(scratch[3].subset, StreamSeed(0, 3, 3));
  EXPECT_NE(scratch[3].init, scratch[4].init);
  EXPECT_NE(scratch[3].init, scratch[3].order);
  // The source model's streams are another domain than the baselines'.
  EXPECT_EQ(plan.trials[0].seeds.init, StreamSeed(0, 0, 1, 1));
  EXPECT_NE(plan.trials[0].seeds.init, scratch[0].init);

  SeedPolicy fixed;
  fixed.count = 5;
  fixed.fixed_init = 7;
  fixed.base = 11;
  EXPECT_EQ(TrialSeedStreams(fixed, 2, TrialKind::kScratch).init, 7u);
  EXPECT_EQ(TrialSeedStreams(fixed, 2, TrialKind::kPretrain).init, 7u);
  EXPECT_EQ(TrialSeedStreams(fixed, 2, TrialKind::kScratch).order, StreamSeed(11, 2, 2));
}

// Crossed streams: seed i's target trials draw init stream i / B and order stream
// i % B, the same streams an uncrossed seed of that index draws; subsets and
// source models keep one stream per seed.
TEST(ExpandSweep, CrossedSeedsShareInitByRowAndOrderByColumn) {
  SeedPolicy crossed;
  crossed.count = 12;
  crossed.crossed_init = 3;
  crossed.crossed_order = 4;
  SeedPolicy plain;
  plain.count = 12;
  for (int i = 0; i < 12; ++i) {
    const SeedStreams s = TrialSeedStreams(crossed, i, TrialKind::kTransfer);
    EXPECT_EQ(s.init, TrialSeedStreams(plain, i / 4, TrialKind::kTransfer).init) << i;
    EXPECT_EQ(s.order, TrialSeedStreams(plain, i % 4, TrialKind::kTransfer).order) << i;
    EXPECT_EQ(s.subset, TrialSeedStreams(plain, i, TrialKind::kTransfer).subset) << i;
    EXPECT_EQ(s, TrialSeedStreams(crossed, i, TrialKind::kScratch)) << "paired";
    EXPECT_EQ(TrialSeedStreams(crossed, i, TrialKind::kPretrain),
              TrialSeedStreams(plain, i, TrialKind::kPretrain));
  }
}

TEST(ExpandSweep, EveryTrialBuildsAValidNetwork) {
  for (const char* name : {"geron.yaml", "geron-cnn.yaml", "change-the-classes.yaml"}) {
    for (const TrialSpec& t : ExpandSweep(Shipped(name)).trials) {
      const ModelSpec model = t.kind == TrialKind::kTransfer ? TransferModel(t) : t.model;
      EXPECT_TRUE(InferShapes(model).ok())
          << name << " " << t.arm << ": " << InferShapes(model).status();
    }
  }
  const Plan plan = ExpandSweep(Shipped("geron.yaml"));
  const TrialSpec& scratch = plan.trials[20];  // after the 20 pretrain trials
  ASSERT_EQ(scratch.kind, TrialKind::kScratch);
  EXPECT_EQ(scratch.model.loss, Loss::kBinaryCrossEntropy);
  EXPECT_EQ(scratch.model.layers.back(), LayerSpec::Dense(1, Activation::kSigmoid));
  EXPECT_EQ(scratch.model.layers.size(), GeronModelA().layers.size());
  const TrialSpec& transfer = plan.trials.back();  // reuse5/gentle
  const ModelSpec model = TransferModel(transfer);
  EXPECT_EQ(model.layers.size(), 7u);
  EXPECT_EQ(model.loss, Loss::kBinaryCrossEntropy);
}

TEST(ExpandSweep, MultiClassTargetEndsInSoftmax) {
  const Plan plan = ExpandSweep(FromText(R"(name: multi
source: {classes: [0, 1, 3, 8]}
target: {classes: [2, 4, 6]}
model: {layers: [{dense: 10}]}
pretrain: {lr: 0.01, epochs: 1}
transfer: {reuse: 1, schedules: {s: [{epochs: 1}]}}
seeds: 1
)"));
  const TrialSpec& scratch = plan.trials[1];
  EXPECT_EQ(scratch.model.loss, Loss::kSparseCategoricalCrossEntropy);
  EXPECT_EQ(scratch.model.layers.back(), LayerSpec::Dense(3, Activation::kSoftmax));
  EXPECT_EQ(TransferModel(plan.trials[2]).layers.back().units, 3);
}

TEST(EstimatedCompute, GeronModelATrainsAt118MflopPerExample) {
  // ../shared/REFERENCE.md: ~1.18 MFLOP per training sample for model A.
  const ModelSpec a = GeronModelA();
  EXPECT_DOUBLE_EQ(TrainingFlopsPerExample(a, 1), 1183200.0);
  EXPECT_DOUBLE_EQ(TrainingFlopsPerExample(a, 0), 1183200.0);
}

TEST(EstimatedCompute, UsesClassCountsTrainSizeOrTheNominalEstimate) {
  const SweepSpec spec = Shipped("geron.yaml");
  const DatasetSpec& data = spec.DatasetOf(spec.source);
  EXPECT_EQ(TaskTrainExamples(spec.source, data, {}), 44000);  // 8 x 6000 x 55/60
  std::vector<int64_t> counts(10, 5500);
  counts[0] = 5000;
  EXPECT_EQ(TaskTrainExamples(spec.source, data, counts), 7 * 5500 + 5000);
  EXPECT_EQ(TaskTrainExamples(spec.targets[0], data, counts), 200);

  const Plan plan = ExpandSweep(spec, {{"fashion-mnist", counts}});
  EXPECT_DOUBLE_EQ(EstimateTrialGflop(plan.trials[0], counts), 1183200.0 * 43500 * 20 / 1e9);
  EXPECT_NEAR(plan.gflop_by_kind.at(TrialKind::kScratch),
              20 * 200 * 20 * TrainingFlopsPerExample(plan.trials[20].model, 1) / 1e9, 1e-6);
  double sum = 0;
  for (const auto& [kind, g] : plan.gflop_by_kind) sum += g;
  EXPECT_NEAR(plan.estimated_gflop, sum, 1e-6);
  // A frozen phase trains only the top: cheaper than the same epochs of all layers.
  const TrialSpec* frozen = nullptr;
  const TrialSpec* geron = nullptr;
  for (const TrialSpec& t : plan.trials) {
    if (t.arm == "reuse5/frozen/dense" && !frozen) frozen = &t;
    if (t.arm == "reuse5/geron/dense" && !geron) geron = &t;
  }
  ASSERT_TRUE(frozen && geron);
  EXPECT_LT(EstimateTrialGflop(*frozen), EstimateTrialGflop(*geron) / 3);
}

TEST(PlanRendering, JsonHasCountsArmsAndCompute) {
  const Plan plan = ExpandSweep(Shipped("geron.yaml"));
  const nlohmann::json j = PlanToJson(plan);
  EXPECT_EQ(j.at("trials").get<int>(), 340);
  EXPECT_EQ(j.at("trials_by_kind").at("pretrain").get<int>(), 20);
  EXPECT_EQ(j.at("trials_by_kind").at("scratch").get<int>(), 20);
  EXPECT_EQ(j.at("trials_by_kind").at("transfer").get<int>(), 300);
  EXPECT_EQ(j.at("arms").size(), 15u);
  EXPECT_EQ(j.at("arms")[0].get<std::string>(), "reuse1/geron/dense");
  EXPECT_EQ(j.at("targets")[0].get<std::string>(), "6-vs-5");
  EXPECT_GT(j.at("estimated_gflop").get<double>(), 1000.0);
  EXPECT_EQ(j.at("seeds").get<int>(), 20);
  EXPECT_FALSE(j.contains("dag"));
  const nlohmann::json full = PlanToJson(plan, /*include_trials=*/true);
  ASSERT_EQ(full.at("dag").size(), 340u);
  EXPECT_EQ(full.at("dag")[0].at("kind").get<std::string>(), "pretrain");
  // The last trial is seed 19's: it reuses source model 19.
  EXPECT_EQ(full.at("dag")[339].at("source_trial").get<std::string>(), plan.trials[19].id);
}

TEST(PlanRendering, TextShowsTrialsArmsTargetsSeedsAndCompute) {
  const SweepSpec spec = Shipped("change-the-classes.yaml");
  const std::string text = FormatPlan(ExpandSweep(spec), spec);
  EXPECT_THAT(text, HasSubstr("trials    480: pretrain 80, scratch 80, transfer 320"));
  EXPECT_THAT(text, HasSubstr("reuse3/geron/dense"));
  EXPECT_THAT(text, HasSubstr("shirt-vs-sandal: positive 6 Shirt; negative 5 Sandal"));
  EXPECT_THAT(text, HasSubstr("from source-without-5-6"));
  EXPECT_THAT(text, HasSubstr("20 paired seeds"));
  EXPECT_THAT(text, HasSubstr("GFLOP"));
  const std::vector<std::string> lines = absl::StrSplit(text, '\n');
  for (const std::string& line : lines) EXPECT_LE(line.size(), 140u) << line;
}

TEST(PlanRendering, TextNotesTargetsThatShareClassesWithTheSource) {
  const SweepSpec spec = FromText(R"(name: overlap
source: {classes: [0, 1, 6]}
target: {positive: [6], negative: [5]}
model: {layers: [{dense: 10}]}
pretrain: {lr: 0.01, epochs: 1}
transfer: {reuse: 1, schedules: {s: [{epochs: 1}]}}
seeds: 1
)");
  EXPECT_THAT(FormatPlan(ExpandSweep(spec), spec),
              HasSubstr("note: shares classes 6 Shirt with its source task"));
}

}  // namespace
}  // namespace seedproof
