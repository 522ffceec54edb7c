// How fast datasets are read: every format of tests/data/write_formats.py's files
// (the same images as IDX, PNG, JPEG, NumPy arrays and CSV) and Debian's whole
// Fashion-MNIST, each read, decoded and hashed as a worker does (LoadDataset), on
// one core (docs/PERFORMANCE.md).
#pragma once

#include <string>

#include "absl/status/status.h"

namespace seedproof {

struct DataBenchOptions {
  std::string dir;  // write_formats.py's output folder
  int repeats = 3;  // timed reads per format; the fastest is reported
};

// Prints one JSON line per format: {"format", "images", "seconds", "images_per_s",
// "hash_seconds"} (hash_seconds: the content hash's share of the time).
absl::Status RunDataBench(const DataBenchOptions& options);

}  // namespace seedproof
