// Labelled image datasets as values, Fashion-MNIST's loader, and the task views a
// study builds from it (Géron, Hands-On ML, ch. 11):
//
//   TrainTest data = *LoadFashionMnist();
//   TrainValidation split = *SplitValidation(data.train, 5000);
//   Dataset task_a = *SelectClasses(split.train, {0, 1, 2, 3, 4, 7, 8, 9});  // 43,986
//   Dataset task_b = *FirstN(*BinaryTask(split.train, {6}, {5}), 200);       // shirt 1
//   Dataset task_b_test = *BinaryTask(data.test, {6}, {5});                  // 2,000
//
// Every view keeps its examples in their original order. Of a dataset that holds
// its examples it copies them, so it never aliases that dataset; of a view
// (Dataset::ViewOf) it is a view of the same immutable source, copying only row
// numbers and labels. Errors are INVALID_ARGUMENT with a message that
// says which argument is wrong and why; the loaders pass on the IDX reader's errors
// (data/idx.h), which name the file.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "backends/model_spec.h"

namespace seedproof {

// How a stored value becomes what the model sees, applied when a batch is built:
// v / divisor, then (v - mean[c]) / std[c] per channel c when mean and std are set.
// divisor 255 maps 8-bit pixels to [0, 1] exactly as float(byte) / 255.0f.
struct Scaling {
  float divisor = 1.0f;
  std::vector<float> mean, std;  // empty, or one per channel (the last dimension)

  bool identity() const { return divisor == 1.0f && mean.empty(); }
};

// n labelled examples of one shape. The examples are stored as they were decoded:
// 8-bit sources (IDX, PNG/JPEG, uint8 arrays, CSV of bytes) as bytes, everything
// else as floats; `scaling` turns them into model inputs batch by batch, so a
// 60,000-image set costs 47 MB, not 188.
//
// A dataset holds its examples itself, or is a view: example i is example rows[i]
// of `source`, an immutable dataset that holds its own (a task's 44,000 images
// are 350 KB of row numbers, not 34 MB of pixels). Labels, classes and scaling are
// always the dataset's own. Invariants, which every function here keeps and checks
// on its inputs: the examples are size() * ElementCount(example_shape) values (a
// view: size() rows, each < source->size()), and 0 <= y[i] < num_classes.
struct Dataset {
  enum class Storage { kFloat, kByte };

  Shape example_shape;  // (H, W, C), e.g. {28, 28, 1}, or (F) for tabular data
  Storage storage = Storage::kFloat;
  std::vector<float> x;                   // kFloat: (n, H, W, C), row-major; empty in a view
  std::vector<uint8_t> bytes;             // kByte: (n, H, W, C), row-major; empty in a view
  std::shared_ptr<const Dataset> source;  // a view's examples; null: its own
  std::vector<int64_t> rows;              // a view: example i is source's rows[i]
  Scaling scaling;
  std::vector<int32_t> y;  // (n), class ids 0..num_classes-1
  int num_classes = 0;

  // All of `of`'s examples, labels and scaling, as a view (of_source if `of` is one).
  static Dataset ViewOf(std::shared_ptr<const Dataset> of);

  int64_t size() const { return static_cast<int64_t>(y.size()); }
  int64_t width() const { return ElementCount(example_shape); }
  bool is_view() const { return source != nullptr; }
  // Model inputs for examples [first, first + count): count * width() floats.
  void CopyRange(int64_t first, int64_t count, float* out) const;
  // Model inputs for the examples at indices[0..count).
  void CopyRows(const int64_t* indices, int64_t count, float* out) const;
  // The whole set as model inputs, stored as floats with identity scaling.
  Dataset AsFloat() const;
  // The same examples as stored (bytes or floats), held by the result itself.
  Dataset Materialized() const;
};

// Reads an IDX image file and its label file (gzip or raw, see idx.h) into a
// Dataset with example shape (rows, cols, 1), kept as bytes, scaled to [0, 1] as
// float(byte) / 255.0f when batches are built (scaling.divisor 255). Labels must be below
// num_classes.
absl::StatusOr<Dataset> LoadIdxDataset(std::string_view images_path, std::string_view labels_path,
                                       int num_classes);

// Where Debian's dataset-fashion-mnist package installs the data.
inline constexpr std::string_view kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
inline constexpr int kFashionMnistClasses = 10;
// Class names by label.
inline constexpr std::array<std::string_view, kFashionMnistClasses> kFashionMnistClassNames = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// A dataset's two splits (Fashion-MNIST: 60,000 training and 10,000 test images).
struct TrainTest {
  Dataset train;
  Dataset test;
};

// Loads Fashion-MNIST's two splits from dir, which holds
// train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz
// and t10k-labels-idx1-ubyte.gz. Examples are (28, 28, 1), 10 classes.
absl::StatusOr<TrainTest> LoadFashionMnist(std::string_view dir = kFashionMnistDir);

struct TrainValidation {
  Dataset train;       // data's examples after the first validation_size
  Dataset validation;  // data's first validation_size examples
};

// Géron's split: the first validation_size examples are the validation set, the rest
// the training set (he uses 5,000 of Fashion-MNIST's 60,000). 0 <= validation_size
// <= data.size().
absl::StatusOr<TrainValidation> SplitValidation(const Dataset& data, int64_t validation_size);

// A run of examples, [begin, end); end -1 runs to the last one.
struct ExampleRange {
  int64_t begin = 0;
  int64_t end = -1;
};

// Keeps the examples whose label is in classes and relabels each by its position in
// classes: {0, 1, 2, 3, 4, 7, 8, 9} keeps 8 classes, maps 7, 8, 9 to 5, 6, 7 and
// drops 5 and 6. The result has classes.size() classes. classes must be non-empty,
// without repeats, each in [0, data.num_classes). Only the examples in `range` are
// looked at (a split of data, taken without copying the rest).
absl::StatusOr<Dataset> SelectClasses(const Dataset& data, const std::vector<int32_t>& classes,
                                      ExampleRange range = {});

// A two-class task: examples labelled in positive become 1, those in negative
// become 0, the others are dropped. Both sets non-empty, disjoint, without repeats,
// each id in [0, data.num_classes). Only the examples in `range` are looked at.
absl::StatusOr<Dataset> BinaryTask(const Dataset& data, const std::vector<int32_t>& positive,
                                   const std::vector<int32_t>& negative, ExampleRange range = {});

// The first n examples. 0 <= n <= data.size().
absl::StatusOr<Dataset> FirstN(const Dataset& data, int64_t n);

// n examples drawn without replacement, uniformly among all n-subsets, determined by
// seed alone: a partial Fisher-Yates shuffle of the indices 0..size-1 with
// Rng(seed).Below (backends/random.h) picks n of them, and the picked examples are
// returned in their original order. 0 <= n <= data.size().
absl::StatusOr<Dataset> RandomSubset(const Dataset& data, int64_t n, uint64_t seed);

}  // namespace seedproof
