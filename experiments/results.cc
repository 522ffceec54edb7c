#include "experiments/results.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "experiments/enum_names.h"
#include "nlohmann/json.hpp"

namespace seedproof {
namespace {

constexpr std::pair<TrialOutcome, const char*> kTrialOutcomeNames[] = {
    {TrialOutcome::kCompleted, "completed"},
    {TrialOutcome::kDiverged, "diverged"},
    {TrialOutcome::kBlocked, "blocked"},
};

// Reads fields of one JSON object, remembering the last one asked for, so that
// a nlohmann exception can be reported with the field it came from.
class FieldReader {
 public:
  explicit FieldReader(std::string& where) : where_(where) {}
  const nlohmann::json& operator()(const nlohmann::json& object, const char* name) {
    where_ = name;
    return object.at(name);
  }

 private:
  std::string& where_;
};

EpochRecord ReadEpoch(const nlohmann::json& e, FieldReader& field) {
  EpochRecord rec;
  rec.phase = field(e, "phase").get<int>();
  rec.epoch = field(e, "epoch").get<int>();
  rec.train_loss = field(e, "train_loss").get<double>();
  rec.train_accuracy = field(e, "train_accuracy").get<double>();
  rec.val_loss = field(e, "val_loss").get<double>();
  rec.val_accuracy = field(e, "val_accuracy").get<double>();
  rec.seconds = field(e, "seconds").get<double>();
  return rec;
}

nlohmann::ordered_json EpochJson(const EpochRecord& e) {
  return {{"phase", e.phase},           {"epoch", e.epoch},
          {"train_loss", e.train_loss}, {"train_accuracy", e.train_accuracy},
          {"val_loss", e.val_loss},     {"val_accuracy", e.val_accuracy},
          {"seconds", e.seconds}};
}

}  // namespace

const char* TrialOutcomeName(TrialOutcome outcome) { return NameIn(kTrialOutcomeNames, outcome); }

std::optional<TrialOutcome> TrialOutcomeNamed(std::string_view text) {
  return ValueNamed(kTrialOutcomeNames, text);
}

TrialResult ResultFor(const TrialSpec& trial) {
  TrialResult result;
  result.trial_id = trial.id;
  result.kind = trial.kind;
  result.arm = trial.arm;
  result.target = trial.target;
  result.seed_index = trial.seed_index;
  result.provenance.seeds = trial.seeds;
  result.provenance.dataset_sha256 = trial.dataset.sha256;
  return result;
}

TrialResult BlockedResultFor(const TrialSpec& trial, const std::string& blocked_by) {
  TrialResult result = ResultFor(trial);
  result.outcome = TrialOutcome::kBlocked;
  result.blocked_by = blocked_by;
  return result;
}

nlohmann::json EpochRecordToJson(const EpochRecord& epoch) {
  return nlohmann::json(EpochJson(epoch));
}

absl::StatusOr<EpochRecord> EpochRecordFromJson(const nlohmann::json& json) {
  std::string where = "epoch";
  FieldReader field(where);
  try {
    return ReadEpoch(json, field);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("epoch: ", where, ": ", e.what()));
  }
}

nlohmann::json TrialResultToJson(const TrialResult& r) {
  nlohmann::ordered_json epochs = nlohmann::ordered_json::array();
  for (const EpochRecord& e : r.epochs) epochs.push_back(EpochJson(e));
  nlohmann::ordered_json j = {
      {"trial_id", r.trial_id},
      {"kind", TrialKindName(r.kind)},
      {"arm", r.arm},
      {"target", r.target},
      {"seed_index", r.seed_index},
      {"outcome", TrialOutcomeName(r.outcome)},
      {"diverged_epoch", r.diverged_epoch},
      {"blocked_by", r.blocked_by},
      {"test_loss", r.test_loss},
      {"test_accuracy", r.test_accuracy},
      {"test_examples", r.test_examples},
      {"wall_seconds", r.wall_seconds},
      {"phase_seconds", r.phase_seconds},
      {"model_sha256", r.model_sha256},
      {"provenance",
       {{"seeds",
         {{"init", r.provenance.seeds.init},
          {"order", r.provenance.seeds.order},
          {"subset", r.provenance.seeds.subset}}},
        {"threads", r.provenance.threads},
        {"cpu_isa", r.provenance.cpu_isa},
        {"backend", r.provenance.backend},
        {"source_model_sha256", r.provenance.source_model_sha256},
        {"dataset_sha256", r.provenance.dataset_sha256}}},
      {"epochs", epochs},
  };
  return nlohmann::json(j);
}

absl::StatusOr<TrialResult> TrialResultFromJson(const nlohmann::json& j) {
  TrialResult r;
  std::string where = "result";
  FieldReader field(where);
  try {
    r.trial_id = field(j, "trial_id").get<std::string>();
    const std::string kind = field(j, "kind").get<std::string>();
    if (auto named = TrialKindNamed(kind)) {
      r.kind = *named;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("result: kind: unknown '", kind, "'"));
    }
    r.arm = field(j, "arm").get<std::string>();
    r.target = field(j, "target").get<std::string>();
    r.seed_index = field(j, "seed_index").get<int>();
    const std::string outcome = field(j, "outcome").get<std::string>();
    if (auto named = TrialOutcomeNamed(outcome)) {
      r.outcome = *named;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("result: outcome: unknown '", outcome, "'"));
    }
    r.diverged_epoch = field(j, "diverged_epoch").get<int>();
    r.blocked_by = field(j, "blocked_by").get<std::string>();
    r.test_loss = field(j, "test_loss").get<double>();
    r.test_accuracy = field(j, "test_accuracy").get<double>();
    r.test_examples = field(j, "test_examples").get<int64_t>();
    r.wall_seconds = field(j, "wall_seconds").get<double>();
    r.phase_seconds = field(j, "phase_seconds").get<std::vector<double>>();
    r.model_sha256 = field(j, "model_sha256").get<std::string>();
    const nlohmann::json& p = field(j, "provenance");
    const nlohmann::json& seeds = field(p, "seeds");
    r.provenance.seeds.init = field(seeds, "init").get<uint64_t>();
    r.provenance.seeds.order = field(seeds, "order").get<uint64_t>();
    r.provenance.seeds.subset = field(seeds, "subset").get<uint64_t>();
    r.provenance.threads = field(p, "threads").get<int>();
    r.provenance.cpu_isa = field(p, "cpu_isa").get<std::string>();
    r.provenance.backend = field(p, "backend").get<std::string>();
    r.provenance.source_model_sha256 = field(p, "source_model_sha256").get<std::string>();
    // Results files written before datasets were hashed have none.
    if (p.contains("dataset_sha256")) {
      r.provenance.dataset_sha256 = field(p, "dataset_sha256").get<std::string>();
    }
    for (const nlohmann::json& e : field(j, "epochs")) r.epochs.push_back(ReadEpoch(e, field));
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("result: ", where, ": ", e.what()));
  }
  return r;
}

}  // namespace seedproof
