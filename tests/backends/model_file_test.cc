// The model file: bit-exact round trips, and a corpus of damaged files that must
// each give an error naming the file and the problem, never a crash.
#include "backends/model_file.h"

#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "backends/backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace seedproof {
namespace {

using ::testing::HasSubstr;

ModelSpec SmallConvSpec() {
  ModelSpec spec;
  spec.input = {6, 6, 2};
  spec.layers = {LayerSpec::Conv2D(3, 3, 1, Padding::kSame, Activation::kRelu),
                 LayerSpec::MaxPool2D(2),
                 LayerSpec::Flatten(),
                 LayerSpec::Dropout(0.25f),
                 LayerSpec::Dense(5, Activation::kSelu, Initializer::kLecunNormal),
                 LayerSpec::Dense(3, Activation::kSoftmax)};
  spec.loss = Loss::kSparseCategoricalCrossEntropy;
  return spec;
}

class ModelFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("seedproof_model_file_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    auto backend = MakeBackend("reference");
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = std::move(*backend);
    auto model = backend_->Create(SmallConvSpec(), 7);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    ASSERT_TRUE(model_->SetTrainable(0, false).ok());
    path_ = (dir_ / "model.spm").string();
    ASSERT_TRUE(model_->Save(path_).ok());
    std::ifstream in(path_, std::ios::binary);
    bytes_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  // Replaces the trailing CRC so a deliberately inconsistent body passes the checksum.
  static std::string Reseal(std::string bytes) {
    const size_t body = bytes.size() - 4;
    const uint32_t crc = static_cast<uint32_t>(
        crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(bytes.data()), body));
    std::memcpy(bytes.data() + body, &crc, 4);
    return bytes;
  }
  absl::Status LoadError(const std::string& path) {
    auto loaded = backend_->Load(path);
    return loaded.ok() ? absl::OkStatus() : loaded.status();
  }

  std::filesystem::path dir_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;
  std::string path_;
  std::string bytes_;
};

// Byte offsets in the layout of docs/MODEL_FORMAT.md for SmallConvSpec.
constexpr size_t kVersionOffset = 8;
constexpr size_t kLayerCountOffset = 8 + 4 + 4 + 4 + 3 * 8;
constexpr size_t kFirstLayerOffset = kLayerCountOffset + 4;
constexpr size_t kLayerBytes = 4 * 3 + 4 * 5 + 4 + 4 + 1;

TEST_F(ModelFileTest, RoundTripIsBitExactOnEveryBackend) {
  for (const std::string& name : BuiltinBackendNames()) {
    auto backend = MakeBackend(name);
    ASSERT_TRUE(backend.ok());
    auto loaded = (*backend)->Load(path_);
    ASSERT_TRUE(loaded.ok()) << name << ": " << loaded.status();
    EXPECT_EQ((*loaded)->spec(), model_->spec()) << name;
    ASSERT_EQ((*loaded)->parameters().size(), model_->parameters().size());
    EXPECT_EQ(0, std::memcmp((*loaded)->parameters().data(), model_->parameters().data(),
                             model_->parameters().size_bytes()))
        << name;
    for (int l = 0; l < model_->num_layers(); ++l) {
      EXPECT_EQ((*loaded)->trainable(l), model_->trainable(l)) << name << " layer " << l;
    }
    // Saving the loaded model again gives the same bytes.
    const std::string again = (dir_ / ("again_" + name)).string();
    ASSERT_TRUE((*loaded)->Save(again).ok());
    std::ifstream in(again, std::ios::binary);
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()),
              bytes_);
  }
}

// What imported models hold (batch normalisation with its moving statistics,
// explicit padding, average pools, a leaky relu) needs version 2; a model without
// any of it is still version 1, byte for byte (SmallConvSpec above is).
TEST_F(ModelFileTest, Version2HoldsWhatVersion1CannotAndRoundTripsBitExact) {
  uint32_t version = 0;
  std::memcpy(&version, bytes_.data() + kVersionOffset, 4);
  EXPECT_EQ(version, 1u);
  ModelSpec spec;
  spec.input = {6, 5, 2};
  LayerSpec conv = LayerSpec::Conv2D(4, 3, 2, Padding::kExplicit, Activation::kLinear);
  conv.pad_top = 1, conv.pad_bottom = 2, conv.pad_left = 0, conv.pad_right = 1;
  LayerSpec norm = LayerSpec::BatchNorm(1e-5f, 0.9f, Activation::kLeakyRelu);
  norm.alpha = 0.01f;
  LayerSpec pool = LayerSpec::AvgPool2D(2, 1);
  pool.count_include_pad = true;
  spec.layers = {conv, norm, pool, LayerSpec::GlobalAvgPool2D(), LayerSpec::Flatten(),
                 LayerSpec::Dense(3, Activation::kSoftmax)};
  auto model = backend_->Create(spec, 3);
  ASSERT_TRUE(model.ok()) << model.status();
  // Moving statistics that are not their start.
  std::vector<Tensor> w = *(*model)->GetWeights(1);
  w[2].values = {0.5f, -1.0f, 2.0f, 0.25f};
  w[3].values = {1.5f, 0.5f, 3.0f, 0.75f};
  ASSERT_TRUE((*model)->SetWeights(1, w).ok());
  ASSERT_TRUE((*model)->SetTrainable(1, false).ok());
  const std::string bytes = (*model)->SaveBytes();
  std::memcpy(&version, bytes.data() + kVersionOffset, 4);
  EXPECT_EQ(version, 2u);
  for (const std::string& name : BuiltinBackendNames()) {
    auto loaded = (*MakeBackend(name))->LoadBytes(bytes, "v2 model");
    ASSERT_TRUE(loaded.ok()) << name << ": " << loaded.status();
    EXPECT_EQ((*loaded)->spec(), spec) << name;
    EXPECT_EQ((*loaded)->SaveBytes(), bytes) << name;
    EXPECT_FALSE((*loaded)->trainable(1)) << name;
    EXPECT_EQ((*loaded)->GetWeights(1)->at(3).values, w[3].values) << name;
  }
  // Damage anywhere is still named, never a crash.
  for (size_t cut = 0; cut < bytes.size(); cut += 7) {
    EXPECT_FALSE(backend_->LoadBytes(bytes.substr(0, cut), "v2 model").ok()) << cut;
  }
}

// In memory: SaveBytes gives the file's bytes, LoadBytes reads them on every
// backend, and bad bytes get the same errors as a bad file, naming what was given.
TEST_F(ModelFileTest, BytesAreTheFileAndLoadOnEveryBackend) {
  EXPECT_EQ(model_->SaveBytes(), bytes_);
  for (const std::string& name : BuiltinBackendNames()) {
    auto backend = MakeBackend(name);
    ASSERT_TRUE(backend.ok());
    auto loaded = (*backend)->LoadBytes(bytes_, "artifact x");
    ASSERT_TRUE(loaded.ok()) << name << ": " << loaded.status();
    EXPECT_EQ((*loaded)->SaveBytes(), bytes_) << name;
    for (int l = 0; l < model_->num_layers(); ++l) {
      EXPECT_EQ((*loaded)->trainable(l), model_->trainable(l)) << name << " layer " << l;
    }
  }
  std::string flipped = bytes_;
  flipped[flipped.size() / 2] ^= 0x10;
  auto corrupt = backend_->LoadBytes(flipped, "artifact x");
  ASSERT_FALSE(corrupt.ok());
  EXPECT_THAT(corrupt.status().message(), HasSubstr("artifact x"));
  EXPECT_FALSE(backend_->LoadBytes(bytes_.substr(0, 20), "artifact x").ok());
  EXPECT_FALSE(backend_->LoadBytes("", "artifact x").ok());
}

TEST_F(ModelFileTest, MissingFileIsNotFound) {
  const absl::Status s = LoadError((dir_ / "absent.spm").string());
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("absent.spm: cannot open"));
}

TEST_F(ModelFileTest, OtherFileIsNotAModelFile) {
  const std::string path = Write("notes.txt", "hello, this is not a model\n");
  EXPECT_THAT(LoadError(path).message(), HasSubstr("notes.txt: not a seedproof model file"));
  EXPECT_THAT(LoadError(Write("empty.spm", "")).message(), HasSubstr("bad magic"));
}

TEST_F(ModelFileTest, OtherFormatVersionIsNamed) {
  std::string bytes = bytes_;
  const uint32_t version = 3;
  std::memcpy(bytes.data() + kVersionOffset, &version, 4);
  const absl::Status s = LoadError(Write("v3.spm", Reseal(bytes)));
  EXPECT_THAT(s.message(),
              HasSubstr("v3.spm: model format version 3; this build reads versions 1 to 2"));
}

TEST_F(ModelFileTest, TruncationAtEveryByteIsAnErrorNamingTheFile) {
  for (size_t length = 0; length < bytes_.size(); ++length) {
    const absl::Status s = LoadError(Write("cut.spm", bytes_.substr(0, length)));
    ASSERT_FALSE(s.ok()) << "length " << length;
    EXPECT_THAT(s.message(), HasSubstr("cut.spm: ")) << "length " << length;
    if (length >= 12) {
      EXPECT_THAT(s.message(), HasSubstr("truncated")) << "length " << length;
    }
  }
}

TEST_F(ModelFileTest, TruncatedParametersSayHowManyBytesAreMissing) {
  const absl::Status s = LoadError(Write("short.spm", bytes_.substr(0, bytes_.size() - 40)));
  EXPECT_THAT(s.message(), HasSubstr("parameters"));
  EXPECT_THAT(s.message(), HasSubstr("only"));
}

TEST_F(ModelFileTest, EveryFlippedByteIsDetected) {
  for (size_t i = 0; i < bytes_.size(); ++i) {
    std::string bytes = bytes_;
    bytes[i] = static_cast<char>(bytes[i] ^ 0x5a);
    const absl::Status s = LoadError(Write("flip.spm", bytes));
    ASSERT_FALSE(s.ok()) << "byte " << i;
    EXPECT_THAT(s.message(), HasSubstr("flip.spm: ")) << "byte " << i;
  }
}

TEST_F(ModelFileTest, FlippedParameterByteIsACorruptChecksum) {
  std::string bytes = bytes_;
  bytes[bytes.size() - 10] ^= 0x01;
  EXPECT_THAT(LoadError(Write("corrupt.spm", bytes)).message(),
              HasSubstr("corrupt: checksum mismatch"));
}

TEST_F(ModelFileTest, TrailingBytesAreRejected) {
  EXPECT_THAT(LoadError(Write("trailing.spm", bytes_ + "xyz")).message(),
              HasSubstr("3 unexpected bytes after the checksum"));
}

TEST_F(ModelFileTest, WrongShapeIsNamedEvenWithAValidChecksum) {
  // Layer 4 is Dense(5); claim 6 units: the tensors no longer fit the layers.
  std::string bytes = bytes_;
  const size_t units = kFirstLayerOffset + 4 * kLayerBytes + 12;
  int32_t six = 6;
  std::memcpy(bytes.data() + units, &six, 4);
  const absl::Status s = LoadError(Write("shape.spm", Reseal(bytes)));
  EXPECT_THAT(s.message(), HasSubstr("shape.spm: wrong shape: holds"));
  EXPECT_THAT(s.message(), HasSubstr("parameters but its layers need"));
}

TEST_F(ModelFileTest, UnknownSettingIsAnInvalidModel) {
  std::string bytes = bytes_;
  const uint32_t activation = 99;
  std::memcpy(bytes.data() + kFirstLayerOffset + 4, &activation, 4);
  EXPECT_THAT(LoadError(Write("act.spm", Reseal(bytes))).message(),
              HasSubstr("invalid model: layer 0 (conv2d): unknown activation code 99"));
}

TEST_F(ModelFileTest, ImplausibleLayerCountIsRejectedWithoutAllocating) {
  std::string bytes = bytes_;
  const uint32_t huge = 0xffffffffu;
  std::memcpy(bytes.data() + kLayerCountOffset, &huge, 4);
  EXPECT_THAT(LoadError(Write("huge.spm", Reseal(bytes))).message(),
              HasSubstr("layer count 4294967295 is not plausible"));
}

TEST_F(ModelFileTest, SaveToAnUnwritablePlaceFailsAndLeavesNothing) {
  const absl::Status s = model_->Save((dir_ / "no" / "such" / "dir" / "m.spm").string());
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("m.spm: cannot write"));
}

TEST_F(ModelFileTest, SaveReplacesAtomically) {
  // A second save over the same path leaves a complete, loadable file.
  ASSERT_TRUE(model_->Save(path_).ok());
  EXPECT_TRUE(LoadError(path_).ok());
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
}

}  // namespace
}  // namespace seedproof
