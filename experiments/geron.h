// Géron's study (Hands-On ML, ch. 11) as code: model A and task A on Fashion-MNIST,
// the main job's workload and the engine benchmark's. ../shared/REFERENCE.md has
// the facts; the sweep specs in experiments/specs/ express the same study in YAML.
#pragma once

#include "absl/status/statusor.h"
#include "backends/model_spec.h"
#include "data/dataset.h"
#include "data/task_data.h"

namespace seedproof {

// Flatten → Dense 300, 100, 50, 50, 50 (SELU, Glorot-uniform) → Dense 8 softmax.
ModelSpec GeronModelA();

// Task A: the 8 classes other than sandal (5) and shirt (6), relabelled 0..7. The
// validation split is task A's share of the first 5,000 training images; train
// has 43,986 images.
absl::StatusOr<TaskSplits> GeronTaskA(const TrainTest& data);

}  // namespace seedproof
