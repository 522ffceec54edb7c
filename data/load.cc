#include "data/load.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/random.h"
#include "data/channels.h"
#include "data/content_hash.h"
#include "data/dataset_blob.h"
#include "data/idx.h"
#include "data/labels.h"
#include "data/readers.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;

std::string Where(const DatasetSpec& spec) {
  return spec.path.empty() ? std::string(kFashionMnistDir) : spec.path;
}

// The first of `names` that exists in dir, each raw or gzip-compressed (name.gz);
// NOT_FOUND listing them all when none does.
absl::StatusOr<std::string> FindFile(const fs::path& dir, const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    for (const std::string& candidate : {name, name + ".gz"}) {
      if (fs::exists(dir / candidate)) return (dir / candidate).string();
    }
  }
  return absl::NotFoundError(
      absl::StrCat((dir / names.front()).string(), ": cannot open: no such file (looked for ",
                   absl::StrJoin(names, ", "), ", raw or .gz, in ", dir.string(), ")"));
}

DeclaredClasses Declared(const DatasetSpec& spec) {
  return {.names = spec.class_names, .count = spec.classes};
}

// An IDX pair: MNIST's names (train-images-idx3-ubyte) or Kaggle's
// (train-images.idx3-ubyte); t10k or test for the test split.
absl::StatusOr<ReadSet> ReadIdxSplit(const fs::path& root, bool train,
                                     const DeclaredClasses& classes) {
  std::vector<std::string> images, labels;
  for (const char* prefix :
       train ? std::vector<const char*>{"train"} : std::vector<const char*>{"t10k", "test"}) {
    images.push_back(absl::StrCat(prefix, "-images-idx3-ubyte"));
    images.push_back(absl::StrCat(prefix, "-images.idx3-ubyte"));
    labels.push_back(absl::StrCat(prefix, "-labels-idx1-ubyte"));
    labels.push_back(absl::StrCat(prefix, "-labels.idx1-ubyte"));
  }
  auto images_path = FindFile(root, images);
  if (!images_path.ok()) return images_path.status();
  auto labels_path = FindFile(root, labels);
  if (!labels_path.ok()) return labels_path.status();
  // Byte labels: at most 256 classes, checked against the declared ones below.
  auto read = ReadLabeledImages(*images_path, *labels_path, 256);
  if (!read.ok()) return read.status();
  ReadSet set;
  Dataset& d = set.data;
  d.example_shape = {read->rows, read->cols, 1};
  d.storage = Dataset::Storage::kByte;
  d.bytes = std::move(read->pixels);
  const LabelMap map(classes);
  d.y.resize(read->labels.size());
  for (size_t i = 0; i < read->labels.size(); ++i) {
    auto label = map.OfNumber(read->labels[i]);
    if (!label.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(*labels_path, ": example ", i, ": ", label.status().message()));
    }
    d.y[i] = *label;
  }
  d.num_classes = map.NumClasses(d.y);
  set.class_names = classes.names;
  return set;
}

// Reads one split (train or test) of spec's format.
absl::StatusOr<ReadSet> ReadSplit(const DatasetSpec& spec, bool train,
                                  const DeclaredClasses& classes) {
  const fs::path root(Where(spec));
  const bool one_set = spec.test_split > 0;
  switch (spec.format) {
    case DatasetFormat::kIdx:
      return ReadIdxSplit(root, train, classes);
    case DatasetFormat::kImages:
      return ReadImageFolder((one_set ? root : root / (train ? "train" : "test")).string(),
                             {.classes = classes,
                              .channels = spec.channels,
                              .size = spec.image_size,
                              .allow_missing_classes = !train});
    case DatasetFormat::kNpy: {
      const std::string& x = train ? spec.x_train : spec.x_test;
      const std::string& y = train ? spec.y_train : spec.y_test;
      return ReadNpyPair((root / (x + ".npy")).string(), (root / (y + ".npy")).string(), classes,
                         spec.channels_first);
    }
    case DatasetFormat::kNpz:
      return ReadNpzPair(root.string(), train ? spec.x_train : spec.x_test,
                         train ? spec.y_train : spec.y_test, classes, spec.channels_first);
    case DatasetFormat::kCsv: {
      CsvOptions options{.header = spec.csv_header,
                         .label_column = spec.label_column,
                         .label_index = spec.label_index,
                         .shape = spec.csv_shape,
                         .classes = classes};
      if (one_set) return ReadCsv(root.string(), options);
      auto path = FindFile(root, {train ? "train.csv" : "test.csv"});
      if (!path.ok()) return path.status();
      return ReadCsv(*path, options);
    }
  }
  return absl::InternalError("unknown dataset format");
}

// Names for labels 0..n-1 when nothing names them: "0", "1", ...
std::vector<std::string> NumberNames(int n) {
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) names.push_back(absl::StrCat(i));
  return names;
}

}  // namespace

TrainTest SplitStratified(const Dataset& given, double test_share, uint64_t seed) {
  std::optional<Dataset> held;
  if (given.is_view()) held = given.Materialized();
  const Dataset& data = held ? *held : given;
  std::vector<std::vector<int64_t>> by_class(data.num_classes);
  for (int64_t i = 0; i < data.size(); ++i) by_class[data.y[i]].push_back(i);
  std::vector<bool> to_test(data.size(), false);
  Rng rng(seed);
  for (std::vector<int64_t>& members : by_class) {
    const auto n = static_cast<int64_t>(members.size());
    const auto take = static_cast<int64_t>(std::llround(test_share * static_cast<double>(n)));
    for (int64_t i = 0; i < take; ++i) {  // partial Fisher-Yates
      std::swap(members[i], members[i + rng.Below(static_cast<uint64_t>(n - i))]);
      to_test[members[i]] = true;
    }
  }
  std::vector<int64_t> train_rows, test_rows;
  for (int64_t i = 0; i < data.size(); ++i) (to_test[i] ? test_rows : train_rows).push_back(i);
  auto pick = [&data](const std::vector<int64_t>& rows) {
    Dataset out;
    out.example_shape = data.example_shape;
    out.storage = data.storage;
    out.num_classes = data.num_classes;
    const int64_t w = data.width();
    for (int64_t r : rows) {
      if (data.storage == Dataset::Storage::kByte) {
        out.bytes.insert(out.bytes.end(), data.bytes.begin() + r * w,
                         data.bytes.begin() + (r + 1) * w);
      } else {
        out.x.insert(out.x.end(), data.x.begin() + r * w, data.x.begin() + (r + 1) * w);
      }
      out.y.push_back(data.y[r]);
    }
    return out;
  };
  return {pick(train_rows), pick(test_rows)};
}

absl::StatusOr<LoadedDataset> LoadDataset(const DatasetSpec& spec) {
  if (spec.test_split < 0 || spec.test_split >= 1) {
    return absl::InvalidArgumentError(absl::StrCat("dataset '", spec.name, "': test_split ",
                                                   spec.test_split, " is not in [0, 1)"));
  }
  DeclaredClasses classes = Declared(spec);
  if (spec.fashion_mnist() && classes.names.empty() && classes.count == 0) {
    classes.names.assign(kFashionMnistClassNames.begin(), kFashionMnistClassNames.end());
  }
  auto train = ReadSplit(spec, /*train=*/true, classes);
  if (!train.ok()) return train.status();
  LoadedDataset loaded;
  if (spec.test_split > 0) {
    loaded.data = SplitStratified(train->data, spec.test_split, spec.split_seed);
  } else {
    // The test split has the training split's classes, whatever it holds itself.
    DeclaredClasses same = classes;
    if (same.names.empty() && !train->class_names.empty() &&
        spec.format == DatasetFormat::kImages) {
      same.names = train->class_names;
    }
    auto test = ReadSplit(spec, /*train=*/false, same);
    if (!test.ok()) return test.status();
    loaded.data.train = std::move(train->data);
    loaded.data.test = std::move(test->data);
  }
  TrainTest& d = loaded.data;
  if (d.train.example_shape != d.test.example_shape && !d.test.y.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("dataset '", spec.name, "' at ", Where(spec), ": training examples are ",
                     ShapeToString(d.train.example_shape), " but test examples are ",
                     ShapeToString(d.test.example_shape)));
  }
  if (d.train.storage != d.test.storage && !d.test.y.empty()) {
    // One split of bytes, one of floats (a CSV whose test file has a fraction):
    // both become floats, which hold bytes exactly.
    if (d.train.storage == Dataset::Storage::kByte) d.train = d.train.AsFloat();
    if (d.test.storage == Dataset::Storage::kByte) d.test = d.test.AsFloat();
  }
  const int num_classes = std::max(d.train.num_classes, d.test.num_classes);
  d.train.num_classes = d.test.num_classes = num_classes;
  if (d.test.y.empty()) d.test.example_shape = d.train.example_shape;
  d.test.storage = d.train.storage;
  loaded.class_names =
      !train->class_names.empty() && static_cast<int>(train->class_names.size()) == num_classes
          ? train->class_names
          : NumberNames(num_classes);
  if (!spec.class_names.empty()) loaded.class_names = spec.class_names;
  if (spec.fashion_mnist() && spec.class_names.empty()) loaded.class_names = classes.names;
  loaded.sha256 = DatasetSha256(loaded.data);
  return loaded;
}

absl::StatusOr<LoadedDataset> LoadDatasetFromPieces(const DatasetSpec& spec,
                                                    std::deque<std::string> pieces,
                                                    const std::string& sha256) {
  if (auto s = CheckDatasetHash(spec, sha256); !s.ok()) return s;
  auto data = DecodeDatasetPieces(std::move(pieces),
                                  absl::StrCat("dataset '", spec.name, "' (", sha256, ")"));
  if (!data.ok()) return data.status();
  LoadedDataset loaded;
  loaded.data = *std::move(data);
  loaded.class_names =
      spec.class_names.empty() ? NumberNames(loaded.data.train.num_classes) : spec.class_names;
  loaded.sha256 = sha256;
  return loaded;
}

absl::StatusOr<LoadedDataset> LoadDatasetFromBlob(const DatasetSpec& spec, std::string blob) {
  const std::string sha256 = Sha256Hex(blob);
  std::deque<std::string> pieces;
  pieces.push_back(std::move(blob));
  return LoadDatasetFromPieces(spec, std::move(pieces), sha256);
}

absl::Status CheckDatasetHash(const DatasetSpec& spec, const std::string& actual) {
  if (spec.sha256.empty() || spec.sha256 == actual) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "dataset '", spec.name, "' at ", Where(spec), " hashes to ", actual,
      " but the study was submitted with ", spec.sha256,
      ": the data changed after submission (submit the study again to use the new data)"));
}

float DefaultScale(const DatasetSpec& spec, Dataset::Storage storage) {
  const bool images = spec.format == DatasetFormat::kIdx || spec.format == DatasetFormat::kImages;
  const bool byte_arrays =
      (spec.format == DatasetFormat::kNpy || spec.format == DatasetFormat::kNpz) &&
      storage == Dataset::Storage::kByte;
  return images || byte_arrays ? 255.0f : 1.0f;
}

absl::StatusOr<Dataset> Preprocess(Dataset data, const DatasetSpec& spec) {
  Dataset out = std::move(data);
  const int64_t have = out.example_shape.empty() ? 0 : out.example_shape.back();
  if (spec.channels != 0 && spec.channels != have) {
    if (out.is_view()) out = out.Materialized();  // converted values are the task's own
    if (out.example_shape.size() != 3 ||
        !((have == 1 && spec.channels == 3) || (have == 3 && spec.channels == 1))) {
      return absl::InvalidArgumentError(
          absl::StrCat("dataset '", spec.name, "': cannot convert examples of shape ",
                       ShapeToString(out.example_shape), " to ", spec.channels,
                       " channels (gray <-> RGB only, on (height, width, channels) images)"));
    }
    out.example_shape.back() = spec.channels;
    if (out.storage == Dataset::Storage::kByte) {
      out.bytes = ConvertChannels(out.bytes, static_cast<int>(have), spec.channels);
    } else {
      out.x = ConvertChannels(out.x, static_cast<int>(have), spec.channels);
    }
  }
  out.scaling.divisor = spec.scale.value_or(DefaultScale(spec, out.storage));
  out.scaling.mean = spec.mean;
  out.scaling.std = spec.std;
  const size_t channels =
      static_cast<size_t>(out.example_shape.empty() ? 0 : out.example_shape.back());
  if (!(out.scaling.divisor > 0) || spec.mean.size() != spec.std.size() ||
      (!spec.mean.empty() && spec.mean.size() != channels) ||
      std::any_of(spec.std.begin(), spec.std.end(), [](float s) { return !(s > 0); })) {
    return absl::InvalidArgumentError(
        absl::StrCat("dataset '", spec.name,
                     "': scale must be > 0 and mean and std need one positive std "
                     "and a mean per channel (",
                     channels, ")"));
  }
  return out;
}

}  // namespace seedproof
