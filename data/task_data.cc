#include "data/task_data.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "data/load.h"
#include "data/resize.h"

namespace seedproof {

absl::StatusOr<Dataset> ResizeBilinear(const Dataset& data, const Shape& to) {
  const Shape& from = data.example_shape;
  if (from.size() != 3 || to.size() != 3 || from[2] != to[2] || to[0] < 1 || to[1] < 1) {
    return absl::InvalidArgumentError(absl::StrCat("cannot resize images of shape ",
                                                   ShapeToString(from), " to ", ShapeToString(to),
                                                   ": both must be (height, width, channels) "
                                                   "with the same channel count"));
  }
  Dataset out;
  out.example_shape = to;
  out.num_classes = data.num_classes;
  out.y = data.y;
  const int64_t in_width = data.width(), out_width = out.width();
  out.x.resize(data.size() * out_width);
  // Model inputs are resized (the scaling applied first, as it always was), so a
  // resized study gives the numbers it gave before datasets kept their bytes.
  std::vector<float> image(in_width);
  for (int64_t n = 0; n < data.size(); ++n) {
    data.CopyRange(n, 1, image.data());
    ResizeImage(image.data(), from[0], from[1], from[2], out.x.data() + n * out_width, to[0],
                to[1]);
  }
  return out;
}

absl::StatusOr<TaskSplits> BuildTaskSplits(std::shared_ptr<const TrainTest> shared,
                                           const DatasetSpec& dataset, const TaskSpec& task,
                                           uint64_t subset_seed, const Shape& model_input) {
  // Views of the dataset's two splits: a task copies row numbers and labels only.
  const TrainTest data = {Dataset::ViewOf(std::shared_ptr<const Dataset>(shared, &shared->train)),
                          Dataset::ViewOf(std::shared_ptr<const Dataset>(shared, &shared->test))};
  const int64_t validation = dataset.validation;
  if (validation < 0 || validation > data.train.size()) {
    return absl::InvalidArgumentError(absl::StrCat("validation ", validation, " is not in [0, ",
                                                   data.train.size(), "], the training images"));
  }
  // Géron's split, each part viewed in place: copying the 60,000 images first cost
  // more than everything else a worker does to start a task.
  auto view = [&](const Dataset& d, ExampleRange range) {
    return task.binary() ? BinaryTask(d, task.positive, task.negative, range)
                         : SelectClasses(d, task.classes, range);
  };
  TaskSplits s;
  for (auto [from, range, to] :
       {std::tuple<const Dataset*, ExampleRange, Dataset*>{&data.train, {validation, -1}, &s.train},
        {&data.train, {0, validation}, &s.validation},
        {&data.test, {}, &s.test}}) {
    auto v = view(*from, range);
    if (!v.ok()) return v.status();
    *to = std::move(*v);
  }
  if (task.train_size > 0) {
    auto subset = task.subset == TaskSpec::Subset::kFirst
                      ? FirstN(s.train, task.train_size)
                      : RandomSubset(s.train, task.train_size, subset_seed);
    if (!subset.ok()) return subset.status();
    s.train = std::move(*subset);
  }
  for (Dataset* d : {&s.train, &s.validation, &s.test}) {
    auto preprocessed = Preprocess(std::move(*d), dataset);
    if (!preprocessed.ok()) return preprocessed.status();
    *d = *std::move(preprocessed);
  }
  if (s.train.example_shape != model_input) {
    if (!task.resize_from) {
      return absl::InvalidArgumentError(
          absl::StrCat("task '", task.name, "': images are ", ShapeToString(s.train.example_shape),
                       " but the model takes ", ShapeToString(model_input),
                       "; declare a resize in the spec to adapt them"));
    }
    for (Dataset* d : {&s.train, &s.validation, &s.test}) {
      auto resized = ResizeBilinear(*d, model_input);
      if (!resized.ok()) return resized.status();
      *d = std::move(*resized);
    }
  }
  return s;
}

}  // namespace seedproof
