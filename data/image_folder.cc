// ReadImageFolder (data/readers.h): a folder of class folders of PNG and JPEG files.
#include <algorithm>
#include <filesystem>
#include <map>
#include <system_error>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "data/channels.h"
#include "data/file_bytes.h"
#include "data/image_decode.h"
#include "data/readers.h"
#include "data/resize.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;

bool Hidden(const fs::path& p) { return p.filename().string().starts_with('.'); }

// The folder's entries in byte order of their names, hidden ones left out.
absl::StatusOr<std::vector<fs::directory_entry>> Entries(const fs::path& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    return absl::Status(ec == std::errc::no_such_file_or_directory
                            ? absl::StatusCode::kNotFound
                            : absl::StatusCode::kInvalidArgument,
                        absl::StrCat(dir.string(), ": cannot list the folder: ", ec.message()));
  }
  std::vector<fs::directory_entry> entries;
  for (const fs::directory_entry& e : it) {
    if (!Hidden(e.path())) entries.push_back(e);
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.path().filename() < b.path().filename(); });
  return entries;
}

// One image file to read: where it is, its path below the class folder, its class.
struct ImageFile {
  fs::path path;
  std::string relative;
  int32_t label = 0;
};

// Every non-hidden file below `dir`, at any depth, in byte order of their paths.
absl::Status CollectFiles(const fs::path& dir, const fs::path& class_root, int32_t label,
                          std::vector<ImageFile>& out) {
  auto entries = Entries(dir);
  if (!entries.ok()) return entries.status();
  for (const fs::directory_entry& e : *entries) {
    std::error_code ec;
    if (e.is_directory(ec)) {
      if (auto s = CollectFiles(e.path(), class_root, label, out); !s.ok()) return s;
    } else {
      out.push_back({e.path(), fs::relative(e.path(), class_root).string(), label});
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ReadSet> ReadImageFolder(const std::string& dir_name,
                                        const ImageFolderOptions& options) {
  const fs::path dir(dir_name);
  const DeclaredClasses& declared = options.classes;
  auto entries = Entries(dir);
  if (!entries.ok()) return entries.status();

  // Classes: the sub-folders, in byte order, or as declared.
  std::vector<std::string> found;
  for (const fs::directory_entry& e : *entries) {
    std::error_code ec;
    if (!e.is_directory(ec)) {
      return absl::InvalidArgumentError(
          absl::StrCat(e.path().string(),
                       ": a file beside the class folders; an image folder "
                       "holds one sub-folder per class and nothing else"));
    }
    found.push_back(e.path().filename().string());
  }
  if (declared.count > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir_name,
                     ": an image folder's classes are its sub-folders; declare them as a list of "
                     "names (the order gives the labels), not a count"));
  }
  ReadSet set;
  set.class_names = declared.names.empty() ? found : declared.names;
  for (const std::string& name : found) {
    if (std::find(set.class_names.begin(), set.class_names.end(), name) == set.class_names.end()) {
      return absl::InvalidArgumentError(absl::StrCat((dir / name).string(), ": folder '", name,
                                                     "' is not a declared class (",
                                                     absl::StrJoin(declared.names, ", "), ")"));
    }
  }
  if (set.class_names.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir_name,
                     ": no class folders; an image folder holds one sub-folder per "
                     "class, each with that class's images"));
  }

  std::vector<ImageFile> files;
  for (size_t label = 0; label < set.class_names.size(); ++label) {
    const fs::path class_dir = dir / set.class_names[label];
    if (std::find(found.begin(), found.end(), set.class_names[label]) == found.end()) {
      if (options.allow_missing_classes) continue;
      return absl::InvalidArgumentError(
          absl::StrCat(class_dir.string(), ": no folder for class '", set.class_names[label], "'"));
    }
    const size_t before = files.size();
    if (auto s = CollectFiles(class_dir, class_dir, static_cast<int32_t>(label), files); !s.ok()) {
      return s;
    }
    if (files.size() == before) {
      return absl::InvalidArgumentError(
          absl::StrCat(class_dir.string(), ": class folder '", set.class_names[label],
                       "' holds no images; every class needs at least one"));
    }
  }
  std::sort(files.begin(), files.end(), [](const ImageFile& a, const ImageFile& b) {
    return std::tie(a.relative, a.label) < std::tie(b.relative, b.label);
  });

  Dataset& data = set.data;
  data.storage = Dataset::Storage::kByte;
  data.num_classes = static_cast<int>(set.class_names.size());
  const ImageFile* first = nullptr;  // the image that set the shape
  for (const ImageFile& file : files) {
    const std::string path = file.path.string();
    auto bytes = ReadFileBytes(path);
    if (!bytes.ok()) return bytes.status();
    auto image = DecodeImage(*bytes, path);
    if (!image.ok()) return image.status();
    if (options.channels != 0 && image->channels != options.channels) {
      image->pixels =
          ConvertChannels(image->pixels, static_cast<int>(image->channels), options.channels);
      image->channels = options.channels;
    }
    if (options.size) {
      const int64_t h = (*options.size)[0], w = (*options.size)[1];
      if (image->height != h || image->width != w) {
        image->pixels =
            ResizeImageBytes(image->pixels, image->height, image->width, image->channels, h, w);
        image->height = h;
        image->width = w;
      }
    }
    const Shape shape = {image->height, image->width, image->channels};
    if (first == nullptr) {
      first = &file;
      data.example_shape = shape;
      data.bytes.reserve(files.size() * data.width());
    } else if (shape != data.example_shape) {
      const bool channels = shape[2] != data.example_shape[2];
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": ", ShapeToString(shape), " but ", first->path.string(), " is ",
          ShapeToString(data.example_shape), "; ",
          channels ? "declare channels: 1 or 3 on the dataset to convert every image"
                   : "declare size: [height, width] on the dataset to resize every image"));
    }
    data.bytes.insert(data.bytes.end(), image->pixels.begin(), image->pixels.end());
    data.y.push_back(file.label);
  }
  return set;
}

}  // namespace seedproof
