// A spec whose source model is an ONNX file (model: {onnx: FILE}): reuse depths
// count the file's units, nothing is pretrained, the file's hash is in every
// transfer trial's id and result, a stored study expands again without the file,
// a transfer trial runs from the imported weights, and each way of getting it
// wrong is an error at model.onnx (or the key at fault). The ONNX files are
// written by WriteOnnx from seedproof models (tests/onnx/ checks that writer
// against onnxruntime and PyTorch's files against the reader).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "backends/backend.h"
#include "experiments/plan.h"
#include "experiments/study.h"
#include "experiments/sweep_parse.h"
#include "experiments/trial.h"
#include "experiments/trial_json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onnx_io/onnx_model.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// conv 8 + batchnorm + pool | conv 8 + flatten | dense 16 | dense 4 (output).
ModelSpec SmallCnn() {
  return {{28, 28, 1},
          {LayerSpec::Conv2D(8, 3, 1, Padding::kSame, Activation::kLinear),
           LayerSpec::BatchNorm(1e-5f, 0.9f, Activation::kRelu), LayerSpec::MaxPool2D(2),
           LayerSpec::Conv2D(8, 3, 2, Padding::kValid, Activation::kRelu), LayerSpec::Flatten(),
           LayerSpec::Dense(16, Activation::kRelu), LayerSpec::Dense(4, Activation::kSoftmax)}};
}

void WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

// An ONNX file of `spec` with weights from `seed`, written into `dir`.
std::string WriteModel(const fs::path& dir, const std::string& name, const ModelSpec& spec,
                       uint64_t seed) {
  auto backend = MakeBackend("reference");
  EXPECT_TRUE(backend.ok());
  auto model = (*backend)->Create(spec, seed);
  EXPECT_TRUE(model.ok()) << model.status();
  auto onnx = WriteOnnx(**model, name);
  EXPECT_TRUE(onnx.ok()) << onnx.status();
  WriteFile(dir / name, *onnx);
  return *onnx;
}

class OnnxSourceTest : public ::testing::Test {
 protected:
  void TearDown() override { fs::remove_all(dir_); }
  void SetUp() override {
    // A folder per test process: ctest runs these tests at once.
    dir_ = fs::path(::testing::TempDir()) / absl::StrCat("seedproof_onnx_source_", getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    cnn_bytes_ = WriteModel(dir_, "cnn.onnx", SmallCnn(), 1);
  }

  // The spec, as a file in dir_ (so model.onnx resolves against it), with
  // `replace` applied.
  std::string Spec(const std::vector<std::pair<std::string, std::string>>& replace = {}) {
    std::string text = R"(name: imported
dataset: {name: fashion-mnist, validation: 5000}
target: {positive: [6], negative: [5], train_size: 200, subset: first}
model: {onnx: cnn.onnx}
transfer:
  reuse: [1, 2, 3]
  schedules:
    geron: [{epochs: 1, train: head}, {epochs: 1, train: top-1, lr: 1.0e-4}]
baseline: {scratch: {optimizer: adam, lr: 1.0e-3, epochs: 2, batch_size: 32}}
seeds: 2
)";
    for (const auto& [from, to] : replace) text = absl::StrReplaceAll(text, {{from, to}});
    return text;
  }
  std::string SpecPath() const { return (dir_ / "spec.yaml").string(); }

  fs::path dir_;
  std::string cnn_bytes_;
};

TEST_F(OnnxSourceTest, ReuseCountsTheFilesLayersAndNothingIsPretrained) {
  auto spec = ParseSweepSpecText(Spec(), SpecPath());
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_TRUE(spec->imported);
  EXPECT_EQ(spec->imported->path, (dir_ / "cnn.onnx").string());
  EXPECT_EQ(spec->imported->producer, "seedproof");
  EXPECT_EQ(spec->imported->opset, 14);
  ASSERT_EQ(spec->imported->units.size(), 4u);
  EXPECT_EQ(spec->imported->units[0].description,
            "Conv 3x3 (8) + BatchNormalization + Relu + MaxPool 2x2");
  EXPECT_EQ(spec->source_model.input, (Shape{28, 28, 1}));
  ASSERT_EQ(spec->arms.size(), 3u);
  for (size_t a = 0; a < spec->arms.size(); ++a) {
    EXPECT_EQ(spec->arms[a].keep_layers, spec->imported->units[a].end_layer) << spec->arms[a].name;
  }
  // The training settings every phase starts from are the baseline's.
  EXPECT_EQ(spec->arms[0].phases[0].optimizer.kind, OptimizerKind::kAdam);
  EXPECT_FLOAT_EQ(spec->arms[0].phases[1].optimizer.learning_rate, 1e-4f);

  const Plan plan = ExpandSweep(*spec);
  for (const TrialSpec& t : plan.trials) EXPECT_NE(t.kind, TrialKind::kPretrain);
  EXPECT_EQ(plan.trials_by_kind.at(TrialKind::kScratch), 2);
  EXPECT_EQ(plan.trials_by_kind.at(TrialKind::kTransfer), 6);
  for (const TrialSpec& t : plan.trials) {
    EXPECT_TRUE(t.source_trial.empty());
    if (t.kind == TrialKind::kTransfer) {
      EXPECT_EQ(t.source_onnx, spec->imported->sha256);
      EXPECT_EQ(SourceKey(t), "onnx:" + spec->imported->sha256);
      EXPECT_EQ(t.model, spec->imported->model);
    } else {
      // The baseline: the same architecture, fresh, with the target's output layer.
      EXPECT_EQ(t.model.layers.size(), SmallCnn().layers.size());
      EXPECT_EQ(t.model.layers.back().units, 1);
      EXPECT_EQ(t.model.loss, Loss::kBinaryCrossEntropy);
    }
    // The trial's JSON carries the file's hash and gives back the same trial.
    auto back = TrialSpecFromJsonText(TrialSpecJsonText(t));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(TrialId(*back), t.id);
  }
  const std::string text = FormatPlan(plan, *spec);
  EXPECT_THAT(text, HasSubstr("not pretrained"));
  EXPECT_THAT(text, HasSubstr("3: Gemm 16 + Relu"));
  EXPECT_THAT(text, HasSubstr("Gemm 4 + Softmax  (output layer: each target gets its own)"));
}

TEST_F(OnnxSourceTest, AnotherFileIsAnotherStudy) {
  const Plan first = ExpandSweep(*ParseSweepSpecText(Spec(), SpecPath()));
  WriteModel(dir_, "cnn.onnx", SmallCnn(), 2);  // same layers, other weights
  const Plan second = ExpandSweep(*ParseSweepSpecText(Spec(), SpecPath()));
  ASSERT_EQ(first.trials.size(), second.trials.size());
  for (size_t i = 0; i < first.trials.size(); ++i) {
    if (first.trials[i].kind == TrialKind::kTransfer) {
      EXPECT_NE(first.trials[i].id, second.trials[i].id);
    } else {
      EXPECT_EQ(first.trials[i].id, second.trials[i].id);  // a fresh model either way
    }
  }
}

TEST_F(OnnxSourceTest, LoadStudyShipsTheFileAndAStoredStudyNeedsItNoMore) {
  std::vector<SpecError> errors;
  auto study = LoadStudy(Spec(), SpecPath(), &errors, {.keep_shipped = true});
  ASSERT_TRUE(study.ok()) << study.status();
  const std::string sha = study->spec.imported->sha256;
  ASSERT_TRUE(study->shipped.contains(sha));
  EXPECT_EQ(study->shipped.at(sha), cnn_bytes_);
  const std::string stored = StudyInputsToJsonText(study->plan.datasets, study->plan.imported);
  fs::remove(dir_ / "cnn.onnx");
  auto again = LoadStoredStudy(Spec(), SpecPath(), stored);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->plan.trials.size(), study->plan.trials.size());
  for (size_t i = 0; i < study->plan.trials.size(); ++i) {
    EXPECT_EQ(again->plan.trials[i].id, study->plan.trials[i].id);
  }
  // Without the stored model the file is needed, and its absence is named.
  auto lost = LoadStoredStudy(Spec(), SpecPath(), "");
  ASSERT_FALSE(lost.ok());
  EXPECT_THAT(lost.status().message(), HasSubstr("cnn.onnx"));
}

// Issue 19: the largest ONNX file read is protobuf's limit; one byte past it
// (a sparse file, never read) is refused by size, naming the file and the limit.
TEST_F(OnnxSourceTest, AnOnnxFilePastItsLimitIsRefusedUnread) {
  const fs::path huge = dir_ / "huge.onnx";
  std::ofstream{huge};
  fs::resize_file(huge, static_cast<uintmax_t>(kMaxOnnxBytes) + 1);
  const absl::Status refused = ImportModelFile(huge.string()).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_THAT(refused.message(), HasSubstr(absl::StrCat(huge.string(), ": holds more than ",
                                                        kMaxOnnxBytes, " bytes")));
}

// A transfer trial reuses the file's weights: with the reused layers frozen, what
// they compute is what the file's graph computes.
TEST_F(OnnxSourceTest, ATransferTrialRunsFromTheImportedWeights) {
  auto spec = ParseSweepSpecText(Spec({{"train: top-1, lr: 1.0e-4", "train: head"}}), SpecPath());
  ASSERT_TRUE(spec.ok()) << spec.status();
  const Plan plan = ExpandSweep(*spec);
  const TrialSpec* transfer = nullptr;
  for (const TrialSpec& t : plan.trials) {
    if (t.kind == TrialKind::kTransfer && t.arm == "reuse3/geron/dense") transfer = &t;
  }
  ASSERT_NE(transfer, nullptr);
  auto backend = MakeBackend("onednn");
  ASSERT_TRUE(backend.ok());
  DirectoryArtifactStore store(dir_.string());
  TrialCache cache;
  TrialContext ctx;
  ctx.backend = backend->get();
  ctx.artifacts = &store;
  ctx.cache = &cache;
  // Not there yet: the error names the source.
  auto missing = RunTrial(*transfer, ctx);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr(spec->imported->sha256));

  ASSERT_TRUE(store.Keep(SourceKey(*transfer), cnn_bytes_).ok());
  auto result = RunTrial(*transfer, ctx);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->outcome, TrialOutcome::kCompleted);
  EXPECT_EQ(result->provenance.source_model_sha256, spec->imported->sha256);
  EXPECT_EQ(result->test_examples, 2000);
  // Same spec, same bits.
  auto again = RunTrial(*transfer, ctx);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->test_loss, result->test_loss);
}

struct BadImport {
  std::string what;
  std::vector<std::pair<std::string, std::string>> replace;
  std::string field;    // the FIELD of the one error
  std::string message;  // a part of its message
};

void PrintTo(const BadImport& b, std::ostream* os) { *os << b.what; }

class BadImportTest : public OnnxSourceTest, public ::testing::WithParamInterface<BadImport> {};

TEST_P(BadImportTest, IsOneErrorNamingTheField) {
  WriteFile(dir_ / "notes.onnx", "these are notes, not a model\n");
  WriteModel(dir_, "flat.onnx",
             {{64},
              {LayerSpec::Dense(16, Activation::kRelu), LayerSpec::Dense(16, Activation::kRelu),
               LayerSpec::Dense(16, Activation::kRelu), LayerSpec::Dense(3, Activation::kSoftmax)}},
             1);
  WriteModel(dir_, "output_only.onnx",
             {{28, 28, 1}, {LayerSpec::Flatten(), LayerSpec::Dense(3, Activation::kSoftmax)}}, 1);
  const BadImport& bad = GetParam();
  std::vector<SpecError> errors;
  auto study = LoadStudy(Spec(bad.replace), SpecPath(), &errors);
  ASSERT_FALSE(study.ok()) << bad.what;
  EXPECT_EQ(study.status().code(), absl::StatusCode::kInvalidArgument) << study.status();
  ASSERT_EQ(errors.size(), 1u) << study.status();
  EXPECT_EQ(errors[0].field, bad.field) << study.status();
  EXPECT_THAT(errors[0].message, HasSubstr(bad.message)) << study.status();
  EXPECT_GT(errors[0].line, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Specs, BadImportTest,
    ::testing::Values(
        BadImport{"missing file", {{"cnn.onnx", "gone.onnx"}}, "model.onnx", "gone.onnx"},
        BadImport{"not an ONNX file",
                  {{"cnn.onnx", "notes.onnx"}},
                  "model.onnx",
                  "notes.onnx: not an ONNX model"},
        BadImport{"pretrain given",
                  {{"seeds: 2", "seeds: 2\npretrain: {lr: 0.01, epochs: 2}"}},
                  "pretrain",
                  "an imported model is not pretrained"},
        BadImport{"source given",
                  {{"seeds: 2", "seeds: 2\nsource: {classes: [0, 1]}"}},
                  "source",
                  "remove source"},
        BadImport{"layers given",
                  {{"{onnx: cnn.onnx}", "{onnx: cnn.onnx, layers: [{dense: 3}]}"}},
                  "model.layers",
                  "the ONNX file gives the model's layers"},
        BadImport{"reuse of the output layer",
                  {{"reuse: [1, 2, 3]", "reuse: [1, 4]"}},
                  "transfer.reuse",
                  "4 is deeper than the source model (3 reusable layers)"},
        BadImport{"several source models",
                  {{"seeds: 2", "seeds: {count: 2, source: 2}"}},
                  "seeds",
                  "an imported model is one source model"},
        BadImport{
            "no baseline settings",
            {{"baseline: {scratch: {optimizer: adam, lr: 1.0e-3, epochs: 2, batch_size: 32}}", ""}},
            "baseline",
            "required"},
        BadImport{"input that does not fit the data",
                  {{"cnn.onnx", "flat.onnx"}},
                  "model.onnx",
                  "the ONNX model's input (64) differs from fashion-mnist's examples (28, 28, 1)"},
        BadImport{"input that does not fit data known once read",
                  {{"dataset: {name: fashion-mnist, validation: 5000}",
                    "dataset: {name: digits, format: csv, header: false, label: -1, "
                    "path: /usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz, "
                    "shape: [8, 8, 1], scale: 16, test_split: 0.2, split_seed: 7, "
                    "validation: 200}"}},
                  "model.onnx",
                  "the ONNX model's input (28, 28, 1) differs from the examples of dataset "
                  "'digits', (8, 8, 1); declare resize: true"},
        BadImport{"nothing to reuse",
                  {{"cnn.onnx", "output_only.onnx"}},
                  "model.onnx",
                  "there is nothing to reuse"}),
    [](const ::testing::TestParamInfo<BadImport>& info) {
      std::string name = info.param.what;
      for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return name;
    });

}  // namespace
}  // namespace seedproof
