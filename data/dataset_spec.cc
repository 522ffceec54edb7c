#include "data/dataset_spec.h"

#include <array>
#include <utility>

namespace seedproof {
namespace {

constexpr std::array<std::pair<DatasetFormat, const char*>, 5> kFormatNames = {{
    {DatasetFormat::kIdx, "idx"},
    {DatasetFormat::kImages, "images"},
    {DatasetFormat::kNpy, "npy"},
    {DatasetFormat::kNpz, "npz"},
    {DatasetFormat::kCsv, "csv"},
}};

}  // namespace

const char* DatasetFormatName(DatasetFormat format) {
  for (const auto& [f, name] : kFormatNames) {
    if (f == format) return name;
  }
  return "?";
}

std::optional<DatasetFormat> DatasetFormatNamed(std::string_view name) {
  for (const auto& [f, n] : kFormatNames) {
    if (name == n) return f;
  }
  return std::nullopt;
}

std::vector<int32_t> TaskClasses(const TaskSpec& task) {
  if (!task.binary()) return task.classes;
  std::vector<int32_t> all = task.positive;
  all.insert(all.end(), task.negative.begin(), task.negative.end());
  return all;
}

}  // namespace seedproof
