// Expanding a validated SweepSpec into its trial DAG, and showing it.
//
//   Plan plan = ExpandSweep(spec);          // or ExpandSweep(spec, train_counts by dataset)
//   std::cout << FormatPlan(plan, spec);    // `seedproof plan spec.yaml`
//   std::cout << PlanToJson(plan).dump(2);  // `seedproof plan --json spec.yaml`
//
// The DAG (docs/SWEEP_SPEC.md, "Expansion"): one pretrain trial per distinct source
// task and source seed, shared by every transfer trial that reuses it; one scratch
// baseline per target and seed; one transfer trial per arm, target and seed. Trials
// come in dependency order: every pretrain trial, then scratch trials, then transfer
// trials, the latter two seed by seed (seed 0 of every target and arm first), so a
// sweep cut short still holds complete paired seeds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backends/model_spec.h"
#include "experiments/sweep.h"
#include "nlohmann/json_fwd.hpp"

namespace seedproof {

// train_counts_per_class: the training examples of each class after the validation
// split (LoadTrainCountsPerClass); empty: the dataset's nominal counts (Fashion-MNIST:
// 6,000 per class, less the validation share) for the compute estimate.
using TrainCounts = std::map<std::string, std::vector<int64_t>>;  // dataset name -> per class
Plan ExpandSweep(const SweepSpec& spec, const TrainCounts& train_counts = {});

// The seed streams of a trial. Target trials (scratch and transfer) of seed i:
//   init = StreamSeed(base, i, 1), order = StreamSeed(base, i, 2),
//   subset = StreamSeed(base, i, 3);
// pretrain trials of source seed j use a separate domain, so a source model's draws
// are independent of the baselines' draws for the same index:
//   init = StreamSeed(base, j, 1, 1), order = StreamSeed(base, j, 2, 1),
//   subset = StreamSeed(base, j, 3, 1).
// A stream the spec holds fixed (seeds.fixed) is that value in every trial.
SeedStreams TrialSeedStreams(const SeedPolicy& seeds, int seed_index, TrialKind kind);

// A target task's output layer: Dense(1, sigmoid) for a binary task, Dense(k,
// softmax) for k classes; and the loss fused with it.
LayerSpec TargetOutputLayer(const TaskSpec& task, Initializer init);
Loss TargetLoss(const TaskSpec& task);
// The scratch baseline's network: source_model's hidden layers + the target's output.
ModelSpec ScratchModel(const ModelSpec& source_model, const TaskSpec& target);
// A transfer trial's network: the first keep_layers of trial.model, the new layers,
// and the target's output layer (for a fitted head, its linear stand-in).
ModelSpec TransferModel(const TrialSpec& trial);

// The text a trial id hashes: every field of the TrialSpec except id, in a fixed
// order, floats exact. Versioned ("seedproof-trial-v1"); ids do not depend on the
// sweep's name, so equal trials in two sweeps share ids (and cached artifacts).
std::string CanonicalTrialText(const TrialSpec& trial);
// 32 hex digits: a 128-bit non-cryptographic hash (two Mix64 chains) of the text.
std::string TrialId(const TrialSpec& trial);

// Training examples a task's trials use (train_size, else the class counts, else the
// dataset's nominal counts).
int64_t TaskTrainExamples(const TaskSpec& task, const DatasetSpec& dataset,
                          const std::vector<int64_t>& train_counts_per_class);
// FLOPs of one training example through model with layers below first_trainable
// frozen: forward 2*MACs for layers >= first_trainable, weight gradients 2*MACs
// for trainable weighted layers, input gradients 2*MACs for weighted layers above
// the lowest trainable weighted one. Géron's model A, all trainable: ~1.18 MFLOP.
// first_computed < first_trainable: the forward pass also runs through the frozen
// layers [first_computed, first_trainable) (no prefix cache; the engine benchmark).
double TrainingFlopsPerExample(const ModelSpec& model, size_t first_trainable,
                               size_t first_computed = SIZE_MAX);
// A trial's training arithmetic in GFLOP (docs/SWEEP_SPEC.md, "Estimated compute").
double EstimateTrialGflop(const TrialSpec& trial,
                          const std::vector<int64_t>& train_counts_per_class = {});

// For a terminal: the sweep's tasks, model, trials by kind, arms, seeds, compute.
std::string FormatPlan(const Plan& plan, const SweepSpec& spec);
// One layer as the plan shows it: "conv 32 3x3 same relu", "dense 100 selu".
std::string LayerText(const LayerSpec& layer);
// {"sweep", "trials" (count), "trials_by_kind": {"pretrain", "scratch", "transfer"},
//  "arms", "targets", "seeds", "source_seeds", "estimated_gflop", "gflop_by_kind"};
// with include_trials also "dag": [{id, kind, arm, target, seed, source_trial}].
nlohmann::json PlanToJson(const Plan& plan, bool include_trials = false);

}  // namespace seedproof
