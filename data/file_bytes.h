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

// The most bytes a reader takes from one file, or decompresses from one gzip
// stream or npz member: 16 GiB, the float32 values of the largest dataset
// (2^32 values, data/dataset_blob.h). Past it (or past a caller's smaller
// max_bytes): RESOURCE_EXHAUSTED naming the file and the limit, found from the
// file's size before anything is read, or as soon as a stream passes it. A
// device (/dev/zero) is INVALID_ARGUMENT: never read.
inline constexpr int64_t kMaxInputBytes = int64_t{16} << 30;

// The whole file, read in one allocation of its size.
absl::StatusOr<std::vector<uint8_t>> ReadFileBytes(const std::string& path,
                                                   int64_t max_bytes = kMaxInputBytes);
// The same as a string (model files, ONNX files: what parsers take as text).
absl::StatusOr<std::string> ReadFileString(const std::string& path,
                                           int64_t max_bytes = kMaxInputBytes);

// The whole file, decompressed when it starts with the gzip magic (1f 8b) whatever
// its name; one gzip member or several in a row (as `gzip -c a b` writes), each
// member's CRC-32 and length checked. max_bytes bounds the file and what it
// decompresses to.
absl::StatusOr<std::vector<uint8_t>> ReadFileMaybeGzip(const std::string& path,
                                                       int64_t max_bytes = kMaxInputBytes);

}  // namespace seedproof
