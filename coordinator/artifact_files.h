// Artifacts' bytes, as files beside the store's database: <database>.artifacts/<sha256>,
// one per artifact, named by its SHA-256. The store's artifacts table says which
// of them it holds. An upload may be hundreds of megabytes, so it is written and
// hashed here outside the store's lock; the lock is held only to rename the file
// into place and record it, and a download reads an open file outside the lock.
//
//   ArtifactFiles files(ArtifactFiles::DirFor("coordinator.db"));
//   auto writer = files.Write();                 // .incoming/<random>
//   (*writer)->Append(chunk); ...
//   auto sha256 = (*writer)->Finish();           // synced, hashed
//   files.Name(**writer);                        // .artifacts/<sha256>
//   auto reader = files.Open(*sha256);           // readable even once removed
//
// Crash safety: a file is written under a temporary name in .incoming/ and only
// renamed once whole and synced, so no name ever holds part of an artifact. The
// store names a file before the row that lists it commits, and removes a file only
// after the delete of its row commits, so a crash may leave a file nothing lists
// (removed when a writer next opens the store: RemoveUnlisted, ClearIncoming), never
// a row without its file. One coordinator writes a store at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/content_hash.h"

namespace seedproof {

// Makes what was written to a file durable (fsync).
absl::Status SyncFile(const std::string& path);

// An artifact being written: bytes appended and hashed as they come. Its file is
// deleted with it unless ArtifactFiles::Name took it.
class ArtifactWriter {
 public:
  ~ArtifactWriter();
  ArtifactWriter(const ArtifactWriter&) = delete;
  ArtifactWriter& operator=(const ArtifactWriter&) = delete;

  absl::Status Append(std::string_view bytes);
  int64_t size() const { return size_; }
  // "" until finished.
  const std::string& sha256() const { return sha256_; }
  // Syncs the file and returns the SHA-256 of everything appended (64 lowercase
  // hex digits); again, the same. Nothing may be appended after.
  absl::StatusOr<std::string> Finish();

 private:
  friend class ArtifactFiles;
  ArtifactWriter(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

  int fd_;
  std::string path_;  // in .incoming/ until named, then "" (the file is the store's)
  Sha256 hash_;
  int64_t size_ = 0;
  std::string sha256_;  // once finished
};

// An artifact's file, open for reading.
class ArtifactReader {
 public:
  ArtifactReader(int fd, int64_t size, std::string name)
      : fd_(fd), size_(size), name_(std::move(name)) {}
  ~ArtifactReader();
  ArtifactReader(ArtifactReader&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), size_(other.size_), name_(std::move(other.name_)) {}
  ArtifactReader& operator=(ArtifactReader&& other) noexcept {
    std::swap(fd_, other.fd_);
    size_ = other.size_;
    name_.swap(other.name_);
    return *this;
  }

  int64_t size() const { return size_; }
  // Up to max_bytes from offset: fewer only at the end. DATA_LOSS if the file
  // is shorter than its size said.
  absl::StatusOr<std::string> Read(int64_t offset, int64_t max_bytes) const;
  absl::StatusOr<std::string> ReadAll() const { return Read(0, size_); }

 private:
  int fd_;
  int64_t size_;
  std::string name_;  // in errors
};

class ArtifactFiles {
 public:
  // The folder beside a database file: "<database_path>.artifacts".
  static std::string DirFor(const std::string& database_path);

  explicit ArtifactFiles(std::string dir) : dir_(std::move(dir)) {}
  const std::string& dir() const { return dir_; }

  // Creates the folder (and .incoming/) if missing.
  absl::Status CreateDir() const;
  // A new file in .incoming/.
  absl::StatusOr<std::unique_ptr<ArtifactWriter>> Write() const;
  // A new file in .incoming/ holding bytes, finished.
  absl::StatusOr<std::unique_ptr<ArtifactWriter>> WriteAll(std::string_view bytes) const;
  // Gives a finished writer's file its name. Another file of that name holds the
  // same bytes (the name is their hash) and is replaced.
  absl::Status Name(ArtifactWriter& writer) const;
  // NOT_FOUND when no file has that name.
  absl::StatusOr<ArtifactReader> Open(const std::string& sha256) const;
  // Removes a named file; one already gone is no error.
  absl::Status Remove(const std::string& sha256) const;
  // Removes every named file `listed` says the store does not hold; the count.
  absl::StatusOr<int> RemoveUnlisted(const std::function<bool(const std::string&)>& listed) const;
  // Removes what writers left in .incoming/ (a crash mid-upload).
  absl::Status ClearIncoming() const;

 private:
  std::string PathOf(const std::string& sha256) const { return dir_ + "/" + sha256; }
  std::string dir_;
};

}  // namespace seedproof
