// A worker runs the trial its lease carries only if it is the trial the lease
// names; the models a group's ranks pass around stay in memory.
#include "worker/leased_trial.h"

#include <filesystem>

#include "backends/backend.h"
#include "experiments/fingerprint.h"
#include "experiments/plan.h"
#include "experiments/sweep_parse.h"
#include "experiments/trial_json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "worker/artifacts.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const fs::path kRepo = fs::path(__FILE__).parent_path().parent_path().parent_path();

TrialSpec ATrial() {
  auto spec = ParseSweepSpec((kRepo / "tests/testdata/tiny-study.yaml").string());
  EXPECT_TRUE(spec.ok()) << spec.status();
  return ExpandSweep(*spec).trials.back();
}

TEST(LeasedTrial, TheSpecOfTheLeasedIdIsRun) {
  const TrialSpec trial = ATrial();
  auto got = LeasedTrial(trial.id, TrialSpecJsonText(trial));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(CanonicalTrialText(*got), CanonicalTrialText(trial));
}

TEST(LeasedTrial, AnotherTrialsSpecOrADamagedOneIsRefused) {
  const TrialSpec trial = ATrial();
  // Changed in what it runs: its content hash is no longer the leased id.
  TrialSpec changed = trial;
  changed.phases[0].epochs += 1;
  auto other = LeasedTrial(trial.id, TrialSpecJsonText(changed));
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(other.status().message(),
              HasSubstr(absl::StrCat("the spec the lease carries is trial ", TrialId(changed))));
  // The right spec under another id.
  EXPECT_FALSE(LeasedTrial("0123456789abcdef0123456789abcdef", TrialSpecJsonText(trial)).ok());
  // Not JSON, JSON of the wrong shape, nothing at all.
  EXPECT_THAT(LeasedTrial(trial.id, "{\"id\": ").status().message(), HasSubstr("not JSON"));
  nlohmann::json broken = TrialSpecToJson(trial);
  broken["phases"] = "many";
  EXPECT_THAT(LeasedTrial(trial.id, broken.dump()).status().message(),
              HasSubstr("trial.phases: expected an array"));
  auto none = LeasedTrial(trial.id, "");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(none.status().message(), HasSubstr("has no spec"));
}

TEST(MemoryArtifactStore, KeepsModelsAsBytesAndLoadsThemBack) {
  auto backend = MakeBackend("reference");
  ASSERT_TRUE(backend.ok());
  ModelSpec spec;
  spec.input = {4};
  spec.layers = {LayerSpec::Dense(3, Activation::kRelu), LayerSpec::Dense(2, Activation::kSoftmax)};
  auto model = (*backend)->Create(spec, 7);
  ASSERT_TRUE(model.ok());
  MemoryArtifactStore store;
  auto sha = store.Put("p", **model);
  ASSERT_TRUE(sha.ok());
  EXPECT_EQ(*sha, Sha256Hex((*model)->SaveBytes()));
  std::string got_sha;
  auto back = store.Get("p", **backend, &got_sha);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(got_sha, *sha);
  EXPECT_EQ((*back)->SaveBytes(), (*model)->SaveBytes());
  EXPECT_EQ(store.Get("q", **backend, nullptr).status().code(), absl::StatusCode::kNotFound);
  store.Keep("damaged", "not a model");
  auto damaged = store.Get("damaged", **backend, nullptr);
  ASSERT_FALSE(damaged.ok());
  EXPECT_THAT(damaged.status().message(), HasSubstr("the source model damaged"));
}

}  // namespace
}  // namespace seedproof
