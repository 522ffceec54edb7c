#include "cli/report_command.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/results_file.h"
#include "coordinator/report.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "seedproof: error: %s\n", std::string(status.message()).c_str());
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

// The results text and the name to give errors in it.
absl::StatusOr<std::pair<std::string, std::string>> LoadSource(const ReportCommandOptions& o) {
  const fs::path path = o.source;
  std::error_code ec;  // an unreadable or too-long path reads as "not there"
  if (fs::is_directory(path, ec)) {
    // A run folder: its database is current even while the run goes on.
    const fs::path database = path / "seedproof.db";
    if (fs::exists(database, ec)) {
      auto text = ResultsFileFromDatabase(database.string());
      if (!text.ok()) return text.status();
      return std::make_pair(*std::move(text), database.string());
    }
    const fs::path results = path / "results.jsonl";
    if (!fs::exists(results, ec)) {
      return absl::NotFoundError(absl::StrCat(
          o.source, ": neither seedproof.db nor results.jsonl; expected a `seedproof run` folder"));
    }
    ReportCommandOptions file = o;
    file.source = results.string();
    return LoadSource(file);
  }
  if (fs::exists(path, ec)) {
    std::ifstream in(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in && !in.eof()) return absl::NotFoundError(absl::StrCat(o.source, ": cannot read"));
    return std::make_pair(std::move(text), o.source);
  }
  // Otherwise a sweep id on a coordinator.
  if (o.source.empty() || o.source.find('/') != std::string::npos ||
      o.source.find('.') != std::string::npos) {
    return absl::NotFoundError(absl::StrCat(
        o.source,
        ": no such file or folder (expected a results file, a run folder or a sweep id)"));
  }
  auto token = ReadToken(o.client.token_file);
  if (!token.ok()) return token.status();
  auto channel = MakeChannel(o.client.coordinator, o.client.root_cert);
  if (!channel.ok()) return channel.status();
  auto text = FetchResultsFile(*channel, RpcAuth{*token}, o.source);
  if (!text.ok()) return text.status();
  return std::make_pair(*std::move(text), absl::StrCat("sweep ", o.source));
}

absl::StatusOr<AnalysisOptions> OptionsFor(const ReportCommandOptions& o, const SweepSpec& spec) {
  AnalysisOptions options = OptionsFromSpec(spec.analysis);
  options.resamples = o.resamples;
  if (o.level) options.level = *o.level;
  if (!o.correction.empty()) {
    bool known = false;
    for (Correction c : {Correction::kHolm, Correction::kBenjaminiHochberg, Correction::kNone}) {
      if (o.correction == CorrectionName(c)) {
        options.correction = c;
        known = true;
      }
    }
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat("--correction: unknown '", o.correction,
                                                     "'; expected one of: holm, bh, none"));
    }
  }
  for (const std::string& pair : o.compare) {
    if (pair == "all") {
      options.comparisons.emplace_back("*", "*");
      continue;
    }
    std::vector<std::string> arms = absl::StrSplit(pair, ',');
    if (arms.size() != 2 || arms[0].empty() || arms[1].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--compare: expected ARM,OTHER_ARM or all, got '", pair, "'"));
    }
    options.comparisons.emplace_back(arms[0], arms[1]);
  }
  return options;
}

}  // namespace

int ReportCommand(const ReportCommandOptions& o) {
  const auto format = ParseReportFormat(o.format);
  if (!format) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "--format: unknown '", o.format, "'; expected one of: table, json, md, html")));
  }
  auto source = LoadSource(o);
  if (!source.ok()) return Fail(source.status());
  auto study = ParseResultsFile(source->first, source->second);
  if (!study.ok()) return Fail(study.status());
  auto options = OptionsFor(o, study->spec);
  if (!options.ok()) return Fail(options.status());
  auto analysis = AnalyzeStudy(*study, *options);
  if (!analysis.ok()) return Fail(analysis.status());
  const bool to_stdout = o.out.empty() || o.out == "-";
  const std::string text =
      RenderReport(*analysis, *format, {.color = to_stdout && isatty(STDOUT_FILENO) != 0});
  if (to_stdout) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  if (auto s = WriteFileAtomically(o.out, text); !s.ok()) return Fail(s);
  std::fprintf(stderr, "report: %s\n", o.out.c_str());
  return 0;
}

absl::StatusOr<std::string> WriteRunReports(const StudyResults& study, const std::string& dir) {
  auto analysis = AnalyzeStudy(study, OptionsFromSpec(study.spec.analysis));
  if (!analysis.ok()) return analysis.status();
  const std::string table =
      RenderReport(*analysis, ReportFormat::kTable, {.color = isatty(STDOUT_FILENO) != 0});
  std::fwrite(table.data(), 1, table.size(), stdout);
  const std::string html = (fs::path(dir) / "report.html").string();
  if (auto s = WriteFileAtomically(html, RenderReport(*analysis, ReportFormat::kHtml)); !s.ok()) {
    return s;
  }
  if (auto s = WriteFileAtomically((fs::path(dir) / "report.json").string(),
                                   RenderReport(*analysis, ReportFormat::kJson));
      !s.ok()) {
    return s;
  }
  return html;
}

}  // namespace seedproof
