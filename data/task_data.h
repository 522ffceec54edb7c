// The data a trial sees: a task's training, validation and test splits, built from
// the dataset by a TaskSpec, resized to the model's input when the spec declares it.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "data/dataset_spec.h"

namespace seedproof {

struct TaskSplits {
  Dataset train;
  Dataset validation;
  Dataset test;
};

// Splits off the first `validation` training images (Géron), keeps the task's
// classes (relabelled) or its positive/negative sets, takes train_size training
// examples (the first ones, or a subset drawn with subset_seed), and resizes every
// split to model_input if the task declares a resize. An undeclared size mismatch
// is an error naming both shapes.
absl::StatusOr<TaskSplits> BuildTaskSplits(const FashionMnist& data, int64_t validation,
                                           const TaskSpec& task, uint64_t subset_seed,
                                           const Shape& model_input);

// Bilinear resize to (height, width, channels), half-pixel centres (TensorFlow 2's
// tf.image.resize). The channel count must stay the same.
absl::StatusOr<Dataset> ResizeBilinear(const Dataset& data, const Shape& to);

}  // namespace seedproof
