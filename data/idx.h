// Reading IDX files, the format of MNIST and Fashion-MNIST
// (http://yann.lecun.com/exdb/mnist/):
//
//   bytes 0-1   0x00 0x00
//   byte  2     element type (0x08 = unsigned byte; the only one seedproof reads)
//   byte  3     number of dimensions d
//   4*d bytes   the dimensions, each a big-endian uint32
//   then        the elements, row-major, exactly the product of the dimensions
//
// A file may be stored raw or gzip-compressed; which one is decided by the gzip
// magic bytes (1f 8b), not by the file name.
//
// Every error message starts with the file's path and says what is wrong and, for a
// size problem, how many bytes the header promises and how many the file holds:
//   "/d/train-images-idx3-ubyte.gz: truncated: header says 60000 images of 28x28
//    (47040000 bytes), file has 1200 bytes of pixel data"
// Status codes: the errno-derived code when the file cannot be opened or read
// (NOT_FOUND for a missing file), DATA_LOSS for truncated or corrupt content
// (short header or data, a damaged or cut gzip stream), INVALID_ARGUMENT for content
// that is intact but not what was asked for (magic, element type, dimension count,
// trailing bytes, a label out of range, image and label counts that differ).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace seedproof {

// An IDX array of unsigned bytes: its dimensions and its elements, row-major.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;  // product(dims) elements
};

// Reads an IDX file of unsigned bytes with any number (>= 1) of dimensions.
absl::StatusOr<IdxArray> ReadIdx(std::string_view path);

// Reads an IDX file of images: 3 dimensions (count, rows, cols).
absl::StatusOr<IdxArray> ReadIdxImages(std::string_view path);

// Reads an IDX file of labels: 1 dimension (count), every label < num_classes
// (1..256). A label out of range is reported with its index and value.
absl::StatusOr<IdxArray> ReadIdxLabels(std::string_view path, int num_classes);

// An image file and its label file, checked against each other.
struct LabeledImages {
  int64_t count = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint8_t> pixels;  // (count, rows, cols), row-major
  std::vector<uint8_t> labels;  // (count), each < num_classes
};

// Reads both files (see ReadIdxImages and ReadIdxLabels) and checks that they hold
// the same number of examples; if not, the error names both files and both counts.
absl::StatusOr<LabeledImages> ReadLabeledImages(std::string_view images_path,
                                                std::string_view labels_path, int num_classes);

}  // namespace seedproof
