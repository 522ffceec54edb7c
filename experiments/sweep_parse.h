// Reading a sweep spec (YAML, docs/SWEEP_SPEC.md) into a validated SweepSpec.
//
//   auto spec = ParseSweepSpec("experiments/specs/geron.yaml");
//   if (!spec.ok()) { std::cerr << spec.status().message() << "\n"; return 2; }
//   auto counts = LoadTrainCountsPerClass(spec->dataset);   // labels only, ~60 KB
//   if (counts.ok()) status = ValidateAgainstData(*spec, *counts);
//
// Validation reports every error at once, one per line, each as
//   FILE:LINE:COL: FIELD: message
// with 1-based line and column, FIELD the dotted path of the value
// (transfer.schedules.geron[1].lr; list indices are 0-based), and a message that
// says what was expected. A missing key is reported at its parent mapping. A spec
// with any error yields no SweepSpec, so nothing can run from it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/model_spec.h"
#include "data/load.h"
#include "experiments/sweep.h"

namespace seedproof {

// One problem in a spec. line and column are 1-based.
struct SpecError {
  int line = 1;
  int column = 1;
  std::string field;
  std::string message;
};

// "FILE:LINE:COL: FIELD: message".
std::string FormatSpecError(const std::string& path, const SpecError& error);

// Reads and validates the spec at path. Errors: NOT_FOUND (or the errno-derived
// code) when the file cannot be read; INVALID_ARGUMENT with every problem, one per
// line, when the spec is invalid. `errors`, if given, receives the same problems.
absl::StatusOr<SweepSpec> ParseSweepSpec(const std::string& path,
                                         std::vector<SpecError>* errors = nullptr);

// How the parser gets the ONNX file `model: {onnx: FILE}` names (the path resolved
// against the spec's folder). Errors are reported at model.onnx.
using ImportedModelLoader = std::function<absl::StatusOr<ImportedModel>(const std::string& path)>;

// Reads the file and imports it (onnx_io/ReadOnnx); `bytes`, if given, receives
// the file's bytes. NOT_FOUND for a missing file; the importer's errors otherwise.
absl::StatusOr<ImportedModel> ImportModelFile(const std::string& path, std::string* bytes = nullptr);

// The same for spec text; path_for_messages is the FILE of every message and
// SweepSpec::path. An empty `loader` is ImportModelFile.
absl::StatusOr<SweepSpec> ParseSweepSpecText(const std::string& text,
                                             const std::string& path_for_messages,
                                             std::vector<SpecError>* errors = nullptr,
                                             const ImportedModelLoader& loader = {});

// What reading a dataset told (LoadStudy): the facts the checks and the plan's
// estimates need.
struct DataFacts {
  Shape example_shape;  // after the declared channel conversion
  int num_classes = 0;
  std::vector<std::string> class_names;
  int64_t train_examples = 0;                   // before the validation split
  std::vector<int64_t> train_counts_per_class;  // after the validation split
};
using DataFactsByName = std::map<std::string, DataFacts>;

// The facts of a loaded dataset as `dataset` declares it (its validation split,
// its channel conversion).
DataFacts FactsOfData(const DatasetSpec& dataset, const LoadedDataset& loaded);

// The checks that need the data, for every task against its dataset's facts: the
// validation split against the training examples, classes the data has and with
// training examples, train_size against the task's training examples, and the
// model's input against the examples' shape (or its declared resize).
// INVALID_ARGUMENT lists every problem, in the same format and at the same
// positions as the parser's. A dataset missing from `facts` is not checked.
absl::Status ValidateAgainstData(const SweepSpec& spec, const DataFactsByName& facts,
                                 std::vector<SpecError>* errors = nullptr);

// What the parser knows about a dataset name without reading it.
struct DatasetFacts {
  std::string name;
  Shape example_shape;  // (H, W, C)
  int num_classes = 0;
  int64_t train_examples = 0;  // before the validation split
  int64_t test_examples = 0;
  int64_t max_train_per_class = 0;  // an upper bound for train_size checks without data
};
// nullptr for an unknown name. Known: "fashion-mnist".
const DatasetFacts* FindDatasetFacts(std::string_view name);

// 1234567 -> "1,234,567": counts in messages and plans.
std::string WithCommas(int64_t n);

}  // namespace seedproof
