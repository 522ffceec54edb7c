// A study's analysis as the user reads it: a terminal table, JSON (the schema is
// docs/REPORTS.md), Markdown, or one self-contained HTML page with plots.
//
//   auto analysis = AnalyzeStudy(study, options);
//   std::string text = RenderReport(*analysis, ReportFormat::kTable, {.color = isatty(1)});
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "coordinator/analysis.h"
#include "nlohmann/json_fwd.hpp"

namespace seedproof {

enum class ReportFormat { kTable, kJson, kMarkdown, kHtml };
// "table", "json", "md", "html"; nullopt for anything else.
std::optional<ReportFormat> ParseReportFormat(std::string_view name);

struct ReportOptions {
  bool color = false;  // table: ANSI colours for the verdicts
};

std::string RenderReport(const StudyAnalysis& analysis, ReportFormat format,
                         const ReportOptions& options = {});

nlohmann::json ReportJson(const StudyAnalysis& analysis);
std::string ReportHtml(const StudyAnalysis& analysis);  // report_html.cc

// Words for people: "robust gain", "seed-dependent", ...
const char* VerdictWords(Verdict verdict);
// The arm's name, prefixed with its target when the study has several.
std::string ArmLabel(const StudyAnalysis& analysis, const ArmAnalysis& arm);
// "+0.54" percentage points of a fraction, with its sign.
std::string FormatPoints(double fraction, int decimals = 2);
// What the verdicts cover, in words: a line of the luck the seeds varied, and one
// of what the verdicts are conditional on (none when nothing is).
std::vector<std::string> CoverageLines(const Coverage& coverage);
// Sequential seeds: the design, the looks reached and the trials it saved, then a
// line per arm on where it stopped (or that it is open); none in a fixed design.
std::vector<std::string> SequentialLines(const StudyAnalysis& analysis);
// Where the luck comes from: a line per arm whose gains split into the source
// model's share and the seed's own (ArmAnalysis::variance_split), or one line on
// why this design cannot split them.
std::vector<std::string> VarianceSplitLines(const StudyAnalysis& analysis);

}  // namespace seedproof
