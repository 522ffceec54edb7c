// Models made elsewhere: PyTorch 1.13 trains and exports them (tests/onnx/
// torch_models.py), seedproof reads them with ReadOnnx and must predict what
// PyTorch predicted, on 1,000 Fashion-MNIST task A test images, within 1e-5, on
// both backends.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <ostream>
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

constexpr int64_t kImages = 1000;

struct Case {
  std::string model;    // tests/onnx/torch_models.py's name
  std::string backend;  // "reference" or "onednn"
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.model << " on " << c.backend; }

class TorchModelTest : public ::testing::TestWithParam<Case> {};

TEST_P(TorchModelTest, PredictsWhatPyTorchPredicts) {
  const fs::path root = TorchModels();
  ASSERT_FALSE(root.empty());
  const Case& c = GetParam();
  const nlohmann::json manifest = nlohmann::json::parse(ReadBytes(root / "manifest.json"));
  const int64_t outputs = manifest.at(c.model).at("outputs");
  auto graph = ReadOnnx(ReadBytes(root / (c.model + ".onnx")), c.model + ".onnx");
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_EQ(graph->opset, manifest.at(c.model).at("opset").get<int64_t>());
  ASSERT_TRUE(graph->output_layer);
  EXPECT_EQ(graph->spec.input, (Shape{28, 28, 1}));
  auto backend = MakeBackend(c.backend);
  ASSERT_TRUE(backend.ok()) << backend.status();
  auto model = MakeOnnxModel(**backend, *graph);
  ASSERT_TRUE(model.ok()) << model.status();

  const std::vector<float> x = ReadFloats(root / "x.f32");
  const std::vector<float> expected = ReadFloats(root / (c.model + ".out.f32"));
  ASSERT_EQ(x.size(), static_cast<size_t>(kImages * 28 * 28));
  ASSERT_EQ(expected.size(), static_cast<size_t>(kImages * outputs));
  std::vector<float> got(expected.size());
  ASSERT_TRUE((*model)->Predict(x.data(), kImages, got.data()).ok());
  const auto [worst, worst_at] = Worst(got, expected);
  EXPECT_LE(worst, 1e-5) << c.model << " on " << c.backend << ": image " << worst_at / outputs
                         << " output " << worst_at % outputs << " is " << got[worst_at]
                         << ", PyTorch says " << expected[worst_at];
  if (std::getenv("SEEDPROOF_PRINT_TOLERANCE")) {
    std::printf("%s on %s: worst |diff| %.3g\n", c.model.c_str(), c.backend.c_str(), worst);
  }
}

std::vector<Case> Cases() {
  std::vector<Case> cases;
  for (const char* model : {"mlp", "mlp_opset9", "cnn", "cnn_bn", "cnn_bn_opset17", "cnn_opset9",
                            "zoo", "binary", "nhwc"}) {
    for (const char* backend : {"reference", "onednn"}) cases.push_back({model, backend});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Exported, TorchModelTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return absl::StrCat(info.param.model, "_", info.param.backend);
                         });

// What "reuse k" means for the CNN as PyTorch exports it with its BatchNorm nodes:
// one unit per weight layer, with what follows it.
TEST(OnnxUnits, CnnWithBatchNormHasOneUnitPerWeightLayer) {
  const fs::path root = TorchModels();
  ASSERT_FALSE(root.empty());
  auto graph = ReadOnnx(ReadBytes(root / "cnn_bn.onnx"), "cnn_bn.onnx");
  ASSERT_TRUE(graph.ok()) << graph.status();
  std::vector<std::string> units;
  for (const OnnxUnit& u : graph->units) units.push_back(u.description);
  EXPECT_EQ(units, (std::vector<std::string>{
                       "Conv 3x3 (16) + BatchNormalization + Relu + MaxPool 2x2",
                       "Conv 3x3 (32) + BatchNormalization + Relu + MaxPool 2x2 + Flatten",
                       "Gemm 64 + Relu",  // eval mode: no Dropout node
                       "Gemm 8",
                   }));
  ASSERT_EQ(graph->units.size(), 4u);
  EXPECT_EQ(graph->units.back().end_layer, static_cast<int>(graph->spec.layers.size()));
  for (size_t u = 1; u < graph->units.size(); ++u) {
    EXPECT_EQ(graph->units[u].first_layer, graph->units[u - 1].end_layer);
  }
  EXPECT_EQ(graph->producer, "pytorch 1.13.0");
}

}  // namespace
}  // namespace seedproof
