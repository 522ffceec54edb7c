#include "bench/mpi_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "backends/backend.h"
#include "data/dataset.h"
#include "experiments/geron.h"
#include "experiments/training.h"
#include "nlohmann/json.hpp"
#include "worker/mpi.h"

namespace seedproof {

absl::Status RunMpiBench(const MpiBenchOptions& options) {
  auto group = MpiGroup::Join();
  if (!group.ok()) return group.status();
  const int rank = (*group)->rank(), ranks = (*group)->size();
  (*group)->set_bucket_floats(options.bucket_kib * 1024 / static_cast<int64_t>(sizeof(float)));

  auto fashion =
      options.dataset_dir.empty() ? LoadFashionMnist() : LoadFashionMnist(options.dataset_dir);
  if (!fashion.ok()) return fashion.status();
  auto task_a = GeronTaskA(*fashion);
  if (!task_a.ok()) return task_a.status();
  Dataset train = task_a->train;
  if (options.examples > 0 && options.examples < train.size()) {
    train = *FirstN(task_a->train, options.examples);
  }
  auto backend = MakeBackend(options.backend, {.threads = options.threads});
  if (!backend.ok()) return backend.status();
  auto make_model = [&]() { return (*backend)->Create(GeronModelA(), options.seed); };

  // Warm-up on every rank: primitives for the local batch sizes, caches.
  {
    auto model = make_model();
    if (!model.ok()) return model.status();
    const Dataset warmup = *FirstN(train, std::min<int64_t>(train.size(), 20 * options.batch));
    if (auto s = TrainEpoch(**model, warmup, options.batch, 1); !s.ok()) return s.status();
  }

  // One rank alone, the reference for the scaling efficiency (same run, same machine).
  double single = 0;
  if (ranks == 1 || rank == 0) {
    auto model = make_model();
    if (!model.ok()) return model.status();
    auto stats = TrainEpoch(**model, train, options.batch, options.seed + 1);
    if (!stats.ok()) return stats.status();
    single = static_cast<double>(stats->examples) / stats->seconds;
  }
  (*group)->Barrier();

  auto model = make_model();
  if (!model.ok()) return model.status();
  (*model)->SetGradientReducer(&(*group)->reducer());
  EpochOptions parallel;
  parallel.replica = rank;
  parallel.replicas = ranks;
  parallel.reducer = &(*group)->reducer();
  for (int e = 1; e <= options.epochs; ++e) {
    (*group)->ResetTiming();
    auto stats = TrainEpoch(**model, train, options.batch, options.seed + e, parallel);
    if (!stats.ok()) return stats.status();
    if (rank != 0) continue;
    const double per_s = static_cast<double>(stats->examples) / stats->seconds;
    // The epoch's reductions: one per step and one for the epoch's loss.
    const double allreduce_ms = 1000 * (*group)->allreduce_seconds() /
                                static_cast<double>(std::max<int64_t>(1, stats->steps));
    // Of that, the time in Reduce: what an overlapped pass left to do after it.
    const double after_backward_ms = 1000 * (*group)->after_pass_seconds() /
                                     static_cast<double>(std::max<int64_t>(1, stats->steps));
    nlohmann::ordered_json line = {
        {"ranks", ranks},
        {"batch", options.batch},
        {"epoch", e},
        {"train_loss", stats->loss},
        {"train_accuracy", stats->accuracy},
        {"samples", stats->examples},
        {"seconds", stats->seconds},
        {"samples_per_s", per_s},
        {"allreduce_ms_per_step", allreduce_ms},
        {"after_backward_ms_per_step", after_backward_ms},
        {"single_rank_samples_per_s", single},
        {"efficiency", per_s / (ranks * single)},
        {"bucket_kib", options.bucket_kib},
        {"overlapped_share", (*group)->overlapped_share()},
    };
    std::printf("%s\n", line.dump().c_str());
    std::fflush(stdout);
  }
  // The reduction alone, with no training around it: the floor of a step's
  // communication on this machine (the median of 200 on a buffer the size of
  // every gradient), and the speedup over one rank that floor would still allow if
  // each rank's half of the compute took exactly half the time.
  if (ranks > 1) {
    std::vector<float> gradients((*model)->parameters().size(), 1.0f);
    std::vector<double> ms;
    for (int i = 0; i < 200; ++i) {
      (*group)->Barrier();
      const auto start = std::chrono::steady_clock::now();
      auto reduced = (*group)->reducer().Reduce(gradients, options.batch / ranks);
      if (!reduced.ok()) return reduced.status();
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count());
    }
    std::nth_element(ms.begin(), ms.begin() + 100, ms.end());
    if (rank == 0) {
      const double step_ms = 1000.0 * options.batch / single;
      nlohmann::ordered_json line = {
          {"ranks", ranks},
          {"bytes", gradients.size() * sizeof(float)},
          {"bare_allreduce_ms", ms[100]},
          {"single_rank_step_ms", step_ms},
          {"speedup_bound", step_ms / (step_ms / ranks + ms[100])},
      };
      std::printf("%s\n", line.dump().c_str());
      std::fflush(stdout);
    }
  }
  // Every rank holds the same weights: rank 0 evaluates.
  if (rank == 0) {
    const Dataset& test = task_a->test;
    auto eval = EvaluateOn(**model, test);
    if (!eval.ok()) return eval.status();
    nlohmann::ordered_json line = {
        {"ranks", ranks},
        {"test_accuracy", eval->accuracy},
        {"test_correct", static_cast<int64_t>(std::llround(eval->accuracy * test.size()))},
        {"test_examples", test.size()},
    };
    std::printf("%s\n", line.dump().c_str());
    std::fflush(stdout);
  }
  (*group)->Barrier();
  return absl::OkStatus();
}

}  // namespace seedproof
