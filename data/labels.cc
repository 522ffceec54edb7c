#include "data/labels.h"

#include <algorithm>
#include <charconv>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace seedproof {

absl::StatusOr<int32_t> LabelMap::OfNumber(int64_t label) const {
  const int64_t count = !classes_.names.empty() ? static_cast<int64_t>(classes_.names.size())
                        : classes_.count > 0    ? classes_.count
                                                : kMaxUndeclaredClasses;
  if (label >= 0 && label < count) return static_cast<int32_t>(label);
  if (!classes_.declared()) {
    return absl::InvalidArgumentError(
        absl::StrCat("label ", label, " is not a class id (0 to ", kMaxUndeclaredClasses - 1, ")"));
  }
  return absl::InvalidArgumentError(absl::StrCat("label ", label, " is outside the declared ",
                                                 count, " classes (0 to ", count - 1, ")"));
}

absl::StatusOr<int32_t> LabelMap::OfText(std::string_view label) const {
  const auto named = std::find(classes_.names.begin(), classes_.names.end(), label);
  if (named != classes_.names.end()) {
    return static_cast<int32_t>(named - classes_.names.begin());
  }
  int64_t number = 0;
  const auto [end, ec] = std::from_chars(label.data(), label.data() + label.size(), number);
  if (ec == std::errc() && end == label.data() + label.size() && !label.empty()) {
    return OfNumber(number);
  }
  if (classes_.names.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("label '", std::string(label),
                     "' is not a class id; declare the dataset's classes as a list of names to "
                     "use names as labels"));
  }
  return absl::InvalidArgumentError(absl::StrCat("label '", std::string(label),
                                                 "' is not a declared class (",
                                                 absl::StrJoin(classes_.names, ", "), ")"));
}

int LabelMap::NumClasses(const std::vector<int32_t>& labels) const {
  if (!classes_.names.empty()) return static_cast<int>(classes_.names.size());
  if (classes_.count > 0) return classes_.count;
  int32_t max = -1;
  for (int32_t label : labels) max = std::max(max, label);
  return max + 1;
}

}  // namespace seedproof
