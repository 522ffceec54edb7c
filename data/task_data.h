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

// Splits off the first dataset.validation training images (Géron), keeps the
// task's classes (relabelled) or its positive/negative sets, takes train_size
// training examples (the first ones, or a subset drawn with subset_seed), applies
// the dataset's preprocessing (Preprocess, data/load.h) and resizes every split to
// model_input if the task declares a resize. An undeclared size mismatch is an
// error naming both shapes. The splits are views of `data` (Dataset::ViewOf), which
// they keep alive; only a channel conversion or a resize gives them examples of
// their own.
absl::StatusOr<TaskSplits> BuildTaskSplits(std::shared_ptr<const TrainTest> data,
                                           const DatasetSpec& dataset, const TaskSpec& task,
                                           uint64_t subset_seed, const Shape& model_input);

// Bilinear resize of every example to (height, width, channels), half-pixel
// centres (TensorFlow 2's tf.image.resize; data/resize.h). The channel count must
// stay the same. The model inputs are resized (the scaling applied first), into
// float storage with identity scaling.
absl::StatusOr<Dataset> ResizeBilinear(const Dataset& data, const Shape& to);

}  // namespace seedproof
