#include "cli/results_file.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "coordinator/store.h"
#include "experiments/results.h"
#include "experiments/study.h"
#include "experiments/sweep_parse.h"
#include "nlohmann/json.hpp"
#include "proto/seedproof.grpc.pb.h"
#include "worker/rpc_client.h"

namespace seedproof {
namespace {

// inputs_json: the study's datasets and imported model as stored
// (StudyInputsToJsonText), so the file is read again without them.
std::string HeaderLine(const std::string& name, const std::string& id, const std::string& spec_path,
                       const std::string& spec_text, const std::string& inputs_json,
                       const std::string& state, int trials) {
  nlohmann::json sweep = {{"name", name},   {"id", id},         {"spec", spec_path},
                          {"state", state}, {"trials", trials}, {"spec_text", spec_text}};
  if (nlohmann::json inputs = nlohmann::json::parse(inputs_json, nullptr, false);
      !inputs_json.empty() && !inputs.is_discarded()) {
    sweep["inputs"] = std::move(inputs);
  }
  // The arms and targets, for a reader that does not parse the spec.
  if (auto study = LoadStoredStudy(spec_text, spec_path, inputs_json); study.ok()) {
    const SweepSpec* spec = &study->spec;
    std::vector<std::string> arms, targets;
    for (const ArmSpec& arm : spec->arms) arms.push_back(arm.name);
    for (const TaskSpec& target : spec->targets) targets.push_back(target.name);
    sweep["arms"] = arms;
    sweep["targets"] = targets;
    sweep["seeds"] = spec->seeds.count;
  }
  return absl::StrCat(nlohmann::json({{"sweep", sweep}}).dump(), "\n");
}

}  // namespace

absl::StatusOr<std::string> FetchResultsFile(const std::shared_ptr<grpc::Channel>& channel,
                                             const RpcAuth& auth, const std::string& sweep_id) {
  auto studies = rpc::Studies::NewStub(channel);
  auto trials = rpc::Trials::NewStub(channel);
  rpc::SweepRef ref;
  ref.set_sweep_id(sweep_id);
  rpc::SweepStatus status;
  {
    grpc::ClientContext ctx;
    auth.Apply(ctx, 10000);
    if (auto s = FromGrpc(studies->Get(&ctx, ref, &status), "status"); !s.ok()) return s;
  }
  rpc::SpecReply spec;
  {
    grpc::ClientContext ctx;
    auth.Apply(ctx, 10000);
    if (auto s = FromGrpc(trials->SweepSpec(&ctx, ref, &spec), "spec"); !s.ok()) return s;
  }
  std::string text = HeaderLine(status.name(), sweep_id, spec.spec_path(), spec.spec_text(),
                                spec.inputs_json(), SweepStateWord(status.state()), status.total());
  grpc::ClientContext ctx;
  auth.Apply(ctx, 600000);
  auto reader = studies->Results(&ctx, ref);
  rpc::ResultLine line;
  while (reader->Read(&line)) absl::StrAppend(&text, line.json(), "\n");
  if (auto s = FromGrpc(reader->Finish(), "results"); !s.ok()) return s;
  return text;
}

absl::StatusOr<std::string> ResultsFileFromDatabase(const std::string& database_path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(database_path, ec)) {
    return absl::NotFoundError(absl::StrCat(database_path, ": no such database"));
  }
  // A reader: an older run's database is not upgraded behind its owner's back.
  auto store = Store::Open(database_path, {.migrate = false});
  if (!store.ok()) return store.status();
  auto sweeps = (*store)->ListSweeps();
  if (!sweeps.ok()) return sweeps.status();
  if (sweeps->empty()) {
    return absl::NotFoundError(absl::StrCat(database_path, ": holds no sweep yet"));
  }
  const SweepStatus& sweep = sweeps->back();
  auto spec = (*store)->SweepSpecText(sweep.sweep_id);
  if (!spec.ok()) return spec.status();
  auto results = (*store)->Results(sweep.sweep_id, BlockedTrials::kIncluded);
  if (!results.ok()) return results.status();
  std::string text = HeaderLine(sweep.name, sweep.sweep_id, spec->path, spec->text,
                                spec->datasets_json, SweepStateName(sweep.state), sweep.total);
  for (const TrialResult& result : *results) {
    absl::StrAppend(&text, TrialResultToJson(result).dump(), "\n");
  }
  return text;
}

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
  auto stored = LoadStoredStudy(sweep["spec_text"].get<std::string>(),
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

absl::Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) return absl::PermissionDeniedError(absl::StrCat(tmp, ": cannot write"));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot write: ", ec.message()));
  return absl::OkStatus();
}

}  // namespace seedproof
