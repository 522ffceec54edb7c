// Backends by name and by plugin path, and the errors for everything else.
#include "backends/plugin.h"

#include <cmath>
#include <vector>

#include "backends/backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace seedproof {
namespace {

using ::testing::HasSubstr;

std::string PluginPath(const std::string& name) {
  return std::string(SEEDPROOF_BINARY_DIR) + "/plugins/lib" + name + ".so";
}

ModelSpec TinySpec() {
  ModelSpec spec;
  spec.input = {4};
  spec.layers = {LayerSpec::Dense(3, Activation::kTanh), LayerSpec::Dense(1, Activation::kSigmoid)};
  spec.loss = Loss::kBinaryCrossEntropy;
  return spec;
}

TEST(BackendRegistry, BuiltinsAreFoundByName) {
  for (const std::string& name : {std::string("onednn"), std::string("reference")}) {
    auto backend = MakeBackend(name);
    ASSERT_TRUE(backend.ok()) << backend.status();
    EXPECT_EQ((*backend)->name(), name);
  }
}

TEST(BackendRegistry, UnknownNameListsTheBuiltins) {
  auto backend = MakeBackend("cuda");
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(backend.status().message(),
              HasSubstr("unknown backend 'cuda'; built-in backends are onednn, reference"));
}

TEST(BackendRegistry, ThreadsBelowOneAreRejected) {
  EXPECT_THAT(MakeBackend("onednn", {.threads = 0}).status().message(),
              HasSubstr("threads must be >= 1"));
}

TEST(BackendPlugin, LoadsAndTrainsLikeTheBuiltin) {
  auto plugin = MakeBackend(PluginPath("reference_plugin"));
  ASSERT_TRUE(plugin.ok()) << plugin.status();
  auto builtin = MakeBackend("reference");
  ASSERT_TRUE(builtin.ok());
  auto a = (*plugin)->Create(TinySpec(), 3);
  auto b = (*builtin)->Create(TinySpec(), 3);
  ASSERT_TRUE(a.ok() && b.ok());
  const float x[8] = {0.1f, 0.2f, 0.3f, 0.4f, -0.5f, 0.6f, -0.7f, 0.8f};
  const int32_t y[2] = {1, 0};
  auto la = (*a)->TrainStep(x, y, 2);
  auto lb = (*b)->TrainStep(x, y, 2);
  ASSERT_TRUE(la.ok() && lb.ok());
  EXPECT_EQ(*la, *lb);
  EXPECT_TRUE(
      std::equal((*a)->parameters().begin(), (*a)->parameters().end(), (*b)->parameters().begin()));
}

// bench coordinator's backend: the whole model interface, no learning.
TEST(BackendPlugin, NoopPluginTrainsNothing) {
  auto noop = MakeBackend(PluginPath("seedproof_noop_backend"));
  ASSERT_TRUE(noop.ok()) << noop.status();
  EXPECT_EQ((*noop)->name(), "noop");
  auto model = (*noop)->Create(TinySpec(), 3);
  ASSERT_TRUE(model.ok()) << model.status();
  const std::vector<float> before((*model)->parameters().begin(), (*model)->parameters().end());
  const float x[8] = {0.1f, 0.2f, 0.3f, 0.4f, -0.5f, 0.6f, -0.7f, 0.8f};
  const int32_t y[2] = {1, 0};
  for (int step = 0; step < 3; ++step) {
    auto loss = (*model)->TrainStep(x, y, 2);
    ASSERT_TRUE(loss.ok()) << loss.status();
    EXPECT_FLOAT_EQ(*loss, std::log(2.0f));  // every logit is 0
  }
  EXPECT_TRUE(std::equal(before.begin(), before.end(), (*model)->parameters().begin()));
  auto derived = (*model)->Derive(1, {LayerSpec::Dense(1, Activation::kSigmoid)},
                                  Loss::kBinaryCrossEntropy, 5);
  ASSERT_TRUE(derived.ok()) << derived.status();
  float features[6];
  ASSERT_TRUE((*model)->Features(x, 2, 1, features).ok());
  EXPECT_THAT(features, ::testing::Each(0.0f));
}

TEST(BackendPlugin, MissingFileIsNamed) {
  auto backend = MakeBackend("/nonexistent/libnothing.so");
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(backend.status().message(),
              HasSubstr("cannot load backend plugin /nonexistent/libnothing.so"));
}

TEST(BackendPlugin, LibraryWithoutEntryPointIsNotAPlugin) {
  auto backend = MakeBackend(PluginPath("no_entry_plugin"));
  EXPECT_THAT(backend.status().message(),
              HasSubstr("not a seedproof backend plugin (it exports no seedproof_backend_plugin)"));
}

TEST(BackendPlugin, AbiVersionMismatchIsRefused) {
  auto backend = MakeBackend(PluginPath("wrong_abi_plugin"));
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(
      backend.status().message(),
      HasSubstr("backend plugin ABI version " + std::to_string(kSeedproofBackendAbiVersion + 1) +
                ", this build needs version " + std::to_string(kSeedproofBackendAbiVersion)));
}

}  // namespace
}  // namespace seedproof
