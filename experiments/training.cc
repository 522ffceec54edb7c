#include "experiments/training.h"

#include <array>
#include <chrono>
#include <cmath>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/random.h"

namespace seedproof {

absl::StatusOr<EpochStats> TrainEpoch(Model& model, const Dataset& data, int64_t batch_size,
                                      uint64_t order_seed, const EpochOptions& options) {
  if (batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch_size must be >= 1, got ", batch_size));
  }
  const int64_t replicas = options.replicas, replica = options.replica;
  if (replicas < 1 || replica < 0 || replica >= replicas ||
      (replicas > 1 && options.reducer == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat("replica ", replica, " of ", replicas,
                                                   ": not a part of the batch (or no reducer)"));
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
  for (int64_t global_first = 0; global_first < n; global_first += batch_size) {
    const int64_t global_m = std::min(batch_size, n - global_first);
    // This replica's part of the global batch.
    const int64_t first = global_first + global_m * replica / replicas;
    const int64_t m = global_first + global_m * (replica + 1) / replicas - first;
    if (m == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("a batch of ", global_m, " examples cannot be split across ", replicas,
                       " replicas (a smaller count of replicas, or a larger batch)"));
    }
    data.CopyRows(order.data() + first, m, x.data());
    for (int64_t i = 0; i < m; ++i) y[i] = data.y[order[first + i]];
    int64_t hits = 0;
    auto loss = model.TrainStep(x.data(), y.data(), m, &hits);
    if (!loss.ok()) return loss.status();
    ++stats.steps;
    stats.examples += m;
    if (options.on_step) {
      const auto now = std::chrono::steady_clock::now();
      options.on_step(std::chrono::duration<double>(now - step_start).count());
      step_start = now;
    }
    if (!std::isfinite(*loss)) {
      stats.finite = false;
      if (replicas == 1) break;
    }
    loss_sum += static_cast<double>(*loss) * static_cast<double>(m);
    correct += hits;
  }
  if (replicas > 1) {
    // One more reduction: the epoch's loss, hits and finiteness over every replica.
    std::array<float, 3> sums = {static_cast<float>(loss_sum), static_cast<float>(correct),
                                 stats.finite ? 0.0f : 1.0f};
    auto total = options.reducer->Reduce(sums, stats.examples);
    if (!total.ok()) return total.status();
    loss_sum = sums[0];
    correct = static_cast<int64_t>(sums[1]);
    stats.finite = sums[2] == 0.0f && std::isfinite(sums[0]);
    stats.examples = *total;
  }
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (stats.examples > 0) {
    stats.loss = loss_sum / static_cast<double>(stats.examples);
    stats.accuracy = static_cast<double>(correct) / static_cast<double>(stats.examples);
  }
  return stats;
}

namespace {
// A multiple of the backend's evaluation batch (1,024) and feature chunk (256).
constexpr int64_t kChunk = 1024;
}  // namespace

absl::StatusOr<EvalResult> EvaluateOn(Model& model, const Dataset& data) {
  const int64_t n = data.size(), width = data.width();
  std::vector<float> x(std::min(n, kChunk) * width);
  EvalResult total;
  for (int64_t first = 0; first < n; first += kChunk) {
    const int64_t m = std::min(kChunk, n - first);
    data.CopyRange(first, m, x.data());
    auto part = model.Evaluate(x.data(), data.y.data() + first, m, kChunk);
    if (!part.ok()) return part.status();
    total.loss_sum += part->loss_sum;
    total.correct += part->correct;
  }
  total.examples = n;
  if (n > 0) {
    total.loss = total.loss_sum / static_cast<double>(n);
    total.accuracy = static_cast<double>(total.correct) / static_cast<double>(n);
  }
  return total;
}

absl::StatusOr<Dataset> FeaturesOf(Model& model, const Dataset& data, int layers) {
  if (layers < 1 || layers > static_cast<int>(model.shapes().outputs.size())) {
    return absl::InvalidArgumentError(absl::StrCat("FeaturesOf: no layer ", layers));
  }
  Dataset out;
  out.example_shape = model.shapes().outputs[layers - 1];
  out.num_classes = data.num_classes;
  out.y = data.y;
  const int64_t n = data.size(), width = data.width(), out_width = out.width();
  out.x.resize(n * out_width);
  std::vector<float> x(std::min(n, kChunk) * width);
  for (int64_t first = 0; first < n; first += kChunk) {
    const int64_t m = std::min(kChunk, n - first);
    data.CopyRange(first, m, x.data());
    if (auto s = model.Features(x.data(), m, layers, out.x.data() + first * out_width); !s.ok()) {
      return s;
    }
  }
  return out;
}

}  // namespace seedproof
