// The sweep spec parser (YAML -> SweepSpec with every error located) on any text.
// A spec naming an ONNX file gets a loader that refuses it: the importer has a
// target of its own.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "experiments/sweep_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<seedproof::SpecError> errors;
  auto spec = seedproof::ParseSweepSpecText(
      text, "fuzz.yaml", &errors,
      [](const std::string& path) -> absl::StatusOr<seedproof::ImportedModel> {
        return absl::NotFoundError(path + ": not read while fuzzing");
      });
  if (!spec.ok() && errors.empty() && spec.status().code() == absl::StatusCode::kInvalidArgument) {
    __builtin_trap();  // an invalid spec always says where
  }
  return 0;
}
