// Beats for the attempts a worker is running, from one background thread that
// lives as long as the worker: an attempt's first beat comes one period after it
// began (a shorter trial costs no call), then one every period, each preceded by
// the epoch metrics queued since the last (training never waits on the network).
// An attempt's end flag is set when the coordinator says it must end (cancelled
// sweep, or a lease that expired and moved on). Internal to worker/.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "proto/seedproof.grpc.pb.h"
#include "worker/metrics.h"
#include "worker/rpc_client.h"

namespace seedproof {

class Heartbeats {
 public:
  using Clock = std::chrono::steady_clock;

  // One attempt's beats, from Heartbeats::Begin until it is destroyed.
  class Beat {
   public:
    Beat(Heartbeats& owner, int64_t attempt_id) : owner_(owner), attempt_id_(attempt_id) {}
    Beat(const Beat&) = delete;
    Beat& operator=(const Beat&) = delete;
    // Sends the epochs still queued, unless the result carries them.
    ~Beat() { owner_.End(attempt_id_, result_carries_epochs_); }

    const std::atomic<bool>& end_trial() const { return end_trial_; }
    void QueueEpoch(std::string json) { owner_.QueueEpoch(attempt_id_, std::move(json)); }
    // The trial ended with a result, which carries every epoch: the ones not
    // sent yet need no call of their own.
    void ResultCarriesEpochs() { result_carries_epochs_ = true; }

   private:
    friend class Heartbeats;
    Heartbeats& owner_;
    const int64_t attempt_id_;
    std::atomic<bool> end_trial_ = false;
    bool result_carries_epochs_ = false;
  };

  Heartbeats(rpc::Trials::Stub& stub, const RpcAuth& auth, std::chrono::milliseconds period,
             WorkerMetrics* metrics);
  ~Heartbeats();

  std::unique_ptr<Beat> Begin(int64_t attempt_id);

 private:
  struct Attempt {
    Clock::time_point next_beat;
    std::vector<std::string> epochs;  // queued since the last beat
    Beat* beat;
  };

  void QueueEpoch(int64_t attempt_id, std::string json);
  // Waits out a beat in flight for the attempt, so its verdict never lands on a
  // Beat that is gone.
  void End(int64_t attempt_id, bool result_carries_epochs);
  void Loop();
  // One heartbeat; true when the coordinator says the attempt must end. An
  // unreachable coordinator is not a verdict: keep training and beating.
  bool SendHeartbeat(int64_t attempt_id);
  // Metrics are best effort (the result carries every epoch); results are not.
  void SendEpochs(int64_t attempt_id, std::vector<std::string> epochs);

  rpc::Trials::Stub& stub_;
  const RpcAuth& auth_;
  const std::chrono::milliseconds period_;
  WorkerMetrics* const metrics_;
  std::mutex mu_;
  std::condition_variable changed_;  // attempts began or ended, a beat finished, done
  std::map<int64_t, Attempt> attempts_;
  int64_t beating_ = 0;  // the attempt whose beat is in flight; 0: none
  bool done_ = false;
  std::thread thread_;
};

}  // namespace seedproof
