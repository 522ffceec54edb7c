// The model file: what Model::Save writes and Backend::Load reads. The byte
// layout is documented in docs/MODEL_FORMAT.md; keep the two in step.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/model_spec.h"

namespace seedproof {

inline constexpr char kModelFileMagic[8] = {'S', 'P', 'M', 'O', 'D', 'E', 'L', '\n'};
// Version 2 added explicit padding, activation alpha, batch normalisation and
// average pooling settings to each layer. A model that uses none of them is still
// written as version 1, byte for byte as before (its hash, an artifact's name,
// does not change); both are read.
inline constexpr uint32_t kModelFileVersion = 2;

struct ModelFileContents {
  ModelSpec spec;
  std::vector<bool> trainable;  // one per layer
  uint64_t seed = 0;            // dropout stream
  uint64_t step = 0;            // training steps taken
  std::vector<float> parameters;  // the flat buffer, Keras layout
};

// The file's bytes, and back: models travel between processes this way, no file
// in between. DecodeModelFile's errors name `name` (the file, or the artifact) as
// ReadModelFile's name the path.
std::string EncodeModelFile(const ModelFileContents& contents);
absl::StatusOr<ModelFileContents> DecodeModelFile(const std::string& bytes,
                                                  const std::string& name);

// Writes atomically: a temporary file in the same folder, then rename.
absl::Status WriteModelFile(const std::string& path, const ModelFileContents& contents);
// Every failure names the path and the problem: missing, truncated (and where),
// not a model file, another format version, corrupt (checksum), or settings and
// tensors that do not fit together.
absl::StatusOr<ModelFileContents> ReadModelFile(const std::string& path);

}  // namespace seedproof
