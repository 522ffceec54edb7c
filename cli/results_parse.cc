#include "cli/results_parse.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "experiments/results.h"
#include "experiments/study.h"
#include "nlohmann/json.hpp"

namespace seedproof {

absl::StatusOr<StudyResults> ParseResultsFile(const std::string& text, const std::string& source) {
  // Every line with its 1-based number; blank lines are skipped but counted.
  std::vector<std::pair<size_t, std::string>> lines;
  size_t number = 0;
  for (std::string& line : std::vector<std::string>(absl::StrSplit(text, '\n'))) {
    ++number;
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.emplace_back(number, line);
  }
  if (lines.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": empty; expected a results file (docs/RESULTS_FORMAT.md)"));
  }
  auto error = [&](size_t line, const std::string& message) {
    return absl::InvalidArgumentError(absl::StrCat(source, ":", line, ": ", message));
  };
  const size_t header_line = lines[0].first;
  const nlohmann::json header = nlohmann::json::parse(lines[0].second, nullptr, false);
  if (!header.is_object() || !header.contains("sweep") || !header["sweep"].is_object()) {
    return error(header_line, "expected the header {\"sweep\": {...}} of a results file");
  }
  const nlohmann::json& sweep = header["sweep"];
  for (const char* field : {"name", "id", "spec_text"}) {
    if (!sweep.contains(field) || !sweep[field].is_string()) {
      return error(header_line,
                   absl::StrCat("sweep.", field, ": missing or not a string",
                                std::string(field) == "spec_text"
                                    ? " (a file from before reports existed: fetch it again "
                                      "with `seedproof results`)"
                                    : ""));
    }
  }
  for (const char* field : {"spec", "state"}) {
    if (sweep.contains(field) && !sweep[field].is_string()) {
      return error(header_line, absl::StrCat("sweep.", field, ": expected a string"));
    }
  }
  if (sweep.contains("trials") &&
      (!sweep["trials"].is_number_integer() || sweep["trials"].get<int64_t>() < 0 ||
       sweep["trials"].get<int64_t>() > 1'000'000'000)) {
    return error(header_line, "sweep.trials: expected a trial count");
  }
  StudyResults study;
  study.sweep = sweep["name"].get<std::string>();
  study.sweep_id = sweep["id"].get<std::string>();
  const std::string spec_path = sweep.value("spec", std::string());
  // The datasets and imported model as submitted: the files need not be here.
  const std::string inputs = sweep.contains("inputs") ? sweep["inputs"].dump() : "";
  auto stored =
      LoadStoredStudy(sweep["spec_text"].get<std::string>(),
                      absl::StrCat(source, ": sweep.spec_text (", spec_path, ")"), inputs);
  if (!stored.ok()) {
    return error(header_line,
                 absl::StrCat("sweep.spec_text: ", std::string(stored.status().message())));
  }
  study.spec = std::move(stored->spec);
  study.trials_total = static_cast<int>(sweep.value("trials", int64_t{0}));
  study.finished = sweep.value("state", std::string("done")) != "running";
  for (size_t i = 1; i < lines.size(); ++i) {
    const nlohmann::json json = nlohmann::json::parse(lines[i].second, nullptr, false);
    if (!json.is_object()) return error(lines[i].first, "not a JSON object");
    auto result = TrialResultFromJson(json);
    if (!result.ok()) return error(lines[i].first, std::string(result.status().message()));
    study.results.push_back(*std::move(result));
  }
  return study;
}

}  // namespace seedproof
