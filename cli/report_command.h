// seedproof report SOURCE: the verdict on every arm, from a results file, a
// `seedproof run` folder (its database: works while the run goes on), or a sweep
// id on a coordinator.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli/cluster_commands.h"
#include "coordinator/analysis.h"

namespace seedproof {

struct ReportCommandOptions {
  std::string source;
  std::string format = "table";      // table, json, md, html
  std::string out;                   // file; empty or "-": stdout
  std::optional<double> level;       // overrides the spec's analysis.level
  std::string correction;            // overrides the spec's analysis.correction
  std::vector<std::string> compare;  // "ARM,OTHER" pairs; "all": every pair of arms
  int resamples = 10000;
  ClientOptions client;  // when source is a sweep id
};

// Exit 0; 1 when the results cannot be had; 2 for bad options or a bad file.
int ReportCommand(const ReportCommandOptions& options);

// The analysis `seedproof run` prints when a study ends: the table on stdout,
// report.html and report.json into dir. Returns the HTML report's path.
absl::StatusOr<std::string> WriteRunReports(const StudyResults& study, const std::string& dir);

}  // namespace seedproof
