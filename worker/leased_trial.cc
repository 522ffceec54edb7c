#include "worker/leased_trial.h"

#include "absl/strings/str_cat.h"
#include "experiments/plan.h"
#include "experiments/trial_json.h"

namespace seedproof {

absl::StatusOr<TrialSpec> LeasedTrial(const std::string& trial_id, const std::string& trial_json) {
  if (trial_json.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("trial ", trial_id,
                     ": the coordinator has no spec for it (a sweep stored by an older "
                     "seedproof whose spec this one cannot expand)"));
  }
  auto trial = TrialSpecFromJsonText(trial_json);
  if (!trial.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("trial ", trial_id, ": its spec: ", trial.status().message()));
  }
  if (const std::string id = TrialId(*trial); id != trial_id || trial->id != trial_id) {
    return absl::InvalidArgumentError(absl::StrCat("trial ", trial_id,
                                                   ": the spec the lease carries is trial ", id,
                                                   " (it says ", trial->id, ")"));
  }
  return trial;
}

}  // namespace seedproof
