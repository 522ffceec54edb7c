// The readers of every dataset format a spec can name, each turning files into one
// split of labelled examples (data/load.h puts the splits together). 8-bit content
// (PNG and JPEG pixels, uint8 arrays, CSVs whose every value is an integer in
// 0..255) is kept as bytes, anything else as float32.
//
// Every error names the file (and for CSV the line and column) and says what was
// expected: DATA_LOSS for damaged or cut files, INVALID_ARGUMENT for intact files
// that do not hold what the spec declares, the errno-derived code (NOT_FOUND) for
// files that cannot be read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"

namespace seedproof {

// The classes a spec declares for a dataset: names (their order gives the labels),
// or a count. Neither: the files say (image folders' names; numeric labels 0..max).
struct DeclaredClasses {
  std::vector<std::string> names;
  int count = 0;

  bool declared() const { return !names.empty() || count > 0; }
};

// One split as read: its examples and, where the files name them, its classes.
struct ReadSet {
  Dataset data;                          // scaling identity; num_classes from the labels
  std::vector<std::string> class_names;  // by label; empty when the files name none
};

// ---- Image folders (PNG, JPEG) ----

struct ImageFolderOptions {
  DeclaredClasses classes;
  // Convert every image to this many channels as it is decoded (1 gray, 3 RGB; 0:
  // keep, and then every image must have the same count).
  int channels = 0;
  // Resize every image to (height, width) as it is decoded (bilinear, rounded to
  // bytes); unset: every image must have the first one's size.
  std::optional<std::vector<int64_t>> size;
  // A declared class may lack a folder (a test tree without some class).
  bool allow_missing_classes = false;
};

// A folder with one sub-folder per class (torchvision's ImageFolder, Keras'
// image_dataset_from_directory): classes are the sub-folders' names in byte order
// (or the declared names, whose order gives the labels); each class's images are
// every file below its folder, at any depth. Entries whose names start with '.'
// are skipped; every other file must be a PNG or a JPEG (told by its content, not
// its name). Examples are ordered by their path below the class folder, then by
// class, so files named by index keep that order across classes. Errors: an
// empty class folder, a file beside the class folders, a file that is not an
// image, a damaged image (named), mixed sizes or channel counts with nothing
// declared to unify them.
absl::StatusOr<ReadSet> ReadImageFolder(const std::string& dir, const ImageFolderOptions& options);

// ---- NumPy arrays ----

// Examples from an array of shape (N, H, W), (N, H, W, C), or (N, F); with
// channels_first (N, C, H, W) is transposed to (N, H, W, C). Labels from an
// integer array of shape (N) or (N, 1). Example dtypes: uint8 (kept as bytes),
// float32, float64 (as float32); label dtypes: any integer type. C order only.
absl::StatusOr<ReadSet> ReadNpyPair(const std::string& x_path, const std::string& y_path,
                                    const DeclaredClasses& classes, bool channels_first);

// The same from two arrays of an .npz archive (np.savez, np.savez_compressed).
absl::StatusOr<ReadSet> ReadNpzPair(const std::string& path, const std::string& x_name,
                                    const std::string& y_name, const DeclaredClasses& classes,
                                    bool channels_first);

// ---- CSV ----

struct CsvOptions {
  bool header = true;        // the first row names the columns
  std::string label_column;  // by name (needs the header), else by index:
  int label_index = -1;      // 0-based; negative counts from the end (-1: the last)
  // The shape the feature values of a row form, as (H, W, C); empty: a flat (F).
  std::vector<int64_t> shape;
  DeclaredClasses classes;  // labels may be class names when names are declared
};

// A CSV file (gzip-compressed or not) with one example per row: the label column,
// and every other column a number. Parsed with libcsv (RFC 4180 quoting). Errors
// name path:line:column: a row with a missing or extra field, a field that is not
// a number, a label outside the declared classes.
absl::StatusOr<ReadSet> ReadCsv(const std::string& path, const CsvOptions& options);

}  // namespace seedproof
