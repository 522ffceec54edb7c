#include "data/task_data.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "absl/strings/str_cat.h"

namespace seedproof {

absl::StatusOr<Dataset> ResizeBilinear(const Dataset& data, const Shape& to) {
  const Shape& from = data.example_shape;
  if (from.size() != 3 || to.size() != 3 || from[2] != to[2] || to[0] < 1 || to[1] < 1) {
    return absl::InvalidArgumentError(absl::StrCat("cannot resize images of shape ",
                                                   ShapeToString(from), " to ", ShapeToString(to),
                                                   ": both must be (height, width, channels) "
                                                   "with the same channel count"));
  }
  const int64_t ih = from[0], iw = from[1], c = from[2], oh = to[0], ow = to[1];
  Dataset out;
  out.example_shape = to;
  out.num_classes = data.num_classes;
  out.y = data.y;
  out.x.resize(data.size() * oh * ow * c);
  const double sy = static_cast<double>(ih) / static_cast<double>(oh);
  const double sx = static_cast<double>(iw) / static_cast<double>(ow);
  for (int64_t n = 0; n < data.size(); ++n) {
    const float* src = data.x.data() + n * ih * iw * c;
    float* dst = out.x.data() + n * oh * ow * c;
    for (int64_t y = 0; y < oh; ++y) {
      const double fy =
          std::clamp((static_cast<double>(y) + 0.5) * sy - 0.5, 0.0, static_cast<double>(ih - 1));
      const int64_t y0 = static_cast<int64_t>(fy), y1 = std::min(y0 + 1, ih - 1);
      const float wy = static_cast<float>(fy - static_cast<double>(y0));
      for (int64_t x = 0; x < ow; ++x) {
        const double fx =
            std::clamp((static_cast<double>(x) + 0.5) * sx - 0.5, 0.0, static_cast<double>(iw - 1));
        const int64_t x0 = static_cast<int64_t>(fx), x1 = std::min(x0 + 1, iw - 1);
        const float wx = static_cast<float>(fx - static_cast<double>(x0));
        for (int64_t k = 0; k < c; ++k) {
          const float top =
              src[(y0 * iw + x0) * c + k] * (1 - wx) + src[(y0 * iw + x1) * c + k] * wx;
          const float bottom =
              src[(y1 * iw + x0) * c + k] * (1 - wx) + src[(y1 * iw + x1) * c + k] * wx;
          dst[(y * ow + x) * c + k] = top * (1 - wy) + bottom * wy;
        }
      }
    }
  }
  return out;
}

absl::StatusOr<TaskSplits> BuildTaskSplits(const FashionMnist& data, int64_t validation,
                                           const TaskSpec& task, uint64_t subset_seed,
                                           const Shape& model_input) {
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
