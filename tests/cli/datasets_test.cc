// Users' own data through the command line, as a user runs it: the same images as
// IDX files, PNGs, NumPy arrays and a CSV give bit-identical studies; the shipped
// specs on scikit-learn's digits run; a damaged dataset stops a study before it
// starts, naming the file.
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/format_files.h"
#include "tests/testing/seedproof_cli.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing_support::CommandRun;
using testing_support::ReadJsonLines;
using testing_support::RunSeedproof;

const fs::path kRepo = fs::path(__FILE__).parent_path().parent_path().parent_path();

// Géron's tasks on the 2,000-image subset; DATASET is the dataset mapping.
constexpr char kFormatSpec[] = R"(name: formats
dataset: DATASET
source: {classes: [0, 1, 2, 3, 4, 7, 8, 9]}
target: {positive: [6], negative: [5], train_size: 100, subset: random}
model: {input: [28, 28, 1], layers: [{dense: 32}, {dense: 16}], activation: selu}
pretrain: {optimizer: sgd, lr: 0.01, epochs: 2, batch_size: 32}
transfer:
  reuse: [1, 2]
  schedules:
    geron: [{epochs: 2, train: head, lr: 0.01}, {epochs: 2, train: all, lr: 0.001}]
baseline: {scratch: {epochs: 4, lr: 0.01}}
seeds: {count: 3, source: 2}
)";

fs::path WriteSpec(const std::string& name, const std::string& text) {
  const fs::path path = fs::path(testing::TempDir()) / name;
  std::ofstream(path) << text;
  return path;
}

// Every result line of a run without its wall-clock times, in file order.
std::vector<nlohmann::json> Timeless(const fs::path& results) {
  std::vector<nlohmann::json> lines = ReadJsonLines(results);
  std::vector<nlohmann::json> out;
  for (size_t i = 1; i < lines.size(); ++i) {
    nlohmann::json j = lines[i];
    j.erase("wall_seconds");
    j.erase("phase_seconds");
    for (auto& e : j["epochs"]) e.erase("seconds");
    out.push_back(j);
  }
  return out;
}

TEST(SeedproofRun, TheSameImagesInEveryFormatGiveBitIdenticalResults) {
  const fs::path files = testing_support::FormatFiles();
  ASSERT_FALSE(files.empty());
  const std::string common = "name: fashion-subset, validation: 500";
  const std::map<std::string, std::string> datasets = {
      {"idx", absl::StrCat("{", common, ", format: idx, path: ", (files / "idx").string(), "}")},
      {"images",
       absl::StrCat("{", common, ", format: images, path: ", (files / "png").string(), "}")},
      {"npy", absl::StrCat("{", common, ", format: npy, path: ", (files / "npy").string(), "}")},
      {"npz",
       absl::StrCat("{", common, ", format: npz, path: ", (files / "data.npz").string(), "}")},
      {"csv", absl::StrCat("{", common, ", format: csv, path: ", (files / "csv").string(),
                           ", label: label, shape: [28, 28, 1], scale: 255}")},
  };
  std::map<std::string, std::vector<nlohmann::json>> results;
  for (const auto& [format, dataset] : datasets) {
    const fs::path spec = WriteSpec(absl::StrCat("formats_", format, ".yaml"),
                                    absl::StrReplaceAll(kFormatSpec, {{"DATASET", dataset}}));
    const fs::path out = fs::path(testing::TempDir()) / absl::StrCat("formats_run_", format);
    fs::remove_all(out);
    const CommandRun run =
        RunSeedproof(absl::StrCat("run ", spec.string(), " --out ", out.string()));
    ASSERT_EQ(run.exit_code, 0) << format << ": " << run.err;
    results[format] = Timeless(out / "results.jsonl");
  }
  const std::vector<nlohmann::json>& idx = results.at("idx");
  ASSERT_EQ(idx.size(), 2u + 3u + 6u);  // 2 source models, 3 baselines, 2 arms x 3 seeds
  for (const nlohmann::json& r : idx) {
    EXPECT_EQ(r["outcome"], "completed");
    EXPECT_EQ(r["provenance"]["dataset_sha256"].get<std::string>().size(), 64u);
  }
  // Identical down to the trial ids: the data is named by its content, not its files.
  for (const auto& [format, lines] : results) {
    ASSERT_EQ(lines.size(), idx.size()) << format;
    for (size_t i = 0; i < lines.size(); ++i)
      EXPECT_EQ(lines[i], idx[i]) << format << " line " << i;
  }
}

TEST(SeedproofRun, TheShippedDigitsStudiesRun) {
  for (const char* name : {"digits.yaml", "fashion-to-digits.yaml"}) {
    const fs::path out = fs::path(testing::TempDir()) / absl::StrCat("shipped_", name);
    fs::remove_all(out);
    const CommandRun run = RunSeedproof(absl::StrCat(
        "run ", (kRepo / "experiments/specs" / name).string(), " --out ", out.string()));
    ASSERT_EQ(run.exit_code, 0) << name << ": " << run.err;
    EXPECT_THAT(run.out, HasSubstr("8-vs-3"));
    // 16 seeds over 8 source models: analysed as clusters of 2 (the tests count
    // the 8 source models, enough for a verdict under Holm with 6 arms), and the
    // gains' spread split between source model and seed.
    EXPECT_THAT(run.out, HasSubstr("source model (8 of them; seed i reuses model i mod 8)"));
    EXPECT_THAT(run.out, HasSubstr("of a seed's gain variance"));
    EXPECT_THAT(run.out, Not(HasSubstr("too few")));
    const auto lines = ReadJsonLines(out / "results.jsonl");
    ASSERT_EQ(lines.size(), 1u + 8u + 16u + 96u) << name;  // source models, baselines, 6 arms
    std::map<std::string, std::string> dataset_of_kind;
    for (size_t i = 1; i < lines.size(); ++i) {
      EXPECT_EQ(lines[i]["outcome"], "completed") << name << " line " << i;
      dataset_of_kind[lines[i]["kind"]] = lines[i]["provenance"]["dataset_sha256"];
    }
    // Across datasets the source model trains on other data than its target.
    const bool across = std::string(name) == "fashion-to-digits.yaml";
    EXPECT_EQ(dataset_of_kind["pretrain"] != dataset_of_kind["transfer"], across) << name;
    EXPECT_EQ(dataset_of_kind["scratch"], dataset_of_kind["transfer"]) << name;
  }
}

TEST(SeedproofPlan, JsonNamesEachDatasetByItsContentHash) {
  const CommandRun run = RunSeedproof(
      absl::StrCat("plan --json ", (kRepo / "experiments/specs/fashion-to-digits.yaml").string()));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json plan = nlohmann::json::parse(run.out);
  ASSERT_EQ(plan["datasets"].size(), 2u);
  for (const nlohmann::json& d : plan["datasets"]) {
    EXPECT_EQ(d["sha256"].get<std::string>().size(), 64u) << d;
  }
  EXPECT_EQ(plan["datasets"][1]["name"], "digits");
  EXPECT_EQ(plan["datasets"][1]["format"], "csv");
  EXPECT_EQ(plan["datasets"][1]["example_shape"], nlohmann::json({8, 8, 1}));
}

TEST(SeedproofRun, ADamagedDatasetIsNamedAndNothingRuns) {
  const fs::path files = testing_support::FormatFiles();
  ASSERT_FALSE(files.empty());
  const fs::path csv = fs::path(testing::TempDir()) / "damaged_csv";
  fs::remove_all(csv);
  fs::create_directories(csv);
  fs::copy(files / "csv", csv, fs::copy_options::recursive);
  std::ofstream(csv / "test.csv", std::ios::app) << "3,1,2,three\n";
  const fs::path spec = WriteSpec(
      "damaged_csv.yaml",
      absl::StrReplaceAll(
          kFormatSpec, {{"DATASET", absl::StrCat("{name: mine, format: csv, path: ", csv.string(),
                                                 ", label: label, validation: 500}")}}));
  const fs::path out = fs::path(testing::TempDir()) / "damaged_csv_run";
  fs::remove_all(out);
  for (const std::string& command :
       {absl::StrCat("plan ", spec.string()),
        absl::StrCat("run ", spec.string(), " --out ", out.string())}) {
    const CommandRun run = RunSeedproof(command);
    EXPECT_NE(run.exit_code, 0) << command;
    EXPECT_THAT(run.err, HasSubstr(absl::StrCat((csv / "test.csv").string(), ":502:"))) << command;
    EXPECT_THAT(run.err, HasSubstr("dataset 'mine'")) << command;
    EXPECT_FALSE(fs::exists(out / "results.jsonl")) << command;
  }
}

}  // namespace
}  // namespace seedproof
