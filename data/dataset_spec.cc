#include "data/dataset_spec.h"

namespace seedproof {

std::vector<int32_t> TaskClasses(const TaskSpec& task) {
  if (!task.binary()) return task.classes;
  std::vector<int32_t> all = task.positive;
  all.insert(all.end(), task.negative.begin(), task.negative.end());
  return all;
}

}  // namespace seedproof
