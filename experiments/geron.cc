#include "experiments/geron.h"

namespace seedproof {

ModelSpec GeronModelA() {
  ModelSpec spec;
  spec.input = {28, 28, 1};
  spec.layers.push_back(LayerSpec::Flatten());
  for (int units : {300, 100, 50, 50, 50}) {
    spec.layers.push_back(LayerSpec::Dense(units, Activation::kSelu));
  }
  spec.layers.push_back(LayerSpec::Dense(8, Activation::kSoftmax));
  spec.loss = Loss::kSparseCategoricalCrossEntropy;
  return spec;
}

absl::StatusOr<TaskSplits> GeronTaskA(const TrainTest& data) {
  const std::vector<int32_t> classes = {0, 1, 2, 3, 4, 7, 8, 9};
  auto split = SplitValidation(data.train, 5000);
  if (!split.ok()) return split.status();
  TaskSplits task;
  auto train = SelectClasses(split->train, classes);
  if (!train.ok()) return train.status();
  auto validation = SelectClasses(split->validation, classes);
  if (!validation.ok()) return validation.status();
  auto test = SelectClasses(data.test, classes);
  if (!test.ok()) return test.status();
  task.train = std::move(*train);
  task.validation = std::move(*validation);
  task.test = std::move(*test);
  return task;
}

}  // namespace seedproof
