// The worker group's protocol: rank 0 leases trials and tells the other ranks what
// to run over MPI; they run it and send back what rank 0 reports. Internal to
// worker/. The messages, each an MPI broadcast from rank 0:
//
//   {"command": "trial", "items": [ITEM], "datasets": [SHA, ...]}, then 1 encoding
//       per dataset, then 1 model: every rank trains the trial on its part of each
//       batch (data parallel); rank 0 reports it;
//   {"command": "batch", "items": [ITEM, ...], "datasets": [SHA, ...]}, then 1
//       encoding per dataset, then 1 model per item: rank r runs items[r] alone,
//       then each rank's outcome and the model it made are gathered to rank 0;
//   {"command": "stop"}.
//
// ITEM = {"trial_id", "trial_json"}: the trial as its lease carried it, checked by
// every rank (LeasedTrial). A model is its file's bytes, "" where there is none.
// The datasets are the shipped ones (DatasetSpec::ship) the items read that rank 0
// has not sent before, as canonical encodings (data/dataset_blob.h); the other
// ranks read the rest from their paths, as rank 0 does.
#pragma once

#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/trial_result.h"
#include "proto/seedproof.pb.h"
#include "worker/mpi.h"
#include "worker/worker.h"

namespace seedproof {

// A dataset's encoding for the other ranks, by its SHA-256.
using GroupDatasets = std::vector<std::pair<std::string, std::string>>;

// Rank 0: every rank trains this trial (source_model: its source's bytes, or "").
absl::Status SendTrial(MpiGroup& group, const rpc::LeaseReply& lease,
                       const std::string& source_model, GroupDatasets datasets);
// Rank 0: rank r runs leases[r] alone, with source_models[r].
absl::Status SendBatch(MpiGroup& group, const std::vector<const rpc::LeaseReply*>& leases,
                       const std::vector<std::string>& source_models, GroupDatasets datasets);
// Rank 0, after SendBatch and its own trial: what each rank r > 0 ran, with the
// model file it made ("" when none); entry 0 is rank 0's empty place.
absl::StatusOr<std::vector<std::pair<absl::StatusOr<TrialResult>, std::string>>> GatherBatch(
    MpiGroup& group, size_t batch_size);
// Rank 0: the others stop (however rank 0's loop ended).
void SendStop(MpiGroup& group);

// Ranks 1..R-1: run what rank 0 sends until it says stop.
absl::Status RunFollower(const WorkerOptions& options, MpiGroup& group,
                         const std::atomic<bool>* stop);

}  // namespace seedproof
