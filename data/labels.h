// Class ids from the labels a file holds, checked against the classes a spec
// declares (data/readers.h). Internal to data/: the readers prefix each message
// with where the label is (a file and example, or file:line:column).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "data/readers.h"

namespace seedproof {

// Classes without a declaration are 0..max label; more than this is surely not a
// class id (a regression target, a column mistaken for the label).
inline constexpr int64_t kMaxUndeclaredClasses = 65536;

class LabelMap {
 public:
  explicit LabelMap(const DeclaredClasses& classes) : classes_(classes) {}

  // The class id of a numeric label. INVALID_ARGUMENT, with a message that says
  // which classes there are, when it is not one.
  absl::StatusOr<int32_t> OfNumber(int64_t label) const;
  // The class id of a label written as text: a declared class name, or an integer.
  absl::StatusOr<int32_t> OfText(std::string_view label) const;
  // How many classes there are: as declared, or the largest label + 1.
  int NumClasses(const std::vector<int32_t>& labels) const;

 private:
  const DeclaredClasses& classes_;
};

}  // namespace seedproof
