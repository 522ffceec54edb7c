// The long poll: a Lease call that finds nothing to lease waits, without holding
// a thread, until a trial is ready for it (LeaseWaiters answers it) or its wait
// ends; the Doorbell says when trials may have become ready. Included by
// server.cc and lease_waiters.cc only.
//
//   Doorbell bell;  LeaseWaiters waiters(store);
//   bell.OnRing([&] { waiters.Serve(); });
//   waiters.Park(new LeaseCall(waiters, worker_id, reply, start, deadline));
//   ... store changes ...  bell.Ring();   // the oldest waiting calls get leases
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "coordinator/metrics.h"
#include "coordinator/store.h"
#include "proto/seedproof.pb.h"

namespace seedproof {

// Rung when trials may have become ready or sweeps changed: wakes Watch streams
// and answers the waiting leases (OnRing).
class Doorbell {
 public:
  // Before serving: what else a ring does.
  void OnRing(std::function<void()> callback) { on_ring_ = std::move(callback); }
  void Ring();
  uint64_t generation();
  // Waits until a ring after `seen` or the deadline.
  void WaitAfter(uint64_t seen, std::chrono::steady_clock::time_point deadline);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t generation_ = 0;
  std::function<void()> on_ring_;
};

// The lease as the wire carries it (leased = true).
void FillLease(const Lease& lease, rpc::LeaseReply* reply);

class LeaseWaiters;

// A Lease call that found nothing to lease and waits (the long poll) without
// holding a thread, until LeaseWaiters answers it.
class LeaseCall final : public grpc::ServerUnaryReactor {
 public:
  using Clock = std::chrono::steady_clock;
  LeaseCall(LeaseWaiters& waiters, std::string worker_id, rpc::LeaseReply* reply,
            Clock::time_point start, Clock::time_point deadline)
      : worker_id(std::move(worker_id)),
        reply(reply),
        start(start),
        deadline(deadline),
        waiters_(waiters) {}
  void OnCancel() override;
  void OnDone() override { delete this; }

  const std::string worker_id;
  rpc::LeaseReply* const reply;  // filled by whoever leases to it
  const Clock::time_point start, deadline;

 private:
  LeaseWaiters& waiters_;
};

// The waiting Lease calls, oldest first. Serve leases to them while trials are
// ready; a call whose deadline passes is answered leased = false; a cancelled one
// CANCELLED; at Close, every one UNAVAILABLE (the worker retries elsewhere or
// later). Each call is answered exactly once: by whoever takes it off the list.
class LeaseWaiters {
 public:
  explicit LeaseWaiters(Store& store);
  ~LeaseWaiters();
  // Before serving.
  void UseMetrics(CoordinatorMetrics* metrics) { metrics_ = metrics; }

  // Adds a call (it found nothing a moment ago), then serves: a trial that became
  // ready in between is not missed. A worker has one waiting call: a newer one
  // (its client reconnected, or it sends many) takes the older one's place, which
  // is answered UNAVAILABLE (a worker retries after a pause). So the waiting
  // calls are at most the registered workers (--max-workers).
  void Park(LeaseCall* call);
  // Leases to the oldest waiting calls while the store has trials for them.
  void Serve();
  void Cancel(LeaseCall* call);
  // Answers every waiting call and every later Park with UNAVAILABLE.
  void Close();

 private:
  static grpc::Status Stopping();
  // Tells the metrics how many calls wait now; mu_ is held.
  void Counted();
  // Takes the call off the list; false when someone else already answered it.
  bool Take(LeaseCall* call);
  // Erases a waiting call, and its worker's entry; mu_ is held.
  std::list<LeaseCall*>::iterator Erase(std::list<LeaseCall*>::iterator it);
  // Answers calls whose deadline passed, until Close.
  void ExpireLoop();

  Store& store_;
  CoordinatorMetrics* metrics_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  std::list<LeaseCall*> waiting_;
  std::unordered_map<std::string, std::list<LeaseCall*>::iterator> by_worker_;  // in waiting_
  bool closed_ = false;
  std::thread timer_;
};

}  // namespace seedproof
