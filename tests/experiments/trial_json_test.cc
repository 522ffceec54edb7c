// A trial's spec as the lease carries it: every trial of every shipped spec comes
// back from JSON as the same trial (same canonical text, same id), and damaged
// JSON is refused with the field named.
#include "experiments/trial_json.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "experiments/plan.h"
#include "experiments/study.h"
#include "experiments/sweep_parse.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace seedproof {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const fs::path kRepo = fs::path(__FILE__).parent_path().parent_path().parent_path();

std::vector<TrialSpec> TrialsOf(const fs::path& path) {
  auto spec = ParseSweepSpec(path.string());
  EXPECT_TRUE(spec.ok()) << spec.status();
  if (!spec.ok()) return {};
  Plan plan = ExpandSweep(*spec);
  std::vector<TrialSpec> trials = plan.trials;
  trials.insert(trials.end(), plan.later_candidates.begin(),
                plan.later_candidates.end());
  return trials;
}

TEST(TrialSpecJson, EveryShippedTrialRoundTripsToTheSameId) {
  int checked = 0;
  for (const fs::path& spec :
       {kRepo / "experiments/specs/geron.yaml", kRepo / "experiments/specs/geron-cnn.yaml",
        kRepo / "experiments/specs/change-the-classes.yaml",
        kRepo / "tests/testdata/tiny-study.yaml"}) {
    for (const TrialSpec& trial : TrialsOf(spec)) {
      const nlohmann::json json = TrialSpecToJson(trial);
      // Through text, as it is stored and sent.
      auto back = TrialSpecFromJson(nlohmann::json::parse(json.dump()));
      ASSERT_TRUE(back.ok()) << spec << " " << trial.id << ": " << back.status();
      EXPECT_EQ(CanonicalTrialText(*back), CanonicalTrialText(trial)) << spec << " " << trial.id;
      EXPECT_EQ(TrialId(*back), trial.id);
      EXPECT_EQ(back->id, trial.id);
      EXPECT_EQ(TrialSpecToJson(*back), json);
      ++checked;
    }
  }
  EXPECT_GT(checked, 340 + 20);  // geron alone has 340
}

// As the coordinator expands them: datasets read, named by their content hashes.
TEST(TrialSpecJson, TrialsOfLoadedStudiesRoundTripWithTheirDatasets) {
  int checked = 0;
  for (const char* name : {"digits.yaml", "fashion-to-digits.yaml"}) {
    auto file = std::ifstream(kRepo / "experiments/specs" / name);
    const std::string text((std::istreambuf_iterator<char>(file)), {});
    auto study = LoadStudy(text, name);
    ASSERT_TRUE(study.ok()) << name << ": " << study.status();
    for (const TrialSpec& trial : study->plan.trials) {
      ASSERT_EQ(trial.dataset.sha256.size(), 64u);
      auto back = TrialSpecFromJsonText(TrialSpecToJson(trial).dump());
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(TrialId(*back), trial.id);
      EXPECT_EQ(back->dataset.sha256, trial.dataset.sha256);
      EXPECT_EQ(back->dataset.path, trial.dataset.path);
      EXPECT_EQ(back->dataset.format, trial.dataset.format);
      EXPECT_EQ(back->dataset.csv_shape, trial.dataset.csv_shape);
      EXPECT_EQ(back->dataset.scale, trial.dataset.scale);
      EXPECT_EQ(back->task.resize_from, trial.task.resize_from);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 2 * (8 + 16 + 6 * 16));  // digits and fashion-to-digits: source models, baselines, arms
}

// A trial stored by a coordinator from before datasets were hashed (a Géron
// transfer trial, as it is in such a database) still reads, and still hashes to
// the id it was stored under: a study in progress resumes after the upgrade.
TEST(TrialSpecJson, ATrialStoredBeforeDatasetsWereHashedKeepsItsId) {
  std::ifstream file(kRepo / "tests/testdata/trial-before-datasets.json");
  const std::string text((std::istreambuf_iterator<char>(file)), {});
  auto trial = TrialSpecFromJsonText(text);
  ASSERT_TRUE(trial.ok()) << trial.status();
  EXPECT_EQ(trial->id, "723fba1668d415c1677a4f61f7c1e580");
  EXPECT_EQ(TrialId(*trial), trial->id);
  EXPECT_EQ(trial->dataset.name, "fashion-mnist");
  EXPECT_EQ(trial->dataset.format, DatasetFormat::kIdx);
  EXPECT_TRUE(trial->dataset.path.empty());
  EXPECT_TRUE(trial->dataset.sha256.empty());
  EXPECT_EQ(trial->task.dataset, "fashion-mnist");
}

TEST(TrialSpecJson, ADeclaredResizeAndFloatsSurviveExactly) {
  TrialSpec trial;
  trial.kind = TrialKind::kTransfer;
  trial.task.resize_from = std::vector<int64_t>{8, 8, 1};
  trial.seeds = {.init = ~uint64_t{0}, .order = 1, .subset = uint64_t{1} << 63};
  PhaseSpec phase;
  phase.optimizer.learning_rate = 0.1f + 1e-8f;
  phase.optimizer.kind = OptimizerKind::kAdam;
  trial.phases = {phase};
  trial.head = {.kind = HeadSpec::Kind::kLinearSvm, .c = 0.1};
  auto back = TrialSpecFromJson(nlohmann::json::parse(TrialSpecToJson(trial).dump()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(CanonicalTrialText(*back), CanonicalTrialText(trial));
  EXPECT_EQ(back->task.resize_from, trial.task.resize_from);
  EXPECT_EQ(back->seeds.init, ~uint64_t{0});
  EXPECT_EQ(back->phases[0].optimizer.learning_rate, phase.optimizer.learning_rate);
}

TEST(TrialSpecJson, DamagedSpecsNameTheField) {
  TrialSpec trial = TrialsOf(kRepo / "tests/testdata/tiny-study.yaml").back();
  const nlohmann::json good = TrialSpecToJson(trial);
  const auto refused = [&](const std::function<void(nlohmann::json&)>& damage) {
    nlohmann::json bad = good;
    damage(bad);
    auto decoded = TrialSpecFromJson(bad);
    EXPECT_FALSE(decoded.ok()) << bad.dump();
    return decoded.ok() ? std::string() : std::string(decoded.status().message());
  };
  EXPECT_THAT(refused([](auto& j) { j.erase("phases"); }), HasSubstr("trial.phases: missing"));
  EXPECT_THAT(refused([](auto& j) { j["kind"] = 9; }),
              HasSubstr("trial.kind: 9 is not a trial kind"));
  EXPECT_THAT(refused([](auto& j) { j["seed_index"] = int64_t{1} << 40; }),
              HasSubstr("trial.seed_index: expected an integer in range"));
  EXPECT_THAT(refused([](auto& j) { j["seeds"]["init"] = -1; }),
              HasSubstr("trial.seeds.init: expected an integer in range"));
  EXPECT_THAT(refused([](auto& j) { j["keep_layers"] = 1.5; }),
              HasSubstr("trial.keep_layers: expected an integer in range"));
  EXPECT_THAT(refused([](auto& j) { j["model"]["layers"][0]["activation"] = 0; }),
              HasSubstr("trial.model.layers[0].activation: 0 is not an activation"));
  EXPECT_THAT(refused([](auto& j) { j["phases"][0]["optimizer"]["learning_rate"] = "fast"; }),
              HasSubstr("trial.phases[0].optimizer.learning_rate: expected a number"));
  EXPECT_THAT(refused([](auto& j) {
                j["task"]["classes"] = {1, "x"};
              }),
              HasSubstr("trial.task.classes: expected an array of integers"));
  EXPECT_THAT(refused([](auto& j) { j["head"] = 3; }), HasSubstr("trial.head: expected an object"));
  EXPECT_FALSE(TrialSpecFromJson(nlohmann::json::array()).ok());
  EXPECT_THAT(refused([](auto& j) { j["dataset"]["format"] = "parquet"; }),
              HasSubstr("trial.dataset.format: 'parquet' is not a dataset format"));
  EXPECT_THAT(refused([](auto& j) { j["dataset"]["arrays"] = {"x", "y"}; }),
              HasSubstr("trial.dataset.arrays: expected 4 names"));
  EXPECT_THAT(refused([](auto& j) { j["dataset"]["csv"]["label_index"] = "last"; }),
              HasSubstr("trial.dataset.csv.label_index: expected an integer"));
}

}  // namespace
}  // namespace seedproof
