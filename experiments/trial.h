// The trial procedure: trial spec + backend + gradient reducer + artifacts → result.
// A pure function of (trial, seed streams, thread count): the same inputs give
// bit-identical results. It knows nothing of gRPC, MPI or SQLite.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backends/backend.h"
#include "data/load.h"
#include "data/task_data.h"
#include "experiments/sweep.h"
#include "experiments/trial_result.h"

namespace seedproof {

// Source models by SourceKey: the id of the pretrain trial that made them, or
// "onnx:" and the SHA-256 of the ONNX file they are imported from.
class ArtifactStore {
 public:
  virtual ~ArtifactStore() = default;
  // Stores the model; returns its content hash (SHA-256 of the model file, hex).
  virtual absl::StatusOr<std::string> Put(const std::string& trial_id, const Model& model) = 0;
  // The source model `key` names, loaded by LoadSourceModel; *sha256 receives the
  // hash of the file it was loaded from.
  virtual absl::StatusOr<std::unique_ptr<Model>> Get(const std::string& key, Backend& backend,
                                                     std::string* sha256) = 0;
};

// A source model from its file's bytes: seedproof's model file, or for a key
// starting "onnx:" an ONNX file, imported (onnx_io/MakeOnnxModel). `name` is for
// messages.
absl::StatusOr<std::unique_ptr<Model>> LoadSourceModel(Backend& backend, const std::string& key,
                                                       const std::string& bytes,
                                                       const std::string& name);

// Model files in a folder, named by SourceKey.
class DirectoryArtifactStore final : public ArtifactStore {
 public:
  explicit DirectoryArtifactStore(std::string dir) : dir_(std::move(dir)) {}
  absl::StatusOr<std::string> Put(const std::string& trial_id, const Model& model) override;
  absl::StatusOr<std::unique_ptr<Model>> Get(const std::string& key, Backend& backend,
                                             std::string* sha256) override;
  // Writes a source model's file as it came (an imported ONNX file) under `key`.
  absl::Status Keep(const std::string& key, const std::string& bytes);
  std::string PathOf(const std::string& key) const;

 private:
  std::string dir_;
};

// Datasets by content hash from elsewhere (the coordinator, or a worker group's
// rank 0), for specs that ship them (DatasetSpec::ship).
class DatasetSource {
 public:
  virtual ~DatasetSource() = default;
  // The dataset, decoded and checked against dataset.sha256 (data/load.h).
  virtual absl::StatusOr<LoadedDataset> Fetch(const DatasetSpec& dataset) = 0;
};

// What trials in one process share: each dataset, decoded once (by content hash),
// task splits, and the outputs of frozen prefixes (keyed by source model hash,
// prefix depth and data view), so a frozen phase costs only the trainable top.
// Thread-safe.
class TrialCache {
 public:
  // The dataset, read from its path and checked against its hash, or for a shipped
  // dataset fetched from `source`. Decoded once per process.
  absl::StatusOr<std::shared_ptr<const LoadedDataset>> Data(const DatasetSpec& spec,
                                                            DatasetSource* source = nullptr);
  absl::StatusOr<std::shared_ptr<const TaskSplits>> Splits(const DatasetSpec& dataset,
                                                           const TaskSpec& task,
                                                           uint64_t subset_seed,
                                                           const Shape& model_input,
                                                           DatasetSource* source = nullptr);
  // The prefix outputs for `key`, computed by `compute` the first time.
  absl::StatusOr<std::shared_ptr<const TaskSplits>> Features(
      const std::string& key, const std::function<absl::StatusOr<TaskSplits>()>& compute);
  int64_t feature_hits() const { return feature_hits_; }
  int64_t feature_misses() const { return feature_misses_; }

 private:
  // The entry of `key` in `entries`, built by `build` the first time. Callers
  // asking while it is being built wait for it instead of building it again (the
  // workers of one process share this cache); a failure is not kept. `built` says
  // whether this call built it.
  template <typename T, typename Build>
  absl::StatusOr<std::shared_ptr<const T>> FindOrBuild(
      std::map<std::string, std::shared_ptr<const T>>& entries, const std::string& key,
      const Build& build, bool* built);

  std::mutex mu_;
  std::condition_variable ready_;  // an entry was built, or its build failed
  std::set<std::string> building_;
  std::map<std::string, std::shared_ptr<const LoadedDataset>> data_;
  std::map<std::string, std::shared_ptr<const TaskSplits>> splits_;
  std::map<std::string, std::shared_ptr<const TaskSplits>> features_;
  int64_t feature_hits_ = 0, feature_misses_ = 0;
};

struct TrialContext {
  Backend* backend = nullptr;
  GradientReducer* reducer = nullptr;  // nullptr: local
  ArtifactStore* artifacts = nullptr;
  TrialCache* cache = nullptr;
  DatasetSource* datasets = nullptr;  // nullptr: every dataset is read from its path
  int threads = 1;
  // Train frozen phases on cached prefix outputs. Off only to measure the cache.
  bool feature_cache = true;
  // Called after each epoch (progress, metrics streaming); may be empty.
  std::function<void(const EpochRecord&)> on_epoch;
  // Called after each training step with its wall time (metrics); may be empty.
  std::function<void(double)> on_step;
  // Data parallelism (EpochOptions): this process trains part `replica` of
  // `replicas` of every global batch; `reducer` sums across the replicas.
  int replica = 0, replicas = 1;
  // Asked before every epoch; true ends the trial with CANCELLED (a worker
  // stopping, or a lease the coordinator took back). May be empty.
  std::function<bool()> should_stop;
  // When set, receives the trained model of a trial that completed (`seedproof
  // model export` takes a trial's model away this way).
  std::unique_ptr<Model>* trained_model = nullptr;
};

// Trains with context.replicas > 1 only when SplitsAcrossReplicas(trial); else
// UNIMPLEMENTED.
absl::StatusOr<TrialResult> RunTrial(const TrialSpec& trial, TrialContext& context);

// Whether the trial's batches can be split across replicas and give what one
// process gives: not with dropout (masks are drawn per position in the local
// batch) nor batch normalisation (statistics of the local share of a batch, as
// PyTorch's DDP without SyncBatchNorm). A worker group runs such a trial on one rank.
bool SplitsAcrossReplicas(const TrialSpec& trial);

}  // namespace seedproof
