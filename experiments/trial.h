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
#include "experiments/sweep.h"
#include "experiments/task_data.h"

namespace seedproof {

struct EpochRecord {
  int phase = 0;  // index into the trial's phases
  int epoch = 0;  // 1-based, counted across phases
  double train_loss = 0, train_accuracy = 0;
  double val_loss = 0, val_accuracy = 0;
  double seconds = 0;
  // Training steps and examples of the epoch, for throughput metrics; not in the
  // results file.
  int64_t steps = 0, examples = 0;
};

// kBlocked: never ran because a trial it depends on did not produce its model.
enum class TrialOutcome { kCompleted = 1, kDiverged = 2, kBlocked = 3 };

struct Provenance {
  SeedStreams seeds;
  int threads = 1;
  std::string cpu_isa;  // widest vector ISA the CPU offers (results depend on it)
  std::string backend;
  std::string source_model_sha256;  // transfer: the reused model's content hash
};

struct TrialResult {
  std::string trial_id;
  TrialKind kind = TrialKind::kPretrain;
  std::string arm, target;
  int seed_index = 0;
  TrialOutcome outcome = TrialOutcome::kCompleted;
  int diverged_epoch = 0;  // the epoch whose loss was not finite
  std::string blocked_by;  // kBlocked: the trial whose failure blocked this one
  std::vector<EpochRecord> epochs;
  // Wall time of each phase (a fitted head: one), everything it does: computing or
  // finding cached prefix outputs, the epochs, their validation.
  std::vector<double> phase_seconds;
  double test_loss = 0, test_accuracy = 0;
  int64_t test_examples = 0;
  double wall_seconds = 0;
  Provenance provenance;
  std::string model_sha256;  // pretrain: the artifact it produced
};

// Source models by the id of the pretrain trial that made them.
class ArtifactStore {
 public:
  virtual ~ArtifactStore() = default;
  // Stores the model; returns its content hash (SHA-256 of the model file, hex).
  virtual absl::StatusOr<std::string> Put(const std::string& trial_id, const Model& model) = 0;
  virtual absl::StatusOr<std::unique_ptr<Model>> Get(const std::string& trial_id, Backend& backend,
                                                     std::string* sha256) = 0;
};

// Model files in a folder, named by trial id.
class DirectoryArtifactStore final : public ArtifactStore {
 public:
  explicit DirectoryArtifactStore(std::string dir) : dir_(std::move(dir)) {}
  absl::StatusOr<std::string> Put(const std::string& trial_id, const Model& model) override;
  absl::StatusOr<std::unique_ptr<Model>> Get(const std::string& trial_id, Backend& backend,
                                             std::string* sha256) override;
  std::string PathOf(const std::string& trial_id) const;

 private:
  std::string dir_;
};

// What trials in one process share: the dataset, task splits, and the outputs of
// frozen prefixes (keyed by source model hash, prefix depth and data view), so a
// frozen phase costs only the trainable top. Thread-safe.
class TrialCache {
 public:
  absl::StatusOr<std::shared_ptr<const FashionMnist>> Data(const DatasetSpec& spec);
  absl::StatusOr<std::shared_ptr<const TaskSplits>> Splits(const DatasetSpec& dataset,
                                                           const TaskSpec& task,
                                                           uint64_t subset_seed,
                                                           const Shape& model_input);
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
  template <typename Build>
  absl::StatusOr<std::shared_ptr<const TaskSplits>> FindOrBuild(
      std::map<std::string, std::shared_ptr<const TaskSplits>>& entries, const std::string& key,
      const Build& build, bool* built);

  std::mutex mu_;
  std::condition_variable ready_;  // an entry was built, or its build failed
  std::set<std::string> building_;
  std::map<std::string, std::shared_ptr<const FashionMnist>> data_;
  std::map<std::string, std::shared_ptr<const TaskSplits>> splits_;
  std::map<std::string, std::shared_ptr<const TaskSplits>> features_;
  int64_t feature_hits_ = 0, feature_misses_ = 0;
};

struct TrialContext {
  Backend* backend = nullptr;
  GradientReducer* reducer = nullptr;  // nullptr: local
  ArtifactStore* artifacts = nullptr;
  TrialCache* cache = nullptr;
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
};

absl::StatusOr<TrialResult> RunTrial(const TrialSpec& trial, TrialContext& context);

// A result naming the trial (id, kind, arm, target, seed index, seed streams),
// nothing measured yet: what RunTrial starts from.
TrialResult ResultFor(const TrialSpec& trial);

// SHA-256 of bytes, 64 lowercase hex digits: how artifacts are named and checked.
std::string Sha256Hex(const std::string& bytes);

// The widest x86 vector ISA this CPU offers ("avx512", "avx2", "sse4.2", "baseline").
std::string CpuIsa();

}  // namespace seedproof
