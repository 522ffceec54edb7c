// The epoch loop: shuffle, gather batches, train, measure. The trial procedure
// (and the engine benchmark) run epochs through this one function.
#pragma once

#include <cstdint>
#include <functional>

#include "absl/status/statusor.h"
#include "backends/backend.h"
#include "data/dataset.h"

namespace seedproof {

struct EpochStats {
  double loss = 0.0;      // mean training loss over the epoch's batches, weighted by size
  double accuracy = 0.0;  // share of training examples right before their step's update
  int64_t examples = 0;
  int64_t steps = 0;
  double seconds = 0.0;  // wall time of the steps, gathering included
  bool finite = true;    // false if some batch's loss was NaN or infinite
};

struct EpochOptions {
  // Each step's wall time (batch gathering included); may be empty.
  std::function<void(double)> on_step;
  // Data parallelism: this replica trains on part `replica` of `replicas`
  // contiguous, nearly equal parts of every global batch (the model's gradient
  // reducer sums the parts), and `reducer` sums the epoch's loss and hits across
  // replicas at the end, so every replica returns the same EpochStats. With
  // replicas > 1 a non-finite loss does not end the epoch early (every replica
  // must take every step); the stats say finite = false.
  int replica = 0, replicas = 1;
  GradientReducer* reducer = nullptr;  // required when replicas > 1
};

// One pass over `data` in batches of batch_size (the last one may be smaller), in
// an order drawn from order_seed (Fisher-Yates with seedproof::Rng: the same seed
// gives the same order everywhere). Stops at the first non-finite loss.
absl::StatusOr<EpochStats> TrainEpoch(Model& model, const Dataset& data, int64_t batch_size,
                                      uint64_t order_seed, const EpochOptions& options = {});

// The model's loss and accuracy on `data`, built into model inputs 1,024 examples
// at a time (the backend's own evaluation batch), so the result is bit-identical to
// one Evaluate call on the whole set as floats.
absl::StatusOr<EvalResult> EvaluateOn(Model& model, const Dataset& data);

// The outputs of the model's first `layers` layers for every example of `data`,
// as a float dataset with identity scaling and the same labels.
absl::StatusOr<Dataset> FeaturesOf(Model& model, const Dataset& data, int layers);

}  // namespace seedproof
