// `seedproof model show | export` as users run them, and a whole study whose
// source model is PyTorch's CNN with batch normalisation (tests/onnx/
// torch_models.py): run by `seedproof run`, its best model exported and run in
// onnxruntime (npm's onnxruntime-node), which must agree with seedproof within
// 1e-5 on 1,000 Fashion-MNIST test images.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/backend.h"
#include "data/content_hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "onnx_io/onnx_model.h"
#include "tests/onnx/onnx_test_files.h"
#include "tests/testing/seedproof_cli.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing_support::CommandRun;
using testing_support::ReadBytes;
using testing_support::ReadFloats;
using testing_support::ReadJsonLines;
using testing_support::RunSeedproof;
using testing_support::TorchModels;
using testing_support::Worst;
using testing_support::WriteBytes;

fs::path Temp(const std::string& name) { return fs::path(::testing::TempDir()) / name; }

// Géron's model A after one epoch, saved by `seedproof demo` (a file per test
// process: ctest runs tests at once).
fs::path DemoModel() {
  static const fs::path path = [] {
    const fs::path out = Temp(absl::StrCat("model_cmd_demo_", getpid(), ".spm"));
    const CommandRun run =
        RunSeedproof(absl::StrCat("demo --epochs 1 --save ", out.string(), " > /dev/null"));
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return out;
  }();
  return path;
}

TEST(ModelShow, ASeedproofFileShowsItsLayersAndVerifiedChecksum) {
  const CommandRun run = RunSeedproof("model show " + DemoModel().string());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("seedproof model file; checksum: CRC-32 verified"));
  EXPECT_THAT(run.out, HasSubstr("dense 300 selu"));
  EXPECT_THAT(run.out, HasSubstr("(300)"));
  EXPECT_THAT(run.out, HasSubstr("235,500"));  // 784 x 300 + 300
  EXPECT_THAT(run.out, HasSubstr("parameters: 276,158"));
  EXPECT_THAT(run.out, HasSubstr(Sha256Hex(ReadBytes(DemoModel()))));
}

TEST(ModelShow, AnOnnxFileShowsTheLayersAReuseDepthCounts) {
  const fs::path root = TorchModels();
  ASSERT_FALSE(root.empty());
  const CommandRun run = RunSeedproof("model show " + (root / "cnn_bn.onnx").string());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("ONNX model, opset 14, made by pytorch 1.13.0; ONNX files "
                                 "carry no checksum"));
  EXPECT_THAT(run.out, HasSubstr("input (N, 1, 28, 28) in the file: examples (28, 28, 1) here"));
  EXPECT_THAT(run.out, HasSubstr("1   Conv 3x3 (16) + BatchNormalization + Relu + MaxPool 2x2"));
  EXPECT_THAT(run.out, HasSubstr("out Gemm 8"));
  EXPECT_THAT(run.out, HasSubstr("parameters: 105,928"));
}

// Damaged, foreign and missing files: exit 1 (never a crash), a message naming the
// file and what is wrong with it.
TEST(ModelShow, BadFilesAreNamedNeverACrash) {
  const std::string model = ReadBytes(DemoModel());
  std::string flipped = model;
  flipped[model.size() / 2] ^= 0x40;
  const fs::path root = TorchModels();
  ASSERT_FALSE(root.empty());
  const std::string onnx = ReadBytes(root / "cnn_bn.onnx");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"flipped.spm", flipped},
      {"cut.spm", model.substr(0, model.size() - 100)},
      {"empty.onnx", ""},
      {"cut.onnx", onnx.substr(0, onnx.size() / 2)},
      {"notes.txt", "these are notes\n"},
  };
  for (const auto& [name, bytes] : cases) {
    const fs::path path = Temp("model_cmd_" + name);
    WriteBytes(path, bytes.data(), bytes.size());
    for (const std::string& command :
         {"model show " + path.string(),
          absl::StrCat("model export ", path.string(), " -o ", Temp("x.onnx").string())}) {
      const CommandRun run = RunSeedproof(command);
      EXPECT_EQ(run.exit_code, 1) << command << ": " << run.err;
      EXPECT_THAT(run.err, HasSubstr(path.string())) << command;
      EXPECT_THAT(run.err, HasSubstr("seedproof: error: ")) << command;
    }
  }
  // Intact models the importer cannot read: named by node, operator and reason.
  const fs::path bad = testing_support::BadModels();
  ASSERT_FALSE(bad.empty());
  const CommandRun unsupported =
      RunSeedproof("model show " + (bad / "unsupported_op.onnx").string());
  EXPECT_EQ(unsupported.exit_code, 1);
  EXPECT_THAT(unsupported.err, HasSubstr("node 'cosine' (Cos)"));
  const CommandRun residual = RunSeedproof("model show " + (bad / "residual.onnx").string());
  EXPECT_EQ(residual.exit_code, 1);
  EXPECT_THAT(residual.err, HasSubstr("a branch or residual connection"));
  const CommandRun missing = RunSeedproof("model show " + Temp("nowhere.onnx").string());
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("nowhere.onnx"));
  // What the damage is, in words.
  EXPECT_THAT(RunSeedproof("model show " + Temp("model_cmd_flipped.spm").string()).err,
              HasSubstr("checksum"));
  EXPECT_THAT(RunSeedproof("model show " + Temp("model_cmd_empty.onnx").string()).err,
              HasSubstr("not an ONNX model"));
}

TEST(ModelExport, AModelFileBecomesAnOnnxFileOfTheSamePredictions) {
  const fs::path out = Temp(absl::StrCat("model_cmd_demo_", getpid(), ".onnx"));
  const CommandRun run =
      RunSeedproof(absl::StrCat("model export ", DemoModel().string(), " -o ", out.string()));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out,
              HasSubstr("input \"input\" (N, 28, 28, 1), output \"probabilities\" (N, 8)"));
  auto backend = MakeBackend("reference");
  ASSERT_TRUE(backend.ok());
  auto saved = (*backend)->Load(DemoModel().string());
  ASSERT_TRUE(saved.ok()) << saved.status();
  auto graph = ReadOnnx(ReadBytes(out), out.string());
  ASSERT_TRUE(graph.ok()) << graph.status();
  auto exported = MakeOnnxModel(**backend, *graph);
  ASSERT_TRUE(exported.ok()) << exported.status();
  const fs::path root = TorchModels();
  ASSERT_FALSE(root.empty());
  const std::vector<float> x = ReadFloats(root / "x.f32");
  std::vector<float> want(1000 * 8), got(1000 * 8);
  ASSERT_TRUE((*saved)->Predict(x.data(), 1000, want.data()).ok());
  ASSERT_TRUE((*exported)->Predict(x.data(), 1000, got.data()).ok());
  EXPECT_LE(Worst(got, want).diff, 1e-5);
}

TEST(ModelExport, AStudysTrialMustBeNamedAndExist) {
  const fs::path empty = Temp("model_cmd_no_study");
  fs::create_directories(empty);
  CommandRun run = RunSeedproof(
      absl::StrCat("model export ", empty.string(), " --arm best -o ", Temp("x.onnx").string()));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("seedproof.db: no such database"));
}

constexpr char kOnnxStudy[] = R"(name: onnx-cnn
dataset: {name: fashion-mnist, validation: 5000}
target: {positive: [6], negative: [5], train_size: 200, subset: first}
model: {onnx: cnn_bn.onnx}
transfer:
  reuse: [2, 3]
  schedules:
    frozen: [{epochs: 2, train: head, lr: 1.0e-2}]
    gentle: [{epochs: 1, train: head}, {epochs: 1, train: top-1, lr: 1.0e-4}]
baseline: {scratch: {optimizer: adam, lr: 1.0e-3, epochs: 2, batch_size: 32}}
seeds: 2
)";

TEST(OnnxStudy, RunsEndToEndAndItsBestModelRunsInOnnxruntime) {
  const fs::path root = TorchModels();
  ASSERT_FALSE(root.empty());
  const fs::path dir = Temp("model_cmd_onnx_study");
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(root / "cnn_bn.onnx", dir / "cnn_bn.onnx");
  const std::string sha = Sha256Hex(ReadBytes(dir / "cnn_bn.onnx"));
  std::ofstream(dir / "spec.yaml") << kOnnxStudy;
  const fs::path out = dir / "run";

  const CommandRun plan = RunSeedproof("plan " + (dir / "spec.yaml").string());
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_THAT(plan.out, HasSubstr("2: Conv 3x3 (32) + BatchNormalization + Relu + MaxPool 2x2"));
  EXPECT_THAT(plan.out, HasSubstr("trials    10: pretrain 0, scratch 2, transfer 8"));

  const CommandRun run = RunSeedproof(
      absl::StrCat("run ", (dir / "spec.yaml").string(), " --out ", out.string(), " --workers 2"));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto lines = ReadJsonLines(out / "results.jsonl");
  ASSERT_EQ(lines.size(), 11u);
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["outcome"], "completed") << lines[i].dump();
    if (lines[i]["kind"] == "transfer") {
      EXPECT_EQ(lines[i]["provenance"]["source_model_sha256"], sha);
      EXPECT_GT(lines[i]["test_accuracy"].get<double>(), 0.8);  // chance is 0.5
    }
  }
  // The report reads the results file without the ONNX file.
  fs::rename(dir / "cnn_bn.onnx", dir / "moved.onnx");
  const CommandRun report = RunSeedproof("report " + (out / "results.jsonl").string());
  EXPECT_EQ(report.exit_code, 0) << report.err;
  EXPECT_THAT(report.out, HasSubstr("reuse3/gentle/dense"));
  EXPECT_THAT(report.out, HasSubstr(absl::StrCat("one source model, imported from ",
                                                 (dir / "cnn_bn.onnx").string(), " (sha256 ",
                                                 sha.substr(0, 12), ")")));

  const fs::path best = dir / "best.onnx";
  const CommandRun exported =
      RunSeedproof(absl::StrCat("model export ", out.string(), " --arm best -o ", best.string()));
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_THAT(exported.out, HasSubstr("(as the study recorded)"));
  // An arm that is not there is named.
  const CommandRun none = RunSeedproof(
      absl::StrCat("model export ", out.string(), " --arm reuse9/x -o ", best.string()));
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.err, HasSubstr("no completed trial of arm 'reuse9/x'"));

  // onnxruntime runs it, and agrees with seedproof.
  auto backend = MakeBackend("onednn");
  ASSERT_TRUE(backend.ok());
  auto graph = ReadOnnx(ReadBytes(best), best.string());
  ASSERT_TRUE(graph.ok()) << graph.status();
  auto model = MakeOnnxModel(**backend, *graph);
  ASSERT_TRUE(model.ok()) << model.status();
  const std::vector<float> x = ReadFloats(root / "x.f32");
  std::vector<float> want(1000);
  ASSERT_TRUE((*model)->Predict(x.data(), 1000, want.data()).ok());
  fs::copy_file(root / "x.f32", dir / "x.f32");
  const std::string cases = nlohmann::json::array({{{"model", "best.onnx"},
                                                    {"input", "x.f32"},
                                                    {"dims", {1000, 28, 28, 1}},
                                                    {"output", "best.ort.f32"}}})
                                .dump();
  WriteBytes(dir / "cases.json", cases.data(), cases.size());
  const std::string command = absl::StrCat(
      "ONNXRUNTIME_NODE_DIR=", SEEDPROOF_ONNXRUNTIME_NODE_DIR, " node ",
      (fs::path(__FILE__).parent_path().parent_path() / "onnx" / "ort_predict.js").string(), " ",
      dir.string(), " 2>&1");
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const std::vector<float> got = ReadFloats(dir / "best.ort.f32");
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LE(Worst(got, want).diff, 1e-5);
}

// The shipped example as the README has users run it: PyTorch trains the source
// model (fewer images and epochs here), then the spec runs as shipped.
TEST(ShippedOnnxSpec, ItsScriptMakesTheSourceModelAndTheStudyRuns) {
  const fs::path repo = fs::path(__FILE__).parent_path().parent_path().parent_path();
  const fs::path dir = Temp("model_cmd_shipped");
  fs::remove_all(dir);
  fs::create_directories(dir / "specs");
  fs::copy_file(repo / "experiments/specs/onnx-source.yaml", dir / "specs/onnx-source.yaml");
  const std::string train = absl::StrCat(
      "/usr/bin/python3 ", (repo / "experiments/models/train_fashion_cnn.py").string(), " ",
      (dir / "models/fashion-cnn.onnx").string(), " --epochs 1 --train-size 8000 2>&1");
  ASSERT_EQ(std::system(train.c_str()), 0) << train;
  const fs::path out = dir / "run";
  const CommandRun run = RunSeedproof(
      absl::StrCat("run ", (dir / "specs/onnx-source.yaml").string(), " --out ", out.string()));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto lines = ReadJsonLines(out / "results.jsonl");
  ASSERT_EQ(lines.size(), 1u + 10u + 60u);  // header, 10 baselines, 6 arms x 10 seeds
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["outcome"], "completed") << lines[i].dump();
  }
  EXPECT_THAT(run.out, HasSubstr("reuse3/geron/dense"));
}

}  // namespace
}  // namespace seedproof
