// ONNX files seedproof must refuse: damaged bytes, other formats, and intact
// models it cannot read (tests/onnx/bad_models.py writes those with onnx.helper).
// Each refusal is an error, never a crash, and its message names the file and,
// where a node is at fault, the node, its operator and the reason.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onnx_io/onnx_model.h"
#include "tests/onnx/onnx_test_files.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing_support::BadModels;
using testing_support::ReadBytes;
using testing_support::TorchModels;

struct Refusal {
  std::string file;  // bad_models.py's case
  absl::StatusCode code;
  std::vector<std::string> says;  // substrings of the message, in any order
};

void PrintTo(const Refusal& r, std::ostream* os) { *os << r.file; }

class RefusedModelTest : public ::testing::TestWithParam<Refusal> {};

TEST_P(RefusedModelTest, IsRefusedWithANamedReason) {
  const fs::path root = BadModels();
  ASSERT_FALSE(root.empty());
  const Refusal& r = GetParam();
  const std::string name = r.file + ".onnx";
  const std::string bytes = ReadBytes(root / name);
  ASSERT_FALSE(bytes.empty()) << name;
  auto graph = ReadOnnx(bytes, name);
  ASSERT_FALSE(graph.ok()) << name << " was read";
  EXPECT_EQ(graph.status().code(), r.code) << graph.status();
  const std::string message(graph.status().message());
  if (std::getenv("SEEDPROOF_PRINT_ERRORS")) std::printf("%s\n", message.c_str());
  EXPECT_THAT(message, StartsWith(name + ": "));
  for (const std::string& s : r.says) EXPECT_THAT(message, HasSubstr(s));
}

const absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;

INSTANTIATE_TEST_SUITE_P(
    BadModels, RefusedModelTest,
    ::testing::Values(
        Refusal{"unsupported_op", kInvalid, {"node 'cosine' (Cos)", "not supported"}},
        Refusal{"residual", kInvalid, {"'r1' is read by 2 nodes", "residual"}},
        Refusal{"branch", kInvalid, {"'r1' is read by 2 nodes", "branch"}},
        Refusal{"opset18", kInvalid, {"opset 18 is beyond the 17"}},
        Refusal{"bias_along_width",
                kInvalid,
                {"node 'bias_add' (Add)", "'wide_b' (6) is not a bias of the 4 channels"}},
        Refusal{"symbolic_height", kInvalid, {"dimension 2 is 'height'", "depends on the data"}},
        Refusal{"gemm_weight_size", kInvalid, {"node 'fc'", "Gemm"}},
        Refusal{"conv_bias_size",
                kInvalid,
                {"node 'conv1' (Conv)", "bias 'conv1_b' has 3 values for 4 filters"}},
        Refusal{"short_initializer",
                kInvalid,
                {"initializer 'conv1_w'", "holds 140 bytes for 36 values"}},
        Refusal{"external_data", kInvalid, {"initializer 'conv1_w'", "external file"}},
        Refusal{"grouped_conv", kInvalid, {"node 'grouped' (Conv)", "group 2 is not supported"}},
        Refusal{"dilated_conv", kInvalid, {"node 'dilated' (Conv)", "dilations (2, 2)"}},
        Refusal{"ceil_mode", kInvalid, {"node 'pool_ceil' (MaxPool)", "ceil_mode 1"}},
        Refusal{"reshape_not_flat",
                kInvalid,
                {"node 'reshape_3d' (Reshape)", "reshapes to (0, 4, 36)"}},
        Refusal{
            "data_dependent_reshape", kInvalid, {"node 'shape_of' (Shape)", "depends on the data"}},
        Refusal{"two_inputs", kInvalid, {"2 data inputs"}},
        Refusal{"int_input", kInvalid, {"input 'x' is not a float32 tensor"}},
        Refusal{"bn_training",
                kInvalid,
                {"node 'bn_training' (BatchNormalization)", "training_mode 1"}},
        Refusal{"identity_only", kInvalid, {"computes nothing"}},
        Refusal{"conv_on_rank3_input",
                kInvalid,
                {"node 'conv1' (Conv): its input has rank 3 but its kernel 2 spatial dims"}},
        Refusal{"pool_stride_zero",
                kInvalid,
                {"node 'pool0' (MaxPool): strides 0; each must be at least 1"}}),
    [](const ::testing::TestParamInfo<Refusal>& info) { return info.param.file; });

// Bytes that are not an ONNX model at all: DATA_LOSS naming the file.
TEST(DamagedOnnx, EmptyTruncatedCorruptAndOtherFormatsAreRefused) {
  const fs::path root = TorchModels();
  ASSERT_FALSE(root.empty());
  const std::string good = ReadBytes(root / "cnn_bn.onnx");
  ASSERT_TRUE(ReadOnnx(good, "cnn_bn.onnx").ok());

  auto empty = ReadOnnx("", "empty.onnx");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(empty.status().message()), StartsWith("empty.onnx: empty file"));

  // Cut anywhere: a cut inside a field never parses; a cut between fields parses to
  // a model missing what follows, which the checks refuse. Either way an error.
  for (size_t keep : {size_t{1}, size_t{16}, good.size() / 3, good.size() / 2, good.size() - 1}) {
    auto cut = ReadOnnx(good.substr(0, keep), "cut.onnx");
    EXPECT_FALSE(cut.ok()) << "kept " << keep << " of " << good.size() << " bytes";
    EXPECT_THAT(std::string(cut.status().message()), StartsWith("cut.onnx: "));
  }
  auto half = ReadOnnx(good.substr(0, good.size() / 2), "half.onnx");
  EXPECT_EQ(half.status().code(), absl::StatusCode::kDataLoss) << half.status();
  EXPECT_THAT(std::string(half.status().message()), HasSubstr("not an ONNX model"));

  // Overwritten bytes: wherever they land (structure or weights), an error or,
  // inside a weight, a model that still reads; never a crash. Structure first.
  std::string corrupt = good;
  for (size_t i = 0; i < 64; ++i) corrupt[i] = static_cast<char>(0xff);
  auto bad = ReadOnnx(corrupt, "corrupt.onnx");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss) << bad.status();
  for (size_t at = 0; at + 8 < good.size(); at += good.size() / 97) {
    std::string damaged = good;
    for (size_t i = at; i < at + 8; ++i) damaged[i] = static_cast<char>(damaged[i] ^ 0x5a);
    auto r = ReadOnnx(damaged, "damaged.onnx");
    if (!r.ok()) {
      EXPECT_THAT(std::string(r.status().message()), StartsWith("damaged.onnx: "));
    }
  }

  // Another format: a PNG, and text.
  const std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\0\0\0\0", 29);
  auto image = ReadOnnx(png, "picture.onnx");
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), absl::StatusCode::kDataLoss) << image.status();
  EXPECT_THAT(std::string(image.status().message()), HasSubstr("picture.onnx: not an ONNX model"));
  auto text = ReadOnnx("layers:\n  - dense: 10\n", "spec.onnx");
  ASSERT_FALSE(text.ok());
  EXPECT_THAT(std::string(text.status().message()), StartsWith("spec.onnx: "));
}

}  // namespace
}  // namespace seedproof
