// An enum's words in one table, read both ways:
//
//   constexpr std::pair<TrialKind, const char*> kNames[] = {{TrialKind::kPretrain, "pretrain"},
//   ...}; const char* word = NameIn(kNames, kind);           // "unknown" for a value not listed
//   std::optional<TrialKind> kind = ValueNamed(kNames, "pretrain");  // nullopt for other text
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>

namespace seedproof {

template <typename Enum, size_t N>
const char* NameIn(const std::pair<Enum, const char*> (&names)[N], Enum value) {
  for (const auto& [v, name] : names) {
    if (v == value) return name;
  }
  return "unknown";
}

template <typename Enum, size_t N>
std::optional<Enum> ValueNamed(const std::pair<Enum, const char*> (&names)[N],
                               std::string_view text) {
  for (const auto& [v, name] : names) {
    if (text == name) return v;
  }
  return std::nullopt;
}

}  // namespace seedproof
