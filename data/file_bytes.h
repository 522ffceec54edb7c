// A file's bytes, and its contents when it is gzip-compressed: what every dataset
// reader starts from. Errors start with the path: the errno-derived code when the
// file cannot be opened or read (NOT_FOUND for a missing file), DATA_LOSS for a
// damaged or cut gzip stream, INVALID_ARGUMENT for bytes after the stream's end.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace seedproof {

// The whole file, read in one allocation of its size.
absl::StatusOr<std::vector<uint8_t>> ReadFileBytes(const std::string& path);
// The same as a string (model files, ONNX files: what parsers take as text).
absl::StatusOr<std::string> ReadFileString(const std::string& path);

// The whole file, decompressed when it starts with the gzip magic (1f 8b) whatever
// its name; one gzip member or several in a row (as `gzip -c a b` writes), each
// member's CRC-32 and length checked.
absl::StatusOr<std::vector<uint8_t>> ReadFileMaybeGzip(const std::string& path);

}  // namespace seedproof
