#include "experiments/results.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "data/content_hash.h"
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

// A JSON integer that fits T exactly: a float (2.5, or 3.0), a string or a
// number out of T's range is an error, never a truncation.
template <typename T>
T Integer(const nlohmann::json& value) {
  if (!value.is_number_integer()) {
    throw std::invalid_argument(absl::StrCat("expected an integer, got ", value.dump()));
  }
  const bool fits = value.is_number_unsigned() ? std::in_range<T>(value.get<uint64_t>())
                                               : std::in_range<T>(value.get<int64_t>());
  if (!fits) {
    throw std::invalid_argument(absl::StrCat(value.dump(), " is out of range [",
                                             std::numeric_limits<T>::min(), ", ",
                                             std::numeric_limits<T>::max(), "]"));
  }
  return value.get<T>();
}

EpochRecord ReadEpoch(const nlohmann::json& e, FieldReader& field) {
  EpochRecord rec;
  rec.phase = Integer<int>(field(e, "phase"));
  rec.epoch = Integer<int>(field(e, "epoch"));
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
  } catch (const std::invalid_argument& e) {
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
    r.seed_index = Integer<int>(field(j, "seed_index"));
    const std::string outcome = field(j, "outcome").get<std::string>();
    if (auto named = TrialOutcomeNamed(outcome)) {
      r.outcome = *named;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("result: outcome: unknown '", outcome, "'"));
    }
    r.diverged_epoch = Integer<int>(field(j, "diverged_epoch"));
    r.blocked_by = field(j, "blocked_by").get<std::string>();
    r.test_loss = field(j, "test_loss").get<double>();
    r.test_accuracy = field(j, "test_accuracy").get<double>();
    r.test_examples = Integer<int64_t>(field(j, "test_examples"));
    r.wall_seconds = field(j, "wall_seconds").get<double>();
    r.phase_seconds = field(j, "phase_seconds").get<std::vector<double>>();
    r.model_sha256 = field(j, "model_sha256").get<std::string>();
    const nlohmann::json& p = field(j, "provenance");
    const nlohmann::json& seeds = field(p, "seeds");
    r.provenance.seeds.init = Integer<uint64_t>(field(seeds, "init"));
    r.provenance.seeds.order = Integer<uint64_t>(field(seeds, "order"));
    r.provenance.seeds.subset = Integer<uint64_t>(field(seeds, "subset"));
    r.provenance.threads = Integer<int>(field(p, "threads"));
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
  } catch (const std::invalid_argument& e) {
    return absl::InvalidArgumentError(absl::StrCat("result: ", where, ": ", e.what()));
  }
  return r;
}

namespace {

bool Finite(double v, double low, double high) { return std::isfinite(v) && v >= low && v <= high; }

bool Sha256OrEmpty(const std::string& text) { return text.empty() || IsSha256Hex(text); }

}  // namespace

absl::Status CheckMeasuredValues(const TrialResult& r) {
  auto bad = [](const std::string& field, const std::string& got, const char* expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("result.", field, " is ", got, "; expected ", expected));
  };
  constexpr double kMaxLoss = 1e30;
  if (r.outcome != TrialOutcome::kCompleted && r.outcome != TrialOutcome::kDiverged) {
    return bad("outcome", TrialOutcomeName(r.outcome), "completed or diverged");
  }
  const int expected_diverged =
      r.outcome == TrialOutcome::kDiverged ? static_cast<int>(r.epochs.size()) + 1 : 0;
  if (r.diverged_epoch != expected_diverged) {
    return bad("diverged_epoch", absl::StrCat(r.diverged_epoch),
               r.outcome == TrialOutcome::kDiverged ? "the epoch after the last one recorded"
                                                    : "0 for a completed trial");
  }
  for (size_t i = 0; i < r.epochs.size(); ++i) {
    const EpochRecord& e = r.epochs[i];
    const std::string at = absl::StrCat("epochs[", i, "].");
    if (e.epoch != static_cast<int>(i) + 1) {
      return bad(at + "epoch", absl::StrCat(e.epoch), "epochs numbered 1, 2, ... in order");
    }
    if (e.phase < 0 || (i > 0 && e.phase < r.epochs[i - 1].phase)) {
      return bad(at + "phase", absl::StrCat(e.phase), "a phase index >= 0 that never decreases");
    }
    if (!Finite(e.train_loss, 0, kMaxLoss))
      return bad(at + "train_loss", absl::StrCat(e.train_loss), "a finite loss >= 0");
    if (!Finite(e.val_loss, 0, kMaxLoss))
      return bad(at + "val_loss", absl::StrCat(e.val_loss), "a finite loss >= 0");
    if (!Finite(e.train_accuracy, 0, 1))
      return bad(at + "train_accuracy", absl::StrCat(e.train_accuracy), "a share in [0, 1]");
    if (!Finite(e.val_accuracy, 0, 1))
      return bad(at + "val_accuracy", absl::StrCat(e.val_accuracy), "a share in [0, 1]");
    if (!Finite(e.seconds, 0, 1e9))
      return bad(at + "seconds", absl::StrCat(e.seconds), "a duration >= 0");
  }
  if (!Finite(r.test_loss, 0, kMaxLoss))
    return bad("test_loss", absl::StrCat(r.test_loss), "a finite loss >= 0");
  if (!Finite(r.test_accuracy, 0, 1))
    return bad("test_accuracy", absl::StrCat(r.test_accuracy), "a share in [0, 1]");
  if (r.test_examples < 0)
    return bad("test_examples", absl::StrCat(r.test_examples), "a count >= 0");
  if (!Finite(r.wall_seconds, 0, 1e9))
    return bad("wall_seconds", absl::StrCat(r.wall_seconds), "a duration >= 0");
  if (r.phase_seconds.size() > 1000)
    return bad("phase_seconds", absl::StrCat(r.phase_seconds.size(), " values"), "one per phase");
  for (double seconds : r.phase_seconds) {
    if (!Finite(seconds, 0, 1e9))
      return bad("phase_seconds", absl::StrCat(seconds), "durations >= 0");
  }
  if (r.provenance.threads < 1 || r.provenance.threads > 4096) {
    return bad("provenance.threads", absl::StrCat(r.provenance.threads), "1 to 4096");
  }
  if (r.provenance.cpu_isa.size() > 64)
    return bad("provenance.cpu_isa", absl::StrCat(r.provenance.cpu_isa.size(), " characters"),
               "at most 64");
  if (r.provenance.backend.size() > 256)
    return bad("provenance.backend", absl::StrCat(r.provenance.backend.size(), " characters"),
               "at most 256");
  if (!Sha256OrEmpty(r.model_sha256))
    return bad("model_sha256", "'" + r.model_sha256.substr(0, 80) + "'",
               "64 lowercase hex digits or empty");
  if (!Sha256OrEmpty(r.provenance.source_model_sha256))
    return bad("provenance.source_model_sha256",
               "'" + r.provenance.source_model_sha256.substr(0, 80) + "'",
               "64 lowercase hex digits or empty");
  if (!r.blocked_by.empty())
    return bad("blocked_by", "'" + r.blocked_by.substr(0, 80) + "'",
               "empty (a worker's trial ran)");
  return absl::OkStatus();
}

}  // namespace seedproof
