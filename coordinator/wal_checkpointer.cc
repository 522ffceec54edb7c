#include "coordinator/wal_checkpointer.h"

#include <chrono>
#include <utility>

namespace seedproof {
namespace {

constexpr auto kCheckpointPeriod = std::chrono::milliseconds(250);
constexpr int64_t kMaxWalFrames = 65536;  // 4 KiB pages: 256 MB

}  // namespace

absl::StatusOr<std::unique_ptr<WalCheckpointer>> WalCheckpointer::Start(const std::string& path,
                                                                        int busy_timeout_ms,
                                                                        std::mutex& commits) {
  auto db = Database::Open(path, busy_timeout_ms);
  if (!db.ok()) return db.status();
  return std::unique_ptr<WalCheckpointer>(new WalCheckpointer(std::move(*db), commits));
}

WalCheckpointer::WalCheckpointer(std::unique_ptr<Database> db, std::mutex& commits)
    : db_(std::move(db)), commits_(commits) {
  thread_ = std::thread([this] { Loop(); });
}

WalCheckpointer::~WalCheckpointer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void WalCheckpointer::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!wake_.wait_for(lock, kCheckpointPeriod, [&] { return stopping_; })) {
    lock.unlock();
    // A failed checkpoint is tried again next period; the log keeps every commit.
    if (auto frames = Checkpoint(); frames.ok() && *frames > kMaxWalFrames) {
      std::lock_guard<std::mutex> between_commits(commits_);
      Checkpoint().IgnoreError();
    }
    lock.lock();
  }
}

absl::StatusOr<int64_t> WalCheckpointer::Checkpoint() {
  Query checkpoint = db_->Prepare("PRAGMA wal_checkpoint(PASSIVE)");
  auto row = checkpoint.Step();
  if (!row.ok()) return row.status();
  return *row ? checkpoint.Int(1) : 0;
}

}  // namespace seedproof
