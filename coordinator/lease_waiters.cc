#include "coordinator/lease_waiters.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/server_util.h"

namespace seedproof {

void Doorbell::Ring() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
  }
  cv_.notify_all();
  if (on_ring_) on_ring_();
}

uint64_t Doorbell::generation() {
  std::lock_guard<std::mutex> lock(mu_);
  return generation_;
}

void Doorbell::WaitAfter(uint64_t seen, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_until(lock, deadline, [&] { return generation_ != seen; });
}

void FillLease(const Lease& l, rpc::LeaseReply* reply) {
  reply->set_leased(true);
  reply->set_sweep_id(l.sweep_id);
  reply->set_trial_id(l.trial_id);
  reply->set_attempt_id(l.attempt_id);
  reply->set_attempt(l.attempt);
  reply->set_source_sha256(l.source_sha256);
  reply->set_trial_json(l.trial_json);
}

void LeaseCall::OnCancel() { waiters_.Cancel(this); }

LeaseWaiters::LeaseWaiters(Store& store) : store_(store) {
  timer_ = std::thread([this] { ExpireLoop(); });
}

LeaseWaiters::~LeaseWaiters() {
  Close();
  timer_.join();
}

void LeaseWaiters::Park(LeaseCall* call) {
  LeaseCall* superseded = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closed_) {
      if (auto older = by_worker_.find(call->worker_id); older != by_worker_.end()) {
        superseded = *older->second;
        Erase(older->second);
      }
      by_worker_[call->worker_id] = waiting_.insert(waiting_.end(), call);
      Counted();
      cv_.notify_all();  // the timer may need to wake earlier
      call = nullptr;
    }
  }
  if (superseded != nullptr) {
    superseded->Finish(grpc::Status(
        grpc::StatusCode::UNAVAILABLE,
        absl::StrCat("a newer Lease call of worker ", superseded->worker_id, " took its place")));
  }
  if (call != nullptr) {
    call->Finish(Stopping());
    return;
  }
  Serve();
}

std::list<LeaseCall*>::iterator LeaseWaiters::Erase(std::list<LeaseCall*>::iterator it) {
  by_worker_.erase((*it)->worker_id);
  return waiting_.erase(it);
}

void LeaseWaiters::Serve() {
  std::vector<std::pair<LeaseCall*, grpc::Status>> answered;
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (!waiting_.empty()) {
      LeaseCall* call = waiting_.front();
      auto lease = store_.LeaseNext(call->worker_id, NowMs());
      if (lease.ok() && !lease->has_value()) break;  // nothing for anyone
      Erase(waiting_.begin());
      Counted();
      if (!lease.ok()) {
        answered.emplace_back(call, ToGrpc(lease.status()));
        continue;
      }
      FillLease(**lease, call->reply);
      if (metrics_ != nullptr) {
        metrics_->LeaseGranted(
            **lease, std::chrono::duration<double>(LeaseCall::Clock::now() - call->start).count());
      }
      answered.emplace_back(call, grpc::Status::OK);
    }
  }
  for (auto& [call, status] : answered) call->Finish(status);
}

void LeaseWaiters::Cancel(LeaseCall* call) {
  if (Take(call)) call->Finish(grpc::Status::CANCELLED);
}

void LeaseWaiters::Close() {
  std::list<LeaseCall*> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    left.swap(waiting_);
    by_worker_.clear();
    Counted();
  }
  cv_.notify_all();
  for (LeaseCall* call : left) call->Finish(Stopping());
}

grpc::Status LeaseWaiters::Stopping() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the coordinator is stopping");
}

void LeaseWaiters::Counted() {
  if (metrics_ != nullptr) metrics_->LeaseCallsWaiting(static_cast<int>(waiting_.size()));
}

bool LeaseWaiters::Take(LeaseCall* call) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    if (*it == call) {
      Erase(it);
      Counted();
      return true;
    }
  }
  return false;
}

void LeaseWaiters::ExpireLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!closed_) {
    const auto now = LeaseCall::Clock::now();
    auto next = LeaseCall::Clock::time_point::max();
    std::vector<LeaseCall*> expired;
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if ((*it)->deadline <= now) {
        expired.push_back(*it);
        it = Erase(it);
      } else {
        next = std::min(next, (*it)->deadline);
        ++it;
      }
    }
    if (!expired.empty()) {
      Counted();
      lock.unlock();
      for (LeaseCall* call : expired) call->Finish(grpc::Status::OK);  // leased = false
      lock.lock();
      continue;
    }
    if (next == LeaseCall::Clock::time_point::max()) {
      cv_.wait(lock);  // until a Park or Close
    } else {
      cv_.wait_until(lock, next);
    }
  }
}

}  // namespace seedproof
