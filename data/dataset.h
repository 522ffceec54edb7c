// Labelled image datasets as values, Fashion-MNIST's loader, and the task views a
// study builds from it (Géron, Hands-On ML, ch. 11):
//
//   FashionMnist data = *LoadFashionMnist();
//   TrainValidation split = *SplitValidation(data.train, 5000);
//   Dataset task_a = *SelectClasses(split.train, {0, 1, 2, 3, 4, 7, 8, 9});  // 43,986
//   Dataset task_b = *FirstN(*BinaryTask(split.train, {6}, {5}), 200);       // shirt 1
//   Dataset task_b_test = *BinaryTask(data.test, {6}, {5});                  // 2,000
//
// Every view copies the examples it keeps, in their original order, so a view never
// aliases the dataset it came from. Errors are INVALID_ARGUMENT with a message that
// says which argument is wrong and why; the loaders pass on the IDX reader's errors
// (data/idx.h), which name the file.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "backends/model_spec.h"

namespace seedproof {

// n labelled examples of one shape. Invariants, which every function here keeps and
// checks on its inputs: x.size() == size() * ElementCount(example_shape), and
// 0 <= y[i] < num_classes.
struct Dataset {
  Shape example_shape;     // (H, W, C), e.g. {28, 28, 1}
  std::vector<float> x;    // (n, H, W, C), row-major; image pixels are byte / 255
  std::vector<int32_t> y;  // (n), class ids 0..num_classes-1
  int num_classes = 0;

  int64_t size() const { return static_cast<int64_t>(y.size()); }
};

// Reads an IDX image file and its label file (gzip or raw, see idx.h) into a
// Dataset with example shape (rows, cols, 1), pixels scaled to [0, 1] as
// float(byte) / 255.0f. Labels must be below num_classes.
absl::StatusOr<Dataset> LoadIdxDataset(std::string_view images_path, std::string_view labels_path,
                                       int num_classes);

// Where Debian's dataset-fashion-mnist package installs the data.
inline constexpr std::string_view kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
inline constexpr int kFashionMnistClasses = 10;
// Class names by label.
inline constexpr std::array<std::string_view, kFashionMnistClasses> kFashionMnistClassNames = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

struct FashionMnist {
  Dataset train;  // 60,000 examples
  Dataset test;   // 10,000 examples
};

// Loads Fashion-MNIST's two splits from dir, which holds
// train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz
// and t10k-labels-idx1-ubyte.gz. Examples are (28, 28, 1), 10 classes.
absl::StatusOr<FashionMnist> LoadFashionMnist(std::string_view dir = kFashionMnistDir);

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
