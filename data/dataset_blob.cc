#include "data/dataset_blob.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "data/content_hash.h"

namespace seedproof {
namespace {

constexpr char kMagic[] = "SPDATA1\n";
constexpr size_t kMagicSize = sizeof(kMagic) - 1;

// Where an encoding goes: a string, or a hash of it.
struct StringSink {
  std::string& out;
  void Append(const void* bytes, size_t size) { out.append(static_cast<const char*>(bytes), size); }
};
struct SizeSink {
  size_t size = 0;
  void Append(const void*, size_t n) { size += n; }
};
struct HashSink {
  Sha256& hash;
  void Append(const void* bytes, size_t size) { hash.Update(bytes, size); }
};

template <typename T, typename Sink>
void Put(Sink& out, T value) {
  static_assert(std::endian::native == std::endian::little);
  out.Append(&value, sizeof(T));
}

template <typename T, typename Sink>
void PutAll(Sink& out, const std::vector<T>& values) {
  out.Append(values.data(), values.size() * sizeof(T));
}

template <typename Sink>
void PutSplit(Sink& out, const Dataset& d) {
  if (d.is_view()) return PutSplit(out, d.Materialized());
  Put<uint8_t>(out, d.storage == Dataset::Storage::kByte ? 1 : 0);
  Put<uint32_t>(out, static_cast<uint32_t>(d.example_shape.size()));
  for (int64_t dim : d.example_shape) Put<int64_t>(out, dim);
  Put<int64_t>(out, d.size());
  if (d.storage == Dataset::Storage::kByte) {
    PutAll(out, d.bytes);
  } else {
    PutAll(out, d.x);
  }
  PutAll(out, d.y);
}

// Reads the encoding front to back, piece after piece, releasing each piece once
// it is read; every read checks what is left.
class Reader {
 public:
  Reader(std::deque<std::string> pieces, const std::string& what)
      : pieces_(std::move(pieces)), what_(what) {
    for (const std::string& p : pieces_) left_ += p.size();
  }

  template <typename T>
  absl::StatusOr<T> Get(const char* field) {
    T value{};
    if (auto s = Take(&value, sizeof(T), field); !s.ok()) return s;
    return value;
  }
  template <typename T>
  absl::Status GetAll(std::vector<T>& values, int64_t count, const char* field) {
    if (count < 0 || static_cast<uint64_t>(count) > left_ / sizeof(T)) {
      return Short(field, count * static_cast<int64_t>(sizeof(T)));
    }
    values.resize(count);
    return Take(values.data(), count * sizeof(T), field);
  }
  size_t left() const { return left_; }
  absl::Status Error(const std::string& message) const {
    return absl::DataLossError(absl::StrCat(what_, ": not a dataset encoding: ", message));
  }

 private:
  absl::Status Take(void* to, size_t n, const char* field) {
    if (n > left_) return Short(field, static_cast<int64_t>(n));
    auto* out = static_cast<char*>(to);
    while (n > 0) {
      const std::string& piece = pieces_.front();
      const size_t take = std::min(n, piece.size() - at_);
      std::memcpy(out, piece.data() + at_, take);
      out += take;
      n -= take;
      at_ += take;
      left_ -= take;
      if (at_ == piece.size()) {
        pieces_.pop_front();
        at_ = 0;
      }
    }
    return absl::OkStatus();
  }
  absl::Status Short(const char* field, int64_t needed) const {
    return Error(
        absl::StrCat("truncated at ", field, " (needs ", needed, " bytes, ", left_, " left)"));
  }

  std::deque<std::string> pieces_;
  const std::string& what_;
  size_t at_ = 0;    // in the first piece
  size_t left_ = 0;  // in all of them
};

absl::StatusOr<Dataset> GetSplit(Reader& r, int num_classes, const char* split) {
  Dataset d;
  d.num_classes = num_classes;
  auto storage = r.Get<uint8_t>("storage");
  auto rank = r.Get<uint32_t>("rank");
  if (!storage.ok()) return storage.status();
  if (!rank.ok()) return rank.status();
  if (*storage > 1 || *rank > 8) {
    return r.Error(absl::StrCat(split, ": storage ", *storage, ", rank ", *rank));
  }
  d.storage = *storage == 1 ? Dataset::Storage::kByte : Dataset::Storage::kFloat;
  int64_t width = 1;
  for (uint32_t i = 0; i < *rank; ++i) {
    auto dim = r.Get<int64_t>("dims");
    if (!dim.ok()) return dim.status();
    // An example holds at most 2^32 values: the product of the dims cannot overflow.
    if (*dim < 1 || *dim > (int64_t{1} << 24) || width > (int64_t{1} << 32) / *dim) {
      return r.Error(
          absl::StrCat(split, ": dimension ", *dim, " (an example is at most 2^32 values)"));
    }
    d.example_shape.push_back(*dim);
    width *= *dim;
  }
  auto count = r.Get<int64_t>("count");
  if (!count.ok()) return count.status();
  if (*count < 0 || (*count > 0 && width > INT64_MAX / 4 / *count)) {
    return r.Error(absl::StrCat(split, ": count ", *count));
  }
  absl::Status s = d.storage == Dataset::Storage::kByte
                       ? r.GetAll(d.bytes, *count * width, "examples")
                       : r.GetAll(d.x, *count * width, "examples");
  if (!s.ok()) return s;
  if (auto l = r.GetAll(d.y, *count, "labels"); !l.ok()) return l;
  for (int64_t i = 0; i < *count; ++i) {
    if (d.y[i] < 0 || d.y[i] >= num_classes) {
      return r.Error(absl::StrCat(split, ": label ", d.y[i], " of example ", i, " is not in 0..",
                                  num_classes - 1));
    }
  }
  return d;
}

template <typename Sink>
void Encode(const TrainTest& data, Sink& out) {
  out.Append(kMagic, kMagicSize);
  Put<uint32_t>(out, static_cast<uint32_t>(data.train.num_classes));
  PutSplit(out, data.train);
  PutSplit(out, data.test);
}

}  // namespace

std::string EncodeDataset(const TrainTest& data) {
  SizeSink size;
  Encode(data, size);
  std::string bytes;
  bytes.reserve(size.size);  // one allocation: a dataset's encoding is tens of MB
  StringSink sink{bytes};
  Encode(data, sink);
  return bytes;
}

std::string DatasetSha256(const TrainTest& data) {
  Sha256 hash;
  HashSink sink{hash};
  Encode(data, sink);
  return hash.Hex();
}

absl::StatusOr<TrainTest> DecodeDatasetPieces(std::deque<std::string> pieces,
                                              const std::string& what) {
  Reader r(std::move(pieces), what);
  auto magic = r.Get<std::array<char, kMagicSize>>("magic");
  if (!magic.ok() || std::memcmp(magic->data(), kMagic, kMagicSize) != 0) {
    return r.Error("wrong magic");
  }
  auto classes = r.Get<uint32_t>("num_classes");
  if (!classes.ok()) return classes.status();
  if (*classes < 1 || *classes > 65536) return r.Error(absl::StrCat(*classes, " classes"));
  TrainTest data;
  auto train = GetSplit(r, static_cast<int>(*classes), "train");
  if (!train.ok()) return train.status();
  auto test = GetSplit(r, static_cast<int>(*classes), "test");
  if (!test.ok()) return test.status();
  if (r.left() != 0) return r.Error(absl::StrCat(r.left(), " bytes after the test split"));
  data.train = *std::move(train);
  data.test = *std::move(test);
  return data;
}

absl::StatusOr<TrainTest> DecodeDataset(std::string bytes, const std::string& what) {
  std::deque<std::string> pieces;
  pieces.push_back(std::move(bytes));
  return DecodeDatasetPieces(std::move(pieces), what);
}

}  // namespace seedproof
