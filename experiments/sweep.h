// A sweep: what a user's YAML spec says (SweepSpec), and the trials it expands
// into (Plan). Value types only; parsing is sweep_parse.cc, expansion plan.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/model_spec.h"
#include "data/dataset_spec.h"
#include "onnx_io/onnx_model.h"

namespace seedproof {

// Which layers a phase trains. Everything the transfer added (new hidden layers
// and the head) always trains; the selection says how many reused layers join.
struct TrainSelection {
  enum class Kind { kHead, kTopReused, kAll } kind = Kind::kAll;
  // kTopReused: the top `top` reused layers that have weights (dense, conv2d) train
  // too ("top-2"); flatten, pooling and dropout layers are not counted. When `top`
  // is at least the number of reused layers with weights, every reused layer trains.
  int top = 0;
};

struct PhaseSpec {
  int epochs = 1;
  TrainSelection train;
  OptimizerSpec optimizer;
  int64_t batch_size = 32;
};

// A new head on the reused layers. A dense head is one output layer (Dense(1, sigmoid) for a binary
// target, Dense(k, softmax) for k classes) trained by the arm's phases. A logistic or linear-SVM
// head is fitted to convergence on the flattened output of the frozen reused layers (no phases, no
// new layers), minimising the summed loss plus 0.5 / c * ||w||^2 (scikit-learn's C).
struct HeadSpec {
  enum class Kind { kDense, kLogistic, kLinearSvm } kind = Kind::kDense;
  double c = 1.0;  // logistic, linear_svm: inverse L2 strength
  // "dense", "logistic", "linear_svm"; a c other than 1 is appended: "linear_svm-c0.1".
  std::string name() const;
};

// One arm: a transfer configuration, compared seed by seed with the baseline.
struct ArmSpec {
  std::string name;  // "reuse4/geron/dense" style, unique in the sweep
  int reuse = 0;     // the first `reuse` layers the spec lists under model.layers
  // `reuse` mapped onto SweepSpec::source_model.layers: a flatten the parser
  // inserted before a listed layer counts with it (Géron's model: reuse 5 -> 6).
  int keep_layers = 0;
  std::string new_layers_name;  // "" when no new layers
  // Hidden layers added on the reused ones, with any Flatten the parser inserted
  // (before a dense layer that gets a non-flat input, and at the end when the
  // stack's output is not flat): the head always receives a flat input.
  std::vector<LayerSpec> new_layers;
  HeadSpec head;
  std::string schedule;           // name from the spec; "" for a fitted (non-dense) head
  std::vector<PhaseSpec> phases;  // empty for a fitted (non-dense) head
  std::string optimizer_name;     // transfer.optimizers entry; "" when that axis is absent
  double lr_scale = 1.0;          // transfer.lr_scale entry, already applied to phases
};

// Seed streams: each trial's init, data order and subset sampling are independent
// streams derived from the seed index, unless the spec holds one fixed.
struct SeedPolicy {
  int count = 1;         // seeds per arm (and baseline); with sequential seeds, the most
  int source_seeds = 1;  // distinct pretrained source models; seed i uses source i % source_seeds
  std::optional<uint64_t> fixed_init, fixed_order, fixed_subset;
  uint64_t base = 0;  // mixed into every stream: another base gives other seeds
  // Sequential seeds (`seeds: {min, max, step}`): the study runs `min` seeds, then
  // `step` more at a time for the arms still open, up to `count`. 0: a fixed design.
  int min = 0, step = 0;
  bool sequential() const { return min > 0; }
  // Crossed streams (`seeds: {crossed: {init: A, order: B}}`): count = A x B and
  // the target trials of seed i draw init stream i / B and order stream i % B, so
  // the report can split the gains' spread between the two. 0: not crossed.
  int crossed_init = 0, crossed_order = 0;
  bool crossed() const { return crossed_init > 0; }
};
// The seed counts at which the analysis looks: min, min + step, ..., count (the
// last step may be shorter); {count} for a fixed design.
std::vector<int> SeedLooks(const SeedPolicy& seeds);

// How the report judges the arms (docs/REPORTS.md).
enum class Correction { kHolm, kBenjaminiHochberg, kNone };
const char* CorrectionName(Correction correction);  // "holm", "bh", "none"

// Re-running arms on fresh seeds once the exploration seeds are done.
struct ConfirmationSpec {
  int seeds = 0;  // 0: no confirmation; else seeds count..count+seeds-1, never looked at before
  enum class Arms { kRobust, kBest } arms = Arms::kRobust;  // every robust gain, or the best arm
};

struct AnalysisSpec {
  double level = 0.95;  // of the confidence intervals; 1 - level is the test's alpha
  Correction correction = Correction::kHolm;  // across the arms of the sweep
  ConfirmationSpec confirmation;
};

// Where a value sits in the spec file (1-based line and column; 0 when unknown)
// and its field path, for errors found after parsing (ValidateAgainstData).
struct SpecPosition {
  int line = 0;
  int column = 0;
  std::string field;
};
struct TaskPositions {
  SpecPosition task;        // the task's mapping (target, targets[1], source)
  SpecPosition classes;     // classes, or positive when binary
  SpecPosition negative;    // negative when binary
  SpecPosition train_size;  // train_size if given, else the task's mapping
};
struct SpecPositions {
  SpecPosition validation;  // dataset.validation (or dataset, or the document)
  SpecPosition input;       // model.input (or model)
  std::map<std::string, SpecPosition> dataset_validation;  // by dataset name
  TaskPositions source;
  std::vector<TaskPositions> targets;  // parallel to SweepSpec::targets
};

// model: {onnx: FILE}: a source model made elsewhere, read by onnx_io/ instead of
// pretrained. What the spec needs of it; its bytes travel as an artifact named by
// sha256, and each worker imports them again.
struct ImportedModel {
  std::string path;    // the file read (a relative path resolved against the spec's folder)
  std::string sha256;  // of the file's bytes: in every transfer trial's id
  std::string producer;
  int64_t opset = 0;
  // Reusable units (OnnxGraph::units): "reuse k" keeps the layers of the first k.
  std::vector<OnnxUnit> units;
  ModelSpec model;  // the graph as a source model (SourceModelSpec)
};

struct SweepSpec {
  std::string name;
  std::string path;  // the YAML file, for messages
  // Every dataset the tasks read, by name (`dataset:` gives one, Fashion-MNIST by
  // default). LoadStudy fills in each one's sha256 and scale from the data.
  std::vector<DatasetSpec> datasets = std::vector<DatasetSpec>(1);
  TaskSpec source;
  std::vector<TaskSpec> targets;  // several class pairs: "change the classes"
  ModelSpec source_model;         // the pretrained network, output layer included
  // Set when the source model is an ONNX file: then source_model is its graph as
  // a source model (SourceModelSpec), nothing is pretrained, `source` is unused,
  // and `pretrain` holds the training settings the baseline and the transfer
  // phases start from (baseline.scratch).
  std::optional<ImportedModel> imported;
  PhaseSpec pretrain;
  std::vector<ArmSpec> arms;  // the cross product of the transfer axes
  PhaseSpec scratch;          // baseline: the target model from scratch
  SeedPolicy seeds;
  AnalysisSpec analysis;

  // Per-target source tasks, set only by `source: {classes: others}`: then
  // target_sources[i] is the source task of targets[i] (every dataset class outside
  // targets[i]'s classes) and `source` keeps only the shared settings (name,
  // train_size, subset, resize_from; classes empty). Read sources through
  // SourceTaskOf and SourceModelOf, which cover both cases.
  std::vector<TaskSpec> target_sources;
  std::string description;  // free text from the spec
  SpecPositions positions;

  // The dataset `task` reads (TaskSpec::dataset); the first one if none matches.
  const DatasetSpec& DatasetOf(const TaskSpec& task) const {
    for (const DatasetSpec& d : datasets) {
      if (d.name == task.dataset) return d;
    }
    return datasets.front();
  }
  DatasetSpec& DatasetOf(const TaskSpec& task) {
    return const_cast<DatasetSpec&>(static_cast<const SweepSpec&>(*this).DatasetOf(task));
  }

  const TaskSpec& SourceTaskOf(size_t target) const {
    return target_sources.empty() ? source : target_sources[target];
  }
  // source_model with its output layer sized for SourceTaskOf(target) (an
  // imported model's as the file has it).
  ModelSpec SourceModelOf(size_t target) const {
    ModelSpec model = source_model;
    if (imported) return model;
    if (!model.layers.empty()) model.layers.back().units = SourceTaskOf(target).num_classes();
    return model;
  }
};

struct SeedStreams {
  uint64_t init = 0, order = 0, subset = 0;
  bool operator==(const SeedStreams&) const = default;
};

enum class TrialKind { kPretrain = 1, kScratch = 2, kTransfer = 3 };
// "pretrain", "scratch", "transfer": the words of results files, plans and the database.
const char* TrialKindName(TrialKind kind);
// The kind whose name is `name`; nullopt for any other text.
std::optional<TrialKind> TrialKindNamed(std::string_view name);

// Everything needed to run one trial, independent of the sweep it came from: the
// trial procedure is a pure function of this, the backend and the thread count.
struct TrialSpec {
  TrialKind kind = TrialKind::kPretrain;
  std::string id;      // stable content key: same spec, same ids
  std::string arm;     // ArmSpec::name, "baseline" for scratch, "source" for pretrain
  std::string target;  // TaskSpec::name of the target ("" for pretrain)
  int seed_index = 0;  // the paired seed (pretrain: the source seed index)
  SeedStreams seeds;
  DatasetSpec dataset;
  TaskSpec task;    // pretrain: the source task; otherwise the target task
  ModelSpec model;  // pretrain/scratch: the model trained; transfer: the source's spec
  std::vector<PhaseSpec> phases;
  // Transfer only.
  std::string source_trial;  // id of the pretrain trial whose model is reused
  // Or the SHA-256 of the ONNX file it is imported from (ImportedModel); "" when
  // the source is a pretrain trial's. SourceKey names either.
  std::string source_onnx;
  // Layers of `model` (the source's ModelSpec) kept: the arm's reuse depth mapped
  // onto the ModelSpec, so a flatten the parser inserted counts here.
  int keep_layers = 0;
  std::vector<LayerSpec> new_layers;
  HeadSpec head;
};

struct Plan {
  std::vector<TrialSpec> trials;  // dependencies come before their dependents
  // Trials the coordinator may add later, in dependency order. Confirmation seeds:
  // the scratch and transfer trials of every arm on those seeds (baselines
  // first); the coordinator adds the ones of the arms the exploration seeds call
  // for, once they are done; their sources are in trials. Sequential seeds: every
  // trial of the seeds after the first look (source models of later seeds first);
  // the coordinator adds a step's trials for the arms still open.
  std::vector<TrialSpec> later_candidates;
  std::map<TrialKind, int> trials_by_kind;
  std::vector<std::string> arms;     // arm names, baseline excluded
  std::vector<std::string> targets;  // target task names
  double estimated_gflop = 0.0;      // training arithmetic of the whole sweep
  std::map<TrialKind, double> gflop_by_kind;
  std::string sweep;     // SweepSpec::name
  int seeds = 0;         // SeedPolicy::count
  int source_seeds = 0;  // SeedPolicy::source_seeds
  // The per-class training counts the estimate used, by dataset name; a dataset
  // missing here was estimated from its nominal counts.
  std::map<std::string, std::vector<int64_t>> train_counts;
  // The datasets the trials read, with their content hashes (SweepSpec::datasets).
  std::vector<DatasetSpec> datasets;
  // The imported source model (SweepSpec::imported), when there is one.
  std::optional<ImportedModel> imported;
};

// The source model a transfer trial reuses, as artifact stores name it: the
// pretrain trial's id, or "onnx:" and the imported file's SHA-256; "" for trials
// that reuse none.
inline constexpr std::string_view kImportedSourcePrefix = "onnx:";
inline std::string SourceKey(const TrialSpec& trial) {
  if (!trial.source_onnx.empty()) return std::string(kImportedSourcePrefix) + trial.source_onnx;
  return trial.source_trial;
}
// Whether a SourceKey names an imported ONNX file rather than a pretrain trial.
inline bool IsImportedSourceKey(std::string_view key) {
  return key.substr(0, kImportedSourcePrefix.size()) == kImportedSourcePrefix;
}

}  // namespace seedproof
