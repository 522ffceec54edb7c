// Every dataset format against files written by numpy and PIL (write_formats.py):
// the same images read from IDX, PNG, NumPy arrays and CSV are the same dataset,
// bit for bit and by content hash; JPEGs decode as PIL decodes them; and damaged or
// inconsistent files are refused with the file (and line and column) named.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "data/content_hash.h"
#include "data/dataset_blob.h"
#include "data/file_bytes.h"
#include "data/load.h"
#include "data/readers.h"
#include "data/task_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/format_files.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// The formats' files (tests/testing/format_files.h), shared; tests damage copies
// in a folder of their own process.
class Formats : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = testing_support::FormatFiles();
    ASSERT_TRUE(fs::exists(root_ / "tiny.png"));
    bad_ = fs::path(testing::TempDir()) / absl::StrCat("seedproof_formats_bad_", getpid());
    fs::remove_all(bad_);
  }
  static void TearDownTestSuite() { fs::remove_all(bad_); }

  static DatasetSpec Spec(DatasetFormat format, const fs::path& path) {
    DatasetSpec spec;
    spec.name = "fashion-subset";
    spec.format = format;
    spec.path = path.string();
    spec.validation = 500;
    return spec;
  }

  static LoadedDataset MustLoad(const DatasetSpec& spec) {
    auto loaded = LoadDataset(spec);
    EXPECT_TRUE(loaded.ok()) << DatasetFormatName(spec.format) << ": " << loaded.status();
    return loaded.ok() ? *std::move(loaded) : LoadedDataset{};
  }

  // A copy of `from` (a file or a folder), this process's to damage.
  static fs::path Copy(const fs::path& from, const std::string& name) {
    const fs::path to = bad_ / name;
    fs::remove_all(to);
    fs::create_directories(to.parent_path());
    fs::copy(from, to, fs::copy_options::recursive);
    return to;
  }

  static std::string Slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static void Write(const fs::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }

  static inline fs::path root_, bad_;
};

void ExpectError(const absl::Status& status, absl::StatusCode code, const std::string& text) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(text));
}

// ---- The same images in every format ----

TEST_F(Formats, EveryFormatReadsTheSameImagesAsTheSameDataset) {
  const LoadedDataset idx = MustLoad(Spec(DatasetFormat::kIdx, root_ / "idx"));
  ASSERT_EQ(idx.data.train.size(), 2000);
  ASSERT_EQ(idx.data.test.size(), 500);
  EXPECT_EQ(idx.data.train.storage, Dataset::Storage::kByte);
  EXPECT_EQ(idx.data.train.example_shape, (Shape{28, 28, 1}));
  EXPECT_EQ(idx.data.train.num_classes, 10);
  EXPECT_EQ(idx.sha256.size(), 64u);

  DatasetSpec png = Spec(DatasetFormat::kImages, root_ / "png");
  DatasetSpec npy = Spec(DatasetFormat::kNpy, root_ / "npy");
  DatasetSpec nchw = Spec(DatasetFormat::kNpy, root_ / "nchw");
  nchw.channels_first = true;
  DatasetSpec npz = Spec(DatasetFormat::kNpz, root_ / "data.npz");
  DatasetSpec csv = Spec(DatasetFormat::kCsv, root_ / "csv");
  csv.label_column = "label";
  csv.csv_shape = {28, 28, 1};
  for (const DatasetSpec& spec : {png, npy, nchw, npz, csv}) {
    const LoadedDataset other = MustLoad(spec);
    const std::string what = absl::StrCat(DatasetFormatName(spec.format), " at ", spec.path);
    EXPECT_EQ(other.sha256, idx.sha256) << what;
    for (auto [a, b] :
         {std::pair{&other.data.train, &idx.data.train}, {&other.data.test, &idx.data.test}}) {
      EXPECT_EQ(a->storage, Dataset::Storage::kByte) << what;
      EXPECT_EQ(a->example_shape, b->example_shape) << what;
      EXPECT_TRUE(a->bytes == b->bytes) << what;
      EXPECT_TRUE(a->y == b->y) << what;
      EXPECT_EQ(a->num_classes, b->num_classes) << what;
    }
  }
  // The canonical encoding is what the hash names, and decodes to the same data.
  const std::string encoding = EncodeDataset(idx.data);
  EXPECT_EQ(Sha256Hex(encoding), idx.sha256);
  auto decoded = DecodeDataset(encoding, "the encoding");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(decoded->train.bytes == idx.data.train.bytes);
  EXPECT_TRUE(decoded->test.y == idx.data.test.y);
}

TEST_F(Formats, ImageFoldersNameTheirClassesAndKeepTheFilesOrder) {
  const LoadedDataset png = MustLoad(Spec(DatasetFormat::kImages, root_ / "png"));
  EXPECT_THAT(png.class_names,
              testing::ElementsAre("0", "1", "2", "3", "4", "5", "6", "7", "8", "9"));
  // Declared names give the labels their order: "9" first makes it label 0.
  DatasetSpec reversed = Spec(DatasetFormat::kImages, root_ / "png");
  reversed.class_names = {"9", "8", "7", "6", "5", "4", "3", "2", "1", "0"};
  const LoadedDataset r = MustLoad(reversed);
  for (int64_t i = 0; i < 50; ++i) EXPECT_EQ(r.data.train.y[i], 9 - png.data.train.y[i]);
}

TEST_F(Formats, JpegsDecodeAsPilDecodesThem) {
  const LoadedDataset jpeg = MustLoad(Spec(DatasetFormat::kImages, root_ / "jpeg"));
  DatasetSpec pil = Spec(DatasetFormat::kNpy, root_ / "jpeg-decoded");
  pil.y_train = "../npy/y_train";
  pil.y_test = "../npy/y_test";
  const LoadedDataset expected = MustLoad(pil);
  EXPECT_EQ(jpeg.sha256, expected.sha256);
  EXPECT_TRUE(jpeg.data.train.bytes == expected.data.train.bytes);
  // JPEG is lossy: not the IDX pixels, but close to them.
  const LoadedDataset idx = MustLoad(Spec(DatasetFormat::kIdx, root_ / "idx"));
  EXPECT_NE(jpeg.sha256, idx.sha256);
}

TEST_F(Formats, RgbImagesConvertToGrayAsDeclared) {
  DatasetSpec rgb = Spec(DatasetFormat::kImages, root_ / "rgb");
  const LoadedDataset as_rgb = MustLoad(rgb);
  EXPECT_EQ(as_rgb.data.train.example_shape, (Shape{28, 28, 3}));
  rgb.channels = 1;  // converted as they are decoded: gray repeated comes back exactly
  const LoadedDataset gray = MustLoad(rgb);
  const LoadedDataset idx = MustLoad(Spec(DatasetFormat::kIdx, root_ / "idx"));
  EXPECT_EQ(gray.sha256, idx.sha256);
  // And gray to RGB, for a model that takes three channels (a task's preprocessing).
  DatasetSpec to_rgb = Spec(DatasetFormat::kIdx, root_ / "idx");
  to_rgb.channels = 3;
  auto converted = Preprocess(idx.data.train, to_rgb);
  ASSERT_TRUE(converted.ok()) << converted.status();
  EXPECT_EQ(converted->example_shape, (Shape{28, 28, 3}));
  EXPECT_TRUE(converted->bytes == as_rgb.data.train.bytes);
}

// Colour to gray as PIL's convert("L") computes it, bit for bit, on random colours.
TEST_F(Formats, ColourBecomesGrayAsPilMakesIt) {
  ImageFolderOptions to_gray;
  to_gray.channels = 1;
  auto gray = ReadImageFolder((root_ / "color" / "train").string(), to_gray);
  ASSERT_TRUE(gray.ok()) << gray.status();
  EXPECT_EQ(gray->data.example_shape, (Shape{9, 7, 1}));
  const std::string npy = Slurp(root_ / "color-gray.npy");
  const std::string tail = npy.substr(npy.size() - 40 * 9 * 7);  // the array after its header
  const std::vector<uint8_t> pil(tail.begin(), tail.end());
  EXPECT_EQ(gray->data.bytes, pil);
  auto rgb = ReadImageFolder((root_ / "color" / "train").string(), ImageFolderOptions());
  ASSERT_TRUE(rgb.ok()) << rgb.status();
  EXPECT_EQ(rgb->data.example_shape, (Shape{9, 7, 3}));
}

TEST_F(Formats, OneSetSplitsOffAStratifiedSeededTestSet) {
  DatasetSpec one = Spec(DatasetFormat::kCsv, root_ / "csv" / "train.csv");
  one.label_column = "label";
  one.test_split = 0.25;
  one.split_seed = 3;
  const LoadedDataset a = MustLoad(one), b = MustLoad(one);
  EXPECT_EQ(a.sha256, b.sha256);  // the same seed, the same split
  EXPECT_EQ(a.data.train.size() + a.data.test.size(), 2000);
  std::vector<int> train(10), test(10);
  for (int32_t y : a.data.train.y) ++train[y];
  for (int32_t y : a.data.test.y) ++test[y];
  for (int c = 0; c < 10; ++c) {
    EXPECT_NEAR(test[c], 0.25 * (train[c] + test[c]), 0.5) << "class " << c;
  }
  one.split_seed = 4;
  EXPECT_NE(MustLoad(one).sha256, a.sha256);
}

// ---- Damaged and inconsistent files ----

TEST_F(Formats, DamagedImagesAreNamed) {
  const fs::path png = Copy(root_ / "png", "png-damage");
  const fs::path image = png / "train" / "9" / "000000.png";
  const std::string bytes = Slurp(image);
  Write(image, bytes.substr(0, bytes.size() / 2));
  ExpectError(LoadDataset(Spec(DatasetFormat::kImages, png)).status(), absl::StatusCode::kDataLoss,
              absl::StrCat(image.string(), ": damaged PNG"));
  std::string corrupt = bytes;
  corrupt[corrupt.size() / 2] ^= 0x55;  // inside the pixel data: its CRC fails
  Write(image, corrupt);
  ExpectError(LoadDataset(Spec(DatasetFormat::kImages, png)).status(), absl::StatusCode::kDataLoss,
              absl::StrCat(image.string(), ": damaged PNG"));

  const fs::path jpeg = Copy(root_ / "jpeg", "jpeg-damage");
  const fs::path photo = jpeg / "test" / "2" / "000001.jpg";
  const std::string jpg = Slurp(photo);
  Write(photo, jpg.substr(0, jpg.size() * 2 / 3));
  ExpectError(LoadDataset(Spec(DatasetFormat::kImages, jpeg)).status(), absl::StatusCode::kDataLoss,
              absl::StrCat(photo.string(), ": damaged JPEG"));
}

TEST_F(Formats, AFileThatIsNotAnImageIsNamed) {
  const fs::path png = Copy(root_ / "png", "png-text");
  Write(png / "train" / "3" / "notes.txt", "shirts look like pullovers\n");
  ExpectError(
      LoadDataset(Spec(DatasetFormat::kImages, png)).status(), absl::StatusCode::kInvalidArgument,
      absl::StrCat((png / "train" / "3" / "notes.txt").string(), ": not a PNG or JPEG image"));
  fs::remove(png / "train" / "3" / "notes.txt");
  Write(png / "train" / ".DS_Store", "hidden files are skipped");
  EXPECT_TRUE(LoadDataset(Spec(DatasetFormat::kImages, png)).ok());
  Write(png / "train" / "README", "a file beside the classes");
  ExpectError(LoadDataset(Spec(DatasetFormat::kImages, png)).status(),
              absl::StatusCode::kInvalidArgument, "a file beside the class folders");
}

TEST_F(Formats, AnEmptyClassFolderIsAnError) {
  const fs::path png = Copy(root_ / "png", "png-empty");
  fs::remove_all(png / "train" / "4");
  fs::create_directories(png / "train" / "4");
  ExpectError(LoadDataset(Spec(DatasetFormat::kImages, png)).status(),
              absl::StatusCode::kInvalidArgument,
              absl::StrCat((png / "train" / "4").string(), ": class folder '4' holds no images"));
}

TEST_F(Formats, MixedSizesNeedADeclaredSizeAndMixedChannelsADeclaredCount) {
  const fs::path png = Copy(root_ / "png", "png-mixed");
  const fs::path odd = png / "train" / "0" / "000002.png";  // training image 2 is a T-shirt
  fs::copy_file(root_ / "rgb" / "train" / "0" / "000002.png", odd,
                fs::copy_options::overwrite_existing);
  DatasetSpec spec = Spec(DatasetFormat::kImages, png);
  ExpectError(LoadDataset(spec).status(), absl::StatusCode::kInvalidArgument,
              absl::StrCat(odd.string(), ": (28, 28, 3) but "));
  ExpectError(LoadDataset(spec).status(), absl::StatusCode::kInvalidArgument,
              "declare channels: 1 or 3");
  spec.channels = 1;
  auto gray = LoadDataset(spec);
  ASSERT_TRUE(gray.ok()) << gray.status();
  EXPECT_EQ(gray->sha256, MustLoad(Spec(DatasetFormat::kIdx, root_ / "idx")).sha256);

  // A 14 x 14 image among 28 x 28 ones: test image 17, in its class's folder.
  fs::path small;
  for (const auto& e : fs::recursive_directory_iterator(png / "test")) {
    if (e.path().filename() == "000017.png") small = e.path();
  }
  ASSERT_FALSE(small.empty());
  const std::string tiny_png = Slurp(root_ / "tiny.png");
  ASSERT_FALSE(tiny_png.empty());
  Write(small, tiny_png);
  ExpectError(LoadDataset(spec).status(), absl::StatusCode::kInvalidArgument,
              "declare size: [height, width]");
  spec.image_size = std::vector<int64_t>{28, 28};
  auto resized = LoadDataset(spec);
  ASSERT_TRUE(resized.ok()) << resized.status();
  EXPECT_EQ(resized->data.test.example_shape, (Shape{28, 28, 1}));
}

TEST_F(Formats, LabelsOutsideTheDeclaredClassesAreNamed) {
  DatasetSpec idx = Spec(DatasetFormat::kIdx, root_ / "idx");
  idx.classes = 5;
  ExpectError(LoadDataset(idx).status(), absl::StatusCode::kInvalidArgument,
              "train-labels-idx1-ubyte: example 0: label 9 is outside the declared 5 classes");
  DatasetSpec npy = Spec(DatasetFormat::kNpy, root_ / "npy");
  npy.classes = 9;
  ExpectError(LoadDataset(npy).status(), absl::StatusCode::kInvalidArgument,
              "y_train.npy: example 0: label 9 is outside the declared 9 classes (0 to 8)");
}

TEST_F(Formats, CsvProblemsNameFileLineAndColumn) {
  const fs::path dir = Copy(root_ / "csv", "csv-damage");
  const std::string good = Slurp(dir / "train.csv");
  const size_t line3 = good.find('\n', good.find('\n') + 1) + 1;  // the second data row
  auto with_line3 = [&](const std::string& row) {
    const size_t end = good.find('\n', line3);
    Write(dir / "train.csv", good.substr(0, line3) + row + good.substr(end));
  };
  DatasetSpec spec = Spec(DatasetFormat::kCsv, dir);
  spec.label_column = "label";
  const std::string row = good.substr(line3, good.find('\n', line3) - line3);
  // "0,0,0,..." -> the fourth value (pixel2, at column 5) replaced.
  with_line3("0,0,0,ab" + row.substr(row.find(',', row.find(',', row.find(',') + 1) + 1) + 2));
  ExpectError(LoadDataset(spec).status(), absl::StatusCode::kInvalidArgument,
              absl::StrCat((dir / "train.csv").string(), ":3:7: column 'pixel2' (field 4): 'ab"));
  with_line3(row.substr(0, row.rfind(',')));  // the last value missing
  ExpectError(LoadDataset(spec).status(), absl::StatusCode::kInvalidArgument,
              absl::StrCat((dir / "train.csv").string(), ":3:", row.rfind(',') + 1,
                           ": the row has 784 fields, expected 785"));
  with_line3("12" + row.substr(row.find(',')));
  spec.classes = 10;
  ExpectError(LoadDataset(spec).status(), absl::StatusCode::kInvalidArgument,
              absl::StrCat((dir / "train.csv").string(),
                           ":3:1: column 'label' (field 1): label 12 is outside the declared "
                           "10 classes"));
  with_line3("\"0," + row.substr(2));  // a quote that never closes
  ExpectError(LoadDataset(spec).status(), absl::StatusCode::kInvalidArgument, "malformed CSV");
  spec.label_column = "target";
  Write(dir / "train.csv", good);
  ExpectError(LoadDataset(spec).status(), absl::StatusCode::kInvalidArgument,
              "train.csv:1: no column 'target' in the header");
}

TEST_F(Formats, NpyOfTheWrongKindOrLengthIsNamed) {
  const fs::path dir = Copy(root_ / "npy", "npy-damage");
  DatasetSpec spec = Spec(DatasetFormat::kNpy, dir);
  // Labels that are images, images that are labels, and a truncated file.
  fs::copy_file(root_ / "npy" / "x_train.npy", dir / "y_train.npy",
                fs::copy_options::overwrite_existing);
  ExpectError(LoadDataset(spec).status(), absl::StatusCode::kInvalidArgument,
              "y_train.npy: labels of shape (2000, 28, 28); expected (N,) or (N, 1)");
  fs::copy_file(root_ / "npy" / "y_train.npy", dir / "y_train.npy",
                fs::copy_options::overwrite_existing);
  fs::copy_file(root_ / "npy" / "y_test.npy", dir / "x_train.npy",
                fs::copy_options::overwrite_existing);
  ExpectError(LoadDataset(spec).status(), absl::StatusCode::kInvalidArgument,
              "x_train.npy holds 500 examples (500,) but");
  const std::string x = Slurp(root_ / "npy" / "x_train.npy");
  Write(dir / "x_train.npy", x.substr(0, x.size() - 100));
  ExpectError(LoadDataset(spec).status(), absl::StatusCode::kDataLoss,
              "x_train.npy: truncated: (2000, 28, 28) of |u1 needs 1568000 bytes");
  // Images and labels of different lengths.
  Write(dir / "x_train.npy", x);
  fs::copy_file(root_ / "npy" / "y_test.npy", dir / "y_train.npy",
                fs::copy_options::overwrite_existing);
  ExpectError(LoadDataset(spec).status(), absl::StatusCode::kInvalidArgument,
              "holds 2000 examples (2000, 28, 28) but");
  // Labels of a float dtype; examples of an integer one.
  ASSERT_EQ(
      std::system(
          absl::StrCat("/usr/bin/python3 -c \"import numpy as np; "
                       "np.save('",
                       (dir / "y_train.npy").string(), "', np.zeros(2000, np.float32)); np.save('",
                       (dir / "x_test.npy").string(), "', np.zeros((500, 28, 28), np.int32))\"")
              .c_str()),
      0);
  ExpectError(LoadDataset(spec).status(), absl::StatusCode::kInvalidArgument,
              "y_train.npy: labels of dtype '<f4'; labels are integers");
  fs::copy_file(root_ / "npy" / "y_train.npy", dir / "y_train.npy",
                fs::copy_options::overwrite_existing);
  ExpectError(LoadDataset(spec).status(), absl::StatusCode::kInvalidArgument,
              "x_test.npy: examples of dtype '<i4'; expected uint8");
  Write(dir / "x_test.npy", "PK\x03\x04 not an array");
  ExpectError(LoadDataset(spec).status(), absl::StatusCode::kDataLoss,
              "x_test.npy: not a NumPy .npy array: wrong magic");
}

TEST_F(Formats, NpzArchivesNameWhatIsMissingOrDamaged) {
  DatasetSpec spec = Spec(DatasetFormat::kNpz, root_ / "data.npz");
  spec.x_train = "images";
  ExpectError(LoadDataset(spec).status(), absl::StatusCode::kInvalidArgument,
              "data.npz: no array 'images' (the archive holds ");
  const fs::path bad = Copy(root_ / "data.npz", "damaged.npz");
  const std::string bytes = Slurp(bad);
  Write(bad, bytes.substr(0, bytes.size() / 2));
  spec = Spec(DatasetFormat::kNpz, bad);
  ExpectError(LoadDataset(spec).status(), absl::StatusCode::kDataLoss,
              absl::StrCat(bad.string(), ": not a readable .npz (zip) archive"));
}

// Where x_train.npy's entry in an npz archive's central directory starts
// (npos: none).
size_t CentralEntryOfXTrain(const std::string& archive) {
  size_t entry = 0;
  while ((entry = archive.find("PK\x01\x02", entry)) != std::string::npos &&
         archive.compare(entry + 46, 11, "x_train.npy") != 0) {
    ++entry;
  }
  return entry;
}

// Found by tests/fuzz: a member whose size in the archive's directory is a lie
// (4 GB for a few hundred bytes) was allocated whole before a byte was read.
// Memory now grows with what decompresses; the lie is named.
TEST_F(Formats, AnNpzMemberClaimingGigabytesCostsNoMemory) {
  const fs::path bad = Copy(root_ / "data.npz", "claims.npz");
  std::string bytes = Slurp(bad);
  // Its uncompressed size is at +24.
  const size_t entry = CentralEntryOfXTrain(bytes);
  ASSERT_NE(entry, std::string::npos);
  const uint32_t claim = 0xF0000000u;
  std::memcpy(&bytes[entry + 24], &claim, 4);
  Write(bad, bytes);
  DatasetSpec spec = Spec(DatasetFormat::kNpz, bad);
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  const absl::Status status = LoadDataset(spec).status();
  getrusage(RUSAGE_SELF, &after);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(status.message(), HasSubstr("x_train"));
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 512 * 1024)
      << "peak memory grew by " << after.ru_maxrss - before.ru_maxrss << " KiB";
}

// Issue 19: an npz member may claim at most kMaxInputBytes (16 GiB). The claim
// is a zip64 size in the central directory. At the limit it is taken (and the
// member then ends far short of it: DATA_LOSS, with no memory spent on the
// claim); one byte past it is refused by the claim alone.
TEST_F(Formats, AnNpzMemberMayClaimSixteenGibibytesAndNotOneByteMore) {
  // x_train.npy's central directory entry, its uncompressed size made a zip64
  // one: 0xFFFFFFFF in the header and the size in a zip64 extra field (12 bytes
  // more in the central directory, so the end records move and say so).
  const auto claiming = [&](uint64_t claim, const std::string& name) {
    const fs::path file = Copy(root_ / "data.npz", name);
    std::string bytes = Slurp(file);
    const size_t entry = CentralEntryOfXTrain(bytes);
    EXPECT_NE(entry, std::string::npos);
    const auto u16 = [&](size_t at) {
      return static_cast<uint16_t>(static_cast<uint8_t>(bytes[at]) |
                                   static_cast<uint8_t>(bytes[at + 1]) << 8);
    };
    const auto add = [&](size_t at, int size, uint64_t more) {
      uint64_t value = 0;
      std::memcpy(&value, &bytes[at], size);
      value += more;
      std::memcpy(&bytes[at], &value, size);
    };
    const uint32_t escape = 0xFFFFFFFFu;
    std::memcpy(&bytes[entry + 24], &escape, 4);
    const size_t extra_end = entry + 46 + u16(entry + 28) + u16(entry + 30);
    std::string zip64("\x01\x00\x08\x00", 4);
    zip64.append(reinterpret_cast<const char*>(&claim), 8);
    bytes.insert(extra_end, zip64);
    add(entry + 30, 2, 12);
    if (const size_t end64 = bytes.find("PK\x06\x06", extra_end); end64 != std::string::npos) {
      add(end64 + 40, 8, 12);  // the zip64 end record: the directory's size
      const size_t locator = bytes.find("PK\x06\x07", end64);
      EXPECT_NE(locator, std::string::npos);
      add(locator + 8, 8, 12);  // where the zip64 end record is
    }
    const size_t end = bytes.rfind("PK\x05\x06");
    EXPECT_NE(end, std::string::npos);
    if (bytes.compare(end + 12, 4, "\xff\xff\xff\xff") != 0) add(end + 12, 4, 12);
    Write(file, bytes);
    return file;
  };
  const uint64_t limit = static_cast<uint64_t>(kMaxInputBytes);
  const absl::Status at =
      LoadDataset(Spec(DatasetFormat::kNpz, claiming(limit, "at.npz"))).status();
  EXPECT_EQ(at.code(), absl::StatusCode::kDataLoss) << at;
  EXPECT_THAT(at.message(), HasSubstr(absl::StrCat("of its ", limit, " bytes")));
  const absl::Status past =
      LoadDataset(Spec(DatasetFormat::kNpz, claiming(limit + 1, "past.npz"))).status();
  EXPECT_EQ(past.code(), absl::StatusCode::kResourceExhausted) << past;
  EXPECT_THAT(past.message(), HasSubstr(absl::StrCat("array 'x_train' claims ", limit + 1,
                                                     " bytes, more than ", limit)));
}

TEST_F(Formats, MissingFilesAreNamedWithWhatWasLookedFor) {
  ExpectError(LoadDataset(Spec(DatasetFormat::kIdx, root_ / "nowhere")).status(),
              absl::StatusCode::kNotFound, "looked for train-images-idx3-ubyte");
  ExpectError(LoadDataset(Spec(DatasetFormat::kImages, root_ / "nowhere")).status(),
              absl::StatusCode::kNotFound, "nowhere/train: cannot list the folder");
  ExpectError(LoadDataset(Spec(DatasetFormat::kCsv, root_ / "npy")).status(),
              absl::StatusCode::kNotFound, "looked for train.csv");
}

// What a worker does with its copy: a dataset that changed after submission is
// refused, naming it and both hashes.
TEST_F(Formats, ACopyThatHashesOtherwiseIsRefused) {
  const fs::path dir = Copy(root_ / "idx", "idx-changed");
  DatasetSpec spec = Spec(DatasetFormat::kIdx, dir);
  const LoadedDataset before = MustLoad(spec);
  spec.sha256 = before.sha256;
  EXPECT_TRUE(CheckDatasetHash(spec, before.sha256).ok());
  std::string labels = Slurp(dir / "t10k-labels-idx1-ubyte");
  labels.back() = labels.back() == 0 ? 1 : 0;
  Write(dir / "t10k-labels-idx1-ubyte", labels);
  const LoadedDataset after = MustLoad(spec);
  ASSERT_NE(after.sha256, before.sha256);
  ExpectError(CheckDatasetHash(spec, after.sha256), absl::StatusCode::kFailedPrecondition,
              absl::StrCat("dataset 'fashion-subset' at ", dir.string(), " hashes to ",
                           after.sha256, " but the study was submitted with ", before.sha256));
  auto shipped = LoadDatasetFromBlob(spec, EncodeDataset(after.data));
  ExpectError(shipped.status(), absl::StatusCode::kFailedPrecondition, after.sha256);
}

}  // namespace
}  // namespace seedproof
