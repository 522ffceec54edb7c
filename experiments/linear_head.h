// Conventional classifiers fitted on frozen features: L2-regularised logistic
// regression (softmax for several classes) and a linear SVM (squared hinge,
// one-vs-rest), both like scikit-learn's defaults (C = 1). Deterministic: full-batch
// gradient descent with a backtracking line search, from zero weights.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace seedproof {

enum class LinearHeadKind { kLogistic, kLinearSvm };

struct LinearHead {
  int64_t inputs = 0, outputs = 0;  // outputs: 1 for two classes, else the class count
  std::vector<float> kernel;        // (inputs, outputs), Keras layout
  std::vector<float> bias;          // (outputs)
  int iterations = 0;               // gradient steps taken
};

// x is (n, inputs); labels in [0, classes). Two classes give one output whose
// positive side is class 1.
absl::StatusOr<LinearHead> FitLinearHead(LinearHeadKind kind, const float* x, const int32_t* y,
                                         int64_t n, int64_t inputs, int classes, double c = 1.0,
                                         int max_iterations = 500);

}  // namespace seedproof
