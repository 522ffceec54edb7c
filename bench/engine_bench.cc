#include "bench/engine_bench.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "backends/backend.h"
#include "data/dataset.h"
#include "experiments/geron.h"
#include "experiments/plan.h"
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

}  // namespace

absl::Status RunEngineBench(const EngineBenchOptions& options) {
  auto fashion =
      options.dataset_dir.empty() ? LoadFashionMnist() : LoadFashionMnist(options.dataset_dir);
  if (!fashion.ok()) return fashion.status();
  auto task_a = GeronTaskA(*fashion);
  if (!task_a.ok()) return task_a.status();

  for (int threads : options.threads) {
    auto backend = MakeBackend(options.backend, {.threads = threads});
    if (!backend.ok()) return backend.status();
    for (bool frozen : options.frozen) {
      for (int64_t batch : options.batches) {
        auto model = (*backend)->Create(GeronModelA(), /*seed=*/42);
        if (!model.ok()) return model.status();
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
            {"model", "geron_a"},
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
