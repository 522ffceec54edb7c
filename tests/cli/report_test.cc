// `seedproof report` as a user runs it: on a real small study (run once, shared
// by the tests), in every format, from a run folder, a results file and a
// running study; confirmation seeds end to end; bad input of every kind; and the
// HTML page in headless Chromium.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/seedproof_cli.h"

namespace {

namespace fs = std::filesystem;
using seedproof::testing_support::CommandRun;
using seedproof::testing_support::ReadJsonLines;
using seedproof::testing_support::RunSeedproof;
using ::testing::HasSubstr;
using ::testing::Not;

const fs::path kRepo = fs::path(__FILE__).parent_path().parent_path().parent_path();

// tests/testdata/tiny-study.yaml on seven seeds: with two arms under Holm the
// signed-rank test can reach p < 0.05 (2 x 2 / 2^7). Frozen heads on a barely
// pretrained source lose clearly. `extra` is appended (an analysis section).
std::string Spec(const std::string& extra = "") {
  std::ifstream in(fs::path(SEEDPROOF_TEST_DATA_DIR) / "tiny-study.yaml");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return absl::StrReplaceAll(text, {{"seeds: 4\n", absl::StrCat("seeds: 7\n", extra)}});
}

fs::path Temp(const std::string& name) { return fs::path(testing::TempDir()) / name; }

fs::path WriteFile(const std::string& name, const std::string& text) {
  const fs::path path = Temp(name);
  std::ofstream(path) << text;
  return path;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs the study once per CTest run: CTest runs each test in its own process,
// several at once, so the first one (under a file lock) runs it into a folder
// named by CTest's pid and the seedproof binary's build time; the others reuse it.
const fs::path& StudyFolder() {
  static const fs::path out = [] {
    const auto built = fs::last_write_time(seedproof::testing_support::kSeedproof);
    const fs::path dir =
        Temp(absl::StrCat("report_study_run_", getppid(), "_", built.time_since_epoch().count()));
    const int lock = open((dir.string() + ".lock").c_str(), O_CREAT | O_RDWR, 0644);
    flock(lock, LOCK_EX);
    if (!fs::exists(dir / "report.json")) {
      fs::remove_all(dir);
      const fs::path spec = WriteFile(absl::StrCat("report_study_", getpid(), ".yaml"), Spec());
      const CommandRun run =
          RunSeedproof(absl::StrCat("run ", spec.string(), " --out ", dir.string()));
      EXPECT_EQ(run.exit_code, 0) << run.err;
      // The run ends with the verdict table and where the report is.
      EXPECT_THAT(run.out, HasSubstr("reuse1/frozen/dense"));
      EXPECT_THAT(run.out, HasSubstr(absl::StrCat("report: ", (dir / "report.html").string())));
    }
    flock(lock, LOCK_UN);
    close(lock);
    return dir;
  }();
  return out;
}

nlohmann::json ReportJson(const std::string& source, const std::string& extra = "") {
  const CommandRun run = RunSeedproof(absl::StrCat("report ", source, " --format json ", extra));
  EXPECT_EQ(run.exit_code, 0) << run.err;
  return nlohmann::json::parse(run.out, nullptr, false);
}

TEST(SeedproofReport, JsonHasEveryFieldTheInterfacePromises) {
  const nlohmann::json report = ReportJson(StudyFolder().string());
  ASSERT_TRUE(report.is_object());
  ASSERT_EQ(report["arms"].size(), 2u);
  const std::set<std::string> verdicts = {"robust_gain", "robust_loss", "seed_dependent",
                                          "no_effect", "too_few_seeds"};
  for (const nlohmann::json& arm : report["arms"]) {
    for (const char* field : {"name", "verdict", "n_seeds", "mean_gain", "ci_low", "ci_high",
                              "p_improvement", "best_seed_gain"}) {
      EXPECT_TRUE(arm.contains(field)) << field;
    }
    EXPECT_TRUE(verdicts.contains(arm["verdict"].get<std::string>())) << arm["verdict"];
    EXPECT_EQ(arm["n_seeds"], 7);
    EXPECT_LE(arm["ci_low"].get<double>(), arm["mean_gain"].get<double>());
    EXPECT_GE(arm["ci_high"].get<double>(), arm["mean_gain"].get<double>());
    // The gains are the per-seed differences of the stored accuracies.
    double sum = 0;
    for (size_t i = 0; i < arm["gains"].size(); ++i) {
      EXPECT_NEAR(arm["gains"][i].get<double>(),
                  arm["scores"][i].get<double>() - arm["against_scores"][i].get<double>(), 1e-12);
      sum += arm["gains"][i].get<double>();
    }
    EXPECT_NEAR(sum / 7, arm["mean_gain"].get<double>(), 1e-12);
  }
  // A frozen head on a source trained for one epoch on 1,000 images loses on every seed.
  EXPECT_EQ(report["arms"][0]["verdict"], "robust_loss") << report["arms"][0]["reason"];
  EXPECT_EQ(report["complete"], true);
  EXPECT_EQ(report["level"], 0.95);
  EXPECT_EQ(report["correction"], "holm");
  EXPECT_EQ(report["targets"][0]["test_examples"], 2000);
  EXPECT_EQ(report["curves"].size(), 3u);  // baseline + 2 arms
  // What the verdicts cover: tiny-study.yaml pretrains one source model.
  EXPECT_EQ(report["coverage"]["source_models"], 1);
  EXPECT_EQ(report["coverage"]["varied"][0], "weight initialisation");
  EXPECT_THAT(report["coverage"]["conditional"].dump(), HasSubstr("one source model"));
  EXPECT_TRUE(report["arms"][0]["variance_split"].is_null());
  EXPECT_EQ(report["arms"][0]["source_models"], 0);
}

TEST(SeedproofReport, SameNumbersFromTheFolderTheResultsFileAndTheRunsOwnReport) {
  const nlohmann::json from_folder = ReportJson(StudyFolder().string());
  const nlohmann::json from_file = ReportJson((StudyFolder() / "results.jsonl").string());
  EXPECT_EQ(from_folder, from_file);
  EXPECT_EQ(from_folder, nlohmann::json::parse(ReadFile(StudyFolder() / "report.json")));
}

TEST(SeedproofReport, TableAndMarkdownNameEveryArmAndVerdict) {
  const CommandRun table = RunSeedproof(absl::StrCat("report ", StudyFolder().string()));
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("reuse2/frozen/dense"));
  EXPECT_THAT(table.out, HasSubstr("robust loss"));
  EXPECT_THAT(table.out, HasSubstr("What one seed would have claimed"));
  EXPECT_THAT(table.out, HasSubstr("The verdicts cover luck in: weight initialisation"));
  EXPECT_THAT(table.out, HasSubstr("They are conditional on "));
  // One source model: where the luck comes from cannot be split, and the report says why.
  EXPECT_THAT(table.out, HasSubstr("Where the luck comes from"));
  EXPECT_THAT(table.out, HasSubstr("not separable in this design: one source model"));
  EXPECT_THAT(table.out, Not(HasSubstr("\033[")));  // piped: no colours
  const CommandRun md =
      RunSeedproof(absl::StrCat("report ", StudyFolder().string(), " --format md"));
  ASSERT_EQ(md.exit_code, 0) << md.err;
  EXPECT_THAT(md.out, HasSubstr("| arm | verdict |"));
  EXPECT_THAT(md.out, HasSubstr("| `reuse1/frozen/dense` | **robust loss** |"));
  EXPECT_THAT(md.out, HasSubstr("says nothing about other source models"));
  EXPECT_THAT(md.out, HasSubstr("## Where the luck comes from"));
}

TEST(SeedproofReport, OptionsChangeTheAnalysisAsAsked) {
  const nlohmann::json none = ReportJson(StudyFolder().string(), "--correction none --level 0.9");
  EXPECT_EQ(none["correction"], "none");
  EXPECT_EQ(none["level"], 0.9);
  for (const nlohmann::json& arm : none["arms"]) {
    EXPECT_EQ(arm["wilcoxon_p_adjusted"], arm["wilcoxon_p"]);
  }
  const nlohmann::json compared =
      ReportJson(StudyFolder().string(), "--compare reuse2/frozen/dense,reuse1/frozen/dense");
  ASSERT_EQ(compared["comparisons"].size(), 1u);
  EXPECT_EQ(compared["comparisons"][0]["name"], "reuse2/frozen/dense");
  EXPECT_EQ(compared["comparisons"][0]["against"], "reuse1/frozen/dense");
  EXPECT_EQ(ReportJson(StudyFolder().string(), "--compare all")["comparisons"].size(), 1u);
}

TEST(SeedproofReport, WritesToAFileWithOut) {
  const fs::path out = Temp("report_out.md");
  fs::remove(out);
  const CommandRun run = RunSeedproof(
      absl::StrCat("report ", StudyFolder().string(), " --format md -o ", out.string()));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(ReadFile(out), HasSubstr("which gains survive the seeds"));
}

TEST(SeedproofReport, ARunningStudyIsReportedOnTheSeedsDoneSoFar) {
  // The results of a study still running: its header says so, and half its trials.
  const auto lines = ReadJsonLines(StudyFolder() / "results.jsonl");
  nlohmann::json header = lines[0];
  header["sweep"]["state"] = "running";
  std::string text = header.dump() + "\n";
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i]["kind"] == "pretrain" || lines[i]["seed_index"].get<int>() < 3) {
      text += lines[i].dump() + "\n";
    }
  }
  const fs::path partial = WriteFile("report_partial.jsonl", text);
  const nlohmann::json report = ReportJson(partial.string());
  EXPECT_EQ(report["complete"], false);
  EXPECT_EQ(report["arms"][0]["n_seeds"], 3);
  EXPECT_EQ(report["arms"][0]["verdict"], "too_few_seeds");
  const CommandRun table = RunSeedproof(absl::StrCat("report ", partial.string()));
  EXPECT_THAT(table.out, HasSubstr("RUNNING: "));
  EXPECT_THAT(table.out, HasSubstr("on the seeds done so far"));
}

TEST(SeedproofReport, HtmlRendersInHeadlessChromiumWithoutErrors) {
  const fs::path page = Temp("report_page.html");
  const CommandRun run = RunSeedproof(
      absl::StrCat("report ", StudyFolder().string(), " --format html -o ", page.string()));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::string html = ReadFile(page);
  EXPECT_THAT(html, HasSubstr("<svg"));
  // The frozen arms lose tens of points: the gain axis stays linear near zero (the
  // shaded part, a readable share of the plot) and is logarithmic beyond.
  EXPECT_THAT(html, HasSubstr("logarithmic beyond"));
  std::smatch linear;
  ASSERT_TRUE(std::regex_search(html, linear,
                                std::regex("<rect x=\"[0-9.]+\" y=\"[0-9]+\" width=\"([0-9.]+)\" "
                                           "height=\"[0-9]+\" class=\"linear\"/>")));
  EXPECT_GT(std::stod(linear[1]), 150.0) << "of a 630-pixel axis";
  EXPECT_THAT(html, Not(HasSubstr("http://")));
  EXPECT_THAT(html, Not(HasSubstr("https://")));
  // The screenshot is kept next to the build for people to look at.
  const fs::path screenshot = fs::path(SEEDPROOF_BINARY_DIR) / "report_screenshot.png";
  const std::string command =
      absl::StrCat("/usr/bin/python3 ", (kRepo / "tests/report/check_html.py").string(),
                   " --full-page --expect 'robust loss' --expect 'reuse2/frozen/dense' --expect "
                   "'Learning curves' --expect 'What one seed would have claimed' --expect "
                   "'The verdicts cover luck in' --expect 'Where the luck comes from' ",
                   page.string(), " ", screenshot.string(), " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = pclose(pipe);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  EXPECT_THAT(output, HasSubstr("rendered, no console errors"));
  EXPECT_GT(fs::file_size(screenshot), 10000u);
}

TEST(SeedproofReport, ConfirmationSeedsRunTheBestArmAgainOnFreshSeeds) {
  const fs::path spec =
      WriteFile("report_confirm.yaml", Spec("analysis: {confirmation: {seeds: 6, arms: best}}\n"));
  const fs::path dir = Temp("report_confirm_run");
  fs::remove_all(dir);
  const CommandRun run = RunSeedproof(absl::StrCat("run ", spec.string(), " --out ", dir.string()));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto lines = ReadJsonLines(dir / "results.jsonl");
  // 1 pretrain + 7 x (baseline + 2 arms) exploration + 6 x (baseline + the best arm).
  ASSERT_EQ(lines.size(), 1u + 1u + 21u + 12u);
  std::set<std::string> confirmed_arms;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i]["seed_index"].get<int>() >= 7) {
      EXPECT_LT(lines[i]["seed_index"].get<int>(), 13);
      confirmed_arms.insert(lines[i]["arm"].get<std::string>());
    }
  }
  EXPECT_EQ(confirmed_arms.size(), 2u);  // the baseline and one arm
  const nlohmann::json report = ReportJson(dir.string());
  int with_confirmation = 0;
  for (const nlohmann::json& arm : report["arms"]) {
    EXPECT_EQ(arm["n_seeds"], 7) << "exploration seeds only";
    if (arm["confirmation"].is_null()) continue;
    ++with_confirmation;
    EXPECT_TRUE(confirmed_arms.contains(arm["name"].get<std::string>()));
    EXPECT_EQ(arm["confirmation"]["n_seeds"], 6);
    EXPECT_EQ(arm["confirmation"]["seeds"][0], 7);
    // A loss is not a replicated gain.
    EXPECT_EQ(arm["confirmation"]["replicated"], arm["confirmation"]["verdict"] == "robust_gain");
  }
  EXPECT_EQ(with_confirmation, 1);
  EXPECT_THAT(RunSeedproof(absl::StrCat("report ", dir.string())).out,
              HasSubstr("Confirmation on fresh seeds 7..12"));
}

// ---- Bad input ----------------------------------------------------------------

TEST(SeedproofReportBadInput, MissingSourceIsNamed) {
  const CommandRun run = RunSeedproof("report /nonexistent/results.jsonl");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("/nonexistent/results.jsonl: no such file or folder"));
  const fs::path empty_dir = Temp("report_empty_dir");
  fs::create_directories(empty_dir);
  const CommandRun folder = RunSeedproof(absl::StrCat("report ", empty_dir.string()));
  EXPECT_EQ(folder.exit_code, 1);
  EXPECT_THAT(folder.err, HasSubstr("neither seedproof.db nor results.jsonl"));
}

TEST(SeedproofReportBadInput, DamagedResultsFilesNameTheLine) {
  const auto lines = ReadJsonLines(StudyFolder() / "results.jsonl");
  struct Case {
    std::string name, text, error;
  };
  nlohmann::json no_spec = lines[0];
  no_spec["sweep"].erase("spec_text");
  nlohmann::json bad_spec = lines[0];
  bad_spec["sweep"]["spec_text"] = "name: x\nseeds: zero\n";
  nlohmann::json trials_text = lines[0];
  trials_text["sweep"]["trials"] = "x";
  nlohmann::json state_number = lines[0];
  state_number["sweep"]["state"] = 5;
  nlohmann::json spec_list = lines[0];
  spec_list["sweep"]["spec"] = nlohmann::json::array();
  nlohmann::json no_accuracy = lines[2];
  no_accuracy.erase("test_accuracy");
  const std::string header = lines[0].dump() + "\n";
  const std::vector<Case> cases = {
      {"empty", "", "empty; expected a results file"},
      {"not_json", "{oops\n", ":1: expected the header {\"sweep\": {...}}"},
      {"no_spec", no_spec.dump() + "\n", ":1: sweep.spec_text: missing or not a string"},
      {"bad_spec", bad_spec.dump() + "\n", ":1: sweep.spec_text: "},
      {"torn_line", header + lines[1].dump() + "\n{\"trial_id\": \"ab", ":3: not a JSON object"},
      {"missing_field", header + lines[1].dump() + "\n" + no_accuracy.dump() + "\n",
       ":3: result: test_accuracy"},
      // Blank lines are skipped, but the line numbers are the file's.
      {"blank_lines", header + "\n\n" + lines[1].dump() + "\n[1, 2]\n", ":5: not a JSON object"},
      {"trials_text", trials_text.dump() + "\n", ":1: sweep.trials: expected a trial count"},
      {"state_number", state_number.dump() + "\n", ":1: sweep.state: expected a string"},
      {"spec_list", spec_list.dump() + "\n", ":1: sweep.spec: expected a string"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path file = WriteFile(absl::StrCat("report_bad_", c.name, ".jsonl"), c.text);
    const CommandRun run = RunSeedproof(absl::StrCat("report ", file.string()));
    EXPECT_EQ(run.exit_code, 2) << run.err;
    EXPECT_THAT(run.err, HasSubstr(file.string()));
    EXPECT_THAT(run.err, HasSubstr(c.error));
  }
}

TEST(SeedproofReportBadInput, BadOptionsAreNamed) {
  const std::string source = StudyFolder().string();
  struct Case {
    std::string args, error;
  };
  const std::vector<Case> cases = {
      {"--format pdf", "--format: unknown 'pdf'; expected one of: table, json, md, html"},
      {"--correction bonferroni",
       "--correction: unknown 'bonferroni'; expected one of: holm, bh, none"},
      {"--compare reuse1/frozen/dense", "--compare: expected ARM,OTHER_ARM or all"},
      {"--compare reuse1/frozen/dense,reuse9/x", "compare: the study has no arm 'reuse9/x'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args);
    const CommandRun run = RunSeedproof(absl::StrCat("report ", source, " ", c.args));
    EXPECT_EQ(run.exit_code, 2) << run.err;
    EXPECT_THAT(run.err, HasSubstr(c.error));
  }
  const CommandRun level = RunSeedproof(absl::StrCat("report ", source, " --level 95"));
  EXPECT_NE(level.exit_code, 0);
  EXPECT_THAT(level.err, HasSubstr("--level"));
}

}  // namespace
