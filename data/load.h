// Reading a dataset a spec names, in any of its formats, into the two splits a study
// uses, with its content hash; and the spec's preprocessing of a loaded set.
//
//   auto loaded = LoadDataset(spec.datasets[0]);  // decodes once: a worker caches it
//   if (auto s = CheckDatasetHash(spec.datasets[0], loaded->sha256); !s.ok()) ...
//
// Where each format is read (`path`; see DatasetSpec for the options):
//   idx     a folder with train-images-idx3-ubyte, train-labels-idx1-ubyte,
//           t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each raw or .gz
//           (the t10k pair is not read when the spec splits a test set off)
//   images  a folder with train/ and test/ class trees, or one class tree to split
//   npy     a folder with x_train.npy, y_train.npy, x_test.npy, y_test.npy
//   npz     one .npz holding the arrays x_train, y_train, x_test, y_test
//   csv     a folder with train.csv and test.csv (raw or .gz), or one file to split
// The array and file names are DatasetSpec options; with test_split only the
// training ones are read.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "data/dataset_spec.h"

namespace seedproof {

struct LoadedDataset {
  TrainTest data;                        // as decoded: bytes stay bytes, scaling identity
  std::vector<std::string> class_names;  // by label
  std::string sha256;                    // of EncodeDataset(data)
};

// Reads and decodes the dataset, splits off its test set if the spec says so, and
// hashes the result. Does not look at spec.sha256.
absl::StatusOr<LoadedDataset> LoadDataset(const DatasetSpec& spec);

// The loaded dataset from its canonical encoding (data/dataset_blob.h), as the
// coordinator sends it: in pieces whose SHA-256 the receiver took as they came
// (each piece is released once decoded), or whole. The hash is checked against
// spec.sha256 before anything is decoded.
absl::StatusOr<LoadedDataset> LoadDatasetFromPieces(const DatasetSpec& spec,
                                                    std::deque<std::string> pieces,
                                                    const std::string& sha256);
absl::StatusOr<LoadedDataset> LoadDatasetFromBlob(const DatasetSpec& spec, std::string blob);

// OK when spec.sha256 is empty or equals `actual`; else FAILED_PRECONDITION naming
// the dataset, its path and both hashes ("the data changed after submission").
absl::Status CheckDatasetHash(const DatasetSpec& spec, const std::string& actual);

// The scale a dataset's values are divided by when its spec sets none: 255 for
// 8-bit images (idx, images, uint8 arrays), 1 for everything else (CSV, floats).
float DefaultScale(const DatasetSpec& spec, Dataset::Storage storage);

// A stratified split: per class, a share `test_share` of its examples (rounded to
// the nearest count) drawn with Rng(seed) becomes the test set; both parts keep the
// original order.
TrainTest SplitStratified(const Dataset& data, double test_share, uint64_t seed);

// The spec's preprocessing of a split: channel conversion on the stored values
// (data/channels.h), then the scaling (divisor, mean, std) set for batches. Resizing is
// per task (BuildTaskSplits), after this.
absl::StatusOr<Dataset> Preprocess(Dataset data, const DatasetSpec& spec);

}  // namespace seedproof
