// What the backend tests share: random batches for a model and a reducer that
// keeps what the training step hands it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backends/backend.h"
#include "backends/random.h"

namespace seedproof::testing_support {

// Keeps a copy of what TrainStep hands the reducer: every trainable gradient,
// packed in layer order (kernel, then bias), summed over the batch.
class CapturingReducer : public GradientReducer {
 public:
  absl::StatusOr<int64_t> Reduce(std::span<float> g, int64_t local_examples) override {
    gradients.assign(g.begin(), g.end());
    ++calls;
    return local_examples;
  }
  std::vector<float> gradients;
  int calls = 0;
};

struct Batch {
  std::vector<float> x;
  std::vector<int32_t> y;
  int64_t n = 0;
};

// Inputs uniform in [-1, 1), labels uniform over the spec's classes. With
// continuous random inputs, relu and selu sit exactly at 0 and max pool windows
// tie with probability zero.
inline Batch RandomBatch(const ModelSpec& spec, int64_t n, uint64_t seed) {
  Rng rng(seed);
  Batch batch;
  batch.n = n;
  batch.x.resize(n * ElementCount(spec.input));
  for (float& v : batch.x) v = rng.Uniform(-1.0f, 1.0f);
  const uint64_t classes =
      spec.loss == Loss::kBinaryCrossEntropy ? 2 : static_cast<uint64_t>(spec.layers.back().units);
  for (int64_t i = 0; i < n; ++i) batch.y.push_back(static_cast<int32_t>(rng.Below(classes)));
  return batch;
}

}  // namespace seedproof::testing_support
