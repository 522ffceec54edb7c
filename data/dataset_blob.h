// A decoded dataset as one canonical byte string: what its content hash is taken
// of, and what the coordinator sends to workers that cannot read the files. The
// same examples and labels give the same bytes whatever format they were read from
// (an IDX set, a PNG folder, NumPy arrays and a CSV of the same pixels hash alike).
//
//   "SPDATA1\n", uint32 num_classes, then the train and the test split, each:
//   uint8 storage (0 float32, 1 byte), uint32 rank, rank x int64 dims, int64 count,
//   count x ElementCount(dims) values, count x int32 labels; little-endian.
#pragma once

#include <deque>
#include <string>

#include "absl/status/statusor.h"
#include "data/dataset.h"

namespace seedproof {

// data's examples and labels (not its scaling: preprocessing is declared apart).
std::string EncodeDataset(const TrainTest& data);

// Sha256Hex(EncodeDataset(data)), without building the encoding: the content hash a
// dataset is named by.
std::string DatasetSha256(const TrainTest& data);

// The inverse of EncodeDataset; `what` names the bytes in errors (a file, "dataset
// d from the coordinator"). DATA_LOSS for anything short, long or malformed.
absl::StatusOr<TrainTest> DecodeDataset(std::string bytes, const std::string& what);

// The same from the encoding in pieces, in order (as a download delivers it). Each
// piece is released once it is decoded, so the encoding and the dataset are never
// both whole in memory.
absl::StatusOr<TrainTest> DecodeDatasetPieces(std::deque<std::string> pieces,
                                              const std::string& what);

}  // namespace seedproof
