#include "data/file_bytes.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"

namespace seedproof {
namespace {

constexpr size_t kZlibChunk = size_t{1} << 30;  // z_stream counts are 32-bit

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

bool IsGzip(const std::vector<uint8_t>& bytes) {
  return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

absl::Status TooBig(const std::string& path, const char* what, int64_t max_bytes) {
  return absl::ResourceExhaustedError(
      absl::StrCat(path, ": ", what, " more than ", max_bytes, " bytes, the most a file may hold"));
}

absl::StatusOr<std::vector<uint8_t>> Gunzip(const std::string& path, const std::vector<uint8_t>& in,
                                            int64_t max_bytes) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
    return absl::InternalError(absl::StrCat(path, ": cannot initialise zlib"));
  }
  struct InflateEnd {
    z_stream* zs;
    ~InflateEnd() { inflateEnd(zs); }
  } end{&zs};

  // The last member's trailer holds its uncompressed size mod 2^32: a good first
  // guess for the output buffer (+1 so the trailer can be read without growing).
  // A damaged file's "trailer" is noise, so the guess is capped at 4x the input.
  uint64_t hint = 0;
  if (in.size() >= 4) {
    const uint8_t* t = in.data() + in.size() - 4;
    hint = uint64_t{t[0]} | uint64_t{t[1]} << 8 | uint64_t{t[2]} << 16 | uint64_t{t[3]} << 24;
  }
  hint = std::min<uint64_t>(hint, 4 * uint64_t{in.size()});
  const uint64_t most = static_cast<uint64_t>(max_bytes) + 1;  // one past: the limit is passed
  std::vector<uint8_t> out(
      std::min(std::clamp<uint64_t>(hint + 1, 1 << 16, uint64_t{1} << 30), most));

  size_t in_pos = 0;
  size_t out_pos = 0;
  for (;;) {
    if (out_pos == most) return TooBig(path, "decompresses to", max_bytes);
    if (out_pos == out.size()) out.resize(std::min<uint64_t>(out.size() * 2, most));
    const size_t in_chunk = std::min(in.size() - in_pos, kZlibChunk);
    const size_t out_chunk = std::min(out.size() - out_pos, kZlibChunk);
    zs.next_in = const_cast<Bytef*>(in.data() + in_pos);
    zs.avail_in = static_cast<uInt>(in_chunk);
    zs.next_out = out.data() + out_pos;
    zs.avail_out = static_cast<uInt>(out_chunk);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    in_pos += in_chunk - zs.avail_in;
    out_pos += out_chunk - zs.avail_out;

    if (rc == Z_STREAM_END) {
      if (in_pos == in.size()) break;
      if (in.size() - in_pos >= 2 && in[in_pos] == 0x1f && in[in_pos + 1] == 0x8b) {
        inflateReset(&zs);  // another gzip member follows
        continue;
      }
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": ", in.size() - in_pos,
                       " trailing bytes after the end of the gzip stream (at compressed byte ",
                       in_pos, " of ", in.size(), ")"));
    }
    if (rc == Z_OK || rc == Z_BUF_ERROR) {
      if (zs.avail_out == 0) continue;  // output buffer full: grow it
      if (in_pos == in.size()) {
        return absl::DataLossError(absl::StrCat(
            path, ": truncated gzip stream: the file ends after ", in.size(), " compressed bytes (",
            out_pos, " bytes decompressed) before the end of the stream"));
      }
      if (rc == Z_OK) continue;
    }
    if (rc == Z_MEM_ERROR) {
      return absl::ResourceExhaustedError(
          absl::StrCat(path, ": out of memory while decompressing"));
    }
    return absl::DataLossError(absl::StrCat(
        path, ": corrupt gzip stream: ", zs.msg != nullptr ? zs.msg : "zlib error", " (zlib code ",
        rc, ", near compressed byte ", in_pos, " of ", in.size(), ")"));
  }
  if (out_pos == most) return TooBig(path, "decompresses to", max_bytes);
  out.resize(out_pos);
  return out;
}

}  // namespace

namespace {

// The whole file into a byte container (std::vector<uint8_t> or std::string).
template <typename Buffer>
absl::StatusOr<Buffer> ReadWholeFile(const std::string& path, int64_t max_bytes) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) return absl::ErrnoToStatus(errno, absl::StrCat(path, ": cannot open"));
  struct stat st {};
  if (fstat(fileno(file.get()), &st) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat(path, ": cannot read"));
  }
  if (S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is a folder, expected a file"));
  }
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is a device, expected a file"));
  }
  if (st.st_size > max_bytes) return TooBig(path, "holds", max_bytes);
  // The size is a hint (a pipe has none, a file may grow): read to the end, or
  // one byte past the limit.
  const size_t most = static_cast<size_t>(max_bytes) + 1;
  Buffer bytes(std::min(static_cast<size_t>(std::max<off_t>(st.st_size, 0)) + 1, most), 0);
  size_t have = 0;
  for (;;) {
    if (have == most) return TooBig(path, "holds", max_bytes);
    if (have == bytes.size()) bytes.resize(std::min(bytes.size() * 2, most));
    const size_t got = std::fread(bytes.data() + have, 1, bytes.size() - have, file.get());
    have += got;
    if (got == 0) break;
  }
  if (std::ferror(file.get())) {
    return absl::ErrnoToStatus(errno, absl::StrCat(path, ": cannot read"));
  }
  bytes.resize(have);  // no shrink: that would copy the whole file once more
  return bytes;
}

}  // namespace

absl::StatusOr<std::vector<uint8_t>> ReadFileBytes(const std::string& path, int64_t max_bytes) {
  return ReadWholeFile<std::vector<uint8_t>>(path, max_bytes);
}

absl::StatusOr<std::string> ReadFileString(const std::string& path, int64_t max_bytes) {
  return ReadWholeFile<std::string>(path, max_bytes);
}

absl::StatusOr<std::vector<uint8_t>> ReadFileMaybeGzip(const std::string& path, int64_t max_bytes) {
  absl::StatusOr<std::vector<uint8_t>> bytes = ReadFileBytes(path, max_bytes);
  if (!bytes.ok() || !IsGzip(*bytes)) return bytes;
  return Gunzip(path, *bytes, max_bytes);
}

}  // namespace seedproof
