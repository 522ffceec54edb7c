#include "experiments/training.h"

#include <chrono>
#include <cmath>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/random.h"

namespace seedproof {

absl::StatusOr<EpochStats> TrainEpoch(Model& model, const Dataset& data, int64_t batch_size,
                                      uint64_t order_seed,
                                      const std::function<void(double)>& on_step) {
  if (batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch_size must be >= 1, got ", batch_size));
  }
  const int64_t n = data.size();
  const int64_t width = ElementCount(data.example_shape);
  if (ElementCount(model.spec().input) != width) {
    return absl::InvalidArgumentError(
        absl::StrCat("the data's examples are ", ShapeToString(data.example_shape),
                     " but the model takes ", ShapeToString(model.spec().input)));
  }
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  Rng rng(order_seed);
  for (int64_t i = n - 1; i > 0; --i) {
    std::swap(order[i], order[rng.Below(static_cast<uint64_t>(i) + 1)]);
  }

  EpochStats stats;
  std::vector<float> x(batch_size * width);
  std::vector<int32_t> y(batch_size);
  double loss_sum = 0.0;
  int64_t correct = 0;
  const auto start = std::chrono::steady_clock::now();
  auto step_start = start;
  for (int64_t first = 0; first < n; first += batch_size) {
    const int64_t m = std::min(batch_size, n - first);
    for (int64_t i = 0; i < m; ++i) {
      const int64_t src = order[first + i];
      std::copy_n(data.x.data() + src * width, width, x.data() + i * width);
      y[i] = data.y[src];
    }
    int64_t hits = 0;
    auto loss = model.TrainStep(x.data(), y.data(), m, &hits);
    if (!loss.ok()) return loss.status();
    ++stats.steps;
    stats.examples += m;
    if (on_step) {
      const auto now = std::chrono::steady_clock::now();
      on_step(std::chrono::duration<double>(now - step_start).count());
      step_start = now;
    }
    if (!std::isfinite(*loss)) {
      stats.finite = false;
      break;
    }
    loss_sum += static_cast<double>(*loss) * static_cast<double>(m);
    correct += hits;
  }
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (stats.examples > 0) {
    stats.loss = loss_sum / static_cast<double>(stats.examples);
    stats.accuracy = static_cast<double>(correct) / static_cast<double>(stats.examples);
  }
  return stats;
}

}  // namespace seedproof
