#include "worker/heartbeats.h"

#include <grpcpp/grpcpp.h>

namespace seedproof {

Heartbeats::Heartbeats(rpc::Trials::Stub& stub, const RpcAuth& auth,
                       std::chrono::milliseconds period, WorkerMetrics* metrics)
    : stub_(stub), auth_(auth), period_(period), metrics_(metrics) {
  thread_ = std::thread([this] { Loop(); });
}

Heartbeats::~Heartbeats() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

std::unique_ptr<Heartbeats::Beat> Heartbeats::Begin(int64_t attempt_id) {
  auto beat = std::make_unique<Beat>(*this, attempt_id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    attempts_[attempt_id] = {Clock::now() + period_, {}, beat.get()};
  }
  changed_.notify_all();
  return beat;
}

void Heartbeats::QueueEpoch(int64_t attempt_id, std::string json) {
  std::lock_guard<std::mutex> lock(mu_);
  attempts_.at(attempt_id).epochs.push_back(std::move(json));
}

void Heartbeats::End(int64_t attempt_id, bool result_carries_epochs) {
  std::vector<std::string> epochs;
  {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [&] { return beating_ != attempt_id; });
    if (!result_carries_epochs) epochs = std::move(attempts_.at(attempt_id).epochs);
    attempts_.erase(attempt_id);
  }
  changed_.notify_all();
  SendEpochs(attempt_id, std::move(epochs));
}

void Heartbeats::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!done_) {
    auto due = attempts_.end();
    for (auto it = attempts_.begin(); it != attempts_.end(); ++it) {
      if (due == attempts_.end() || it->second.next_beat < due->second.next_beat) due = it;
    }
    if (due == attempts_.end()) {
      changed_.wait(lock);
      continue;
    }
    if (due->second.next_beat > Clock::now()) {
      changed_.wait_until(lock, due->second.next_beat);
      continue;
    }
    const int64_t attempt_id = due->first;
    std::vector<std::string> epochs = std::move(due->second.epochs);
    due->second.epochs.clear();
    due->second.next_beat = Clock::now() + period_;
    beating_ = attempt_id;
    lock.unlock();
    SendEpochs(attempt_id, std::move(epochs));
    const bool end = SendHeartbeat(attempt_id);
    lock.lock();
    if (end) attempts_.at(attempt_id).beat->end_trial_ = true;
    beating_ = 0;
    changed_.notify_all();
  }
}

bool Heartbeats::SendHeartbeat(int64_t attempt_id) {
  grpc::ClientContext ctx;
  auth_.Apply(ctx, 5000);
  rpc::AttemptRef ref;
  ref.set_attempt_id(attempt_id);
  rpc::HeartbeatReply reply;
  if (!stub_.Heartbeat(&ctx, ref, &reply).ok()) return false;
  if (metrics_ != nullptr) metrics_->CoordinatorAnswered();
  return reply.verdict() != rpc::HeartbeatReply::CONTINUE;
}

void Heartbeats::SendEpochs(int64_t attempt_id, std::vector<std::string> epochs) {
  if (epochs.empty()) return;
  rpc::EpochReport report;
  report.set_attempt_id(attempt_id);
  for (std::string& e : epochs) report.add_epoch_json(std::move(e));
  grpc::ClientContext ctx;
  auth_.Apply(ctx, 5000);
  rpc::Ack ack;
  stub_.ReportEpoch(&ctx, report, &ack);
}

}  // namespace seedproof
