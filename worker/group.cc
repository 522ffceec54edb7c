#include "worker/group.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "backends/backend.h"
#include "experiments/results.h"
#include "nlohmann/json.hpp"
#include "worker/artifacts.h"
#include "worker/leased_trial.h"

namespace seedproof {
namespace {

nlohmann::json GroupItem(const rpc::LeaseReply& lease) {
  return {{"trial_id", lease.trial_id()}, {"trial_json", lease.trial_json()}};
}

// A trial's outcome as it travels to rank 0 in batch mode.
std::string PackOutcome(const absl::StatusOr<TrialResult>& result) {
  if (result.ok()) return nlohmann::json({{"result", TrialResultToJson(*result)}}).dump();
  return nlohmann::json({{"code", static_cast<int>(result.status().code())},
                         {"message", std::string(result.status().message())}})
      .dump();
}

absl::StatusOr<TrialResult> UnpackOutcome(const std::string& text) {
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_object() && json.contains("result")) return TrialResultFromJson(json["result"]);
  if (json.is_object() && json.contains("code") && json["code"].is_number_integer()) {
    return absl::Status(static_cast<absl::StatusCode>(json["code"].get<int>()),
                        json.value("message", std::string()));
  }
  return absl::InternalError("a rank sent no outcome");
}

}  // namespace

// The header, then each dataset's encoding.
absl::Status SendHeader(MpiGroup& group, const char* command, nlohmann::json items,
                        GroupDatasets datasets) {
  nlohmann::json shas = nlohmann::json::array();
  for (const auto& [sha, encoding] : datasets) shas.push_back(sha);
  std::string header =
      nlohmann::json({{"command", command}, {"items", std::move(items)}, {"datasets", shas}})
          .dump();
  if (auto s = group.Broadcast(header); !s.ok()) return s;
  for (auto& [sha, encoding] : datasets) {
    if (auto s = group.Broadcast(encoding); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status SendTrial(MpiGroup& group, const rpc::LeaseReply& lease,
                       const std::string& source_model, GroupDatasets datasets) {
  if (auto s = SendHeader(group, "trial", {GroupItem(lease)}, std::move(datasets)); !s.ok()) {
    return s;
  }
  std::string model = source_model;
  return group.Broadcast(model);
}

absl::Status SendBatch(MpiGroup& group, const std::vector<const rpc::LeaseReply*>& leases,
                       const std::vector<std::string>& source_models, GroupDatasets datasets) {
  nlohmann::json items = nlohmann::json::array();
  for (const rpc::LeaseReply* lease : leases) items.push_back(GroupItem(*lease));
  if (auto s = SendHeader(group, "batch", std::move(items), std::move(datasets)); !s.ok()) {
    return s;
  }
  for (std::string model : source_models) {
    if (auto s = group.Broadcast(model); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<absl::StatusOr<TrialResult>, std::string>>> GatherBatch(
    MpiGroup& group, size_t batch_size) {
  auto outcomes = group.Gather("");
  if (!outcomes.ok()) return outcomes.status();
  auto models = group.Gather("");
  if (!models.ok()) return models.status();
  std::vector<std::pair<absl::StatusOr<TrialResult>, std::string>> ran;
  ran.emplace_back(absl::UnknownError("rank 0's own"), "");
  for (size_t r = 1; r < batch_size; ++r) {
    ran.emplace_back(UnpackOutcome((*outcomes)[r]), std::move((*models)[r]));
  }
  return ran;
}

void SendStop(MpiGroup& group) {
  std::string stop_command = nlohmann::json({{"command", "stop"}}).dump();
  group.Broadcast(stop_command).IgnoreError();
}

absl::Status RunFollower(const WorkerOptions& options, MpiGroup& group,
                         const std::atomic<bool>* stop) {
  auto backend = MakeBackend(options.backend, {.threads = options.threads});
  if (!backend.ok()) return backend.status();
  MemoryArtifactStore artifacts;
  MemoryDatasets datasets;
  TrialCache cache;
  auto find_trial = [&](const nlohmann::json& item) -> absl::StatusOr<TrialSpec> {
    auto trial = LeasedTrial(item.value("trial_id", ""), item.value("trial_json", ""));
    // Rank 0 checked the same text: this rank cannot go on in step.
    if (!trial.ok()) {
      return absl::InternalError(
          absl::StrCat("rank ", group.rank(), ": ", trial.status().message()));
    }
    return trial;
  };
  for (;;) {
    std::string header;
    if (auto s = group.Broadcast(header); !s.ok()) return s;
    const nlohmann::json command = nlohmann::json::parse(header, nullptr, false);
    const std::string kind = command.is_object() ? command.value("command", "") : "";
    if (kind != "trial" && kind != "batch") break;
    const nlohmann::json& items = command["items"];
    for (const nlohmann::json& sha : command.value("datasets", nlohmann::json::array())) {
      std::string encoding;
      if (auto s = group.Broadcast(encoding); !s.ok()) return s;
      datasets.Keep(sha.get<std::string>(), std::move(encoding));
    }
    // This rank's item: the one trial, or items[rank] of a batch (none when short).
    const bool parallel = kind == "trial";
    const size_t mine = parallel ? 0 : static_cast<size_t>(group.rank());
    std::optional<TrialSpec> trial;
    for (size_t i = 0; i < items.size(); ++i) {
      std::string source_model;
      if (auto s = group.Broadcast(source_model); !s.ok()) return s;
      if (i != mine) continue;
      auto found = find_trial(items[i]);
      if (!found.ok()) return found.status();
      trial = *std::move(found);
      if (!source_model.empty()) {
        artifacts.Keep(SourceKey(*trial), std::move(source_model));
      }
    }
    absl::StatusOr<TrialResult> result = absl::NotFoundError("no trial for this rank");
    if (trial) {
      TrialContext ctx;
      ctx.backend = backend->get();
      ctx.artifacts = &artifacts;
      ctx.cache = &cache;
      ctx.datasets = &datasets;
      ctx.threads = options.threads;
      if (parallel) {
        ctx.reducer = &group.reducer();
        ctx.replica = group.rank();
        ctx.replicas = group.size();
        ctx.should_stop = [&] { return group.AnyTrue(stop && stop->load()); };
      } else {
        ctx.should_stop = [&] { return stop && stop->load(); };
      }
      result = RunTrial(*trial, ctx);
    }
    if (parallel) {
      // Rank 0 reports the trial.
      if (!result.ok() && result.status().code() != absl::StatusCode::kCancelled) {
        std::fprintf(stderr, "rank %d: %s\n", group.rank(),
                     std::string(result.status().message()).c_str());
      }
      continue;
    }
    // Batch: the outcome, and the model a pretrain trial made, go to rank 0.
    std::string model;
    if (result.ok() && !result->model_sha256.empty()) {
      model = artifacts.BytesOf(result->trial_id);
    }
    if (auto s = group.Gather(trial ? PackOutcome(result) : "").status(); !s.ok()) {
      return s;
    }
    if (auto s = group.Gather(model).status(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace seedproof
