#include "data/dataset.h"

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "backends/random.h"
#include "data/idx.h"

namespace seedproof {
namespace {

absl::Status CheckDataset(const Dataset& data) {
  for (int64_t d : data.example_shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(absl::StrCat("malformed dataset: example shape ",
                                                     ShapeToString(data.example_shape),
                                                     " has a negative dimension"));
    }
  }
  const int64_t per_example = ElementCount(data.example_shape);
  if (static_cast<int64_t>(data.x.size()) != data.size() * per_example) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed dataset: ", data.size(), " labels of examples shaped ",
                     ShapeToString(data.example_shape), " need ", data.size() * per_example,
                     " values, x holds ", data.x.size()));
  }
  for (int64_t i = 0; i < data.size(); ++i) {
    if (data.y[i] < 0 || data.y[i] >= data.num_classes) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed dataset: label ", data.y[i], " at index ", i, " is outside 0..",
                       data.num_classes - 1, " (", data.num_classes, " classes)"));
    }
  }
  return absl::OkStatus();
}

// `what` names the argument in messages: "classes", "positive classes", ...
absl::Status CheckClassList(const char* what, const std::vector<int32_t>& classes,
                            int num_classes) {
  if (classes.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is empty: name at least one class"));
  }
  std::vector<bool> seen(num_classes, false);
  for (int32_t c : classes) {
    if (c < 0 || c >= num_classes) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": class ", c, " is out of range: the dataset has ", num_classes,
                       " classes (0..", num_classes - 1, ")"));
    }
    if (seen[c]) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": class ", c, " is listed twice"));
    }
    seen[c] = true;
  }
  return absl::OkStatus();
}

absl::Status CheckCount(const char* what, int64_t n, const Dataset& data) {
  if (n < 0 || n > data.size()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", n, " is ",
                                                   n < 0 ? "negative" : "larger than the data",
                                                   ": the dataset has ", data.size(), " examples"));
  }
  return absl::OkStatus();
}

// Examples [begin, end) of data, which the caller has checked.
Dataset Slice(const Dataset& data, int64_t begin, int64_t end) {
  const int64_t per_example = ElementCount(data.example_shape);
  Dataset out;
  out.example_shape = data.example_shape;
  out.num_classes = data.num_classes;
  out.x.assign(data.x.begin() + begin * per_example, data.x.begin() + end * per_example);
  out.y.assign(data.y.begin() + begin, data.y.begin() + end);
  return out;
}

// The examples at `indices`, in that order.
Dataset Gather(const Dataset& data, const std::vector<int64_t>& indices) {
  const int64_t per_example = ElementCount(data.example_shape);
  Dataset out;
  out.example_shape = data.example_shape;
  out.num_classes = data.num_classes;
  out.x.resize(indices.size() * per_example);
  out.y.reserve(indices.size());
  for (size_t k = 0; k < indices.size(); ++k) {
    std::copy_n(data.x.begin() + indices[k] * per_example, per_example,
                out.x.begin() + static_cast<int64_t>(k) * per_example);
    out.y.push_back(data.y[indices[k]]);
  }
  return out;
}

// The range with its end filled in, or why it does not fit the data.
absl::StatusOr<ExampleRange> CheckRange(ExampleRange range, const Dataset& data) {
  if (range.end == -1) range.end = data.size();
  if (range.begin < 0 || range.begin > range.end || range.end > data.size()) {
    return absl::InvalidArgumentError(absl::StrCat("examples [", range.begin, ", ", range.end,
                                                   ") are not a range of the dataset's ",
                                                   data.size(), " examples"));
  }
  return range;
}

// Keeps the examples of `range` whose class has a new label (new_label[class] >= 0),
// in order, relabelled, as a dataset of num_classes classes.
Dataset Relabel(const Dataset& data, const std::vector<int32_t>& new_label, int num_classes,
                ExampleRange range) {
  std::vector<int64_t> kept;
  for (int64_t i = range.begin; i < range.end; ++i) {
    if (new_label[data.y[i]] >= 0) kept.push_back(i);
  }
  Dataset out = Gather(data, kept);
  for (int32_t& label : out.y) label = new_label[label];
  out.num_classes = num_classes;
  return out;
}

}  // namespace

absl::StatusOr<Dataset> LoadIdxDataset(std::string_view images_path, std::string_view labels_path,
                                       int num_classes) {
  absl::StatusOr<LabeledImages> read = ReadLabeledImages(images_path, labels_path, num_classes);
  if (!read.ok()) return read.status();
  Dataset data;
  data.example_shape = {read->rows, read->cols, 1};
  data.num_classes = num_classes;
  data.x.resize(read->pixels.size());
  std::transform(read->pixels.begin(), read->pixels.end(), data.x.begin(),
                 [](uint8_t pixel) { return static_cast<float>(pixel) / 255.0f; });
  data.y.assign(read->labels.begin(), read->labels.end());
  return data;
}

absl::StatusOr<FashionMnist> LoadFashionMnist(std::string_view dir) {
  const std::filesystem::path root(dir);
  auto load = [&root](const char* images, const char* labels) {
    return LoadIdxDataset((root / images).string(), (root / labels).string(), kFashionMnistClasses);
  };
  FashionMnist data;
  absl::StatusOr<Dataset> train = load("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz");
  if (!train.ok()) return train.status();
  data.train = *std::move(train);
  absl::StatusOr<Dataset> test = load("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz");
  if (!test.ok()) return test.status();
  data.test = *std::move(test);
  return data;
}

absl::StatusOr<TrainValidation> SplitValidation(const Dataset& data, int64_t validation_size) {
  if (absl::Status s = CheckDataset(data); !s.ok()) return s;
  if (absl::Status s = CheckCount("validation size", validation_size, data); !s.ok()) return s;
  TrainValidation split;
  split.validation = Slice(data, 0, validation_size);
  split.train = Slice(data, validation_size, data.size());
  return split;
}

absl::StatusOr<Dataset> SelectClasses(const Dataset& data, const std::vector<int32_t>& classes,
                                      ExampleRange range) {
  if (absl::Status s = CheckDataset(data); !s.ok()) return s;
  absl::StatusOr<ExampleRange> checked = CheckRange(range, data);
  if (!checked.ok()) return checked.status();
  if (absl::Status s = CheckClassList("classes", classes, data.num_classes); !s.ok()) return s;
  std::vector<int32_t> new_label(data.num_classes, -1);
  for (size_t i = 0; i < classes.size(); ++i) new_label[classes[i]] = static_cast<int32_t>(i);
  return Relabel(data, new_label, static_cast<int>(classes.size()), *checked);
}

absl::StatusOr<Dataset> BinaryTask(const Dataset& data, const std::vector<int32_t>& positive,
                                   const std::vector<int32_t>& negative, ExampleRange range) {
  if (absl::Status s = CheckDataset(data); !s.ok()) return s;
  absl::StatusOr<ExampleRange> checked = CheckRange(range, data);
  if (!checked.ok()) return checked.status();
  if (absl::Status s = CheckClassList("positive classes", positive, data.num_classes); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckClassList("negative classes", negative, data.num_classes); !s.ok()) {
    return s;
  }
  std::vector<int32_t> new_label(data.num_classes, -1);
  for (int32_t c : positive) new_label[c] = 1;
  for (int32_t c : negative) {
    if (new_label[c] == 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("class ", c, " is in both the positive and the negative classes"));
    }
    new_label[c] = 0;
  }
  return Relabel(data, new_label, 2, *checked);
}

absl::StatusOr<Dataset> FirstN(const Dataset& data, int64_t n) {
  if (absl::Status s = CheckDataset(data); !s.ok()) return s;
  if (absl::Status s = CheckCount("subset size", n, data); !s.ok()) return s;
  return Slice(data, 0, n);
}

absl::StatusOr<Dataset> RandomSubset(const Dataset& data, int64_t n, uint64_t seed) {
  if (absl::Status s = CheckDataset(data); !s.ok()) return s;
  if (absl::Status s = CheckCount("subset size", n, data); !s.ok()) return s;
  // Partial Fisher-Yates: after step i, order[0..i] is a uniform draw of i+1
  // distinct indices; Rng::Below is unbiased, so every n-subset is equally likely.
  std::vector<int64_t> order(data.size());
  std::iota(order.begin(), order.end(), int64_t{0});
  Rng rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = i + static_cast<int64_t>(rng.Below(static_cast<uint64_t>(data.size() - i)));
    std::swap(order[i], order[j]);
  }
  order.resize(n);
  std::sort(order.begin(), order.end());
  return Gather(data, order);
}

}  // namespace seedproof
