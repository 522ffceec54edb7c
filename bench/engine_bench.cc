#include "bench/engine_bench.h"

#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "backends/backend.h"
#include "data/dataset.h"
#include "experiments/geron.h"
#include "experiments/plan.h"
#include "experiments/sweep_parse.h"
#include "experiments/training.h"
#include "nlohmann/json.hpp"

namespace seedproof {
namespace {

// Floating-point operations of one training example of `model` as it stands:
// plan.h's count from its lowest trainable layer.
double TrainingFlopsPerExample(const Model& model) {
  size_t lowest = static_cast<size_t>(model.num_layers());
  for (int l = model.num_layers() - 1; l >= 0; --l) {
    if (model.spec().layers[l].has_weights() && model.trainable(l)) lowest = static_cast<size_t>(l);
  }
  return TrainingFlopsPerExample(model.spec(), lowest, /*first_computed=*/0);
}

// What the benchmark trains: model A, or a spec's source model.
struct BenchModel {
  std::string name = "geron_a";
  ModelSpec spec = GeronModelA();
  OptimizerSpec optimizer;  // SGD(lr=1e-3) for model A
};

absl::StatusOr<BenchModel> ChooseModel(const EngineBenchOptions& options) {
  BenchModel model;
  if (options.spec_path.empty()) return model;
  auto sweep = ParseSweepSpec(options.spec_path);
  if (!sweep.ok()) return sweep.status();
  if (sweep->source_model.input != Shape{28, 28, 1} || sweep->source_model.layers.empty() ||
      sweep->source_model.layers.back().units != 8) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.spec_path, ": model: the engine benchmark trains on task A, so the ",
                     "source model must take [28, 28, 1] inputs and end in 8 units"));
  }
  model.name = std::filesystem::path(options.spec_path).stem().string();
  model.spec = sweep->source_model;
  model.optimizer = sweep->pretrain.optimizer;
  return model;
}

}  // namespace

absl::Status RunEngineBench(const EngineBenchOptions& options) {
  auto chosen = ChooseModel(options);
  if (!chosen.ok()) return chosen.status();
  auto fashion =
      options.dataset_dir.empty() ? LoadFashionMnist() : LoadFashionMnist(options.dataset_dir);
  if (!fashion.ok()) return fashion.status();
  auto task_a = GeronTaskA(*fashion);
  if (!task_a.ok()) return task_a.status();
  if (options.examples > 0 && options.examples < task_a->train.size()) {
    auto first = FirstN(task_a->train, options.examples);
    if (!first.ok()) return first.status();
    task_a->train = *std::move(first);
  }

  for (int threads : options.threads) {
    auto backend = MakeBackend(options.backend, {.threads = threads});
    if (!backend.ok()) return backend.status();
    for (bool frozen : options.frozen) {
      for (int64_t batch : options.batches) {
        auto model = (*backend)->Create(chosen->spec, /*seed=*/42);
        if (!model.ok()) return model.status();
        if (auto s = (*model)->SetOptimizer(chosen->optimizer); !s.ok()) return s;
        if (frozen) {
          for (int l = 0; l + 1 < (*model)->num_layers(); ++l) {
            if (auto s = (*model)->SetTrainable(l, false); !s.ok()) return s;
          }
        }
        // A short warm-up builds the primitives for this batch size and warms caches.
        const Dataset warmup =
            *FirstN(task_a->train, std::min<int64_t>(task_a->train.size(), 20 * batch));
        if (auto s = TrainEpoch(**model, warmup, batch, 1); !s.ok()) return s.status();

        double seconds = 0.0;
        int64_t samples = 0;
        for (int e = 0; e < options.epochs; ++e) {
          auto stats = TrainEpoch(**model, task_a->train, batch, 100 + e);
          if (!stats.ok()) return stats.status();
          seconds += stats->seconds;
          samples += stats->examples;
        }
        const double per_s = static_cast<double>(samples) / seconds;
        nlohmann::ordered_json line = {
            {"model", chosen->name},
            {"backend", options.backend},
            {"batch", batch},
            {"threads", threads},
            {"frozen", frozen},
            {"samples", samples},
            {"seconds", seconds},
            {"samples_per_s", per_s},
            {"gflops", per_s * TrainingFlopsPerExample(**model) / 1e9},
        };
        std::printf("%s\n", line.dump().c_str());
        std::fflush(stdout);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace seedproof
