#include "backends/model_file.h"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"

namespace seedproof {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the model file is little-endian; add byte swapping for this target");

constexpr uint32_t kMaxRank = 8;
constexpr uint32_t kMaxLayers = 100000;

class Writer {
 public:
  template <typename T>
  void Put(T value) {
    bytes_.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  void PutBytes(const void* data, size_t n) { bytes_.append(static_cast<const char*>(data), n); }
  std::string& bytes() { return bytes_; }

 private:
  std::string bytes_;
};

class Reader {
 public:
  Reader(const std::string& path, const std::string& bytes) : path_(path), bytes_(bytes) {}

  // Reads one value; `what` says what was being read when the file ended.
  template <typename T>
  absl::StatusOr<T> Get(const std::string& what) {
    if (bytes_.size() - pos_ < sizeof(T)) return Truncated(what);
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  absl::Status GetBytes(void* out, size_t n, const std::string& what) {
    if (bytes_.size() - pos_ < n) return Truncated(what);
    if (n == 0) return absl::OkStatus();  // out may be an empty vector's null data()
    std::memcpy(out, bytes_.data() + pos_, n);
    pos_ += n;
    return absl::OkStatus();
  }
  size_t remaining() const { return bytes_.size() - pos_; }
  size_t position() const { return pos_; }
  absl::Status Error(const std::string& message) const {
    return absl::DataLossError(absl::StrCat(path_, ": ", message));
  }

 private:
  absl::Status Truncated(const std::string& what) const {
    return Error(
        absl::StrCat("truncated: the file ends at byte ", bytes_.size(), " while reading ", what));
  }
  const std::string& path_;
  const std::string& bytes_;
  size_t pos_ = 0;
};

uint32_t Crc32(const char* data, size_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths; feed large buffers in pieces.
  while (n > 0) {
    const uInt piece = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data), piece);
    data += piece;
    n -= piece;
  }
  return static_cast<uint32_t>(crc);
}

// Whether version 1 holds everything about this layer.
bool FitsVersion1(const LayerSpec& l) {
  const LayerSpec d;
  return static_cast<uint32_t>(l.kind) <= static_cast<uint32_t>(LayerKind::kDropout) &&
         static_cast<uint32_t>(l.activation) <= static_cast<uint32_t>(Activation::kSoftmax) &&
         l.padding != Padding::kExplicit && l.pad_top == d.pad_top &&
         l.pad_bottom == d.pad_bottom && l.pad_left == d.pad_left && l.pad_right == d.pad_right &&
         l.alpha == d.alpha && l.epsilon == d.epsilon && l.momentum == d.momentum &&
         l.count_include_pad == d.count_include_pad;
}

}  // namespace

std::string EncodeModelFile(const ModelFileContents& c) {
  const bool v1 = std::all_of(c.spec.layers.begin(), c.spec.layers.end(), FitsVersion1);
  Writer w;
  w.PutBytes(kModelFileMagic, sizeof(kModelFileMagic));
  w.Put<uint32_t>(v1 ? 1 : 2);
  w.Put<uint32_t>(static_cast<uint32_t>(c.spec.loss));
  w.Put<uint32_t>(static_cast<uint32_t>(c.spec.input.size()));
  for (int64_t d : c.spec.input) w.Put<int64_t>(d);
  w.Put<uint32_t>(static_cast<uint32_t>(c.spec.layers.size()));
  for (size_t i = 0; i < c.spec.layers.size(); ++i) {
    const LayerSpec& l = c.spec.layers[i];
    w.Put<uint32_t>(static_cast<uint32_t>(l.kind));
    w.Put<uint32_t>(static_cast<uint32_t>(l.activation));
    w.Put<uint32_t>(static_cast<uint32_t>(l.init));
    w.Put<int32_t>(l.units);
    w.Put<int32_t>(l.kernel_h);
    w.Put<int32_t>(l.kernel_w);
    w.Put<int32_t>(l.stride_h);
    w.Put<int32_t>(l.stride_w);
    w.Put<uint32_t>(static_cast<uint32_t>(l.padding));
    w.Put<float>(l.rate);
    w.Put<uint8_t>(c.trainable[i] ? 1 : 0);
    if (v1) continue;
    w.Put<int32_t>(l.pad_top);
    w.Put<int32_t>(l.pad_bottom);
    w.Put<int32_t>(l.pad_left);
    w.Put<int32_t>(l.pad_right);
    w.Put<float>(l.alpha);
    w.Put<float>(l.epsilon);
    w.Put<float>(l.momentum);
    w.Put<uint8_t>(l.count_include_pad ? 1 : 0);
  }
  w.Put<uint64_t>(c.seed);
  w.Put<uint64_t>(c.step);
  w.Put<uint64_t>(c.parameters.size());
  w.PutBytes(c.parameters.data(), c.parameters.size() * sizeof(float));
  w.Put<uint32_t>(Crc32(w.bytes().data(), w.bytes().size()));
  return std::move(w.bytes());
}

absl::Status WriteModelFile(const std::string& path, const ModelFileContents& c) {
  const std::string bytes = EncodeModelFile(c);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      return absl::PermissionDeniedError(
          absl::StrCat(path, ": cannot write: ", std::strerror(errno)));
    }
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      return absl::ResourceExhaustedError(absl::StrCat(path, ": write failed"));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::PermissionDeniedError(
        absl::StrCat(path, ": cannot rename into place: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelFileContents> ReadModelFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return DecodeModelFile(bytes, path);
}

absl::StatusOr<ModelFileContents> DecodeModelFile(const std::string& bytes,
                                                  const std::string& path) {
  Reader r(path, bytes);

  char magic[sizeof(kModelFileMagic)];
  if (bytes.size() < sizeof(magic) ||
      std::memcmp(bytes.data(), kModelFileMagic, sizeof(magic)) != 0) {
    return r.Error("not a seedproof model file (bad magic)");
  }
  if (auto s = r.GetBytes(magic, sizeof(magic), "the magic"); !s.ok()) return s;
  auto version = r.Get<uint32_t>("the format version");
  if (!version.ok()) return version.status();
  if (*version != 1 && *version != kModelFileVersion) {
    return r.Error(absl::StrCat("model format version ", *version,
                                "; this build reads versions 1 to ", kModelFileVersion));
  }

  ModelFileContents c;
  auto loss = r.Get<uint32_t>("the loss");
  if (!loss.ok()) return loss.status();
  c.spec.loss = static_cast<Loss>(*loss);
  auto rank = r.Get<uint32_t>("the input rank");
  if (!rank.ok()) return rank.status();
  if (*rank > kMaxRank) return r.Error(absl::StrCat("input rank ", *rank, " is not plausible"));
  for (uint32_t i = 0; i < *rank; ++i) {
    auto d = r.Get<int64_t>("the input shape");
    if (!d.ok()) return d.status();
    c.spec.input.push_back(*d);
  }
  auto layers = r.Get<uint32_t>("the layer count");
  if (!layers.ok()) return layers.status();
  if (*layers > kMaxLayers)
    return r.Error(absl::StrCat("layer count ", *layers, " is not plausible"));
  for (uint32_t i = 0; i < *layers; ++i) {
    const std::string what = absl::StrCat("the settings of layer ", i);
    LayerSpec l;
    uint8_t trainable = 0;
    uint32_t kind = 0, activation = 0, init = 0, padding = 0;
    absl::Status s;
    auto get = [&](auto& field) {
      if (!s.ok()) return;
      auto v = r.Get<std::remove_reference_t<decltype(field)>>(what);
      if (v.ok())
        field = *v;
      else
        s = v.status();
    };
    get(kind);
    get(activation);
    get(init);
    get(l.units);
    get(l.kernel_h);
    get(l.kernel_w);
    get(l.stride_h);
    get(l.stride_w);
    get(padding);
    get(l.rate);
    get(trainable);
    uint8_t include_pad = 0;
    if (*version >= 2) {
      get(l.pad_top);
      get(l.pad_bottom);
      get(l.pad_left);
      get(l.pad_right);
      get(l.alpha);
      get(l.epsilon);
      get(l.momentum);
      get(include_pad);
    }
    if (!s.ok()) return s;
    l.count_include_pad = include_pad != 0;
    l.kind = static_cast<LayerKind>(kind);
    l.activation = static_cast<Activation>(activation);
    l.init = static_cast<Initializer>(init);
    l.padding = static_cast<Padding>(padding);
    c.spec.layers.push_back(l);
    c.trainable.push_back(trainable != 0);
  }
  auto seed = r.Get<uint64_t>("the seed");
  if (!seed.ok()) return seed.status();
  c.seed = *seed;
  auto step = r.Get<uint64_t>("the step count");
  if (!step.ok()) return step.status();
  c.step = *step;
  auto count = r.Get<uint64_t>("the parameter count");
  if (!count.ok()) return count.status();
  if (*count > r.remaining() / sizeof(float)) {
    return r.Error(absl::StrCat("truncated: header says ", *count, " parameters (",
                                *count * sizeof(float), " bytes) but only ", r.remaining(),
                                " bytes follow"));
  }
  c.parameters.resize(*count);
  if (auto s = r.GetBytes(c.parameters.data(), *count * sizeof(float), "the parameters"); !s.ok()) {
    return s;
  }
  const size_t checked = r.position();
  auto stored = r.Get<uint32_t>("the checksum");
  if (!stored.ok()) return stored.status();
  if (r.remaining() != 0) {
    return r.Error(absl::StrCat(r.remaining(), " unexpected bytes after the checksum"));
  }
  const uint32_t computed = Crc32(bytes.data(), checked);
  if (computed != *stored) {
    return r.Error(
        absl::StrCat("corrupt: checksum mismatch (stored ", *stored, ", computed ", computed, ")"));
  }

  // The bytes are what was written; now check they describe a model we can build.
  auto shapes = InferShapes(c.spec);
  if (!shapes.ok()) return r.Error(absl::StrCat("invalid model: ", shapes.status().message()));
  if (static_cast<int64_t>(c.parameters.size()) != shapes->parameter_count) {
    return r.Error(absl::StrCat("wrong shape: holds ", c.parameters.size(),
                                " parameters but its layers need ", shapes->parameter_count));
  }
  return c;
}

}  // namespace seedproof
