// What data a trial reads, as plain values: the dataset (DatasetSpec) and the task
// view of it (TaskSpec). The sweep spec (experiments/sweep.h) holds them; the data
// layer builds a task's splits from them (data/task_data.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace seedproof {

struct DatasetSpec {
  std::string name = "fashion-mnist";  // the only built-in name so far
  std::string dir;                     // IDX folder; empty: Debian's package
  int64_t validation = 5000;           // first N training images form the validation split
};

// Which examples a task uses and how they are labelled.
struct TaskSpec {
  std::string name;  // for reports: "source", "shirt-vs-sandal", "6-vs-5"
  // Multi-class: keep these classes, relabelled by position (Géron's task A).
  std::vector<int32_t> classes;
  // Binary: positive -> 1, negative -> 0. Used when classes is empty.
  std::vector<int32_t> positive, negative;
  int64_t train_size = 0;  // 0: every training example of the task
  enum class Subset { kFirst, kRandom } subset = Subset::kFirst;  // which train_size examples
  // Declared resize of this task's images to the model input (bilinear); without
  // it, a size mismatch is an error.
  std::optional<std::vector<int64_t>> resize_from;

  bool binary() const { return classes.empty(); }
  int num_classes() const { return binary() ? 2 : static_cast<int>(classes.size()); }
};
// Every class the task uses: classes, or positive then negative for a binary task.
std::vector<int32_t> TaskClasses(const TaskSpec& task);

}  // namespace seedproof
