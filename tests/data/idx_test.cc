// The IDX reader on small files written into a temporary directory: valid raw and
// gzip files round-trip, and each kind of damage gives its own message naming the
// file.
#include "data/idx.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "data/file_bytes.h"

namespace seedproof {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using Bytes = std::vector<uint8_t>;

// An IDX file's bytes: magic 00 00 type ndims, big-endian dims, then data.
Bytes Idx(uint8_t type, const std::vector<uint32_t>& dims, const Bytes& data) {
  Bytes bytes = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) {
    bytes.insert(bytes.end(), {static_cast<uint8_t>(d >> 24), static_cast<uint8_t>(d >> 16),
                               static_cast<uint8_t>(d >> 8), static_cast<uint8_t>(d)});
  }
  bytes.insert(bytes.end(), data.begin(), data.end());
  return bytes;
}

// count*rows*cols pixels with a pattern that compresses poorly enough to give a
// multi-block deflate stream.
Bytes Pixels(int64_t count) {
  Bytes pixels(count);
  uint32_t state = 12345;
  for (auto& p : pixels) {
    state = state * 1103515245u + 12345u;
    p = static_cast<uint8_t>(state >> 24);
  }
  return pixels;
}

Bytes ImageFile(uint32_t count, uint32_t rows, uint32_t cols) {
  return Idx(0x08, {count, rows, cols}, Pixels(int64_t{count} * rows * cols));
}

// A gzip stream in memory (deflate with the gzip wrapper, as gzip(1) writes).
Bytes Gzip(const Bytes& raw) {
  z_stream zs{};
  EXPECT_EQ(
      deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
      Z_OK);
  Bytes gz(deflateBound(&zs, raw.size()) + 32);
  zs.next_in = const_cast<Bytef*>(raw.data());
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = gz.data();
  zs.avail_out = static_cast<uInt>(gz.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  gz.resize(zs.total_out);
  deflateEnd(&zs);
  return gz;
}

class IdxFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = std::filesystem::temp_directory_path() / "seedproof_idx_test_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes bytes as-is (a raw file, or gzip bytes made with Gzip).
  std::string Write(const std::string& name, const Bytes& bytes) {
    const std::string path = dir_ / name;
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  // Writes through zlib's gzopen("wb"), which is how gzip files are made.
  std::string WriteGzip(const std::string& name, const Bytes& raw) {
    const std::string path = dir_ / name;
    gzFile out = gzopen(path.c_str(), "wb");
    EXPECT_NE(out, nullptr);
    EXPECT_EQ(gzwrite(out, raw.data(), static_cast<unsigned>(raw.size())),
              static_cast<int>(raw.size()));
    EXPECT_EQ(gzclose(out), Z_OK);
    return path;
  }

  std::filesystem::path dir_;
};

// Checks the code, that the message starts with the path, and that it says `what`.
void ExpectError(const absl::Status& status, absl::StatusCode code, const std::string& path,
                 const std::string& what) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_THAT(std::string(status.message()), AllOf(::testing::StartsWith(path), HasSubstr(what)));
}

TEST_F(IdxFiles, RawImageFileRoundTrips) {
  const Bytes file = ImageFile(3, 4, 5);
  const std::string path = Write("images-idx3-ubyte", file);
  absl::StatusOr<IdxArray> images = ReadIdxImages(path);
  ASSERT_TRUE(images.ok()) << images.status();
  EXPECT_THAT(images->dims, ElementsAre(3, 4, 5));
  EXPECT_EQ(images->data, Bytes(file.begin() + 16, file.end()));
}

TEST_F(IdxFiles, GzipImageFileRoundTrips) {
  const Bytes file = ImageFile(10, 28, 28);
  const std::string path = WriteGzip("images-idx3-ubyte.gz", file);
  absl::StatusOr<IdxArray> images = ReadIdxImages(path);
  ASSERT_TRUE(images.ok()) << images.status();
  EXPECT_THAT(images->dims, ElementsAre(10, 28, 28));
  EXPECT_EQ(images->data, Bytes(file.begin() + 16, file.end()));
}

TEST_F(IdxFiles, GzipIsRecognisedByMagicBytesNotByName) {
  const Bytes labels = Idx(0x08, {4}, {3, 1, 4, 1});
  absl::StatusOr<IdxArray> gzip_named_plain = ReadIdxLabels(WriteGzip("labels.raw", labels), 10);
  ASSERT_TRUE(gzip_named_plain.ok()) << gzip_named_plain.status();
  EXPECT_THAT(gzip_named_plain->data, ElementsAre(3, 1, 4, 1));
  absl::StatusOr<IdxArray> plain_named_gzip = ReadIdxLabels(Write("labels.gz", labels), 10);
  ASSERT_TRUE(plain_named_gzip.ok()) << plain_named_gzip.status();
  EXPECT_THAT(plain_named_gzip->data, ElementsAre(3, 1, 4, 1));
}

TEST_F(IdxFiles, ConcatenatedGzipMembersReadAsOneFile) {
  const Bytes file = Idx(0x08, {6}, {0, 1, 2, 3, 4, 5});
  Bytes gz = Gzip(Bytes(file.begin(), file.begin() + 9));
  const Bytes second = Gzip(Bytes(file.begin() + 9, file.end()));
  gz.insert(gz.end(), second.begin(), second.end());
  absl::StatusOr<IdxArray> labels = ReadIdxLabels(Write("labels.gz", gz), 10);
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_THAT(labels->data, ElementsAre(0, 1, 2, 3, 4, 5));
}

TEST_F(IdxFiles, ReadIdxAcceptsAnyDimensionCount) {
  absl::StatusOr<IdxArray> array = ReadIdx(Write("matrix", Idx(0x08, {2, 3}, {1, 2, 3, 4, 5, 6})));
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_THAT(array->dims, ElementsAre(2, 3));
  EXPECT_THAT(array->data, ElementsAre(1, 2, 3, 4, 5, 6));
}

TEST_F(IdxFiles, EmptyImageFileIsValid) {
  absl::StatusOr<IdxArray> images =
      ReadIdxImages(Write("empty-images", Idx(0x08, {0, 28, 28}, {})));
  ASSERT_TRUE(images.ok()) << images.status();
  EXPECT_THAT(images->dims, ElementsAre(0, 28, 28));
  EXPECT_TRUE(images->data.empty());
}

// --- Damaged files -------------------------------------------------------------

TEST_F(IdxFiles, MissingFileIsNotFoundAndNamesPath) {
  const std::string path = dir_ / "no-such-file.gz";
  ExpectError(ReadIdxImages(path).status(), absl::StatusCode::kNotFound, path,
              "cannot open: No such file or directory");
}

TEST_F(IdxFiles, WrongMagicSaysNotAnIdxFile) {
  Bytes file = ImageFile(1, 2, 2);
  file[0] = 0x12;
  file[1] = 0x34;
  const std::string path = Write("images", file);
  ExpectError(ReadIdxImages(path).status(), absl::StatusCode::kInvalidArgument, path,
              "not an IDX file: wrong magic 12 34 08 03");
}

TEST_F(IdxFiles, UnsupportedElementTypeIsNamed) {
  const std::string path = Write("floats", Idx(0x0D, {1, 1, 1}, {0, 0, 0, 0}));
  ExpectError(ReadIdxImages(path).status(), absl::StatusCode::kInvalidArgument, path,
              "unsupported IDX element type 0x0d (float32); only 0x08 (unsigned byte)");
}

TEST_F(IdxFiles, LabelFileReadAsImagesHasWrongDimensionCount) {
  const std::string path = Write("labels", Idx(0x08, {2}, {0, 1}));
  ExpectError(ReadIdxImages(path).status(), absl::StatusCode::kInvalidArgument, path,
              "wrong number of dimensions: an image file needs 3 (count, rows, cols), "
              "header has 1 (is this a label file?)");
}

TEST_F(IdxFiles, ImageFileReadAsLabelsHasWrongDimensionCount) {
  const std::string path = Write("images", ImageFile(1, 2, 2));
  ExpectError(ReadIdxLabels(path, 10).status(), absl::StatusCode::kInvalidArgument, path,
              "a label file needs 1 (count), header has 3 (is this an image file?)");
}

TEST_F(IdxFiles, ZeroDimensionsAreRejected) {
  const std::string path = Write("scalar", Idx(0x08, {}, {}));
  ExpectError(ReadIdx(path).status(), absl::StatusCode::kInvalidArgument, path,
              "wrong number of dimensions: header has 0");
}

TEST_F(IdxFiles, FileShorterThanMagicIsTruncatedHeader) {
  const std::string path = Write("short", {0, 0});
  ExpectError(ReadIdxImages(path).status(), absl::StatusCode::kDataLoss, path,
              "truncated header: an IDX header needs at least 4 bytes, file has 2");
}

TEST_F(IdxFiles, EmptyFileIsTruncatedHeader) {
  const std::string path = Write("empty", {});
  ExpectError(ReadIdxImages(path).status(), absl::StatusCode::kDataLoss, path,
              "truncated header: an IDX header needs at least 4 bytes, file has 0");
}

TEST_F(IdxFiles, MissingDimensionsAreTruncatedHeader) {
  const Bytes file = ImageFile(1, 2, 2);
  const std::string path = Write("images", Bytes(file.begin(), file.begin() + 10));
  ExpectError(ReadIdxImages(path).status(), absl::StatusCode::kDataLoss, path,
              "truncated header: 3 dimensions need a 16-byte header, file has 10 bytes");
}

TEST_F(IdxFiles, TruncatedPixelDataNamesFileAndByteCounts) {
  const Bytes file = ImageFile(3, 4, 5);
  const std::string path = Write("images", Bytes(file.begin(), file.end() - 10));
  ExpectError(ReadIdxImages(path).status(), absl::StatusCode::kDataLoss, path,
              "truncated: header says 3 images of 4x5 (60 bytes), file has 50 bytes of pixel data");
}

TEST_F(IdxFiles, TruncatedPixelDataInsideIntactGzipCountsDecompressedBytes) {
  const Bytes file = ImageFile(60, 28, 28);
  const std::string path = WriteGzip("images.gz", Bytes(file.begin(), file.begin() + 16 + 1200));
  ExpectError(ReadIdxImages(path).status(), absl::StatusCode::kDataLoss, path,
              "truncated: header says 60 images of 28x28 (47040 bytes), file has 1200 bytes of "
              "pixel data");
}

TEST_F(IdxFiles, TruncatedLabelDataSaysLabels) {
  const std::string path = Write("labels", Idx(0x08, {5}, {1, 2, 3}));
  ExpectError(ReadIdxLabels(path, 10).status(), absl::StatusCode::kDataLoss, path,
              "truncated: header says 5 labels (5 bytes), file has 3 bytes of label data");
}

TEST_F(IdxFiles, DimensionsWhoseProductOverflowsAreTruncated) {
  const std::string path =
      Write("huge", Idx(0x08, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, {1, 2, 3}));
  ExpectError(ReadIdxImages(path).status(), absl::StatusCode::kDataLoss, path,
              "truncated: header says 4294967295 images of 4294967295x4294967295 (more than "
              "2^63 bytes), file has 3 bytes of pixel data");
}

TEST_F(IdxFiles, TrailingBytesAfterDataAreAnError) {
  Bytes file = ImageFile(3, 4, 5);
  file.insert(file.end(), 7, 0xAA);
  const std::string path = Write("images", file);
  ExpectError(ReadIdxImages(path).status(), absl::StatusCode::kInvalidArgument, path,
              "7 trailing bytes: header says 3 images of 4x5 (60 bytes), file has 67 bytes of "
              "pixel data");
}

TEST_F(IdxFiles, CorruptGzipStreamIsDataLoss) {
  Bytes gz = Gzip(ImageFile(20, 28, 28));
  ASSERT_GT(gz.size(), 1000u);
  for (size_t i = gz.size() / 2; i < gz.size() / 2 + 16; ++i) gz[i] ^= 0x5A;
  const std::string path = Write("images.gz", gz);
  ExpectError(ReadIdxImages(path).status(), absl::StatusCode::kDataLoss, path,
              "corrupt gzip stream");
}

TEST_F(IdxFiles, GzipChecksumMismatchIsCorrupt) {
  Bytes gz = Gzip(ImageFile(2, 28, 28));
  gz[gz.size() - 8] ^= 0x01;  // the trailer's CRC-32
  const std::string path = Write("images.gz", gz);
  ExpectError(ReadIdxImages(path).status(), absl::StatusCode::kDataLoss, path,
              "corrupt gzip stream: incorrect data check");
}

TEST_F(IdxFiles, TruncatedGzipStreamIsDataLoss) {
  const Bytes gz = Gzip(ImageFile(20, 28, 28));
  const std::string path = Write("images.gz", Bytes(gz.begin(), gz.begin() + gz.size() / 2));
  ExpectError(ReadIdxImages(path).status(), absl::StatusCode::kDataLoss, path,
              "truncated gzip stream: the file ends after " + std::to_string(gz.size() / 2) +
                  " compressed bytes");
}

TEST_F(IdxFiles, GzipMissingItsTrailerIsTruncated) {
  const Bytes gz = Gzip(ImageFile(2, 28, 28));
  const std::string path = Write("images.gz", Bytes(gz.begin(), gz.end() - 4));
  ExpectError(ReadIdxImages(path).status(), absl::StatusCode::kDataLoss, path,
              "truncated gzip stream");
}

TEST_F(IdxFiles, GarbageAfterGzipStreamIsAnError) {
  Bytes gz = Gzip(ImageFile(2, 28, 28));
  gz.insert(gz.end(), {0xDE, 0xAD, 0xBE});
  const std::string path = Write("images.gz", gz);
  ExpectError(ReadIdxImages(path).status(), absl::StatusCode::kInvalidArgument, path,
              "3 trailing bytes after the end of the gzip stream");
}

TEST_F(IdxFiles, LabelOutOfRangeNamesFirstIndexAndValue) {
  const std::string path = Write("labels", Idx(0x08, {6}, {0, 1, 9, 10, 3, 12}));
  ExpectError(ReadIdxLabels(path, 10).status(), absl::StatusCode::kInvalidArgument, path,
              "label out of range at index 3: 10 (labels must be below 10");
}

TEST_F(IdxFiles, LabelsAtTheTopOfTheRangeAreAccepted) {
  absl::StatusOr<IdxArray> labels = ReadIdxLabels(Write("labels", Idx(0x08, {2}, {0, 9})), 10);
  ASSERT_TRUE(labels.ok()) << labels.status();
}

TEST_F(IdxFiles, ImpossibleClassCountIsRejected) {
  const std::string path = Write("labels", Idx(0x08, {1}, {0}));
  ExpectError(ReadIdxLabels(path, 0).status(), absl::StatusCode::kInvalidArgument, path,
              "cannot check labels against 0 classes");
}

TEST_F(IdxFiles, LabeledImagesPairsImagesWithLabels) {
  const Bytes images = ImageFile(3, 2, 2);
  const std::string images_path = WriteGzip("images.gz", images);
  const std::string labels_path = Write("labels", Idx(0x08, {3}, {2, 0, 1}));
  absl::StatusOr<LabeledImages> pair = ReadLabeledImages(images_path, labels_path, 3);
  ASSERT_TRUE(pair.ok()) << pair.status();
  EXPECT_EQ(pair->count, 3);
  EXPECT_EQ(pair->rows, 2);
  EXPECT_EQ(pair->cols, 2);
  EXPECT_EQ(pair->pixels, Bytes(images.begin() + 16, images.end()));
  EXPECT_THAT(pair->labels, ElementsAre(2, 0, 1));
}

TEST_F(IdxFiles, ImageAndLabelCountMismatchNamesBothFiles) {
  const std::string images_path = Write("images", ImageFile(3, 2, 2));
  const std::string labels_path = Write("labels", Idx(0x08, {4}, {0, 1, 0, 1}));
  const absl::Status status = ReadLabeledImages(images_path, labels_path, 2).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), AllOf(HasSubstr(images_path + " holds 3 images"),
                                                   HasSubstr(labels_path + " holds 4 labels")));
}

TEST_F(IdxFiles, LabeledImagesPassesOnTheDamagedFilesError) {
  const std::string images_path = Write("images", ImageFile(3, 2, 2));
  const std::string labels_path = Write("labels", Idx(0x08, {3}, {0, 1, 7}));
  ExpectError(ReadLabeledImages(images_path, labels_path, 2).status(),
              absl::StatusCode::kInvalidArgument, labels_path, "label out of range at index 2: 7");
}

// Issue 19: what a reader takes from one file is bounded (kMaxInputBytes), so a
// spec naming a huge file, a device or a gzip bomb costs no more than the limit.
// At the limit a file is read; one byte past it is refused before it is read
// (its size says so) or as soon as a stream passes it.
TEST_F(IdxFiles, AFileIsReadAtItsLimitAndRefusedOnePast) {
  const Bytes file = Idx(0x08, {100, 10, 10}, Bytes(10000, 0));  // compresses below its size
  const int64_t size = static_cast<int64_t>(file.size());
  const std::string raw = Write("raw", file), gz = WriteGzip("gz", file);
  ASSERT_TRUE(ReadFileBytes(raw, size).ok());
  ExpectError(ReadFileBytes(raw, size - 1).status(), absl::StatusCode::kResourceExhausted, raw,
              absl::StrCat("holds more than ", size - 1, " bytes, the most a file may hold"));
  // Decompressed: the bound is on what the stream inflates to.
  ASSERT_TRUE(ReadFileMaybeGzip(gz, size).ok());
  ExpectError(ReadFileMaybeGzip(gz, size - 1).status(), absl::StatusCode::kResourceExhausted, gz,
              absl::StrCat("decompresses to more than ", size - 1, " bytes"));
  // A gzip bomb: 64 MiB of zeros in 64 KiB, read with the limit at 1 MiB.
  const std::string bomb = Write("bomb.gz", Gzip(Bytes(64 << 20, 0)));
  ExpectError(ReadFileMaybeGzip(bomb, 1 << 20).status(), absl::StatusCode::kResourceExhausted, bomb,
              "decompresses to more than 1048576 bytes");
}

TEST_F(IdxFiles, AFilePastTheDefaultLimitOrADeviceIsNeverRead) {
  // Sparse: its size is one past the limit, and no byte of it is read.
  const std::string huge = Write("huge", {});
  std::filesystem::resize_file(huge, static_cast<uintmax_t>(kMaxInputBytes) + 1);
  ExpectError(ReadFileBytes(huge).status(), absl::StatusCode::kResourceExhausted, huge,
              absl::StrCat("holds more than ", kMaxInputBytes, " bytes"));
  ExpectError(ReadFileMaybeGzip("/dev/zero").status(), absl::StatusCode::kInvalidArgument,
              "/dev/zero", "is a device, expected a file");
  // The images of a dataset go through the same reader.
  ExpectError(ReadIdxImages(huge).status(), absl::StatusCode::kResourceExhausted, huge,
              "the most a file may hold");
}

}  // namespace
}  // namespace seedproof
