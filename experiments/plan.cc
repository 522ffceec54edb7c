#include "experiments/plan.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "backends/random.h"
#include "data/dataset.h"
#include "experiments/sweep_parse.h"
#include "nlohmann/json.hpp"

namespace seedproof {
namespace {

// A fitted (logistic, linear-SVM) head is estimated as this many full passes of
// gradient arithmetic over the cached features.
constexpr double kFittedHeadPasses = 100.0;
// One core's fp32 peak on the project's machine (../shared/TOOLCHAIN.md).
constexpr double kCorePeakGflops = 266.0;

// Multiply-accumulates of one example through each layer.
std::vector<double> LayerMacs(const ModelSpec& model, const ModelShapes& shapes) {
  std::vector<double> macs(model.layers.size(), 0.0);
  for (size_t i = 0; i < model.layers.size(); ++i) {
    const LayerSpec& l = model.layers[i];
    if (l.kind == LayerKind::kDense) {
      macs[i] = static_cast<double>(shapes.inputs[i][0]) * l.units;
    } else if (l.kind == LayerKind::kConv2D) {
      const Shape& out = shapes.outputs[i];
      macs[i] = static_cast<double>(out[0]) * out[1] * l.kernel_h * l.kernel_w *
                shapes.inputs[i][2] * l.units;
    }
  }
  return macs;
}

// The lowest layer with weights at or above `from`.
size_t FirstWeightedFrom(const ModelSpec& model, size_t from) {
  for (size_t i = from; i < model.layers.size(); ++i) {
    if (model.layers[i].has_weights()) return i;
  }
  return model.layers.size();
}

// The lowest trainable layer of a transfer model for a phase's selection.
size_t FirstTrainable(const ModelSpec& model, int keep_layers, const TrainSelection& train) {
  const size_t keep = static_cast<size_t>(keep_layers);
  switch (train.kind) {
    case TrainSelection::Kind::kHead:
      return FirstWeightedFrom(model, keep);
    case TrainSelection::Kind::kAll:
      return FirstWeightedFrom(model, 0);
    case TrainSelection::Kind::kTopReused: {
      std::vector<size_t> weighted;
      for (size_t i = 0; i < keep && i < model.layers.size(); ++i) {
        if (model.layers[i].has_weights()) weighted.push_back(i);
      }
      if (weighted.empty()) return FirstWeightedFrom(model, keep);
      const size_t n = static_cast<size_t>(std::max(train.top, 1));
      return n >= weighted.size() ? weighted.front() : weighted[weighted.size() - n];
    }
  }
  return 0;
}

double ForwardFlops(const ModelSpec& model, size_t begin, size_t end) {
  auto shapes = InferShapes(model);
  if (!shapes.ok()) return 0.0;
  const std::vector<double> macs = LayerMacs(model, *shapes);
  double flops = 0.0;
  for (size_t i = begin; i < end && i < macs.size(); ++i) flops += 2.0 * macs[i];
  return flops;
}

// --- Canonical text ---------------------------------------------------------

std::string FloatText(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return absl::StrFormat("%08x", bits);
}
std::string DoubleText(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return absl::StrFormat("%016x", bits);
}

// The dataset by its content hash and declared preprocessing: where it is read
// from and in which format is not part of a trial's identity (the same images as
// IDX files or PNGs are the same trial). Without a hash (a plan built without
// reading the data, or a trial stored before datasets were hashed) it is the
// form trial ids had then, so such stored trials keep their ids.
void AppendDataset(std::string* out, const DatasetSpec& d) {
  if (d.sha256.empty()) {
    absl::StrAppend(out, "dataset=", d.name, "\ndataset.dir=", d.path,
                    "\ndataset.validation=", d.validation, "\n");
    return;
  }
  absl::StrAppend(out, "dataset.sha256=", d.sha256, "\ndataset.validation=", d.validation, "\n");
  if (d.channels != 0) absl::StrAppend(out, "dataset.channels=", d.channels, "\n");
  if (d.scale) absl::StrAppend(out, "dataset.scale=", DoubleText(*d.scale), "\n");
  for (size_t c = 0; c < d.mean.size(); ++c) {
    absl::StrAppend(out, "dataset.normalize=", DoubleText(d.mean[c]), ",",
                    DoubleText(c < d.std.size() ? d.std[c] : 0.0), "\n");
  }
}

void AppendTask(std::string* out, const char* key, const TaskSpec& t) {
  absl::StrAppend(
      out, key, ".name=", t.name, "\n", key, ".classes=", absl::StrJoin(t.classes, ","), "\n", key,
      ".positive=", absl::StrJoin(t.positive, ","), "\n", key,
      ".negative=", absl::StrJoin(t.negative, ","), "\n", key, ".train_size=", t.train_size, "\n",
      key, ".subset=", t.subset == TaskSpec::Subset::kFirst ? "first" : "random", "\n", key,
      ".resize_from=", t.resize_from ? absl::StrJoin(*t.resize_from, ",") : "none", "\n");
}

// Settings added with imported models (explicit padding, leaky_relu's alpha,
// batch normalisation, average pools) are written only where a layer uses them,
// so every layer that could be written before keeps its text and its trial id.
void AppendLayer(std::string* out, const char* key, const LayerSpec& l) {
  absl::StrAppend(out, key, "=", LayerKindName(l.kind), " act=", ActivationName(l.activation),
                  " init=", InitializerName(l.init), " units=", l.units, " kernel=", l.kernel_h,
                  "x", l.kernel_w, " stride=", l.stride_h, "x", l.stride_w,
                  " padding=", PaddingName(l.padding), " rate=", FloatText(l.rate));
  const LayerSpec d;
  if (l.padding == Padding::kExplicit || l.pad_top != d.pad_top || l.pad_bottom != d.pad_bottom ||
      l.pad_left != d.pad_left || l.pad_right != d.pad_right) {
    absl::StrAppend(out, " pads=", l.pad_top, ",", l.pad_bottom, ",", l.pad_left, ",", l.pad_right);
  }
  if (l.alpha != d.alpha) absl::StrAppend(out, " alpha=", FloatText(l.alpha));
  if (l.kind == LayerKind::kBatchNorm || l.epsilon != d.epsilon || l.momentum != d.momentum) {
    absl::StrAppend(out, " epsilon=", FloatText(l.epsilon), " momentum=", FloatText(l.momentum));
  }
  if (l.count_include_pad) absl::StrAppend(out, " count_include_pad");
  absl::StrAppend(out, "\n");
}

void AppendPhase(std::string* out, const PhaseSpec& p) {
  const OptimizerSpec& o = p.optimizer;
  const char* train = p.train.kind == TrainSelection::Kind::kHead  ? "head"
                      : p.train.kind == TrainSelection::Kind::kAll ? "all"
                                                                   : "top";
  absl::StrAppend(out, "phase=epochs:", p.epochs, " train:", train, ":", p.train.top,
                  " batch:", p.batch_size,
                  " optimizer:", o.kind == OptimizerKind::kAdam ? "adam" : "sgd",
                  " lr:", FloatText(o.learning_rate), " momentum:", FloatText(o.momentum),
                  " nesterov:", o.nesterov ? 1 : 0, " beta1:", FloatText(o.beta1),
                  " beta2:", FloatText(o.beta2), " epsilon:", FloatText(o.epsilon),
                  " weight_decay:", FloatText(o.weight_decay), "\n");
}

std::string Hex128(const std::string& text) {
  // Two independent Mix64 chains over 8-byte little-endian words, closed by the
  // length. Not cryptographic: ids key trials, they do not authenticate them.
  uint64_t a = 0x243f6a8885a308d3ULL, b = 0x13198a2e03707344ULL;
  for (size_t i = 0; i < text.size(); i += 8) {
    uint64_t word = 0;
    for (size_t j = 0; j < 8 && i + j < text.size(); ++j) {
      word |= static_cast<uint64_t>(static_cast<unsigned char>(text[i + j])) << (8 * j);
    }
    a = Mix64(a ^ word);
    b = Mix64(b + (word ^ 0xa4093822299f31d0ULL)) ^ (b >> 17);
  }
  a = Mix64(a ^ text.size());
  b = Mix64(b ^ a ^ (static_cast<uint64_t>(text.size()) << 1));
  return absl::StrFormat("%016x%016x", a, b);
}

// --- Formatting -------------------------------------------------------------

std::string Gflop(double g) {
  if (g >= 100) return WithCommas(static_cast<int64_t>(g + 0.5));
  return absl::StrFormat("%.3g", g);
}

std::string ClassesText(const std::vector<int32_t>& classes, const DatasetSpec& dataset) {
  std::vector<std::string> parts;
  for (int32_t c : classes) {
    if (dataset.name == "fashion-mnist" && c >= 0 && c < kFashionMnistClasses) {
      parts.push_back(
          absl::StrCat(c, " ", std::string(kFashionMnistClassNames[static_cast<size_t>(c)])));
    } else {
      parts.push_back(absl::StrCat(c));
    }
  }
  return absl::StrJoin(parts, ", ");
}

std::string OptimizerText(const OptimizerSpec& o) {
  std::string s =
      absl::StrFormat("%s lr %g", o.kind == OptimizerKind::kAdam ? "adam" : "sgd", o.learning_rate);
  if (o.momentum != 0.0f) absl::StrAppend(&s, absl::StrFormat(" momentum %g", o.momentum));
  if (o.nesterov) absl::StrAppend(&s, " nesterov");
  if (o.weight_decay != 0.0f)
    absl::StrAppend(&s, absl::StrFormat(" weight_decay %g", o.weight_decay));
  return s;
}

std::string PhaseText(const PhaseSpec& p, bool with_train) {
  std::string train;
  if (with_train) {
    train = p.train.kind == TrainSelection::Kind::kHead  ? " head"
            : p.train.kind == TrainSelection::Kind::kAll ? " all"
                                                         : absl::StrCat(" top-", p.train.top);
  }
  return absl::StrCat(p.epochs, " ep", train, ", ", OptimizerText(p.optimizer), ", batch ",
                      p.batch_size);
}

std::string TaskText(const TaskSpec& t, const DatasetSpec& dataset, int64_t examples,
                     bool estimated) {
  std::string s = t.binary() ? absl::StrCat("positive ", ClassesText(t.positive, dataset),
                                            "; negative ", ClassesText(t.negative, dataset))
                             : absl::StrCat("classes ", ClassesText(t.classes, dataset));
  if (t.train_size > 0) {
    absl::StrAppend(&s, "; ", t.subset == TaskSpec::Subset::kFirst ? "first " : "random ",
                    WithCommas(t.train_size), " training images");
  } else {
    absl::StrAppend(&s, "; ", estimated ? "~" : "", WithCommas(examples), " training images");
  }
  return s;
}

}  // namespace

std::string LayerText(const LayerSpec& l) {
  switch (l.kind) {
    case LayerKind::kFlatten:
      return "flatten";
    case LayerKind::kDense:
      return absl::StrCat("dense ", l.units, " ", ActivationName(l.activation));
    case LayerKind::kConv2D:
      return absl::StrCat("conv ", l.units, " ", l.kernel_h, "x", l.kernel_w,
                          l.stride_h != 1 || l.stride_w != 1 ? absl::StrCat("/", l.stride_h) : "",
                          " ", PaddingName(l.padding), " ", ActivationName(l.activation));
    case LayerKind::kMaxPool2D:
      return absl::StrCat("maxpool ", l.kernel_h, "x", l.kernel_w);
    case LayerKind::kAvgPool2D:
      return absl::StrCat("avgpool ", l.kernel_h, "x", l.kernel_w);
    case LayerKind::kGlobalAvgPool2D:
      return "global avgpool";
    case LayerKind::kBatchNorm:
      return absl::StrCat("batchnorm", l.activation == Activation::kLinear
                                           ? ""
                                           : absl::StrCat(" ", ActivationName(l.activation)));
    case LayerKind::kDropout:
      return absl::StrFormat("dropout %g", l.rate);
    case LayerKind::kActivation:
      return ActivationName(l.activation);
  }
  return "?";
}

SeedStreams TrialSeedStreams(const SeedPolicy& seeds, int seed_index, TrialKind kind) {
  const uint64_t domain = kind == TrialKind::kPretrain ? 1 : 0;
  const uint64_t i = static_cast<uint64_t>(seed_index);
  // Crossed streams: a target trial's init and order indices are the seed's row
  // and column in the grid; source models keep one index per source seed.
  const bool crossed = seeds.crossed() && kind != TrialKind::kPretrain;
  const uint64_t init_index = crossed ? i / static_cast<uint64_t>(seeds.crossed_order) : i;
  const uint64_t order_index = crossed ? i % static_cast<uint64_t>(seeds.crossed_order) : i;
  SeedStreams s;
  s.init = seeds.fixed_init.value_or(StreamSeed(seeds.base, init_index, 1, domain));
  s.order = seeds.fixed_order.value_or(StreamSeed(seeds.base, order_index, 2, domain));
  s.subset = seeds.fixed_subset.value_or(StreamSeed(seeds.base, i, 3, domain));
  return s;
}

LayerSpec TargetOutputLayer(const TaskSpec& task, Initializer init) {
  return task.binary() ? LayerSpec::Dense(1, Activation::kSigmoid, init)
                       : LayerSpec::Dense(task.num_classes(), Activation::kSoftmax, init);
}

Loss TargetLoss(const TaskSpec& task) {
  return task.binary() ? Loss::kBinaryCrossEntropy : Loss::kSparseCategoricalCrossEntropy;
}

ModelSpec ScratchModel(const ModelSpec& source_model, const TaskSpec& target) {
  ModelSpec model = source_model;
  const Initializer init = model.layers.back().init;
  model.layers.back() = TargetOutputLayer(target, init);
  model.loss = TargetLoss(target);
  return model;
}

ModelSpec TransferModel(const TrialSpec& trial) {
  ModelSpec model;
  model.input = trial.model.input;
  const size_t keep =
      std::min(static_cast<size_t>(std::max(trial.keep_layers, 0)), trial.model.layers.size());
  model.layers.assign(trial.model.layers.begin(),
                      trial.model.layers.begin() + static_cast<ptrdiff_t>(keep));
  model.layers.insert(model.layers.end(), trial.new_layers.begin(), trial.new_layers.end());
  const Initializer init =
      trial.model.layers.empty() ? Initializer::kGlorotUniform : trial.model.layers.back().init;
  model.layers.push_back(TargetOutputLayer(trial.task, init));
  model.loss = TargetLoss(trial.task);
  return model;
}

std::string CanonicalTrialText(const TrialSpec& t) {
  std::string out = "seedproof-trial-v1\n";
  absl::StrAppend(&out, "kind=", TrialKindName(t.kind), "\narm=", t.arm, "\ntarget=", t.target,
                  "\nseed_index=", t.seed_index, "\nseeds=", t.seeds.init, ",", t.seeds.order, ",",
                  t.seeds.subset, "\n");
  AppendDataset(&out, t.dataset);
  AppendTask(&out, "task", t.task);
  absl::StrAppend(&out, "model.input=", absl::StrJoin(t.model.input, ","),
                  "\nmodel.loss=", LossName(t.model.loss), "\n");
  for (const LayerSpec& l : t.model.layers) AppendLayer(&out, "model.layer", l);
  for (const PhaseSpec& p : t.phases) AppendPhase(&out, p);
  absl::StrAppend(&out, "source_trial=", t.source_trial, "\nkeep_layers=", t.keep_layers, "\n");
  // Only imported sources add a line: every other trial keeps the id it had.
  if (!t.source_onnx.empty()) absl::StrAppend(&out, "source_onnx=", t.source_onnx, "\n");
  for (const LayerSpec& l : t.new_layers) AppendLayer(&out, "new_layer", l);
  absl::StrAppend(&out, "head=", t.head.name(), " c=", DoubleText(t.head.c), "\n");
  return out;
}

std::string TrialId(const TrialSpec& trial) { return Hex128(CanonicalTrialText(trial)); }

int64_t TaskTrainExamples(const TaskSpec& task, const DatasetSpec& dataset,
                          const std::vector<int64_t>& counts) {
  if (task.train_size > 0) return task.train_size;
  const std::vector<int32_t> classes = TaskClasses(task);
  int64_t n = 0;
  if (!counts.empty()) {
    for (int32_t c : classes) {
      if (c >= 0 && static_cast<size_t>(c) < counts.size()) n += counts[static_cast<size_t>(c)];
    }
    return n;
  }
  const DatasetFacts* facts = FindDatasetFacts(dataset.name);
  if (!facts) return 0;
  const double per_class = static_cast<double>(facts->train_examples) / facts->num_classes *
                           (1.0 - static_cast<double>(dataset.validation) / facts->train_examples);
  return static_cast<int64_t>(per_class * static_cast<double>(classes.size()) + 0.5);
}

double TrainingFlopsPerExample(const ModelSpec& model, size_t first_trainable,
                               size_t first_computed) {
  auto shapes = InferShapes(model);
  if (!shapes.ok()) return 0.0;
  const std::vector<double> macs = LayerMacs(model, *shapes);
  const size_t lowest = FirstWeightedFrom(model, first_trainable);
  double flops = 0.0;
  for (size_t i = std::min(first_computed, first_trainable); i < macs.size(); ++i) {
    flops += 2.0 * macs[i];  // forward
    if (i < first_trainable) continue;
    if (i >= lowest && model.layers[i].has_weights()) flops += 2.0 * macs[i];  // weight gradient
    if (i > lowest) flops += 2.0 * macs[i];                                    // input gradient
  }
  return flops;
}

double EstimateTrialGflop(const TrialSpec& trial, const std::vector<int64_t>& counts) {
  const double n = static_cast<double>(TaskTrainExamples(trial.task, trial.dataset, counts));
  double flops = 0.0;
  if (trial.kind != TrialKind::kTransfer) {
    const size_t first = FirstWeightedFrom(trial.model, 0);
    for (const PhaseSpec& p : trial.phases) {
      flops += n * p.epochs * TrainingFlopsPerExample(trial.model, first);
    }
    return flops / 1e9;
  }
  const ModelSpec model = TransferModel(trial);
  const size_t keep = static_cast<size_t>(std::max(trial.keep_layers, 0));
  if (trial.head.kind != HeadSpec::Kind::kDense) {
    // Features once, then the fit: forward + gradient of a linear model per pass.
    auto shapes = InferShapes(model);
    if (!shapes.ok()) return 0.0;
    const double features = static_cast<double>(ElementCount(shapes->inputs.back()));
    const double outputs = static_cast<double>(model.layers.back().units);
    flops = n * ForwardFlops(model, 0, keep) + n * kFittedHeadPasses * 4.0 * features * outputs;
    return flops / 1e9;
  }
  for (const PhaseSpec& p : trial.phases) {
    const size_t first = FirstTrainable(model, trial.keep_layers, p.train);
    // The frozen prefix's outputs are computed once per phase and cached.
    flops += n * ForwardFlops(model, 0, first);
    flops += n * p.epochs * TrainingFlopsPerExample(model, first);
  }
  return flops / 1e9;
}

Plan ExpandSweep(const SweepSpec& spec, const TrainCounts& train_counts) {
  static const std::vector<int64_t> kNominal;
  auto counts_of = [&train_counts](const DatasetSpec& d) -> const std::vector<int64_t>& {
    const auto it = train_counts.find(d.name);
    return it == train_counts.end() ? kNominal : it->second;
  };
  Plan plan;
  plan.datasets = spec.datasets;
  plan.imported = spec.imported;
  plan.sweep = spec.name;
  plan.seeds = spec.seeds.count;
  plan.source_seeds = spec.seeds.source_seeds;
  plan.train_counts = train_counts;
  for (const ArmSpec& arm : spec.arms) plan.arms.push_back(arm.name);
  for (const TaskSpec& t : spec.targets) plan.targets.push_back(t.name);
  for (TrialKind k : {TrialKind::kPretrain, TrialKind::kScratch, TrialKind::kTransfer}) {
    plan.trials_by_kind[k] = 0;
    plan.gflop_by_kind[k] = 0.0;
  }
  std::set<std::string> ids;
  auto add = [&](TrialSpec trial) {
    trial.id = TrialId(trial);
    if (!ids.insert(trial.id).second) return trial.id;  // shared: already planned
    const double gflop = EstimateTrialGflop(trial, counts_of(trial.dataset));
    plan.estimated_gflop += gflop;
    plan.gflop_by_kind[trial.kind] += gflop;
    ++plan.trials_by_kind[trial.kind];
    std::string id = trial.id;
    plan.trials.push_back(std::move(trial));
    return id;
  };
  auto add_candidate = [&](TrialSpec trial) {
    trial.id = TrialId(trial);
    plan.later_candidates.push_back(std::move(trial));
  };

  // Sequential seeds: the first look's seeds run from the start; the later ones
  // are candidates, added step by step for the arms still open.
  const int first_later = spec.seeds.sequential() ? spec.seeds.min : spec.seeds.count;

  // Pretrain: per target's source task and source seed; equal ones are one trial.
  // An imported source model is not pretrained. A source model of a later seed
  // only (sequential seeds, one source model per seed) is a candidate too.
  const int source_seeds = std::max(1, spec.seeds.source_seeds);
  std::vector<std::vector<std::string>> source_ids(spec.targets.size());
  for (size_t t = 0; t < spec.targets.size() && !spec.imported; ++t) {
    for (int j = 0; j < source_seeds; ++j) {
      const bool later = spec.seeds.sequential() && j >= first_later;
      TrialSpec p;
      p.kind = TrialKind::kPretrain;
      p.arm = "source";
      p.seed_index = j;
      p.seeds = TrialSeedStreams(spec.seeds, j, TrialKind::kPretrain);
      p.task = spec.SourceTaskOf(t);
      p.dataset = spec.DatasetOf(p.task);
      p.model = spec.SourceModelOf(t);
      p.phases = {spec.pretrain};
      p.phases[0].train = TrainSelection{};
      if (later) {
        p.id = TrialId(p);
        source_ids[t].push_back(p.id);
        // Shared by targets with the same source task: one candidate.
        if (ids.insert(p.id).second) plan.later_candidates.push_back(std::move(p));
      } else {
        source_ids[t].push_back(add(std::move(p)));
      }
    }
  }

  // Scratch baselines and transfer trials, seed by seed; seed s reuses source model
  // s % source_seeds. `out` is plan.trials, or the confirmation candidates, which
  // the estimate leaves out.
  auto add_seeds = [&](int first, int last, bool confirmation) {
    for (int s = first; s < last; ++s) {
      for (const TaskSpec& target : spec.targets) {
        TrialSpec b;
        b.kind = TrialKind::kScratch;
        b.arm = "baseline";
        b.target = target.name;
        b.seed_index = s;
        b.seeds = TrialSeedStreams(spec.seeds, s, TrialKind::kScratch);
        b.task = target;
        b.dataset = spec.DatasetOf(b.task);
        b.model = ScratchModel(spec.source_model, target);
        b.phases = {spec.scratch};
        b.phases[0].train = TrainSelection{};
        if (confirmation) {
          add_candidate(std::move(b));
        } else {
          add(std::move(b));
        }
      }
    }
    for (int s = first; s < last; ++s) {
      for (size_t t = 0; t < spec.targets.size(); ++t) {
        for (const ArmSpec& arm : spec.arms) {
          TrialSpec x;
          x.kind = TrialKind::kTransfer;
          x.arm = arm.name;
          x.target = spec.targets[t].name;
          x.seed_index = s;
          x.seeds = TrialSeedStreams(spec.seeds, s, TrialKind::kTransfer);
          x.task = spec.targets[t];
          x.dataset = spec.DatasetOf(x.task);
          x.model = spec.SourceModelOf(t);
          x.phases = arm.phases;
          if (spec.imported) {
            x.source_onnx = spec.imported->sha256;
          } else {
            x.source_trial = source_ids[t][static_cast<size_t>(s % source_seeds)];
          }
          x.keep_layers = arm.keep_layers;
          x.new_layers = arm.new_layers;
          x.head = arm.head;
          if (confirmation) {
            add_candidate(std::move(x));
          } else {
            add(std::move(x));
          }
        }
      }
    }
  };
  add_seeds(0, first_later, false);
  add_seeds(first_later, spec.seeds.count + spec.analysis.confirmation.seeds, true);
  return plan;
}

std::string FormatPlan(const Plan& plan, const SweepSpec& spec) {
  std::string out;
  auto line = [&](const std::string& label, const std::string& text) {
    absl::StrAppend(&out, absl::StrFormat("%-10s", label), text, "\n");
  };
  static const std::vector<int64_t> kNominal;
  auto counts_of = [&plan](const DatasetSpec& d) -> const std::vector<int64_t>& {
    const auto it = plan.train_counts.find(d.name);
    return it == plan.train_counts.end() ? kNominal : it->second;
  };
  // Nominal counts are marked with ~.
  auto task_text = [&](const TaskSpec& t) {
    const DatasetSpec& d = spec.DatasetOf(t);
    const std::string text =
        TaskText(t, d, TaskTrainExamples(t, d, counts_of(d)), counts_of(d).empty());
    return spec.datasets.size() > 1 ? absl::StrCat(text, " (dataset ", d.name, ")") : text;
  };

  absl::StrAppend(&out, "sweep     ", spec.name, "  (", spec.path, ")\n");
  if (!spec.description.empty()) line("", spec.description);
  for (size_t i = 0; i < spec.datasets.size(); ++i) {
    const DatasetSpec& d = spec.datasets[i];
    line(i == 0 ? (spec.datasets.size() > 1 ? "datasets" : "dataset") : "",
         absl::StrCat(d.name, d.path.empty() ? "" : absl::StrCat(" from ", d.path), " (",
                      DatasetFormatName(d.format), d.sha256.empty() ? "" : ", sha256 ",
                      d.sha256.substr(0, 12), "); the first ", WithCommas(d.validation),
                      " training examples are the validation split"));
  }
  if (spec.imported) {
    line("source",
         absl::StrCat("imported: ", spec.imported->path, " (ONNX opset ", spec.imported->opset,
                      spec.imported->producer.empty() ? "" : ", ", spec.imported->producer,
                      ", sha256 ", spec.imported->sha256.substr(0, 12), "), not pretrained"));
  } else if (spec.target_sources.empty()) {
    line("source", absl::StrCat(spec.source.name, ": ", task_text(spec.source)));
  } else {
    line("source", "per target: every class outside the target's (classes: others)");
  }
  for (size_t t = 0; t < spec.targets.size(); ++t) {
    const TaskSpec& target = spec.targets[t];
    line(t == 0 ? "targets" : "", absl::StrCat(target.name, ": ", task_text(target)));
    const TaskSpec& source = spec.SourceTaskOf(t);
    if (!spec.target_sources.empty()) {
      line("", absl::StrCat("  from ", source.name, ": classes ",
                            ClassesText(source.classes, spec.DatasetOf(source))));
    }
    std::vector<int32_t> shared;  // only classes of one dataset can be the same
    for (int32_t c : spec.DatasetOf(target).name == spec.DatasetOf(source).name
                         ? TaskClasses(target)
                         : std::vector<int32_t>{}) {
      const std::vector<int32_t> sc = TaskClasses(source);
      if (std::find(sc.begin(), sc.end(), c) != sc.end()) shared.push_back(c);
    }
    if (!shared.empty()) {
      line("", absl::StrCat("  note: shares classes ", ClassesText(shared, spec.DatasetOf(target)),
                            " with its source task"));
    }
  }
  std::vector<std::string> layers;
  for (const LayerSpec& l : spec.source_model.layers) layers.push_back(LayerText(l));
  const auto shapes = InferShapes(spec.source_model);
  line("model",
       absl::StrCat(ShapeToString(spec.source_model.input), " > ", absl::StrJoin(layers, " > ")));
  if (shapes.ok()) {
    line("", absl::StrCat(WithCommas(shapes->parameter_count), " parameters (source model); ",
                          spec.imported ? "output layer replaced per target"
                                        : "output layer added per task"));
  }
  if (spec.imported) {
    // What "reuse k" keeps: the first k of these.
    for (size_t u = 0; u < spec.imported->units.size(); ++u) {
      const bool output = u + 1 == spec.imported->units.size();
      line(u == 0 ? "layers" : "",
           absl::StrCat(output ? "  " : absl::StrCat(u + 1, ": "),
                        spec.imported->units[u].description,
                        output ? "  (output layer: each target gets its own)" : ""));
    }
  } else {
    line("pretrain", PhaseText(spec.pretrain, false));
  }
  line("baseline", absl::StrCat("scratch: ", PhaseText(spec.scratch, false)));
  std::vector<std::string> shown;
  bool first = true;
  for (const ArmSpec& arm : spec.arms) {
    if (arm.schedule.empty() ||
        std::find(shown.begin(), shown.end(), arm.schedule) != shown.end()) {
      continue;
    }
    shown.push_back(arm.schedule);
    std::vector<std::string> phases;
    for (const PhaseSpec& p : arm.phases) phases.push_back(PhaseText(p, true));
    line(first ? "schedules" : "", absl::StrCat(arm.schedule, ": ", absl::StrJoin(phases, " | "),
                                                arm.lr_scale != 1.0 || !arm.optimizer_name.empty()
                                                    ? "  (as in the first arm using it)"
                                                    : ""));
    first = false;
  }
  std::string seeds =
      spec.imported ? absl::StrCat(spec.seeds.count,
                                   " paired seeds, one source model (the imported one); base ",
                                   spec.seeds.base)
                    : absl::StrCat(spec.seeds.count, " paired seeds, ", spec.seeds.source_seeds,
                                   " source model", spec.seeds.source_seeds == 1 ? "" : "s",
                                   " per source task; base ", spec.seeds.base);
  std::vector<std::string> fixed;
  if (spec.seeds.fixed_init) fixed.push_back(absl::StrCat("init=", *spec.seeds.fixed_init));
  if (spec.seeds.fixed_order) fixed.push_back(absl::StrCat("order=", *spec.seeds.fixed_order));
  if (spec.seeds.fixed_subset) fixed.push_back(absl::StrCat("subset=", *spec.seeds.fixed_subset));
  if (!fixed.empty()) absl::StrAppend(&seeds, "; fixed ", absl::StrJoin(fixed, ", "));
  line("seeds", seeds);
  if (spec.seeds.sequential()) {
    line("", absl::StrCat("sequential: ", spec.seeds.min, " seeds first, then ", spec.seeds.step,
                          " more at a time for the arms still open, up to ", spec.seeds.count, " (",
                          plan.later_candidates.size(), " later trials at most)"));
  }
  out += "\n";

  const int pretrain = plan.trials_by_kind.count(TrialKind::kPretrain)
                           ? plan.trials_by_kind.at(TrialKind::kPretrain)
                           : 0;
  const int scratch = plan.trials_by_kind.count(TrialKind::kScratch)
                          ? plan.trials_by_kind.at(TrialKind::kScratch)
                          : 0;
  const int transfer = plan.trials_by_kind.count(TrialKind::kTransfer)
                           ? plan.trials_by_kind.at(TrialKind::kTransfer)
                           : 0;
  line("trials",
       absl::StrCat(WithCommas(static_cast<int64_t>(plan.trials.size())), ": pretrain ", pretrain,
                    ", scratch ", WithCommas(scratch), ", transfer ", WithCommas(transfer)));
  line("arms",
       absl::StrCat(plan.arms.size(), " (each against the scratch baseline, seed by seed, on ",
                    plan.targets.size(), " target", plan.targets.size() == 1 ? "" : "s", ")"));
  size_t width = 0;
  for (const std::string& a : plan.arms) width = std::max(width, a.size());
  const size_t per_row = std::max<size_t>(1, 90 / (width + 2));
  const size_t limit = 60;
  for (size_t i = 0; i < plan.arms.size() && i < limit; i += per_row) {
    std::string row = "  ";
    for (size_t j = i; j < std::min({i + per_row, plan.arms.size(), limit}); ++j) {
      absl::StrAppend(&row, absl::StrFormat("%-*s", static_cast<int>(width + 2), plan.arms[j]));
    }
    while (!row.empty() && row.back() == ' ') row.pop_back();
    line("", row);
  }
  if (plan.arms.size() > limit) {
    line("", absl::StrCat("  ... and ", plan.arms.size() - limit, " more (seedproof plan --json)"));
  }
  auto gflop_of = [&](TrialKind k) {
    return plan.gflop_by_kind.count(k) ? plan.gflop_by_kind.at(k) : 0.0;
  };
  line("compute",
       absl::StrCat("~", Gflop(plan.estimated_gflop), " GFLOP of training arithmetic (pretrain ",
                    Gflop(gflop_of(TrialKind::kPretrain)), ", scratch ",
                    Gflop(gflop_of(TrialKind::kScratch)), ", transfer ",
                    Gflop(gflop_of(TrialKind::kTransfer)), ")"));
  line("", absl::StrFormat("at least %.3g core-seconds at one core's %g GFLOP/s peak; "
                           "real runs take several times longer",
                           plan.estimated_gflop / kCorePeakGflops, kCorePeakGflops));
  return out;
}

nlohmann::json PlanToJson(const Plan& plan, bool include_trials) {
  auto count = [&](TrialKind k) {
    return plan.trials_by_kind.count(k) ? plan.trials_by_kind.at(k) : 0;
  };
  auto gflop = [&](TrialKind k) {
    return plan.gflop_by_kind.count(k) ? plan.gflop_by_kind.at(k) : 0.0;
  };
  nlohmann::json j;
  j["sweep"] = plan.sweep;
  j["trials"] = plan.trials.size();
  j["trials_by_kind"] = {{"pretrain", count(TrialKind::kPretrain)},
                         {"scratch", count(TrialKind::kScratch)},
                         {"transfer", count(TrialKind::kTransfer)}};
  j["arms"] = plan.arms;
  j["targets"] = plan.targets;
  j["datasets"] = nlohmann::json::array();
  for (const DatasetSpec& d : plan.datasets) {
    j["datasets"].push_back({{"name", d.name},
                             {"format", DatasetFormatName(d.format)},
                             {"path", d.path},
                             {"sha256", d.sha256},
                             {"example_shape", d.example_shape},
                             {"validation", d.validation},
                             {"ship", d.ship}});
  }
  if (plan.imported) {
    nlohmann::json units = nlohmann::json::array();
    for (const OnnxUnit& u : plan.imported->units) units.push_back(u.description);
    j["imported_model"] = {{"path", plan.imported->path},
                           {"sha256", plan.imported->sha256},
                           {"opset", plan.imported->opset},
                           {"producer", plan.imported->producer},
                           {"layers", units}};
  }
  j["seeds"] = plan.seeds;
  j["source_seeds"] = plan.source_seeds;
  j["estimated_gflop"] = plan.estimated_gflop;
  j["gflop_by_kind"] = {{"pretrain", gflop(TrialKind::kPretrain)},
                        {"scratch", gflop(TrialKind::kScratch)},
                        {"transfer", gflop(TrialKind::kTransfer)}};
  if (include_trials) {
    nlohmann::json dag = nlohmann::json::array();
    for (const TrialSpec& t : plan.trials) {
      nlohmann::json node = {{"id", t.id},
                             {"kind", TrialKindName(t.kind)},
                             {"arm", t.arm},
                             {"target", t.target},
                             {"seed", t.seed_index}};
      if (!t.source_trial.empty()) node["source_trial"] = t.source_trial;
      if (!t.source_onnx.empty()) node["source_onnx"] = t.source_onnx;
      dag.push_back(std::move(node));
    }
    j["dag"] = std::move(dag);
  }
  return j;
}

}  // namespace seedproof
