#include "cli/study_commands.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "experiments/plan.h"
#include "experiments/study.h"
#include "nlohmann/json.hpp"

namespace seedproof {

std::optional<LoadedStudy> LoadAndExpand(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "%s: cannot read: %s\n", path.c_str(), std::strerror(errno));
    return std::nullopt;
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<SpecError> errors;
  auto study = LoadStudy(text, path, &errors);
  if (!study.ok()) {
    if (errors.empty()) {
      std::fprintf(stderr, "seedproof: error: %s\n", std::string(study.status().message()).c_str());
    }
    for (const SpecError& e : errors)
      std::fprintf(stderr, "%s\n", FormatSpecError(path, e).c_str());
    return std::nullopt;
  }
  return *std::move(study);
}

int PlanCommand(const std::string& spec_path, bool json) {
  auto loaded = LoadAndExpand(spec_path);
  if (!loaded) return 2;
  if (json) {
    std::printf("%s\n", PlanToJson(loaded->plan).dump().c_str());
  } else {
    std::printf("%s", FormatPlan(loaded->plan, loaded->spec).c_str());
  }
  return 0;
}

}  // namespace seedproof
