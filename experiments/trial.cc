#include "experiments/trial.h"

#include <chrono>
#include <cmath>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/random.h"
#include "data/file_bytes.h"
#include "experiments/fingerprint.h"
#include "experiments/linear_head.h"
#include "experiments/plan.h"
#include "experiments/results.h"
#include "experiments/training.h"
#include "experiments/trial_json.h"
#include "onnx_io/onnx_model.h"

namespace seedproof {
namespace {

// Purposes of streams derived from a trial's seeds.
constexpr uint64_t kTopModelStream = 3;

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

absl::StatusOr<std::string> FileSha256(const std::string& path) {
  auto bytes = ReadFileString(path);
  if (!bytes.ok()) return bytes.status();
  return Sha256Hex(*bytes);
}

// A task's splits are determined by the dataset's content and preprocessing and
// the task's view: the dataset's trial-spec JSON carries all of those.
std::string TaskKey(const DatasetSpec& d, const TaskSpec& t, uint64_t subset_seed,
                    const Shape& input) {
  return absl::StrCat(DatasetJsonText(d), "|c", absl::StrJoin(t.classes, ","), "|p",
                      absl::StrJoin(t.positive, ","), "|n", absl::StrJoin(t.negative, ","), "|",
                      t.train_size, "|", static_cast<int>(t.subset), "|",
                      t.subset == TaskSpec::Subset::kRandom ? subset_seed : 0, "|",
                      t.resize_from ? 1 : 0, "|", absl::StrJoin(input, "x"));
}

// Sets which layers of a transfer model train in a phase; returns the lowest
// trainable layer. keep: the reused layers [0, keep) come from the source.
absl::StatusOr<int> SelectTrainable(Model& model, const TrainSelection& sel, int keep) {
  int lowest = 0;  // kAll
  if (sel.kind == TrainSelection::Kind::kHead) {
    lowest = keep;
  } else if (sel.kind == TrainSelection::Kind::kTopReused) {
    // The top `sel.top` dense or conv2d layers of the reused part, and everything
    // above (a batch normalisation after one trains with it: an imported unit is
    // a weight layer with what follows it).
    lowest = keep;
    for (int found = 0; lowest > 0 && found < sel.top;) {
      --lowest;
      const LayerKind kind = model.spec().layers[lowest].kind;
      found += kind == LayerKind::kDense || kind == LayerKind::kConv2D ? 1 : 0;
    }
  }
  for (int l = 0; l < model.num_layers(); ++l) {
    if (auto s = model.SetTrainable(l, l >= lowest); !s.ok()) return s;
  }
  return lowest;
}

absl::Status CopyLayers(const Model& from, int from_first, Model& to, int to_first, int count) {
  for (int i = 0; i < count; ++i) {
    auto w = from.GetWeights(from_first + i);
    if (!w.ok()) return w.status();
    if (auto s = to.SetWeights(to_first + i, *w); !s.ok()) return s;
  }
  return absl::OkStatus();
}

class TrialRunner {
 public:
  TrialRunner(const TrialSpec& trial, TrialContext& context, TrialResult& result)
      : trial_(trial), ctx_(context), result_(result) {}

  absl::Status Run() {
    auto splits = ctx_.cache->Splits(trial_.dataset, trial_.task, trial_.seeds.subset,
                                     trial_.model.input, ctx_.datasets);
    if (!splits.ok()) return splits.status();
    splits_ = *splits;
    std::unique_ptr<Model> model;
    if (trial_.kind == TrialKind::kTransfer) {
      auto source = ctx_.artifacts->Get(SourceKey(trial_), *ctx_.backend,
                                        &result_.provenance.source_model_sha256);
      if (!source.ok()) return source.status();
      const ModelSpec target = TransferModel(trial_);
      const std::vector<LayerSpec> top(target.layers.begin() + trial_.keep_layers,
                                       target.layers.end());
      auto derived = (*source)->Derive(trial_.keep_layers, top, target.loss, trial_.seeds.init);
      if (!derived.ok()) return derived.status();
      model = std::move(*derived);
      if (ctx_.reducer) model->SetGradientReducer(ctx_.reducer);
      if (trial_.head.kind == HeadSpec::Kind::kDense) {
        if (auto s = RunPhases(*model); !s.ok()) return s;
      } else {
        if (auto s = FitConventionalHead(*model); !s.ok()) return s;
      }
    } else {
      auto created = ctx_.backend->Create(trial_.model, trial_.seeds.init);
      if (!created.ok()) return created.status();
      model = std::move(*created);
      if (ctx_.reducer) model->SetGradientReducer(ctx_.reducer);
      if (auto s = RunPhases(*model); !s.ok()) return s;
    }
    if (result_.outcome == TrialOutcome::kDiverged) return absl::OkStatus();

    auto eval = EvaluateOn(*model, splits_->test);
    if (!eval.ok()) return eval.status();
    result_.test_loss = eval->loss;
    result_.test_accuracy = eval->accuracy;
    result_.test_examples = eval->examples;
    if (trial_.kind == TrialKind::kPretrain) {
      auto sha = ctx_.artifacts->Put(trial_.id, *model);
      if (!sha.ok()) return sha.status();
      result_.model_sha256 = *sha;
    }
    if (ctx_.trained_model) *ctx_.trained_model = std::move(model);
    return absl::OkStatus();
  }

 private:
  // Pretrain and scratch train every layer; transfer phases select theirs.
  absl::Status RunPhases(Model& model) {
    const bool transfer = trial_.kind == TrialKind::kTransfer;
    // Layers [0, untouched) still hold the source's weights: no phase trained them.
    int untouched = transfer ? trial_.keep_layers : 0;
    for (size_t p = 0; p < trial_.phases.size(); ++p) {
      const PhaseSpec& phase = trial_.phases[p];
      int lowest = 0;
      if (transfer) {
        auto selected = SelectTrainable(model, phase.train, trial_.keep_layers);
        if (!selected.ok()) return selected.status();
        lowest = *selected;
      }
      bool prefix_has_dropout = false;
      for (int l = 0; l < lowest; ++l) {
        prefix_has_dropout |= model.spec().layers[l].kind == LayerKind::kDropout;
      }
      const auto start = std::chrono::steady_clock::now();
      absl::Status s;
      if (ctx_.feature_cache && lowest > 0 && !prefix_has_dropout) {
        s = TrainTopOnFeatures(model, phase, static_cast<int>(p), lowest, lowest <= untouched);
      } else {
        if (auto o = model.SetOptimizer(phase.optimizer); !o.ok()) return o;
        s = TrainEpochs(model, phase, static_cast<int>(p), splits_->train, splits_->validation);
      }
      result_.phase_seconds.push_back(SecondsSince(start));
      if (!s.ok() || result_.outcome == TrialOutcome::kDiverged) return s;
      untouched = std::min(untouched, lowest);
    }
    return absl::OkStatus();
  }

  absl::Status TrainEpochs(Model& model, const PhaseSpec& phase, int phase_index,
                           const Dataset& train, const Dataset& validation) {
    for (int e = 0; e < phase.epochs; ++e) {
      if (ctx_.should_stop && ctx_.should_stop()) {
        return absl::CancelledError("stopped before an epoch");
      }
      EpochRecord record;
      record.phase = phase_index;
      record.epoch = static_cast<int>(result_.epochs.size()) + 1;
      auto stats = TrainEpoch(model, train, phase.batch_size,
                              StreamSeed(trial_.seeds.order, static_cast<uint64_t>(record.epoch)),
                              {.on_step = ctx_.on_step,
                               .replica = ctx_.replica,
                               .replicas = ctx_.replicas,
                               .reducer = ctx_.reducer});
      if (!stats.ok()) return stats.status();
      if (!stats->finite) {
        result_.outcome = TrialOutcome::kDiverged;
        result_.diverged_epoch = record.epoch;
        return absl::OkStatus();
      }
      auto val = EvaluateOn(model, validation);
      if (!val.ok()) return val.status();
      record.train_loss = stats->loss;
      record.train_accuracy = stats->accuracy;
      record.val_loss = val->loss;
      record.val_accuracy = val->accuracy;
      record.seconds = stats->seconds;
      record.steps = stats->steps;
      record.examples = stats->examples;
      if (!std::isfinite(record.val_loss)) {
        result_.outcome = TrialOutcome::kDiverged;
        result_.diverged_epoch = record.epoch;
        return absl::OkStatus();
      }
      result_.epochs.push_back(record);
      if (ctx_.on_epoch) ctx_.on_epoch(record);
    }
    return absl::OkStatus();
  }

  // The outputs of layers [0, prefix) for the training and validation splits. When the prefix still
  // holds the source's weights they are shared with every trial of this process
  // that reuses the same source, prefix and data view.
  absl::StatusOr<std::shared_ptr<const TaskSplits>> PrefixFeatures(Model& model, int prefix,
                                                                   bool shareable) {
    auto compute = [&]() -> absl::StatusOr<TaskSplits> {
      TaskSplits out;
      // Test metrics come from the whole model after training: no test split here.
      for (auto [from, to] : {std::pair<const Dataset*, Dataset*>{&splits_->train, &out.train},
                              {&splits_->validation, &out.validation}}) {
        auto features = FeaturesOf(model, *from, prefix);
        if (!features.ok()) return features.status();
        *to = *std::move(features);
      }
      return out;
    };
    if (!shareable) {
      auto features = compute();
      if (!features.ok()) return features.status();
      return std::make_shared<const TaskSplits>(std::move(*features));
    }
    const std::string key =
        absl::StrCat(result_.provenance.source_model_sha256, "|", prefix, "|",
                     TaskKey(trial_.dataset, trial_.task, trial_.seeds.subset, trial_.model.input));
    return ctx_.cache->Features(key, compute);
  }

  // A model of layers [prefix, end) with the transfer model's weights, trained on
  // the prefix's cached outputs; its weights are copied back afterwards.
  absl::StatusOr<std::unique_ptr<Model>> TopModel(const Model& model, int prefix) {
    ModelSpec spec;
    spec.input = model.shapes().outputs[prefix - 1];
    spec.layers.assign(model.spec().layers.begin() + prefix, model.spec().layers.end());
    spec.loss = model.spec().loss;
    auto top = ctx_.backend->Create(spec, StreamSeed(trial_.seeds.init, kTopModelStream));
    if (!top.ok()) return top.status();
    const int count = model.num_layers() - prefix;
    if (auto s = CopyLayers(model, prefix, **top, 0, count); !s.ok()) return s;
    for (int l = 0; l < count; ++l) {
      if (auto s = (*top)->SetTrainable(l, model.trainable(prefix + l)); !s.ok()) return s;
    }
    return top;
  }

  absl::Status TrainTopOnFeatures(Model& model, const PhaseSpec& phase, int phase_index, int prefix,
                                  bool shareable) {
    auto features = PrefixFeatures(model, prefix, shareable);
    if (!features.ok()) return features.status();
    auto top = TopModel(model, prefix);
    if (!top.ok()) return top.status();
    if (auto s = (*top)->SetOptimizer(phase.optimizer); !s.ok()) return s;
    if (ctx_.reducer) (*top)->SetGradientReducer(ctx_.reducer);
    if (auto s =
            TrainEpochs(**top, phase, phase_index, (*features)->train, (*features)->validation);
        !s.ok()) {
      return s;
    }
    return CopyLayers(**top, 0, model, prefix, model.num_layers() - prefix);
  }

  // Logistic regression or a linear SVM fitted on the frozen reused layers' outputs
  // (flattened: only weightless layers may sit between them and the head).
  absl::Status FitConventionalHead(Model& model) {
    const auto start = std::chrono::steady_clock::now();
    const int keep = trial_.keep_layers;
    const int head_layer = model.num_layers() - 1;
    bool weightless_between = keep >= 1;
    for (int l = keep; l < head_layer; ++l) {
      weightless_between &= !model.spec().layers[l].has_weights();
    }
    if (!weightless_between) {
      return absl::InvalidArgumentError(
          "a logistic or linear_svm head sits on at least one reused layer, with no new layers");
    }
    for (int l = 0; l < model.num_layers(); ++l) {
      if (auto s = model.SetTrainable(l, l == head_layer); !s.ok()) return s;
    }
    auto features = PrefixFeatures(model, head_layer, /*shareable=*/true);
    if (!features.ok()) return features.status();
    const Dataset& train = (*features)->train;
    auto head =
        FitLinearHead(trial_.head.kind == HeadSpec::Kind::kLogistic ? LinearHeadKind::kLogistic
                                                                    : LinearHeadKind::kLinearSvm,
                      train.x.data(), train.y.data(), train.size(),
                      ElementCount(train.example_shape), trial_.task.num_classes(), trial_.head.c);
    if (!head.ok()) return head.status();
    const Shape kernel_shape = {head->inputs, head->outputs};
    if (auto s = model.SetWeights(head_layer,
                                  {{kernel_shape, head->kernel}, {{head->outputs}, head->bias}});
        !s.ok()) {
      return s;
    }
    auto top = TopModel(model, head_layer);
    if (!top.ok()) return top.status();
    EpochRecord record;
    record.epoch = 1;
    auto on_train = EvaluateOn(**top, train);
    auto on_val = EvaluateOn(**top, (*features)->validation);
    if (!on_train.ok()) return on_train.status();
    if (!on_val.ok()) return on_val.status();
    record.train_loss = on_train->loss;
    record.train_accuracy = on_train->accuracy;
    record.val_loss = on_val->loss;
    record.val_accuracy = on_val->accuracy;
    result_.epochs.push_back(record);
    result_.phase_seconds.push_back(SecondsSince(start));
    if (ctx_.on_epoch) ctx_.on_epoch(record);
    return absl::OkStatus();
  }

  const TrialSpec& trial_;
  TrialContext& ctx_;
  TrialResult& result_;
  std::shared_ptr<const TaskSplits> splits_;
};

}  // namespace

std::string DirectoryArtifactStore::PathOf(const std::string& key) const {
  if (IsImportedSourceKey(key)) {
    return absl::StrCat(dir_, "/", key.substr(kImportedSourcePrefix.size()), ".onnx");
  }
  return absl::StrCat(dir_, "/", key, ".spm");
}

absl::StatusOr<std::string> DirectoryArtifactStore::Put(const std::string& trial_id,
                                                        const Model& model) {
  const std::string path = PathOf(trial_id);
  if (auto s = model.Save(path); !s.ok()) return s;
  return FileSha256(path);
}

absl::StatusOr<std::unique_ptr<Model>> DirectoryArtifactStore::Get(const std::string& key,
                                                                   Backend& backend,
                                                                   std::string* sha256) {
  const std::string path = PathOf(key);
  auto bytes = ReadFileString(path);
  if (!bytes.ok()) {
    return absl::NotFoundError(
        absl::StrCat("source model ", key, " is missing: ", bytes.status().message()));
  }
  if (sha256) *sha256 = Sha256Hex(*bytes);
  return LoadSourceModel(backend, key, *bytes, path);
}

absl::Status DirectoryArtifactStore::Keep(const std::string& key, const std::string& bytes) {
  const std::string path = PathOf(key);
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return absl::InternalError(absl::StrCat(path, ": cannot write"));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Model>> LoadSourceModel(Backend& backend, const std::string& key,
                                                       const std::string& bytes,
                                                       const std::string& name) {
  if (!IsImportedSourceKey(key)) return backend.LoadBytes(bytes, name);
  auto graph = ReadOnnx(bytes, name);
  if (!graph.ok()) return graph.status();
  return MakeOnnxModel(backend, *graph);
}

template <typename T, typename Build>
absl::StatusOr<std::shared_ptr<const T>> TrialCache::FindOrBuild(
    std::map<std::string, std::shared_ptr<const T>>& entries, const std::string& key,
    const Build& build, bool* built) {
  *built = false;
  std::unique_lock<std::mutex> lock(mu_);
  ready_.wait(lock, [&] { return !building_.contains(key); });
  if (auto it = entries.find(key); it != entries.end()) return it->second;
  building_.insert(key);
  lock.unlock();
  absl::StatusOr<T> value = build();
  lock.lock();
  building_.erase(key);
  ready_.notify_all();
  if (!value.ok()) return value.status();
  *built = true;
  return entries.emplace(key, std::make_shared<const T>(*std::move(value))).first->second;
}

absl::StatusOr<std::shared_ptr<const LoadedDataset>> TrialCache::Data(const DatasetSpec& spec,
                                                                      DatasetSource* source) {
  const std::string key =
      spec.sha256.empty() ? absl::StrCat("path|", DatasetFormatName(spec.format), "|", spec.path)
                          : absl::StrCat("sha256|", spec.sha256);
  bool built;
  return FindOrBuild(
      data_, "data|" + key,
      [&]() -> absl::StatusOr<LoadedDataset> {
        if (spec.ship && source != nullptr) return source->Fetch(spec);
        auto loaded = LoadDataset(spec);
        if (!loaded.ok()) return loaded.status();
        if (auto s = CheckDatasetHash(spec, loaded->sha256); !s.ok()) return s;
        return loaded;
      },
      &built);
}

absl::StatusOr<std::shared_ptr<const TaskSplits>> TrialCache::Splits(const DatasetSpec& dataset,
                                                                     const TaskSpec& task,
                                                                     uint64_t subset_seed,
                                                                     const Shape& model_input,
                                                                     DatasetSource* source) {
  auto data = Data(dataset, source);
  if (!data.ok()) return data.status();
  bool built;
  return FindOrBuild(
      splits_, TaskKey(dataset, task, subset_seed, model_input),
      [&] {
        return BuildTaskSplits(std::shared_ptr<const TrainTest>(*data, &(*data)->data), dataset,
                               task, subset_seed, model_input);
      },
      &built);
}

absl::StatusOr<std::shared_ptr<const TaskSplits>> TrialCache::Features(
    const std::string& key, const std::function<absl::StatusOr<TaskSplits>()>& compute) {
  bool built;
  auto features = FindOrBuild(features_, "features|" + key, compute, &built);
  if (!features.ok()) return features;
  std::lock_guard<std::mutex> lock(mu_);
  ++(built ? feature_misses_ : feature_hits_);
  return features;
}

bool SplitsAcrossReplicas(const TrialSpec& trial) {
  for (const auto* layers : {&trial.model.layers, &trial.new_layers}) {
    for (const LayerSpec& layer : *layers) {
      if (layer.kind == LayerKind::kDropout || layer.kind == LayerKind::kBatchNorm) return false;
    }
  }
  return true;
}

absl::StatusOr<TrialResult> RunTrial(const TrialSpec& trial, TrialContext& context) {
  if (!context.backend || !context.artifacts || !context.cache) {
    return absl::InvalidArgumentError("a trial needs a backend, an artifact store and a cache");
  }
  if (context.replicas > 1 && !SplitsAcrossReplicas(trial)) {
    // Refused rather than silently different from one process's results.
    return absl::UnimplementedError(absl::StrCat(
        "trial ", trial.id,
        ": dropout and batch normalisation layers are not supported across replicas yet"));
  }
  const auto start = std::chrono::steady_clock::now();
  TrialResult result = ResultFor(trial);
  result.provenance.threads = context.threads;
  result.provenance.cpu_isa = CpuIsa();
  result.provenance.backend = context.backend->name();
  TrialRunner runner(trial, context, result);
  if (auto s = runner.Run(); !s.ok()) {
    return absl::Status(
        s.code(), absl::StrCat("trial ", trial.id, " (", TrialKindName(trial.kind), ", ", trial.arm,
                               ", seed ", trial.seed_index, "): ", s.message()));
  }
  result.wall_seconds = SecondsSince(start);
  return result;
}

}  // namespace seedproof
