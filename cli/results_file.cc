#include "cli/results_file.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
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
