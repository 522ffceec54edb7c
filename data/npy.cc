// ReadNpyPair and ReadNpzPair (data/readers.h): NumPy's .npy format
// (numpy.lib.format: magic, version, a Python dict literal header, raw data) and
// .npz archives of them, read with Debian's libzip.
#include <zip.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "data/file_bytes.h"
#include "data/labels.h"
#include "data/readers.h"

namespace seedproof {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

// An array as its header describes it, with its data still in the file's bytes.
struct NpyArray {
  char kind = 0;      // 'u', 'i', 'f', 'b', ...
  int item_size = 0;  // bytes per element
  bool big_endian = false;
  std::string descr;  // as written, for messages ("<f4")
  std::vector<int64_t> shape;
  size_t data_offset = 0;  // where the elements start in the bytes

  int64_t count() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  std::string ShapeText() const {
    return absl::StrCat("(", absl::StrJoin(shape, ", "), shape.size() == 1 ? ",)" : ")");
  }
};

// The value of 'key' in the header's dict literal, up to its closing delimiter.
std::optional<std::string> DictValue(const std::string& header, const std::string& key) {
  for (const char quote : {'\'', '"'}) {
    const std::string quoted = std::string(1, quote) + key + std::string(1, quote);
    const size_t at = header.find(quoted);
    if (at == std::string::npos) continue;
    size_t colon = header.find(':', at + quoted.size());
    if (colon == std::string::npos) return std::nullopt;
    std::string rest = header.substr(colon + 1);
    rest.erase(0, rest.find_first_not_of(' '));
    if (rest.empty()) return std::nullopt;
    if (rest.front() == '(') {
      const size_t close = rest.find(')');
      if (close == std::string::npos) return std::nullopt;
      return rest.substr(1, close - 1);
    }
    if (rest.front() == '\'' || rest.front() == '"') {
      const size_t close = rest.find(rest.front(), 1);
      if (close == std::string::npos) return std::nullopt;
      return rest.substr(1, close - 1);
    }
    const size_t end = rest.find_first_of(",}");
    return rest.substr(0, end);
  }
  return std::nullopt;
}

absl::StatusOr<NpyArray> ParseHeader(const std::vector<uint8_t>& bytes, const std::string& what) {
  auto bad = [&](const std::string& why) {
    return absl::DataLossError(absl::StrCat(what, ": not a NumPy .npy array: ", why));
  };
  if (bytes.size() < kMagicSize + 4 || std::memcmp(bytes.data(), kMagic, kMagicSize) != 0) {
    return bad(bytes.size() < kMagicSize + 4 ? "shorter than a header"
                                             : "wrong magic (expected \\x93NUMPY)");
  }
  const int major = bytes[6];
  size_t length = 0, start = 0;
  if (major == 1) {
    length = bytes[8] | size_t{bytes[9]} << 8;
    start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return bad("shorter than a header");
    length = bytes[8] | size_t{bytes[9]} << 8 | size_t{bytes[10]} << 16 | size_t{bytes[11]} << 24;
    start = 12;
  } else {
    return bad(absl::StrCat("format version ", major, " (1, 2 and 3 are known)"));
  }
  if (bytes.size() - start < length) return bad("truncated in its header");
  const std::string header(reinterpret_cast<const char*>(bytes.data()) + start, length);
  NpyArray array;
  array.data_offset = start + length;

  const auto descr = DictValue(header, "descr");
  const auto fortran = DictValue(header, "fortran_order");
  const auto shape = DictValue(header, "shape");
  if (!descr || !fortran || !shape) {
    return bad(absl::StrCat("its header lacks descr, fortran_order or shape: ", header));
  }
  array.descr = std::string(*descr);
  if (array.descr.size() < 3 || !absl::SimpleAtoi(array.descr.substr(2), &array.item_size)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": dtype '", array.descr, "' is not a plain number type"));
  }
  array.big_endian = array.descr[0] == '>';
  array.kind = array.descr[1];
  if (absl::StripAsciiWhitespace(*fortran) != "False") {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": a Fortran-ordered array; save np.ascontiguousarray(a) instead"));
  }
  for (absl::string_view dim : absl::StrSplit(*shape, ',')) {
    dim = absl::StripAsciiWhitespace(dim);
    if (dim.empty()) continue;
    int64_t d = 0;
    if (!absl::SimpleAtoi(dim, &d) || d < 0) return bad(absl::StrCat("shape (", *shape, ")"));
    array.shape.push_back(d);
  }
  int64_t count = 1;
  for (int64_t d : array.shape) {
    if (__builtin_mul_overflow(count, d, &count)) return bad(absl::StrCat("shape (", *shape, ")"));
  }
  const uint64_t need = static_cast<uint64_t>(count) * static_cast<uint64_t>(array.item_size);
  const uint64_t have = bytes.size() - array.data_offset;
  if (have < need) {
    return absl::DataLossError(absl::StrCat(what, ": truncated: ", array.ShapeText(), " of ",
                                            array.descr, " needs ", need, " bytes, the file has ",
                                            have));
  }
  if (have > need) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", have - need, " bytes after the array's ", need));
  }
  return array;
}

// Element i of a multi-byte array, in the host's order.
template <typename T>
T Element(const std::vector<uint8_t>& bytes, const NpyArray& a, int64_t i) {
  T value;
  std::memcpy(&value, bytes.data() + a.data_offset + i * sizeof(T), sizeof(T));
  if (a.big_endian && sizeof(T) > 1) {
    auto* b = reinterpret_cast<uint8_t*>(&value);
    std::reverse(b, b + sizeof(T));
  }
  return value;
}

absl::StatusOr<int64_t> IntegerAt(const std::vector<uint8_t>& bytes, const NpyArray& a, int64_t i) {
  switch (a.kind == 'i' ? a.item_size : a.kind == 'u' ? -a.item_size : 0) {
    case 1:
      return Element<int8_t>(bytes, a, i);
    case 2:
      return Element<int16_t>(bytes, a, i);
    case 4:
      return Element<int32_t>(bytes, a, i);
    case 8:
      return Element<int64_t>(bytes, a, i);
    case -1:
      return Element<uint8_t>(bytes, a, i);
    case -2:
      return Element<uint16_t>(bytes, a, i);
    case -4:
      return Element<uint32_t>(bytes, a, i);
    case -8: {
      const uint64_t v = Element<uint64_t>(bytes, a, i);
      return v > INT64_MAX ? -1 : static_cast<int64_t>(v);
    }
  }
  return absl::InternalError("not an integer array");
}

// Examples: their shape from the array's, and their values.
absl::Status TakeExamples(std::vector<uint8_t> bytes, const NpyArray& a, const std::string& what,
                          bool channels_first, Dataset& data) {
  const auto& s = a.shape;
  if (s.size() < 2 || s.size() > 4) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": examples of shape ", a.ShapeText(),
        "; expected (N, height, width), (N, height, width, channels) or (N, features)"));
  }
  if (channels_first && s.size() != 4) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": layout channels_first needs (N, channels, height, width), the array is ",
        a.ShapeText()));
  }
  const int64_t n = s[0];
  Shape example(s.begin() + 1, s.end());
  if (s.size() == 3) example.push_back(1);
  if (channels_first) example = {s[2], s[3], s[1]};
  for (int64_t d : example) {
    if (d < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": examples of shape ", a.ShapeText(), " hold no values"));
    }
  }
  data.example_shape = example;
  const int64_t width = ElementCount(example);
  // (C, H, W) -> (H, W, C): element (c, p) of an example goes to (p, c).
  auto place = [&](int64_t i) -> int64_t {
    if (!channels_first) return i;
    const int64_t channels = example[2], pixels = width / channels;
    const int64_t e = i / width, c = (i % width) / pixels, p = i % pixels;
    return e * width + p * channels + c;
  };
  if (a.kind == 'u' && a.item_size == 1) {
    data.storage = Dataset::Storage::kByte;
    if (!channels_first) {
      bytes.erase(bytes.begin(), bytes.begin() + static_cast<int64_t>(a.data_offset));
      data.bytes = std::move(bytes);
    } else {
      data.bytes.resize(n * width);
      for (int64_t i = 0; i < n * width; ++i) data.bytes[place(i)] = bytes[a.data_offset + i];
    }
    return absl::OkStatus();
  }
  if (a.kind == 'f' && (a.item_size == 4 || a.item_size == 8)) {
    data.storage = Dataset::Storage::kFloat;
    data.x.resize(n * width);
    for (int64_t i = 0; i < n * width; ++i) {
      data.x[place(i)] = a.item_size == 4 ? Element<float>(bytes, a, i)
                                          : static_cast<float>(Element<double>(bytes, a, i));
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      what, ": examples of dtype '", a.descr, "'; expected uint8 (|u1), float32 (<f4) or float64"));
}

absl::StatusOr<ReadSet> FromArrays(std::vector<uint8_t> x_bytes, const std::string& x_what,
                                   const std::vector<uint8_t>& y_bytes, const std::string& y_what,
                                   const DeclaredClasses& classes, bool channels_first) {
  auto x = ParseHeader(x_bytes, x_what);
  if (!x.ok()) return x.status();
  auto y = ParseHeader(y_bytes, y_what);
  if (!y.ok()) return y.status();
  if (y->kind != 'i' && y->kind != 'u') {
    return absl::InvalidArgumentError(absl::StrCat(y_what, ": labels of dtype '", y->descr,
                                                   "'; labels are integers (int64, int32, uint8)"));
  }
  if (y->shape.empty() || y->shape.size() > 2 || (y->shape.size() == 2 && y->shape[1] != 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat(y_what, ": labels of shape ", y->ShapeText(), "; expected (N,) or (N, 1)"));
  }
  if (x->shape.empty() || x->shape[0] != y->shape[0]) {
    return absl::InvalidArgumentError(absl::StrCat(
        x_what, " holds ", x->shape.empty() ? 0 : x->shape[0], " examples ", x->ShapeText(),
        " but ", y_what, " holds ", y->shape[0], " labels; they must hold the same number"));
  }
  ReadSet set;
  const LabelMap labels(classes);
  set.data.y.resize(y->shape[0]);
  for (int64_t i = 0; i < y->shape[0]; ++i) {
    auto raw = IntegerAt(y_bytes, *y, i);
    if (!raw.ok()) return raw.status();
    auto label = labels.OfNumber(*raw);
    if (!label.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(y_what, ": example ", i, ": ", label.status().message()));
    }
    set.data.y[i] = *label;
  }
  set.data.num_classes = labels.NumClasses(set.data.y);
  set.class_names = classes.names;
  if (auto s = TakeExamples(std::move(x_bytes), *x, x_what, channels_first, set.data); !s.ok()) {
    return s;
  }
  return set;
}

struct ZipCloser {
  void operator()(zip_t* archive) const { zip_discard(archive); }
};

// The bytes of member `name` of the archive (name, or name + ".npy").
absl::StatusOr<std::vector<uint8_t>> ReadMember(zip_t* archive, const std::string& path,
                                                const std::string& name) {
  zip_int64_t index = zip_name_locate(archive, (name + ".npy").c_str(), 0);
  if (index < 0) index = zip_name_locate(archive, name.c_str(), 0);
  if (index < 0) {
    std::vector<std::string> names;
    for (zip_int64_t i = 0; i < zip_get_num_entries(archive, 0); ++i) {
      std::string member = zip_get_name(archive, i, 0);
      if (member.ends_with(".npy")) member.resize(member.size() - 4);
      names.push_back(member);
    }
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": no array '", name, "' (the archive holds ", absl::StrJoin(names, ", "), ")"));
  }
  zip_stat_t stat;
  zip_stat_init(&stat);
  if (zip_stat_index(archive, index, 0, &stat) != 0 || !(stat.valid & ZIP_STAT_SIZE)) {
    return absl::DataLossError(absl::StrCat(path, ": array '", name, "': ", zip_strerror(archive)));
  }
  std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> file(zip_fopen_index(archive, index, 0),
                                                         zip_fclose);
  if (file == nullptr) {
    return absl::DataLossError(absl::StrCat(path, ": array '", name, "': ", zip_strerror(archive)));
  }
  // The size is the archive's claim: memory grows with what really decompresses,
  // so a few damaged bytes claiming gigabytes cost nothing (found by tests/fuzz:
  // a 4 GB allocation for a 300-byte archive).
  const uint64_t claimed = stat.size;
  if (claimed > static_cast<uint64_t>(kMaxInputBytes)) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": array '", name, "' claims ", claimed,
                                                     " bytes, more than ", kMaxInputBytes,
                                                     ", the most a file may hold"));
  }
  std::vector<uint8_t> bytes;
  constexpr size_t kPiece = size_t{1} << 20;
  while (bytes.size() < claimed) {
    const size_t have = bytes.size();
    bytes.resize(have + static_cast<size_t>(std::min<uint64_t>(kPiece, claimed - have)));
    const zip_int64_t got = zip_fread(file.get(), bytes.data() + have, bytes.size() - have);
    if (got < 0) {
      return absl::DataLossError(
          absl::StrCat(path, ": array '", name, "' is damaged: ", zip_file_strerror(file.get())));
    }
    bytes.resize(have + static_cast<size_t>(got));
    if (got == 0) break;
  }
  if (bytes.size() != claimed) {
    return absl::DataLossError(absl::StrCat(path, ": array '", name, "' ends after ", bytes.size(),
                                            " of its ", claimed, " bytes"));
  }
  // A last read past the end is where libzip checks the member's CRC.
  uint8_t extra;
  if (zip_fread(file.get(), &extra, 1) < 0) {
    return absl::DataLossError(
        absl::StrCat(path, ": array '", name, "' is damaged: ", zip_file_strerror(file.get())));
  }
  return bytes;
}

}  // namespace

absl::StatusOr<ReadSet> ReadNpyPair(const std::string& x_path, const std::string& y_path,
                                    const DeclaredClasses& classes, bool channels_first) {
  auto x = ReadFileBytes(x_path);
  if (!x.ok()) return x.status();
  auto y = ReadFileBytes(y_path);
  if (!y.ok()) return y.status();
  return FromArrays(*std::move(x), x_path, *y, y_path, classes, channels_first);
}

absl::StatusOr<ReadSet> ReadNpzPair(const std::string& path, const std::string& x_name,
                                    const std::string& y_name, const DeclaredClasses& classes,
                                    bool channels_first) {
  int error = 0;
  std::unique_ptr<zip_t, ZipCloser> archive(zip_open(path.c_str(), ZIP_RDONLY, &error));
  if (archive == nullptr) {
    zip_error_t z;
    zip_error_init_with_code(&z, error);
    const std::string message = zip_error_strerror(&z);
    zip_error_fini(&z);
    const bool missing = error == ZIP_ER_NOENT || error == ZIP_ER_OPEN;
    return absl::Status(
        missing ? absl::StatusCode::kNotFound : absl::StatusCode::kDataLoss,
        absl::StrCat(path, ": ",
                     missing ? "cannot open: " : "not a readable .npz (zip) archive: ", message));
  }
  auto x = ReadMember(archive.get(), path, x_name);
  if (!x.ok()) return x.status();
  auto y = ReadMember(archive.get(), path, y_name);
  if (!y.ok()) return y.status();
  return FromArrays(*std::move(x), absl::StrCat(path, ":", x_name), *y,
                    absl::StrCat(path, ":", y_name), classes, channels_first);
}

}  // namespace seedproof
