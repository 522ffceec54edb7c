// The sweep spec reader: the shipped specs, every axis, and a corpus of bad specs
// (tests/experiments/specs/bad/*.yaml), each of which carries the errors it must
// give in its header:
//   # what the file gets wrong
//   # error: LINE:COL: FIELD: message        (one line per expected error)
// A bad spec must give exactly the listed errors, each as FILE:LINE:COL: FIELD: message.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "experiments/geron.h"
#include "experiments/study.h"
#include "experiments/sweep_parse.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const fs::path kTestDir = fs::path(__FILE__).parent_path();
const fs::path kRepo = kTestDir.parent_path().parent_path();

std::string ShippedSpec(const std::string& name) {
  return (kRepo / "experiments" / "specs" / name).string();
}

// The issue's example, verbatim.
constexpr char kIssueExample[] = R"(name: geron-shirt-vs-sandal
dataset: {name: fashion-mnist, validation: 5000}
source: {classes: [0, 1, 2, 3, 4, 7, 8, 9]}
target: {positive: [6], negative: [5], train_size: 200, subset: first}
model:
  input: [28, 28, 1]
  layers: [{dense: 300}, {dense: 100}, {dense: 50}, {dense: 50}, {dense: 50}]
  activation: selu
  init: glorot_uniform
pretrain: {optimizer: sgd, lr: 1.0e-3, epochs: 20, batch_size: 32}
transfer:
  reuse: [1, 2, 3, 4, 5]
  schedules:
    geron:  [{epochs: 4, train: head, lr: 1.0e-3}, {epochs: 16, train: all, lr: 1.0e-3}]
    frozen: [{epochs: 20, train: head, lr: 1.0e-3}]
    gentle: [{epochs: 4, train: head, lr: 1.0e-3}, {epochs: 16, train: top-2, lr: 1.0e-4}]
baseline: {scratch: {epochs: 20, lr: 1.0e-3}}
seeds: 20
)";

// A small valid spec that tests extend.
std::string MinimalSpec(const std::string& transfer_extra = "", const std::string& top_extra = "") {
  return absl::StrCat(R"(name: t
source: {classes: [0, 1, 2, 3, 4, 7, 8, 9]}
target: {positive: [6], negative: [5], train_size: 200}
model:
  layers: [{dense: 30}, {dense: 20}]
pretrain: {lr: 0.01, epochs: 2}
transfer:
  reuse: [1, 2]
  schedules:
    geron: [{epochs: 1, train: head}, {epochs: 2, train: all}]
)",
                      transfer_extra, "seeds: 3\n", top_extra);
}

SweepSpec MustParse(const std::string& text) {
  auto spec = ParseSweepSpecText(text, "test.yaml");
  EXPECT_TRUE(spec.ok()) << spec.status().message();
  return spec.ok() ? *spec : SweepSpec{};
}

const ArmSpec* FindArm(const SweepSpec& spec, const std::string& name) {
  for (const ArmSpec& arm : spec.arms) {
    if (arm.name == name) return &arm;
  }
  return nullptr;
}

std::vector<LayerKind> Kinds(const std::vector<LayerSpec>& layers) {
  std::vector<LayerKind> kinds;
  for (const LayerSpec& l : layers) kinds.push_back(l.kind);
  return kinds;
}

// --- The corpus of bad specs ------------------------------------------------

struct BadSpec {
  std::string path;
  std::vector<std::string> expected;  // "LINE:COL: FIELD: message"
};

std::vector<BadSpec> LoadBadSpecs() {
  std::vector<BadSpec> specs;
  for (const auto& entry : fs::directory_iterator(kTestDir / "specs" / "bad")) {
    if (entry.path().extension() != ".yaml") continue;
    BadSpec spec{entry.path().string(), {}};
    std::ifstream in(entry.path());
    std::string line;
    while (std::getline(in, line) && line.rfind("#", 0) == 0) {
      const std::string tag = "# error: ";
      if (line.rfind(tag, 0) == 0) spec.expected.push_back(line.substr(tag.size()));
    }
    specs.push_back(std::move(spec));
  }
  std::sort(specs.begin(), specs.end(),
            [](const BadSpec& a, const BadSpec& b) { return a.path < b.path; });
  return specs;
}

TEST(SweepSpecCorpus, HoldsAtLeastThirtyBadSpecsEachWithItsErrors) {
  const std::vector<BadSpec> specs = LoadBadSpecs();
  EXPECT_GE(specs.size(), 30u);
  for (const BadSpec& spec : specs) EXPECT_FALSE(spec.expected.empty()) << spec.path;
}

TEST(SweepSpecCorpus, EveryBadSpecGivesExactlyItsErrors) {
  for (const BadSpec& bad : LoadBadSpecs()) {
    SCOPED_TRACE(bad.path);
    std::vector<SpecError> errors;
    auto spec = ParseSweepSpec(bad.path, &errors);
    ASSERT_FALSE(spec.ok());
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    std::vector<std::string> expected;
    for (const std::string& e : bad.expected) expected.push_back(absl::StrCat(bad.path, ":", e));
    const std::vector<std::string> lines =
        absl::StrSplit(std::string(spec.status().message()), '\n');
    EXPECT_EQ(lines, expected);
    ASSERT_EQ(errors.size(), lines.size());
    for (size_t i = 0; i < errors.size(); ++i) {
      EXPECT_EQ(FormatSpecError(bad.path, errors[i]), lines[i]);
    }
  }
}

TEST(SweepSpecCorpus, EveryErrorLineIsFileLineColumnFieldMessage) {
  const std::regex format(R"(^(.+\.yaml):([1-9][0-9]*):([1-9][0-9]*): ([^ ]+): (.+)$)");
  for (const BadSpec& bad : LoadBadSpecs()) {
    auto spec = ParseSweepSpec(bad.path);
    ASSERT_FALSE(spec.ok());
    const std::vector<std::string> lines =
        absl::StrSplit(std::string(spec.status().message()), '\n');
    for (const std::string& line : lines) {
      std::smatch m;
      ASSERT_TRUE(std::regex_match(line, m, format)) << line;
      EXPECT_EQ(m[1].str(), bad.path);
    }
  }
}

TEST(SweepSpecCorpus, ReportsEveryErrorAtOnceInFileOrder) {
  std::vector<SpecError> errors;
  auto spec = ParseSweepSpec((kTestDir / "specs" / "bad" / "many-errors.yaml").string(), &errors);
  ASSERT_FALSE(spec.ok());
  ASSERT_EQ(errors.size(), 5u);
  for (size_t i = 1; i < errors.size(); ++i) {
    EXPECT_LT(std::pair(errors[i - 1].line, errors[i - 1].column),
              std::pair(errors[i].line, errors[i].column));
  }
}

// --- The shipped specs ------------------------------------------------------

TEST(SweepSpecParse, AcceptsTheIssueExampleVerbatim) {
  const SweepSpec spec = MustParse(kIssueExample);
  EXPECT_EQ(spec.name, "geron-shirt-vs-sandal");
  EXPECT_EQ(spec.arms.size(), 15u);
}

// What imported models contain can be written in a spec too: batch
// normalisation (with its activation), average pools, leaky relu.
TEST(SweepSpecParse, BatchNormPoolsAndLeakyReluLayersParse) {
  const SweepSpec spec = MustParse(
      absl::StrReplaceAll(MinimalSpec(), {{"layers: [{dense: 30}, {dense: 20}]", R"(layers:
    - {conv2d: {filters: 8, kernel: 3, padding: same, activation: linear}}
    - {batchnorm: {momentum: 0.9, epsilon: 1.0e-5, activation: leaky_relu, alpha: 0.1}}
    - {avgpool2d: {window: 2, stride: 1}}
    - batchnorm
    - globalavgpool2d
    - {dense: {units: 10, activation: leaky_relu}})"}}));
  const std::vector<LayerSpec>& l = spec.source_model.layers;
  ASSERT_GE(l.size(), 7u);
  EXPECT_EQ(l[1].kind, LayerKind::kBatchNorm);
  EXPECT_EQ(l[1].momentum, 0.9f);
  EXPECT_EQ(l[1].epsilon, 1e-5f);
  EXPECT_EQ(l[1].activation, Activation::kLeakyRelu);
  EXPECT_EQ(l[1].alpha, 0.1f);
  EXPECT_EQ(l[2].kind, LayerKind::kAvgPool2D);
  EXPECT_EQ(l[2].stride_h, 1);
  EXPECT_EQ(l[3], LayerSpec::BatchNorm());
  EXPECT_EQ(l[4].kind, LayerKind::kGlobalAvgPool2D);
  EXPECT_EQ(l[5].kind, LayerKind::kFlatten);  // inserted before the dense layer
  EXPECT_EQ(l[6].alpha, 0.3f);                // Keras's default slope
}

TEST(SweepSpecParse, GeronSpecIsTheStudyOfTheBook) {
  auto parsed = ParseSweepSpec(ShippedSpec("geron.yaml"));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const SweepSpec& spec = *parsed;
  EXPECT_EQ(spec.path, ShippedSpec("geron.yaml"));
  ASSERT_EQ(spec.datasets.size(), 1u);
  EXPECT_EQ(spec.datasets[0].name, "fashion-mnist");
  EXPECT_EQ(spec.datasets[0].format, DatasetFormat::kIdx);
  EXPECT_EQ(spec.datasets[0].validation, 5000);
  EXPECT_EQ(spec.source.dataset, "fashion-mnist");
  EXPECT_THAT(spec.source.classes, ElementsAre(0, 1, 2, 3, 4, 7, 8, 9));
  ASSERT_EQ(spec.targets.size(), 1u);
  const TaskSpec& b = spec.targets[0];
  EXPECT_TRUE(b.binary());
  EXPECT_THAT(b.positive, ElementsAre(6));
  EXPECT_THAT(b.negative, ElementsAre(5));
  EXPECT_EQ(b.train_size, 200);
  EXPECT_EQ(b.subset, TaskSpec::Subset::kFirst);
  EXPECT_EQ(b.name, "6-vs-5");
  EXPECT_FALSE(b.resize_from.has_value());
  // Model A exactly: Flatten > Dense 300, 100, 50, 50, 50 SELU > Dense 8 softmax.
  EXPECT_EQ(spec.source_model, GeronModelA());
  EXPECT_EQ(spec.pretrain.epochs, 20);
  EXPECT_EQ(spec.pretrain.batch_size, 32);
  EXPECT_EQ(spec.pretrain.optimizer.kind, OptimizerKind::kSgd);
  EXPECT_FLOAT_EQ(spec.pretrain.optimizer.learning_rate, 1e-3f);
  EXPECT_EQ(spec.scratch.epochs, 20);
  EXPECT_EQ(spec.scratch.batch_size, 32);
  EXPECT_FLOAT_EQ(spec.scratch.optimizer.learning_rate, 1e-3f);
  EXPECT_EQ(spec.seeds.count, 20);
  EXPECT_EQ(spec.seeds.source_seeds, 20);  // a fresh source model per seed

  ASSERT_EQ(spec.arms.size(), 15u);
  EXPECT_EQ(spec.arms[0].name, "reuse1/geron/dense");
  EXPECT_EQ(spec.arms[14].name, "reuse5/gentle/dense");
  for (const ArmSpec& arm : spec.arms) {
    EXPECT_EQ(arm.keep_layers, arm.reuse + 1) << arm.name;  // the inserted flatten counts
    EXPECT_TRUE(arm.new_layers.empty());
    EXPECT_EQ(arm.head.kind, HeadSpec::Kind::kDense);
  }
  const ArmSpec* gentle = FindArm(spec, "reuse4/gentle/dense");
  ASSERT_NE(gentle, nullptr);
  ASSERT_EQ(gentle->phases.size(), 2u);
  EXPECT_EQ(gentle->phases[0].train.kind, TrainSelection::Kind::kHead);
  EXPECT_EQ(gentle->phases[0].epochs, 4);
  EXPECT_EQ(gentle->phases[1].train.kind, TrainSelection::Kind::kTopReused);
  EXPECT_EQ(gentle->phases[1].train.top, 2);
  EXPECT_EQ(gentle->phases[1].epochs, 16);
  EXPECT_FLOAT_EQ(gentle->phases[1].optimizer.learning_rate, 1e-4f);
  EXPECT_EQ(gentle->phases[1].batch_size, 32);
  const ArmSpec* geron = FindArm(spec, "reuse5/geron/dense");
  ASSERT_NE(geron, nullptr);
  EXPECT_EQ(geron->phases[1].train.kind, TrainSelection::Kind::kAll);
}

TEST(SweepSpecParse, ConvSpecGetsAFlattenBetweenLastPoolAndFirstDense) {
  auto parsed = ParseSweepSpec(ShippedSpec("geron-cnn.yaml"));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const SweepSpec& spec = *parsed;
  EXPECT_THAT(Kinds(spec.source_model.layers),
              ElementsAre(LayerKind::kConv2D, LayerKind::kMaxPool2D, LayerKind::kConv2D,
                          LayerKind::kMaxPool2D, LayerKind::kFlatten, LayerKind::kDense,
                          LayerKind::kDense));
  const LayerSpec& conv = spec.source_model.layers[0];
  EXPECT_EQ(conv.units, 32);
  EXPECT_EQ(conv.kernel_h, 3);
  EXPECT_EQ(conv.padding, Padding::kSame);
  EXPECT_EQ(conv.activation, Activation::kRelu);
  EXPECT_EQ(conv.init, Initializer::kHeNormal);
  EXPECT_EQ(spec.source_model.layers[1].stride_h, 2);  // Keras: stride = window
  ASSERT_TRUE(InferShapes(spec.source_model).ok());

  const ArmSpec* two = FindArm(spec, "reuse2/geron/dense");
  const ArmSpec* four = FindArm(spec, "reuse4/frozen/dense");
  const ArmSpec* five = FindArm(spec, "reuse5/gentle/dense");
  const ArmSpec* logistic = FindArm(spec, "reuse4/logistic");
  ASSERT_TRUE(two && four && five && logistic);
  EXPECT_EQ(two->keep_layers, 2);
  EXPECT_EQ(four->keep_layers, 4);
  EXPECT_EQ(five->keep_layers, 6);  // conv, pool, conv, pool, flatten, dense
  // A non-flat reused stack gets a Flatten before the head.
  EXPECT_THAT(Kinds(four->new_layers), ElementsAre(LayerKind::kFlatten));
  EXPECT_TRUE(five->new_layers.empty());
  EXPECT_EQ(logistic->head.kind, HeadSpec::Kind::kLogistic);
  EXPECT_TRUE(logistic->phases.empty());
  EXPECT_TRUE(logistic->schedule.empty());
  EXPECT_THAT(Kinds(logistic->new_layers), ElementsAre(LayerKind::kFlatten));
  EXPECT_EQ(spec.arms.size(), 12u);  // 3 reuse x (3 schedules + logistic)
  // Phases without lr or optimizer inherit the pretrain's: adam, 1e-3, batch 64.
  EXPECT_EQ(two->phases[0].optimizer.kind, OptimizerKind::kAdam);
  EXPECT_FLOAT_EQ(two->phases[0].optimizer.learning_rate, 1e-3f);
  EXPECT_FLOAT_EQ(two->phases[1].optimizer.learning_rate, 1e-4f);
  EXPECT_EQ(two->phases[0].batch_size, 64);
  EXPECT_EQ(spec.scratch.epochs, 10);
  EXPECT_EQ(spec.scratch.optimizer.kind, OptimizerKind::kAdam);
}

TEST(SweepSpecParse, OthersGivesEachTargetASourceOfEveryOtherClass) {
  auto parsed = ParseSweepSpec(ShippedSpec("change-the-classes.yaml"));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const SweepSpec& spec = *parsed;
  ASSERT_EQ(spec.targets.size(), 4u);
  ASSERT_EQ(spec.target_sources.size(), 4u);
  EXPECT_EQ(spec.targets[0].name, "shirt-vs-sandal");
  EXPECT_EQ(spec.target_sources[0].name, "source-without-5-6");
  EXPECT_THAT(spec.SourceTaskOf(0).classes, ElementsAre(0, 1, 2, 3, 4, 7, 8, 9));
  EXPECT_THAT(spec.SourceTaskOf(3).classes, ElementsAre(0, 1, 2, 3, 4, 5, 6, 8));
  for (size_t t = 0; t < spec.targets.size(); ++t) {
    std::vector<int32_t> all = spec.SourceTaskOf(t).classes;
    all.insert(all.end(), spec.targets[t].positive.begin(), spec.targets[t].positive.end());
    all.insert(all.end(), spec.targets[t].negative.begin(), spec.targets[t].negative.end());
    std::sort(all.begin(), all.end());
    std::vector<int32_t> ten(10);
    std::iota(ten.begin(), ten.end(), 0);
    EXPECT_EQ(all, ten) << spec.targets[t].name;  // disjoint, and together every class
    EXPECT_EQ(spec.SourceModelOf(t).layers.back().units, 8);
  }
}

// --- Layers, axes, defaults -------------------------------------------------

TEST(SweepSpecParse, LayerShortAndLongFormsWithModelDefaults) {
  const SweepSpec spec = MustParse(R"(name: forms
source: {classes: [0, 1, 2]}
target: {positive: [3], negative: [4]}
model:
  input: [28, 28, 1]
  init: lecun_normal
  layers:
    - {conv2d: {filters: 4, kernel: [3, 5], stride: 2, padding: same, activation: tanh}}
    - {maxpool2d: {window: 2, stride: 1, padding: same}}
    - {dropout: {rate: 0.25}}
    - flatten
    - {dense: {units: 16, activation: elu, init: he_normal}}
    - {dropout: 0.5}
    - {flatten: {}}
    - {dense: 8}
pretrain: {lr: 0.01, epochs: 1}
transfer: {reuse: 8, schedules: {all: [{epochs: 1}]}}
seeds: 1
)");
  const std::vector<LayerSpec>& l = spec.source_model.layers;
  ASSERT_EQ(l.size(), 9u);  // eight listed, the output; no flatten inserted
  EXPECT_EQ(l[0].kernel_h, 3);
  EXPECT_EQ(l[0].kernel_w, 5);
  EXPECT_EQ(l[0].stride_w, 2);
  EXPECT_EQ(l[0].activation, Activation::kTanh);
  EXPECT_EQ(l[0].init, Initializer::kLecunNormal);
  EXPECT_EQ(l[1].kind, LayerKind::kMaxPool2D);
  EXPECT_EQ(l[1].stride_h, 1);
  EXPECT_EQ(l[1].padding, Padding::kSame);
  EXPECT_FLOAT_EQ(l[2].rate, 0.25f);
  EXPECT_EQ(l[3].kind, LayerKind::kFlatten);
  EXPECT_EQ(l[4].activation, Activation::kElu);
  EXPECT_EQ(l[4].init, Initializer::kHeNormal);
  EXPECT_FLOAT_EQ(l[5].rate, 0.5f);
  EXPECT_EQ(l[7].activation, Activation::kRelu);  // the model-wide default
  EXPECT_EQ(l[7].init, Initializer::kLecunNormal);
  EXPECT_EQ(l[8].units, 3);
  EXPECT_EQ(l[8].activation, Activation::kSoftmax);
  EXPECT_EQ(spec.arms[0].keep_layers, 8);
  EXPECT_EQ(spec.arms[0].phases[0].train.kind, TrainSelection::Kind::kAll);  // default
}

TEST(SweepSpecParse, TargetsListWithDefaultNamesAndAMultiClassTarget) {
  const SweepSpec spec = MustParse(R"(name: many
source: {name: clothes, classes: [0, 1, 3, 8]}
targets:
  - {positive: [6], negative: [5]}
  - {name: three-way, classes: [2, 4, 7], train_size: 300, subset: random}
  - {positive: [7, 9], negative: [5]}
model: {layers: [{dense: 10}]}
pretrain: {lr: 0.01, epochs: 1}
transfer: {reuse: 1, schedules: {s: [{epochs: 1, train: head}]}}
seeds: 2
)");
  EXPECT_EQ(spec.source.name, "clothes");
  ASSERT_EQ(spec.targets.size(), 3u);
  EXPECT_EQ(spec.targets[0].name, "6-vs-5");
  EXPECT_EQ(spec.targets[1].name, "three-way");
  EXPECT_FALSE(spec.targets[1].binary());
  EXPECT_EQ(spec.targets[1].num_classes(), 3);
  EXPECT_EQ(spec.targets[1].subset, TaskSpec::Subset::kRandom);
  EXPECT_EQ(spec.targets[2].name, "7+9-vs-5");
  EXPECT_EQ(spec.source_model.layers.back().units, 4);
  ASSERT_EQ(spec.positions.targets.size(), 3u);
  EXPECT_EQ(spec.positions.targets[1].train_size.line, 5);
  EXPECT_EQ(spec.positions.targets[1].train_size.field, "targets[1].train_size");
}

TEST(SweepSpecParse, AxesFormACrossProductWithStableNames) {
  const SweepSpec spec = MustParse(MinimalSpec(R"(  new_layers: {none: [], wide: [{dense: 100}]}
  heads: [dense, logistic, {linear_svm: {c: 0.1}}]
  optimizers: [sgd, adam]
  lr_scale: [1.0, 0.1]
)"));
  // reuse 2 x (new 2 x schedule 1 x dense x optimizer 2 x lr 2 + 2 fitted heads)
  EXPECT_EQ(spec.arms.size(), 20u);
  std::vector<std::string> names;
  for (const ArmSpec& a : spec.arms) names.push_back(a.name);
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
  const ArmSpec* arm = FindArm(spec, "reuse2/wide/geron/dense/adam/lr0.1");
  ASSERT_NE(arm, nullptr);
  EXPECT_EQ(arm->new_layers_name, "wide");
  ASSERT_EQ(arm->new_layers.size(), 1u);
  EXPECT_EQ(arm->new_layers[0].units, 100);
  EXPECT_EQ(arm->new_layers[0].activation, Activation::kRelu);
  EXPECT_EQ(arm->optimizer_name, "adam");
  EXPECT_DOUBLE_EQ(arm->lr_scale, 0.1);
  for (const PhaseSpec& p : arm->phases) {
    EXPECT_EQ(p.optimizer.kind, OptimizerKind::kAdam);
    EXPECT_FLOAT_EQ(p.optimizer.learning_rate, 0.001f);  // pretrain's 0.01 x 0.1
  }
  const ArmSpec* svm = FindArm(spec, "reuse1/linear_svm-c0.1");
  ASSERT_NE(svm, nullptr);
  EXPECT_EQ(svm->head.kind, HeadSpec::Kind::kLinearSvm);
  EXPECT_DOUBLE_EQ(svm->head.c, 0.1);
  EXPECT_NE(FindArm(spec, "reuse1/logistic"), nullptr);
  EXPECT_NE(FindArm(spec, "reuse1/none/geron/dense/sgd/lr1"), nullptr);
}

TEST(SweepSpecParse, NewLayersOnAConvStackGetFlattens) {
  const SweepSpec spec = MustParse(R"(name: conv-new
source: {classes: [0, 1, 2, 3]}
target: {positive: [6], negative: [5]}
model:
  layers: [{conv2d: {filters: 4, kernel: 3}}, {maxpool2d: 2}, {dense: 10}]
pretrain: {lr: 0.01, epochs: 1}
transfer:
  reuse: [2]
  new_layers: {conv: [{conv2d: {filters: 4, kernel: 3}}], dense: [{dense: 8}]}
  schedules: {s: [{epochs: 1, train: head}]}
seeds: 1
)");
  const ArmSpec* conv = FindArm(spec, "reuse2/conv/s/dense");
  const ArmSpec* dense = FindArm(spec, "reuse2/dense/s/dense");
  ASSERT_TRUE(conv && dense);
  EXPECT_THAT(Kinds(conv->new_layers), ElementsAre(LayerKind::kConv2D, LayerKind::kFlatten));
  EXPECT_THAT(Kinds(dense->new_layers), ElementsAre(LayerKind::kFlatten, LayerKind::kDense));
}

TEST(SweepSpecParse, AConvStackWithoutDenseLayersGetsAFlattenBeforeTheOutput) {
  const SweepSpec spec = MustParse(R"(name: conv-only
source: {classes: [0, 1, 2, 3]}
target: {positive: [6], negative: [5]}
model: {layers: [{conv2d: {filters: 4, kernel: 3}}, {maxpool2d: 2}]}
pretrain: {lr: 0.01, epochs: 1}
transfer: {reuse: [1, 2], schedules: {s: [{epochs: 1, train: head}]}}
seeds: 1
)");
  EXPECT_THAT(Kinds(spec.source_model.layers),
              ElementsAre(LayerKind::kConv2D, LayerKind::kMaxPool2D, LayerKind::kFlatten,
                          LayerKind::kDense));
  ASSERT_EQ(spec.arms.size(), 2u);
  EXPECT_EQ(spec.arms[1].keep_layers, 2);  // the flatten before the output is not reused
  EXPECT_THAT(Kinds(spec.arms[1].new_layers), ElementsAre(LayerKind::kFlatten));
}

TEST(SweepSpecParse, PhaseOptimizerInheritsFromPretrainUnlessItNamesAnother) {
  const SweepSpec spec = MustParse(R"(name: inherit
source: {classes: [0, 1, 2]}
target: {positive: [6], negative: [5]}
model: {layers: [{dense: 10}]}
pretrain: {optimizer: sgd, lr: 0.05, momentum: 0.9, nesterov: true, epochs: 1, batch_size: 16}
transfer:
  reuse: 1
  schedules:
    s: [{epochs: 1, train: head}, {epochs: 1, optimizer: adam, beta1: 0.8}, {epochs: 1, momentum: 0.5, lr: 0.1, batch_size: 8}]
baseline: {scratch: {weight_decay: 0.01}}
seeds: 1
)");
  ASSERT_EQ(spec.arms.size(), 1u);
  const std::vector<PhaseSpec>& p = spec.arms[0].phases;
  EXPECT_EQ(p[0].optimizer.kind, OptimizerKind::kSgd);
  EXPECT_FLOAT_EQ(p[0].optimizer.momentum, 0.9f);
  EXPECT_TRUE(p[0].optimizer.nesterov);
  EXPECT_FLOAT_EQ(p[0].optimizer.learning_rate, 0.05f);
  EXPECT_EQ(p[0].batch_size, 16);
  EXPECT_EQ(p[1].optimizer.kind, OptimizerKind::kAdam);
  EXPECT_FLOAT_EQ(p[1].optimizer.momentum, 0.0f);  // a new kind starts from its defaults
  EXPECT_FALSE(p[1].optimizer.nesterov);
  EXPECT_FLOAT_EQ(p[1].optimizer.beta1, 0.8f);
  EXPECT_FLOAT_EQ(p[1].optimizer.learning_rate, 0.05f);  // ... but keeps the lr
  EXPECT_FLOAT_EQ(p[2].optimizer.momentum, 0.5f);
  EXPECT_FLOAT_EQ(p[2].optimizer.learning_rate, 0.1f);
  EXPECT_EQ(p[2].batch_size, 8);
  EXPECT_EQ(spec.scratch.epochs, 1);
  EXPECT_FLOAT_EQ(spec.scratch.optimizer.momentum, 0.9f);
  EXPECT_FLOAT_EQ(spec.scratch.optimizer.weight_decay, 0.01f);
}

TEST(SweepSpecParse, NamedOptimizerAxisEntries) {
  const SweepSpec spec = MustParse(MinimalSpec(R"(  optimizers:
    plain: {optimizer: sgd}
    nesterov: {optimizer: sgd, momentum: 0.9, nesterov: true}
    adam: {}
)"));
  const ArmSpec* n = FindArm(spec, "reuse1/geron/dense/nesterov");
  const ArmSpec* a = FindArm(spec, "reuse2/geron/dense/adam");
  ASSERT_TRUE(n && a);
  EXPECT_FLOAT_EQ(n->phases[1].optimizer.momentum, 0.9f);
  EXPECT_TRUE(n->phases[1].optimizer.nesterov);
  EXPECT_EQ(a->phases[0].optimizer.kind, OptimizerKind::kAdam);
  EXPECT_EQ(spec.arms.size(), 6u);
}

TEST(SweepSpecParse, SeedsLongForm) {
  std::string text = MinimalSpec();
  text.replace(text.find("seeds: 3\n"), 9,
               "seeds: {count: 8, source: 2, base: 5, fixed: {order: 7, subset: 0}}\n");
  const SweepSpec spec = MustParse(text);
  EXPECT_EQ(spec.seeds.count, 8);
  EXPECT_EQ(spec.seeds.source_seeds, 2);
  EXPECT_EQ(spec.seeds.base, 5u);
  EXPECT_FALSE(spec.seeds.fixed_init.has_value());
  EXPECT_EQ(spec.seeds.fixed_order, 7u);
  EXPECT_EQ(spec.seeds.fixed_subset, 0u);
}

TEST(SweepSpecParse, AnalysisDefaultsAndSettings) {
  const SweepSpec defaults = MustParse(MinimalSpec());
  EXPECT_EQ(defaults.analysis.level, 0.95);
  EXPECT_EQ(defaults.analysis.correction, Correction::kHolm);
  EXPECT_EQ(defaults.analysis.confirmation.seeds, 0);
  const SweepSpec spec = MustParse(MinimalSpec(
      "", "analysis: {level: 0.9, correction: bh, confirmation: {seeds: 10, arms: best}}\n"));
  EXPECT_EQ(spec.analysis.level, 0.9);
  EXPECT_EQ(spec.analysis.correction, Correction::kBenjaminiHochberg);
  EXPECT_EQ(spec.analysis.confirmation.seeds, 10);
  EXPECT_EQ(spec.analysis.confirmation.arms, ConfirmationSpec::Arms::kBest);
  EXPECT_EQ(MustParse(MinimalSpec("", "analysis: {correction: none}\n")).analysis.correction,
            Correction::kNone);
}

TEST(SweepSpecParse, DeclaredResizeReachesEveryTask) {
  std::string text = MinimalSpec("", "dataset: {resize: true}\n");
  text.replace(text.find("model:\n"), 7, "model:\n  input: [32, 32, 1]\n");
  const SweepSpec spec = MustParse(text);
  EXPECT_EQ(spec.source_model.input, (Shape{32, 32, 1}));
  ASSERT_TRUE(spec.source.resize_from.has_value());
  EXPECT_EQ(*spec.source.resize_from, (Shape{28, 28, 1}));
  ASSERT_TRUE(spec.targets[0].resize_from.has_value());
  EXPECT_EQ(*spec.targets[0].resize_from, (Shape{28, 28, 1}));
}

TEST(SweepSpecParse, ErrorListMatchesTheStatusMessage) {
  std::vector<SpecError> errors;
  auto spec = ParseSweepSpecText("name: x\nseeds: -1\nbogus: 1\n", "x.yaml", &errors);
  ASSERT_FALSE(spec.ok());
  ASSERT_GE(errors.size(), 3u);
  std::vector<std::string> lines;
  for (const SpecError& e : errors) lines.push_back(FormatSpecError("x.yaml", e));
  EXPECT_EQ(std::string(spec.status().message()), absl::StrJoin(lines, "\n"));
  EXPECT_THAT(std::string(spec.status().message()),
              HasSubstr("x.yaml:2:8: seeds: expected an integer in [1, 100000], got -1"));
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("x.yaml:3:1: bogus: unknown key"));
  // A missing key is reported at its parent mapping.
  EXPECT_THAT(std::string(spec.status().message()),
              HasSubstr("x.yaml:1:1: pretrain: required key is missing"));
}

// Issue 19, finding 6: a spec's errors cost a bounded amount and always reach
// the user. 300,000 unknown keys once took 56 s of coordinator CPU (duplicates
// were sought among every kept error), and from ~45 errors the message no longer
// fit in a gRPC status. Now the first ones (up to 20 lines, 2,000 characters)
// are shown and the rest counted.
TEST(SweepSpecParse, ThousandsOfErrorsGiveTheFirstOnesAndACount) {
  std::string text = "name: x\n";
  constexpr int kUnknown = 300'000;
  for (int i = 0; i < kUnknown; ++i) absl::StrAppend(&text, "bogus", i, ": 1\n");
  std::vector<SpecError> errors;
  auto spec = ParseSweepSpecText(text, "x.yaml", &errors);
  ASSERT_FALSE(spec.ok());
  const std::string message(spec.status().message());
  const std::vector<std::string> lines = absl::StrSplit(message, '\n');
  ASSERT_GE(lines.size(), 10u) << message.substr(0, 2000);
  ASSERT_LE(lines.size(), 21u) << message.substr(0, 2000);
  EXPECT_THAT(message, HasSubstr("x.yaml:2:1: bogus0: unknown key"));
  EXPECT_THAT(lines.back(), testing::MatchesRegex(
                                R"(\.\.\. and [0-9]+ more errors \(the first [0-9]+ are shown\))"));
  // Every error is counted: 300,000 unknown keys and the missing ones.
  const int64_t more = std::stoll(lines.back().substr(8));
  EXPECT_GE(more + static_cast<int64_t>(lines.size()) - 1, kUnknown);
  EXPECT_LT(message.size(), 8192u);
  EXPECT_EQ(errors.size(), 1000u);  // kept for the caller: the first 1,000 found
}

TEST(SweepSpecParse, ALongKeyIsQuotedOnlyInPart) {
  const std::string key(1000, 'k');  // yaml-cpp's longest simple key: 1,024
  auto spec = ParseSweepSpecText("name: x\n" + key + ": 1\n", "x.yaml");
  ASSERT_FALSE(spec.ok());
  const std::string message(spec.status().message());
  EXPECT_THAT(message, HasSubstr("x.yaml:2:1: kkkk"));
  EXPECT_LT(message.size(), 1000u);
}

// Found by tests/fuzz: on these yaml-cpp 0.7's LoadAll never returned, keeping
// an empty document per turn until memory ran out (24 GB for one byte). Each
// is now one error where the parser stalled, or at the second document's '---'.
TEST(SweepSpecParse, StreamsThatStallTheYamlParserAreErrorsAtTheirPlace) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {",", "x.yaml:1:1: (yaml): unexpected ',' where a document's content should start"},
      {", a", "x.yaml:1:1: (yaml): unexpected ','"},
      {"name: x\n---\n,\n", "x.yaml:2:1: (document): a spec is one YAML document"},
      {"name: x\n---\nname: y\n", "x.yaml:2:1: (document): a spec is one YAML document"},
  };
  for (const auto& [text, error] : cases) {
    auto spec = ParseSweepSpecText(text, "x.yaml");
    ASSERT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(spec.status().message(), HasSubstr(error)) << text;
  }
}

TEST(SweepSpecParse, MissingFileIsNotFound) {
  auto spec = ParseSweepSpec("/nonexistent/spec.yaml");
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("/nonexistent/spec.yaml"));
}

// --- Checks against the data ------------------------------------------------

// Per-class counts of Debian's training labels after the first 5,000, computed
// here with the IDX reader directly.
std::vector<int64_t> CountsAfterValidation() {
  auto labels = ReadIdxLabels(std::string(kFashionMnistDir) + "/train-labels-idx1-ubyte.gz", 10);
  EXPECT_TRUE(labels.ok()) << labels.status();
  std::vector<int64_t> counts(10, 0);
  if (!labels.ok()) return counts;
  for (size_t i = 5000; i < labels->data.size(); ++i) ++counts[labels->data[i]];
  return counts;
}

// Fashion-MNIST's facts with these per-class counts after the validation split.
DataFactsByName FashionFacts(const std::vector<int64_t>& counts) {
  DataFacts facts;
  facts.example_shape = {28, 28, 1};
  facts.num_classes = 10;
  facts.train_examples = 60000;
  facts.train_counts_per_class = counts;
  return {{"fashion-mnist", facts}};
}

TEST(SweepSpecData, TrainingSplitAfterValidationHas55000Images) {
  const std::vector<int64_t> counts = CountsAfterValidation();
  EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), int64_t{0}), 55000);
  auto loaded = LoadDataset(DatasetSpec{});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const DataFacts facts = FactsOfData(DatasetSpec{}, *loaded);
  EXPECT_EQ(facts.train_counts_per_class, counts);
  EXPECT_EQ(facts.train_examples, 60000);
  EXPECT_EQ(facts.example_shape, (Shape{28, 28, 1}));
  EXPECT_EQ(facts.class_names.at(6), "Shirt");
  // Géron's task A: the 8 classes other than sandal and shirt.
  EXPECT_EQ(55000 - counts[5] - counts[6], 43986);
}

TEST(SweepSpecData, ShippedSpecsFitTheData) {
  const std::vector<int64_t> counts = CountsAfterValidation();
  for (const char* name : {"geron.yaml", "geron-cnn.yaml", "change-the-classes.yaml"}) {
    auto spec = ParseSweepSpec(ShippedSpec(name));
    ASSERT_TRUE(spec.ok()) << spec.status().message();
    EXPECT_TRUE(ValidateAgainstData(*spec, FashionFacts(counts)).ok()) << name;
  }
}

TEST(SweepSpecData, TrainSizeLargerThanTheTaskIsReportedAtItsPosition) {
  const std::vector<int64_t> counts = CountsAfterValidation();
  const int64_t available = counts[6] + counts[5];
  ASSERT_LT(available, 11500);  // fits the parse-time bound (12,000), not the data
  std::string text = MinimalSpec();
  text.replace(text.find("train_size: 200"), 15, "train_size: 11500");
  const SweepSpec spec = MustParse(text);
  std::vector<SpecError> errors;
  absl::Status status = ValidateAgainstData(spec, FashionFacts(counts), &errors);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(std::string(status.message()),
            absl::StrCat("test.yaml:3:52: target.train_size: train_size 11500 is larger than the "
                         "task's training data (",
                         available / 1000, ",", absl::StrFormat("%03d", available % 1000),
                         " images of classes 6, 5 after the 5,000-image validation split)"));
  EXPECT_EQ(errors.size(), 1u);
}

// A dataset of the user's own is known only once read: LoadStudy checks the spec
// against it, naming the dataset, and errors stay at their places in the spec.
TEST(SweepSpecData, AUserDatasetIsCheckedOnceRead) {
  const std::string spec = R"(name: digits
dataset: {name: digits, format: csv, path: /usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz,
          header: false, shape: [8, 8, 1], test_split: 0.2, VALIDATION}
source: {classes: [0, 1, 2, 4, 5, 6, 7, 9]}
target: {positive: [TARGET], negative: [3], train_size: 40}
model: {input: INPUT, layers: [{dense: 16}]}
pretrain: {lr: 0.01, epochs: 1}
transfer: {reuse: [1], schedules: {a: [{epochs: 1, train: head}]}}
seeds: 2
)";
  auto load = [&](const std::string& validation, const std::string& target,
                  const std::string& input) {
    return LoadStudy(absl::StrReplaceAll(
                         spec, {{"VALIDATION", validation}, {"TARGET", target}, {"INPUT", input}}),
                     "digits.yaml");
  };
  auto good = load("validation: 200", "8", "[8, 8, 1]");
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->spec.datasets[0].sha256.size(), 64u);
  EXPECT_EQ(good->spec.datasets[0].example_shape, (std::vector<int64_t>{8, 8, 1}));
  EXPECT_EQ(*good->spec.datasets[0].scale, 1.0f);  // a CSV's values as they are
  EXPECT_EQ(good->facts.at("digits").num_classes, 10);

  EXPECT_EQ(std::string(load("validation: 200", "12", "[8, 8, 1]").status().message()),
            "digits.yaml:5:20: target.positive: class 12 is not in the data (dataset 'digits' "
            "has 10 classes)");
  EXPECT_EQ(std::string(load("validation: 200", "8", "[28, 28, 1]").status().message()),
            "digits.yaml:6:16: model.input: model.input (28, 28, 1) differs from the examples "
            "of dataset 'digits', (8, 8, 1); declare resize: true on the dataset to resize its "
            "images");
  EXPECT_EQ(std::string(load("validation: 200", "8", "[64]").status().message()),
            "digits.yaml:6:16: model.input: model.input (64) differs from the examples of "
            "dataset 'digits', (8, 8, 1); use model.input [8, 8, 1], or give the dataset's "
            "examples that shape (a CSV's shape key)");
  // Once, not again for every class it leaves empty.
  EXPECT_EQ(std::string(load("validation: 2000", "8", "[8, 8, 1]").status().message()),
            "digits.yaml:3:73: dataset.validation: validation 2000 leaves no training examples: "
            "dataset 'digits' has 1,438");
}

TEST(SweepSpecData, ClassWithoutTrainingExamplesIsAnError) {
  const SweepSpec spec = MustParse(MinimalSpec());
  std::vector<int64_t> counts(10, 5000);
  counts[5] = 0;
  absl::Status status = ValidateAgainstData(spec, FashionFacts(counts));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("test.yaml:3:35: target.negative: class 5 has no training examples"));
}

}  // namespace
}  // namespace seedproof
