#include "coordinator/artifact_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "data/content_hash.h"

namespace seedproof {
namespace {

constexpr char kIncoming[] = ".incoming";

// errno as a status; read before the message is built (an allocation may set it).
template <typename... Parts>
absl::Status Errno(const Parts&... parts) {
  const int error = errno;
  return absl::ErrnoToStatus(error, absl::StrCat(parts...));
}

}  // namespace

absl::Status SyncFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno(path, ": cannot open");
  const int synced = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (synced != 0) return absl::ErrnoToStatus(error, absl::StrCat(path, ": cannot sync"));
  return absl::OkStatus();
}

namespace {

// The names in a folder, "." and ".." left out.
absl::StatusOr<std::vector<std::string>> Names(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Errno(dir, ": cannot list");
  std::vector<std::string> names;
  while (const dirent* entry = ::readdir(d)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  return names;
}

absl::Status MakeDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Errno(dir, ": cannot create the folder");
  }
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------
// ArtifactWriter

ArtifactWriter::~ArtifactWriter() {
  ::close(fd_);
  if (!path_.empty()) ::unlink(path_.c_str());
}

absl::Status ArtifactWriter::Append(std::string_view bytes) {
  hash_.Update(bytes.data(), bytes.size());
  size_ += static_cast<int64_t>(bytes.size());
  while (!bytes.empty()) {
    const ssize_t wrote = ::write(fd_, bytes.data(), bytes.size());
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote < 0) return Errno(path_, ": cannot write");
    bytes.remove_prefix(static_cast<size_t>(wrote));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ArtifactWriter::Finish() {
  if (!sha256_.empty()) return sha256_;
  if (::fsync(fd_) != 0) return Errno(path_, ": cannot sync");
  sha256_ = hash_.Hex();
  return sha256_;
}

// ---------------------------------------------------------------------------
// ArtifactReader

ArtifactReader::~ArtifactReader() {
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<std::string> ArtifactReader::Read(int64_t offset, int64_t max_bytes) const {
  const int64_t want = std::max<int64_t>(0, std::min(max_bytes, size_ - offset));
  std::string bytes(static_cast<size_t>(want), '\0');
  size_t have = 0;
  while (have < bytes.size()) {
    const ssize_t got = ::pread(fd_, bytes.data() + have, bytes.size() - have,
                                static_cast<off_t>(offset + static_cast<int64_t>(have)));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return Errno(name_, ": cannot read");
    if (got == 0) {
      return absl::DataLossError(absl::StrCat(name_, ": the file ends at byte ",
                                              offset + static_cast<int64_t>(have), " of ", size_));
    }
    have += static_cast<size_t>(got);
  }
  return bytes;
}

// ---------------------------------------------------------------------------
// ArtifactFiles

std::string ArtifactFiles::DirFor(const std::string& database_path) {
  return database_path + ".artifacts";
}

absl::Status ArtifactFiles::CreateDir() const {
  if (auto s = MakeDir(dir_); !s.ok()) return s;
  return MakeDir(absl::StrCat(dir_, "/", kIncoming));
}

absl::StatusOr<std::unique_ptr<ArtifactWriter>> ArtifactFiles::Write() const {
  // Random names: concurrent uploads never share one.
  static thread_local std::mt19937_64 random{std::random_device{}()};
  for (;;) {
    const std::string path = absl::StrCat(dir_, "/", kIncoming, "/", absl::Hex(random()));
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) continue;
    if (fd < 0) return Errno(path, ": cannot create");
    return std::unique_ptr<ArtifactWriter>(new ArtifactWriter(fd, path));
  }
}

absl::StatusOr<std::unique_ptr<ArtifactWriter>> ArtifactFiles::WriteAll(
    std::string_view bytes) const {
  auto file = Write();
  if (!file.ok()) return file.status();
  if (auto s = (*file)->Append(bytes); !s.ok()) return s;
  if (auto s = (*file)->Finish(); !s.ok()) return s.status();
  return file;
}

absl::Status ArtifactFiles::Name(ArtifactWriter& writer) const {
  if (writer.sha256_.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(writer.path_, ": not finished"));
  }
  if (writer.path_.empty()) return absl::OkStatus();  // named before
  const std::string path = PathOf(writer.sha256_);
  if (::rename(writer.path_.c_str(), path.c_str()) != 0) {
    return Errno(writer.path_, ": cannot rename to ", path);
  }
  writer.path_.clear();
  return SyncFile(dir_);  // the rename lasts once the folder is synced
}

absl::StatusOr<ArtifactReader> ArtifactFiles::Open(const std::string& sha256) const {
  const std::string path = PathOf(sha256);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno(path, ": cannot open");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::ErrnoToStatus(error, absl::StrCat(path, ": cannot read"));
  }
  return ArtifactReader(fd, static_cast<int64_t>(st.st_size), path);
}

absl::Status ArtifactFiles::Remove(const std::string& sha256) const {
  const std::string path = PathOf(sha256);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Errno(path, ": cannot remove");
  }
  return absl::OkStatus();
}

absl::StatusOr<int> ArtifactFiles::RemoveUnlisted(
    const std::function<bool(const std::string&)>& listed) const {
  auto names = Names(dir_);
  if (!names.ok()) return names.status();
  int removed = 0;
  for (const std::string& name : *names) {
    if (!IsSha256Hex(name) || listed(name)) continue;
    if (auto s = Remove(name); !s.ok()) return s;
    ++removed;
  }
  return removed;
}

absl::Status ArtifactFiles::ClearIncoming() const {
  const std::string incoming = absl::StrCat(dir_, "/", kIncoming);
  auto names = Names(incoming);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    const std::string path = absl::StrCat(incoming, "/", name);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return Errno(path, ": cannot remove");
    }
  }
  return absl::OkStatus();
}

}  // namespace seedproof
