#include "bench/cache_bench.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "experiments/plan.h"
#include "experiments/sweep_parse.h"
#include "experiments/trial.h"
#include "nlohmann/json.hpp"

namespace seedproof {
namespace {

namespace fs = std::filesystem;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

absl::Status RunCacheBench(const CacheBenchOptions& options) {
  std::vector<SpecError> errors;
  auto spec = ParseSweepSpec(options.spec_path, &errors);
  if (!spec.ok()) return spec.status();
  spec->seeds.count = 1;
  spec->seeds.source_seeds = 1;  // the one seed's source model
  const Plan plan = ExpandSweep(*spec);
  const TrialSpec* pretrain = nullptr;
  const TrialSpec* transfer = nullptr;
  for (const TrialSpec& t : plan.trials) {
    if (t.kind == TrialKind::kPretrain) pretrain = &t;
    if (t.kind == TrialKind::kTransfer && t.arm == "reuse5/geron/dense") transfer = &t;
  }
  if (!pretrain || !transfer) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.spec_path, ": no reuse5/geron/dense transfer arm"));
  }
  // The phase under test, alone: the trial's first phase (head only).
  TrialSpec frozen = *transfer;
  frozen.phases.resize(1);
  if (frozen.phases[0].train.kind != TrainSelection::Kind::kHead) {
    return absl::InvalidArgumentError(
        "the geron schedule's first phase does not train the head only");
  }

  auto backend = MakeBackend(options.backend, {.threads = options.threads});
  if (!backend.ok()) return backend.status();
  // A source model with model A's shape. Timing does not depend on the weights'
  // values, so it is not pretrained (that would take a minute and measure nothing).
  const fs::path dir = fs::temp_directory_path() / "seedproof_cache_bench";
  fs::create_directories(dir);
  DirectoryArtifactStore store(dir.string());
  auto source = (*backend)->Create(pretrain->model, pretrain->seeds.init);
  if (!source.ok()) return source.status();
  if (auto sha = store.Put(pretrain->id, **source); !sha.ok()) return sha.status();

  TrialCache data_cache;  // keeps the dataset loaded across runs
  auto time_trial = [&](TrialCache& cache, bool feature_cache) -> absl::StatusOr<double> {
    TrialContext ctx;
    ctx.backend = backend->get();
    ctx.artifacts = &store;
    ctx.cache = &cache;
    ctx.threads = options.threads;
    ctx.feature_cache = feature_cache;
    auto result = RunTrial(frozen, ctx);
    if (!result.ok()) return result.status();
    return result->phase_seconds.at(0);
  };
  // Untimed: loads the dataset and builds the primitives of every batch size.
  if (auto warm = time_trial(data_cache, false); !warm.ok()) return warm.status();

  std::vector<double> uncached, cold, warm;
  for (int r = 0; r < options.repeats; ++r) {
    auto off = time_trial(data_cache, false);
    if (!off.ok()) return off.status();
    uncached.push_back(*off);
    TrialCache fresh;  // empty prefix cache; the dataset is loaded again, untimed
    if (auto s = fresh.Data(frozen.dataset); !s.ok()) return s.status();
    if (auto s = fresh.Splits(frozen.dataset, frozen.task, frozen.seeds.subset, frozen.model.input);
        !s.ok()) {
      return s.status();
    }
    auto first = time_trial(fresh, true);
    if (!first.ok()) return first.status();
    cold.push_back(*first);
    auto again = time_trial(fresh, true);
    if (!again.ok()) return again.status();
    warm.push_back(*again);
  }
  const double base = Median(uncached);
  const std::string phase =
      absl::StrCat(transfer->arm, " phase 1: ", frozen.phases[0].epochs, " epochs, head only, ",
                   transfer->task.train_size, " training images");
  for (auto [cached, state, times] :
       {std::tuple<bool, const char*, std::vector<double>*>{false, "none", &uncached},
        {true, "cold", &cold},
        {true, "warm", &warm}}) {
    const double seconds = Median(*times);
    nlohmann::ordered_json line = {
        {"phase", phase},
        {"cached", cached},
        {"cache_state", state},
        {"seconds", seconds},
        {"speedup", base / seconds},
        {"threads", options.threads},
        {"backend", options.backend},
        {"repeats", options.repeats},
    };
    std::printf("%s\n", line.dump().c_str());
  }
  std::fflush(stdout);
  fs::remove_all(dir);
  return absl::OkStatus();
}

}  // namespace seedproof
