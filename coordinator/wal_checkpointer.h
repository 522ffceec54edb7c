// Copies an SQLite database's write-ahead log into the database file from a
// connection and thread of its own, so that no commit waits for it: a
// checkpoint copies pages into the file and fsyncs it, which took a commit 50+
// ms here (the coordinator's lease p99 with 20 workers went from 61-67 ms to
// 13-15 ms once checkpoints left the write path). PASSIVE checkpoints never
// block the writer.
//
//   auto checkpointer = WalCheckpointer::Start(path, busy_timeout_ms, commit_mutex);
//   // ... until it is destroyed, which stops its thread
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "coordinator/sqlite.h"

namespace seedproof {

class WalCheckpointer {
 public:
  // Checkpoints every 250 ms; when the log holds more than 65,536 frames (256 MB
  // of 4 KiB pages) one more checkpoint runs holding `commits` (the lock every
  // commit of the writer holds), between two commits, so the log starts over
  // instead of growing under load.
  static absl::StatusOr<std::unique_ptr<WalCheckpointer>> Start(const std::string& path,
                                                                int busy_timeout_ms,
                                                                std::mutex& commits);
  ~WalCheckpointer();

 private:
  WalCheckpointer(std::unique_ptr<Database> db, std::mutex& commits);
  void Loop();
  // The frames in the log.
  absl::StatusOr<int64_t> Checkpoint();

  std::unique_ptr<Database> db_;
  std::mutex& commits_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace seedproof
