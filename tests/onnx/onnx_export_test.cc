// WriteOnnx: every layer kind written as ONNX, checked twice against the model
// that wrote it, on 1,000 Fashion-MNIST test images (or 1,000 random rows for
// flat input): read back by ReadOnnx, and run by onnxruntime (npm's
// onnxruntime-node, code seedproof shares nothing with), each within 1e-5.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/backend.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "onnx_io/onnx_model.h"
#include "tests/onnx/onnx_test_files.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;
using testing_support::ReadBytes;
using testing_support::ReadFloats;
using testing_support::TorchModels;
using testing_support::Worst;
using testing_support::WriteBytes;

constexpr int64_t kExamples = 1000;

struct ExportCase {
  std::string name;
  ModelSpec spec;
};

void PrintTo(const ExportCase& c, std::ostream* os) { *os << c.name; }

// Models that between them hold every layer kind, activation and padding.
std::vector<ExportCase> Cases() {
  std::vector<ExportCase> cases;
  // Géron's model A.
  cases.push_back(
      {"mlp_selu",
       {{28, 28, 1},
        {LayerSpec::Flatten(), LayerSpec::Dense(300, Activation::kSelu, Initializer::kLecunNormal),
         LayerSpec::Dense(100, Activation::kSelu, Initializer::kLecunNormal),
         LayerSpec::Dense(8, Activation::kSoftmax)}}});
  // 'same' and strided 'valid' convolutions, batch normalisation on images and on
  // features, both poolings, dropout.
  LayerSpec leaky = LayerSpec::Dense(32, Activation::kLeakyRelu, Initializer::kHeNormal);
  leaky.alpha = 0.1f;
  cases.push_back({"cnn_bn",
                   {{28, 28, 1},
                    {LayerSpec::Conv2D(8, 3, 1, Padding::kSame, Activation::kLinear),
                     LayerSpec::BatchNorm(1e-5f, 0.9f, Activation::kRelu), LayerSpec::MaxPool2D(2),
                     LayerSpec::Conv2D(16, 3, 2, Padding::kValid, Activation::kElu),
                     LayerSpec::AvgPool2D(2, 2, Padding::kSame), LayerSpec::Dropout(0.25f),
                     LayerSpec::Flatten(), leaky, LayerSpec::BatchNorm(),
                     LayerSpec::Dense(10, Activation::kSoftmax)}}});
  // Explicit asymmetric padding, an average counting padded zeros, a 'same' max
  // pool of odd size, the global mean, an activation layer of its own, and a
  // sigmoid output.
  LayerSpec padded = LayerSpec::Conv2D(6, 4, 1, Padding::kExplicit, Activation::kTanh);
  padded.pad_top = 1, padded.pad_bottom = 2, padded.pad_left = 0, padded.pad_right = 1;
  LayerSpec counted = LayerSpec::AvgPool2D(3, 2, Padding::kExplicit);
  counted.pad_top = counted.pad_left = counted.pad_bottom = counted.pad_right = 1;
  counted.count_include_pad = true;
  cases.push_back({"cnn_pads_sigmoid",
                   {{28, 28, 1},
                    {padded, counted, LayerSpec::MaxPool2D(3, 2, Padding::kSame),
                     LayerSpec::Conv2D(12, 3, 1, Padding::kValid, Activation::kSigmoid),
                     LayerSpec::GlobalAvgPool2D(), LayerSpec::ActivationLayer(Activation::kRelu),
                     LayerSpec::Flatten(), LayerSpec::Dense(1, Activation::kSigmoid)},
                    Loss::kBinaryCrossEntropy}});
  // Flat features (a CSV dataset's).
  cases.push_back({"flat",
                   {{64},
                    {LayerSpec::Dense(32, Activation::kTanh), LayerSpec::BatchNorm(),
                     LayerSpec::Dense(3, Activation::kSoftmax)}}});
  return cases;
}

std::vector<float> Inputs(const Shape& example) {
  if (example == Shape{28, 28, 1}) {
    const fs::path root = TorchModels();
    return root.empty() ? std::vector<float>{} : ReadFloats(root / "x.f32");
  }
  std::mt19937 random(7);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<float> x(kExamples * ElementCount(example));
  for (float& v : x) v = uniform(random);
  return x;
}

// A model of the case's spec whose batch normalisation layers hold moving
// statistics far from the identity, so a wrong epsilon, order or layout shows.
std::unique_ptr<Model> Build(Backend& backend, const ModelSpec& spec) {
  auto model = backend.Create(spec, 11);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return nullptr;
  std::mt19937 random(3);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (int l = 0; l < (*model)->num_layers(); ++l) {
    if (spec.layers[l].kind != LayerKind::kBatchNorm) continue;
    auto weights = (*model)->GetWeights(l);
    EXPECT_TRUE(weights.ok());
    for (float& v : (*weights)[0].values) v = 0.5f + uniform(random);         // gamma
    for (float& v : (*weights)[1].values) v = uniform(random) - 0.5f;         // beta
    for (float& v : (*weights)[2].values) v = 0.4f * uniform(random) - 0.2f;  // mean
    for (float& v : (*weights)[3].values) v = 0.1f + 2.0f * uniform(random);  // variance
    EXPECT_TRUE((*model)->SetWeights(l, *weights).ok());
  }
  return *std::move(model);
}

std::vector<float> Predictions(Model& model, const std::vector<float>& x) {
  std::vector<float> out(kExamples * model.output_units());
  EXPECT_TRUE(model.Predict(x.data(), kExamples, out.data()).ok());
  return out;
}

// The case's model on a backend, and the ONNX file it writes ("" after a failure
// the test has reported).
struct Written {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::string onnx;
};
Written WriteCase(const std::string& backend_name, const ExportCase& c) {
  Written w;
  auto backend = MakeBackend(backend_name);
  EXPECT_TRUE(backend.ok()) << backend.status();
  if (!backend.ok()) return w;
  w.backend = *std::move(backend);
  w.model = Build(*w.backend, c.spec);
  if (w.model == nullptr) return w;
  auto onnx = WriteOnnx(*w.model, c.name);
  EXPECT_TRUE(onnx.ok()) << onnx.status();
  if (onnx.ok()) w.onnx = *std::move(onnx);
  return w;
}

class ExportTest : public ::testing::TestWithParam<ExportCase> {};

TEST_P(ExportTest, ReadBackPredictsTheSame) {
  const ExportCase& c = GetParam();
  const std::vector<float> x = Inputs(c.spec.input);
  ASSERT_EQ(x.size(), static_cast<size_t>(kExamples * ElementCount(c.spec.input)));
  for (const char* name : {"reference", "onednn"}) {
    Written w = WriteCase(name, c);
    ASSERT_FALSE(w.onnx.empty());
    auto graph = ReadOnnx(w.onnx, c.name + ".onnx");
    ASSERT_TRUE(graph.ok()) << graph.status();
    EXPECT_EQ(graph->opset, 14);
    EXPECT_EQ(graph->producer, "seedproof");
    EXPECT_EQ(graph->spec.input, c.spec.input);
    int weight_layers = 0;
    for (const LayerSpec& layer : c.spec.layers) {
      weight_layers += layer.kind == LayerKind::kDense || layer.kind == LayerKind::kConv2D;
    }
    EXPECT_EQ(graph->units.size(), static_cast<size_t>(weight_layers));
    auto back = MakeOnnxModel(*w.backend, *graph);
    ASSERT_TRUE(back.ok()) << back.status();
    const std::vector<float> want = Predictions(*w.model, x);
    const std::vector<float> got = Predictions(**back, x);
    const auto [worst, at] = Worst(got, want);
    EXPECT_LE(worst, 1e-5) << c.name << " on " << name << ": value " << at << " is " << got[at]
                           << " read back, " << want[at] << " before";
  }
}

INSTANTIATE_TEST_SUITE_P(Layers, ExportTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<ExportCase>& info) {
                           return info.param.name;
                         });

// Every case, written by a model of each backend, run by onnxruntime.
TEST(ExportToOnnxruntime, OutputsWithin1e5OfSeedproofs) {
  const fs::path dir = fs::path(::testing::TempDir()) / "seedproof_onnxruntime_check";
  fs::remove_all(dir);
  fs::create_directories(dir);
  nlohmann::json runs = nlohmann::json::array();
  std::vector<std::vector<float>> want;
  for (const ExportCase& c : Cases()) {
    const std::vector<float> x = Inputs(c.spec.input);
    ASSERT_EQ(x.size(), static_cast<size_t>(kExamples * ElementCount(c.spec.input)));
    const std::string input = c.name + ".x.f32";
    WriteBytes(dir / input, x.data(), x.size() * sizeof(float));
    for (const char* name : {"reference", "onednn"}) {
      Written w = WriteCase(name, c);
      ASSERT_FALSE(w.onnx.empty());
      const std::string stem = absl::StrCat(c.name, "_", name);
      WriteBytes(dir / (stem + ".onnx"), w.onnx.data(), w.onnx.size());
      nlohmann::json dims = {kExamples};
      for (int64_t d : c.spec.input) dims.push_back(d);
      runs.push_back({{"model", stem + ".onnx"},
                      {"input", input},
                      {"dims", dims},
                      {"output", stem + ".ort.f32"}});
      want.push_back(Predictions(*w.model, x));
    }
  }
  const std::string cases = runs.dump(1);
  WriteBytes(dir / "cases.json", cases.data(), cases.size());
  const std::string command = absl::StrCat(
      "ONNXRUNTIME_NODE_DIR=", SEEDPROOF_ONNXRUNTIME_NODE_DIR, " node ",
      (fs::path(__FILE__).parent_path() / "ort_predict.js").string(), " ", dir.string(), " 2>&1");
  ASSERT_EQ(std::system(command.c_str()), 0)
      << command << " failed: is onnxruntime-node installed (deploy/install-deps.sh --test)?";
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string model = runs[i]["model"];
    const std::vector<float> got = ReadFloats(dir / runs[i]["output"].get<std::string>());
    ASSERT_EQ(got.size(), want[i].size()) << model;
    const auto [worst, at] = Worst(got, want[i]);
    EXPECT_LE(worst, 1e-5) << model << ": value " << at << " is " << got[at] << " in onnxruntime, "
                           << want[i][at] << " in seedproof";
    if (std::getenv("SEEDPROOF_PRINT_TOLERANCE")) {
      std::printf("%s in onnxruntime: worst |diff| %.3g\n", model.c_str(), worst);
    }
  }
}

}  // namespace
}  // namespace seedproof
