// Where a worker's trials put and get source models. Internal to worker/.
//
// CoordinatorArtifactStore: pretrain models go up to the coordinator, addressed by
// SHA-256; transfer trials fetch their source by the hash their lease names. Models
// travel as bytes (Model::SaveBytes, Backend::LoadBytes): no file in between.
// MemoryArtifactStore: a group's other ranks keep the models rank 0 broadcasts,
// and the ones they make for rank 0 to upload, in memory.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "experiments/trial.h"
#include "proto/seedproof.grpc.pb.h"
#include "worker/rpc_client.h"

namespace seedproof {

class CoordinatorArtifactStore final : public ArtifactStore {
 public:
  CoordinatorArtifactStore(rpc::Trials::Stub& stub, const RpcAuth& auth)
      : stub_(stub), auth_(auth) {}

  // The attempt whose models Put uploads, and the source model Get may fetch:
  // the trial's (SourceKey), named by the lease's source_sha256 or, for an
  // imported one, by the trial's source_onnx.
  void BeginAttempt(int64_t attempt_id, const TrialSpec& trial,
                    const std::string& lease_source_sha256);

  absl::StatusOr<std::string> Put(const std::string& trial_id, const Model& model) override;
  // The leased source model; the last one loaded is kept and copied (consecutive
  // transfers mostly share a source).
  absl::StatusOr<std::unique_ptr<Model>> Get(const std::string& key, Backend& backend,
                                             std::string* sha256) override;

  // A model file's bytes for an attempt (the current one, or one a group's rank
  // ran); returns its SHA-256.
  absl::StatusOr<std::string> Upload(const std::string& bytes, int64_t attempt_id);
  // The leased source model's bytes, checked against its SHA-256. The last one is
  // kept: a group's rank 0 fetches it to broadcast, then loads it for its own part.
  absl::StatusOr<std::string> Download();

 private:
  rpc::Trials::Stub& stub_;
  const RpcAuth& auth_;
  int64_t attempt_id_ = 0;
  std::string source_key_, source_sha256_;
  std::string kept_sha256_, kept_bytes_;  // the last model downloaded
  std::string loaded_sha256_;             // and the last one loaded
  std::unique_ptr<Model> loaded_;
};

// The datasets a spec ships (DatasetSpec::ship), from the coordinator by content
// hash: downloaded in chunks, hashed as they come, and decoded piece by piece, so
// the encoding and the dataset are never both whole in memory. The worker's
// TrialCache keeps what this returns, once per process.
class CoordinatorDatasets final : public DatasetSource {
 public:
  CoordinatorDatasets(rpc::Trials::Stub& stub, const RpcAuth& auth) : stub_(stub), auth_(auth) {}

  absl::StatusOr<LoadedDataset> Fetch(const DatasetSpec& dataset) override;

 private:
  rpc::Trials::Stub& stub_;
  const RpcAuth& auth_;
};

// Datasets a group's rank 0 broadcast (their encodings), for the other ranks.
class MemoryDatasets final : public DatasetSource {
 public:
  void Keep(const std::string& sha256, std::string encoding);
  // The dataset, decoded from what was kept (and then forgotten: the trial cache
  // keeps the decoded dataset). NOT_FOUND when rank 0 sent none.
  absl::StatusOr<LoadedDataset> Fetch(const DatasetSpec& dataset) override;

 private:
  std::map<std::string, std::string> encodings_;  // by sha256
};

class MemoryArtifactStore final : public ArtifactStore {
 public:
  // Keeps a model file's bytes under `key` (a trial id, or an imported file's
  // SourceKey).
  void Keep(const std::string& key, std::string bytes);
  // The bytes of trial_id's model; "" when there is none.
  std::string BytesOf(const std::string& trial_id) const;

  absl::StatusOr<std::string> Put(const std::string& trial_id, const Model& model) override;
  absl::StatusOr<std::unique_ptr<Model>> Get(const std::string& key, Backend& backend,
                                             std::string* sha256) override;

 private:
  std::map<std::string, std::string> models_;  // by trial id
};

}  // namespace seedproof
