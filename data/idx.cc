#include "data/idx.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "data/file_bytes.h"

namespace seedproof {
namespace {

// What a file is expected to hold; it decides the dimension count and how the
// error messages describe the contents.
enum class Content { kAny, kImages, kLabels };

constexpr uint8_t kUnsignedByte = 0x08;
const char* ElementTypeName(uint8_t type) {
  switch (type) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return "not an IDX type";
  }
}

// "60000 images of 28x28 (47040000 bytes)", "60000 labels (60000 bytes)",
// "dimensions 2x3x4 (24 bytes)". `bytes` < 0 means the product overflows.
std::string DescribeContents(Content content, const std::vector<int64_t>& dims, int64_t bytes) {
  const std::string size = bytes < 0 ? "more than 2^63 bytes" : absl::StrCat(bytes, " bytes");
  switch (content) {
    case Content::kImages:
      return absl::StrFormat("%d images of %dx%d (%s)", dims[0], dims[1], dims[2], size);
    case Content::kLabels:
      return absl::StrFormat("%d labels (%s)", dims[0], size);
    case Content::kAny:
      break;
  }
  return absl::StrFormat("dimensions %s (%s)", absl::StrJoin(dims, "x"), size);
}

const char* DataNoun(Content content) {
  switch (content) {
    case Content::kImages:
      return "pixel data";
    case Content::kLabels:
      return "label data";
    case Content::kAny:
      break;
  }
  return "data";
}

// Checks the header of the (decompressed) file contents and the data's length,
// then strips the header off.
absl::StatusOr<IdxArray> ParseIdx(const std::string& path, std::vector<uint8_t> bytes,
                                  Content content) {
  if (bytes.size() < 4) {
    return absl::DataLossError(absl::StrCat(
        path, ": truncated header: an IDX header needs at least 4 bytes, file has ", bytes.size()));
  }
  if (bytes[0] != 0 || bytes[1] != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: not an IDX file: wrong magic %02x %02x %02x %02x, expected 00 00 followed by "
        "the element type and the dimension count",
        path, int{bytes[0]}, int{bytes[1]}, int{bytes[2]}, int{bytes[3]}));
  }
  const uint8_t type = bytes[2];
  if (type != kUnsignedByte) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: unsupported IDX element type 0x%02x (%s); only 0x08 (unsigned byte) is supported",
        path, int{type}, ElementTypeName(type)));
  }
  const int ndims = bytes[3];
  const int expected_ndims = content == Content::kImages ? 3 : content == Content::kLabels ? 1 : 0;
  if (expected_ndims != 0 && ndims != expected_ndims) {
    const bool images = content == Content::kImages;
    std::string guess;
    if (images && ndims == 1) guess = " (is this a label file?)";
    if (!images && ndims == 3) guess = " (is this an image file?)";
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": wrong number of dimensions: ",
        images ? "an image file needs 3 (count, rows, cols)" : "a label file needs 1 (count)",
        ", header has ", ndims, guess));
  }
  if (ndims == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": wrong number of dimensions: header has 0"));
  }
  const size_t header_bytes = 4 + 4 * static_cast<size_t>(ndims);
  if (bytes.size() < header_bytes) {
    return absl::DataLossError(absl::StrCat(path, ": truncated header: ", ndims,
                                            " dimensions need a ", header_bytes,
                                            "-byte header, file has ", bytes.size(), " bytes"));
  }

  IdxArray array;
  int64_t expected = 1;  // -1 once the product overflows
  for (int i = 0; i < ndims; ++i) {
    const uint8_t* d = bytes.data() + 4 + 4 * i;
    const int64_t dim = int64_t{d[0]} << 24 | int64_t{d[1]} << 16 | int64_t{d[2]} << 8 | d[3];
    array.dims.push_back(dim);
    if (expected >= 0 && __builtin_mul_overflow(expected, dim, &expected)) expected = -1;
  }
  const size_t found = bytes.size() - header_bytes;
  if (expected < 0 || found < static_cast<uint64_t>(expected)) {
    return absl::DataLossError(absl::StrCat(path, ": truncated: header says ",
                                            DescribeContents(content, array.dims, expected),
                                            ", file has ", found, " bytes of ", DataNoun(content)));
  }
  if (found > static_cast<uint64_t>(expected)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", found - expected, " trailing bytes: header says ",
                     DescribeContents(content, array.dims, expected), ", file has ", found,
                     " bytes of ", DataNoun(content)));
  }
  bytes.erase(bytes.begin(), bytes.begin() + header_bytes);
  array.data = std::move(bytes);
  return array;
}

absl::StatusOr<IdxArray> ReadIdxAs(const std::string& path, Content content) {
  absl::StatusOr<std::vector<uint8_t>> bytes = ReadFileMaybeGzip(path);
  if (!bytes.ok()) return bytes.status();
  return ParseIdx(path, *std::move(bytes), content);
}

}  // namespace

absl::StatusOr<IdxArray> ReadIdx(std::string_view path) {
  return ReadIdxAs(std::string(path), Content::kAny);
}

absl::StatusOr<IdxArray> ReadIdxImages(std::string_view path) {
  return ReadIdxAs(std::string(path), Content::kImages);
}

absl::StatusOr<IdxArray> ReadIdxLabels(std::string_view path_view, int num_classes) {
  const std::string path(path_view);
  if (num_classes < 1 || num_classes > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot check labels against ", num_classes,
                     " classes: a byte label file holds 1 to 256 classes"));
  }
  absl::StatusOr<IdxArray> labels = ReadIdxAs(path, Content::kLabels);
  if (!labels.ok()) return labels.status();
  const std::vector<uint8_t>& data = labels->data;
  const auto bad = std::find_if(data.begin(), data.end(),
                                [num_classes](uint8_t label) { return label >= num_classes; });
  if (bad != data.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": label out of range at index ", bad - data.begin(), ": ", int{*bad},
                     " (labels must be below ", num_classes, ", the number of classes)"));
  }
  return labels;
}

absl::StatusOr<LabeledImages> ReadLabeledImages(std::string_view images_path_view,
                                                std::string_view labels_path_view,
                                                int num_classes) {
  const std::string images_path(images_path_view);
  const std::string labels_path(labels_path_view);
  absl::StatusOr<IdxArray> images = ReadIdxImages(images_path);
  if (!images.ok()) return images.status();
  absl::StatusOr<IdxArray> labels = ReadIdxLabels(labels_path, num_classes);
  if (!labels.ok()) return labels.status();
  if (images->dims[0] != labels->dims[0]) {
    return absl::InvalidArgumentError(
        absl::StrCat(images_path, " holds ", images->dims[0], " images but ", labels_path,
                     " holds ", labels->dims[0],
                     " labels; an image file and its label file must hold the same number "
                     "of examples"));
  }
  LabeledImages result;
  result.count = images->dims[0];
  result.rows = images->dims[1];
  result.cols = images->dims[2];
  result.pixels = std::move(images->data);
  result.labels = std::move(labels->data);
  return result;
}

}  // namespace seedproof
