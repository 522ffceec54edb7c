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
  if (data.is_view()) {
    const Dataset& source = *data.source;
    const bool fits = static_cast<int64_t>(data.rows.size()) == data.size() && !source.is_view() &&
                      source.storage == data.storage && source.width() == per_example &&
                      data.x.empty() && data.bytes.empty() &&
                      std::all_of(data.rows.begin(), data.rows.end(),
                                  [&](int64_t r) { return r >= 0 && r < source.size(); });
    if (!fits) {
      return absl::InvalidArgumentError(absl::StrCat(
          "malformed dataset: a view of ", data.size(), " examples shaped ",
          ShapeToString(data.example_shape), " has ", data.rows.size(), " rows of a source of ",
          source.size(), " examples shaped ", ShapeToString(source.example_shape)));
    }
  }
  const bool bytes = data.storage == Dataset::Storage::kByte;
  const size_t stored = data.is_view() ? data.size() * per_example
                        : bytes        ? data.bytes.size()
                                       : data.x.size();
  if (static_cast<int64_t>(stored) != data.size() * per_example ||
      (bytes ? !data.x.empty() : !data.bytes.empty())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "malformed dataset: ", data.size(), " labels of examples shaped ",
        ShapeToString(data.example_shape), " need ", data.size() * per_example, " values, ",
        bytes ? "bytes" : "x", " holds ", stored, " (and the other storage must be empty)"));
  }
  const Scaling& sc = data.scaling;
  const size_t channels = data.example_shape.empty() ? 0 : data.example_shape.back();
  if (!(sc.divisor > 0.0f) || sc.mean.size() != sc.std.size() ||
      (!sc.mean.empty() && sc.mean.size() != channels)) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed dataset: scaling needs a positive divisor and a mean and std "
                     "per channel (",
                     channels, "), has divisor ", sc.divisor, ", ", sc.mean.size(), " means, ",
                     sc.std.size(), " stds"));
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

// A dataset like `data` (shape, storage, scaling, classes, the source of a view)
// without examples.
Dataset EmptyLike(const Dataset& data) {
  Dataset out;
  out.example_shape = data.example_shape;
  out.storage = data.storage;
  out.scaling = data.scaling;
  out.num_classes = data.num_classes;
  out.source = data.source;
  return out;
}

// Examples [begin, end) of data, which the caller has checked; of a view, a view.
Dataset Slice(const Dataset& data, int64_t begin, int64_t end) {
  const int64_t per_example = data.width();
  Dataset out = EmptyLike(data);
  if (data.is_view()) {
    out.rows.assign(data.rows.begin() + begin, data.rows.begin() + end);
  } else if (data.storage == Dataset::Storage::kByte) {
    out.bytes.assign(data.bytes.begin() + begin * per_example,
                     data.bytes.begin() + end * per_example);
  } else {
    out.x.assign(data.x.begin() + begin * per_example, data.x.begin() + end * per_example);
  }
  out.y.assign(data.y.begin() + begin, data.y.begin() + end);
  return out;
}

template <typename T>
void GatherRows(const std::vector<T>& from, const std::vector<int64_t>& indices, int64_t width,
                std::vector<T>& to) {
  to.resize(indices.size() * width);
  for (size_t k = 0; k < indices.size(); ++k) {
    std::copy_n(from.begin() + indices[k] * width, width,
                to.begin() + static_cast<int64_t>(k) * width);
  }
}

// The examples at `indices`, in that order; of a view, a view.
Dataset Gather(const Dataset& data, const std::vector<int64_t>& indices) {
  Dataset out = EmptyLike(data);
  if (data.is_view()) {
    out.rows.reserve(indices.size());
    for (int64_t i : indices) out.rows.push_back(data.rows[i]);
  } else if (data.storage == Dataset::Storage::kByte) {
    GatherRows(data.bytes, indices, data.width(), out.bytes);
  } else {
    GatherRows(data.x, indices, data.width(), out.x);
  }
  out.y.reserve(indices.size());
  for (int64_t i : indices) out.y.push_back(data.y[i]);
  return out;
}

// One example's model inputs: v / divisor, then per-channel (v - mean) / std.
template <typename T>
void ScaleRow(const T* in, int64_t width, const Scaling& scaling, float* out) {
  if (scaling.identity()) {
    for (int64_t i = 0; i < width; ++i) out[i] = static_cast<float>(in[i]);
    return;
  }
  const float divisor = scaling.divisor;
  for (int64_t i = 0; i < width; ++i) out[i] = static_cast<float>(in[i]) / divisor;
  if (scaling.mean.empty()) return;
  const size_t channels = scaling.mean.size();
  for (int64_t i = 0; i < width; ++i) {
    const size_t c = static_cast<size_t>(i) % channels;
    out[i] = (out[i] - scaling.mean[c]) / scaling.std[c];
  }
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

namespace {

// Every byte's model input per channel, computed by ScaleRow itself so a table
// lookup gives the very bits the arithmetic would: table[c * 256 + b].
std::vector<float> ByteTable(const Scaling& scaling, size_t channels) {
  std::vector<uint8_t> row(256 * channels);
  for (size_t i = 0; i < row.size(); ++i) row[i] = static_cast<uint8_t>(i / channels);
  std::vector<float> scaled(row.size()), table(row.size());
  ScaleRow(row.data(), static_cast<int64_t>(row.size()), scaling, scaled.data());
  for (size_t i = 0; i < row.size(); ++i) table[(i % channels) * 256 + i / channels] = scaled[i];
  return table;
}

// Copies `count` examples, the i-th at row_of(i), into model inputs with data's
// scaling; a view's rows are looked up in its source.
template <typename RowOf>
void CopyExamples(const Dataset& data, int64_t count, const RowOf& row_of, float* out) {
  const int64_t w = data.width();
  const Dataset& held = data.is_view() ? *data.source : data;
  auto stored = [&](int64_t i) { return data.is_view() ? data.rows[row_of(i)] : row_of(i); };
  if (data.storage == Dataset::Storage::kFloat) {
    for (int64_t i = 0; i < count; ++i) {
      ScaleRow(held.x.data() + stored(i) * w, w, data.scaling, out + i * w);
    }
    return;
  }
  const size_t channels = data.scaling.mean.empty() ? 1 : data.scaling.mean.size();
  const std::vector<float> table = ByteTable(data.scaling, channels);
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t* in = held.bytes.data() + stored(i) * w;
    float* o = out + i * w;
    if (channels == 1) {
      for (int64_t k = 0; k < w; ++k) o[k] = table[in[k]];
    } else {
      for (int64_t k = 0; k < w; ++k) o[k] = table[(k % channels) * 256 + in[k]];
    }
  }
}

}  // namespace

void Dataset::CopyRange(int64_t first, int64_t count, float* out) const {
  CopyExamples(
      *this, count, [first](int64_t i) { return first + i; }, out);
}

void Dataset::CopyRows(const int64_t* indices, int64_t count, float* out) const {
  CopyExamples(
      *this, count, [indices](int64_t i) { return indices[i]; }, out);
}

Dataset Dataset::ViewOf(std::shared_ptr<const Dataset> of) {
  Dataset view;
  view.example_shape = of->example_shape;
  view.storage = of->storage;
  view.scaling = of->scaling;
  view.y = of->y;
  view.num_classes = of->num_classes;
  if (of->is_view()) {
    view.rows = of->rows;
    view.source = of->source;
  } else {
    view.rows.resize(of->size());
    std::iota(view.rows.begin(), view.rows.end(), int64_t{0});
    view.source = std::move(of);
  }
  return view;
}

Dataset Dataset::Materialized() const {
  if (!is_view()) return *this;
  Dataset out = *this;
  out.source.reset();
  out.rows.clear();
  const int64_t w = width();
  for (int64_t r : rows) {
    if (storage == Storage::kByte) {
      out.bytes.insert(out.bytes.end(), source->bytes.begin() + r * w,
                       source->bytes.begin() + (r + 1) * w);
    } else {
      out.x.insert(out.x.end(), source->x.begin() + r * w, source->x.begin() + (r + 1) * w);
    }
  }
  return out;
}

Dataset Dataset::AsFloat() const {
  Dataset out;
  out.example_shape = example_shape;
  out.num_classes = num_classes;
  out.y = y;
  out.x.resize(size() * width());
  CopyRange(0, size(), out.x.data());
  return out;
}

absl::StatusOr<Dataset> LoadIdxDataset(std::string_view images_path, std::string_view labels_path,
                                       int num_classes) {
  absl::StatusOr<LabeledImages> read = ReadLabeledImages(images_path, labels_path, num_classes);
  if (!read.ok()) return read.status();
  Dataset data;
  data.example_shape = {read->rows, read->cols, 1};
  data.num_classes = num_classes;
  data.storage = Dataset::Storage::kByte;
  data.bytes = std::move(read->pixels);
  data.scaling.divisor = 255.0f;
  data.y.assign(read->labels.begin(), read->labels.end());
  return data;
}

absl::StatusOr<TrainTest> LoadFashionMnist(std::string_view dir) {
  const std::filesystem::path root(dir);
  auto load = [&root](const char* images, const char* labels) {
    return LoadIdxDataset((root / images).string(), (root / labels).string(), kFashionMnistClasses);
  };
  TrainTest data;
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
