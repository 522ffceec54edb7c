#include "cli/demo.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "backends/backend.h"
#include "backends/random.h"
#include "experiments/geron.h"
#include "experiments/training.h"

namespace seedproof {

absl::Status RunDemo(const DemoOptions& o) {
  auto data = o.dataset_dir.empty() ? LoadFashionMnist() : LoadFashionMnist(o.dataset_dir);
  if (!data.ok()) return data.status();
  auto task = GeronTaskA(*data);
  if (!task.ok()) return task.status();
  auto backend = MakeBackend(o.backend, {.threads = o.threads});
  if (!backend.ok()) return backend.status();
  auto model = (*backend)->Create(GeronModelA(), StreamSeed(o.seed, /*init=*/1));
  if (!model.ok()) return model.status();
  if (auto s = (*model)->SetOptimizer({.kind = OptimizerKind::kSgd, .learning_rate = 1e-3f});
      !s.ok()) {
    return s;
  }

  std::printf(
      "Géron's model A on Fashion-MNIST task A: %lld training, %lld validation, %lld test "
      "images; backend %s, %d thread(s), batch %lld, SGD lr 1e-3, seed %llu\n",
      static_cast<long long>(task->train.size()), static_cast<long long>(task->validation.size()),
      static_cast<long long>(task->test.size()), (*backend)->name().c_str(), o.threads,
      static_cast<long long>(o.batch), static_cast<unsigned long long>(o.seed));
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    auto stats = TrainEpoch(**model, task->train, o.batch, StreamSeed(o.seed, /*order=*/2, epoch));
    if (!stats.ok()) return stats.status();
    if (!stats->finite) {
      return absl::AbortedError(
          absl::StrCat("training diverged in epoch ", epoch, " (loss is not finite)"));
    }
    auto val = EvaluateOn(**model, task->validation);
    if (!val.ok()) return val.status();
    std::printf(
        "epoch %2d/%d  loss %.4f  accuracy %.4f  val_loss %.4f  val_accuracy %.4f  "
        "%.0f samples/s\n",
        epoch, o.epochs, stats->loss, stats->accuracy, val->loss, val->accuracy,
        static_cast<double>(stats->examples) / stats->seconds);
    std::fflush(stdout);
  }
  auto test = EvaluateOn(**model, task->test);
  if (!test.ok()) return test.status();
  std::printf("test loss %.4f  test accuracy %.4f (%lld images)\n", test->loss, test->accuracy,
              static_cast<long long>(test->examples));
  if (!o.save_path.empty()) {
    if (auto s = (*model)->Save(o.save_path); !s.ok()) return s;
    std::printf("model saved to %s\n", o.save_path.c_str());
  }
  return absl::OkStatus();
}

}  // namespace seedproof
