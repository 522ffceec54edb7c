#include "coordinator/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace seedproof {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr TrialKind kKinds[] = {TrialKind::kPretrain, TrialKind::kScratch, TrialKind::kTransfer};
constexpr TrialState kStates[] = {TrialState::kPending, TrialState::kLeased,
                                  TrialState::kDone,    TrialState::kFailed,
                                  TrialState::kBlocked, TrialState::kCancelled};

// Test accuracies of completed trials, per sweep, target, arm ("baseline" too) and seed.
using ArmScores = std::map<std::string, std::map<std::string, std::map<int, double>>>;

class Metrics final : public CoordinatorMetrics, public prometheus::Collectable {
 public:
  Metrics(const CoordinatorMetricsOptions& options, Store& store)
      : options_(options),
        store_(store),
        registry_(std::make_shared<prometheus::Registry>()),
        leases_(BuildCounter()
                    .Name("seedproof_leases_total")
                    .Help("Leases handed out to workers")
                    .Register(*registry_)
                    .Add({})),
        retries_(BuildCounter()
                     .Name("seedproof_trial_retries_total")
                     .Help("Leases of a trial after a failed or expired attempt")
                     .Register(*registry_)
                     .Add({})),
        failures_(BuildCounter()
                      .Name("seedproof_attempt_failures_total")
                      .Help("Attempts a worker reported as failed")
                      .Register(*registry_)
                      .Add({})),
        expired_(BuildCounter()
                     .Name("seedproof_expired_leases_total")
                     .Help("Leases whose deadline passed without a heartbeat")
                     .Register(*registry_)
                     .Add({})),
        released_(BuildCounter()
                      .Name("seedproof_released_leases_total")
                      .Help("Leases workers gave back (shutting down, cancelled sweeps)")
                      .Register(*registry_)
                      .Add({})),
        completions_(BuildCounter()
                         .Name("seedproof_trial_completions_total")
                         .Help("Trial results accepted, by trial kind")
                         .Register(*registry_)),
        lease_latency_(BuildHistogram()
                           .Name("seedproof_lease_latency_seconds")
                           .Help("Time in the Lease call until a trial was handed out (long "
                                 "poll included), by trial kind")
                           .Register(*registry_)),
        trial_duration_(BuildHistogram()
                            .Name("seedproof_trial_duration_seconds")
                            .Help("Wall time of accepted trials as the worker measured it, by "
                                  "trial kind")
                            .Register(*registry_)),
        trials_(BuildGauge()
                    .Name("seedproof_trials")
                    .Help("Trials by sweep and state")
                    .Register(*registry_)),
        sweep_total_(BuildGauge()
                         .Name("seedproof_sweep_trials")
                         .Help("Trials in the sweep (confirmation trials join later)")
                         .Register(*registry_)),
        sweep_finished_(BuildGauge()
                            .Name("seedproof_sweep_trials_finished")
                            .Help("Trials of the sweep done, failed, blocked or cancelled")
                            .Register(*registry_)),
        sweep_progress_(BuildGauge()
                            .Name("seedproof_sweep_progress_ratio")
                            .Help("Finished trials / trials of the sweep")
                            .Register(*registry_)),
        sweep_running_(BuildGauge()
                           .Name("seedproof_sweep_running")
                           .Help("1 while the sweep runs, 0 when done or cancelled")
                           .Register(*registry_)),
        sweep_info_(BuildGauge()
                        .Name("seedproof_sweep_info")
                        .Help("Always 1; the sweep's name as a label")
                        .Register(*registry_)),
        workers_live_(BuildGauge()
                          .Name("seedproof_workers_live")
                          .Help("Workers seen (registration, lease, heartbeat) recently")
                          .Register(*registry_)
                          .Add({})),
        workers_registered_(BuildGauge()
                                .Name("seedproof_workers_registered")
                                .Help("Workers that ever registered")
                                .Register(*registry_)
                                .Add({})),
        lease_calls_waiting_(BuildGauge()
                                 .Name("seedproof_lease_calls_waiting")
                                 .Help("Lease calls waiting in the long poll for a trial")
                                 .Register(*registry_)
                                 .Add({})),
        arm_seeds_(BuildGauge()
                       .Name("seedproof_arm_seeds_done")
                       .Help("Completed seeds of an arm (or the baseline)")
                       .Register(*registry_)),
        arm_accuracy_(BuildGauge()
                          .Name("seedproof_arm_test_accuracy_mean")
                          .Help("Mean test accuracy of an arm (or the baseline) so far")
                          .Register(*registry_)),
        arm_gain_(BuildGauge()
                      .Name("seedproof_arm_gain_mean")
                      .Help("Mean of arm - baseline test accuracy on the seeds both completed")
                      .Register(*registry_)),
        arm_paired_(BuildGauge()
                        .Name("seedproof_arm_paired_seeds")
                        .Help("Seeds on which both the arm and its baseline completed")
                        .Register(*registry_)) {
    for (TrialKind kind : kKinds) {
      const std::string name = TrialKindName(kind);
      completions_.Add({{"kind", name}});
      const size_t k = static_cast<size_t>(kind);
      lease_latency_by_kind_[k] = &lease_latency_.Add(
          {{"kind", name}},
          prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
                                                  0.1, 0.2, 0.5, 1, 2, 5, 10, 30});
      trial_duration_by_kind_[k] = &trial_duration_.Add(
          {{"kind", name}}, prometheus::Histogram::BucketBoundaries{0.01, 0.03, 0.1, 0.3, 1, 3, 10,
                                                                    30, 100, 300, 1000, 3000});
    }
  }

  absl::Status Start() {
    if (auto s = Rebuild(); !s.ok()) return s;
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(options_.listen, 1);
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("metrics: cannot listen on ", options_.listen, ": ", e.what()));
    }
    const std::vector<int> ports = exposer_->GetListeningPorts();
    if (ports.empty()) {
      return absl::UnavailableError(absl::StrCat("metrics: cannot listen on ", options_.listen));
    }
    port_ = ports[0];
    WriteWorkerTargets();
    return absl::OkStatus();
  }

  // The exposer holds a weak pointer to this; the owner keeps the shared one.
  void Expose(const std::shared_ptr<Metrics>& self) { exposer_->RegisterCollectable(self); }
  // Stops serving (joins the HTTP threads, so no scrape is running) before the
  // owner lets go: the last reference must not be a scrape's.
  void Stop() { exposer_.reset(); }

  int port() const override { return port_; }

  void LeaseGranted(const Lease& lease, double seconds) override {
    leases_.Increment();
    if (lease.attempt > 1) retries_.Increment();
    lease_latency_by_kind_[static_cast<size_t>(lease.kind)]->Observe(seconds);
    std::lock_guard<std::mutex> lock(mu_);
    attempts_[lease.attempt_id] = {lease.sweep_id, NowMs()};
  }

  void TrialCompleted(int64_t attempt_id, const TrialResult& result) override {
    const std::string kind = TrialKindName(result.kind);
    completions_.Add({{"kind", kind}}).Increment();
    trial_duration_by_kind_[static_cast<size_t>(result.kind)]->Observe(result.wall_seconds);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = attempts_.find(attempt_id);
    if (it == attempts_.end()) {
      // Leased before this process started (or forgotten): read the store again.
      rebuild_ = true;
      return;
    }
    Record(it->second.first, result);
    attempts_.erase(it);
  }

  void LeaseCallsWaiting(int count) override { lease_calls_waiting_.Set(count); }

  void AttemptFailed(int64_t attempt_id) override {
    failures_.Increment();
    Forget(attempt_id);
  }
  void AttemptReleased(int64_t attempt_id) override {
    released_.Increment();
    Forget(attempt_id);
  }
  void LeasesExpired(int count) override {
    expired_.Increment(count);
    // Expired attempts are not named: forget every attempt leased over an hour
    // ago (one that still completes makes the next scrape re-read the store).
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(attempts_,
                  [now = NowMs()](const auto& a) { return now - a.second.second > 3600 * 1000; });
  }
  void WorkerRegistered() override { WriteWorkerTargets(); }

  // Scrape: the state gauges from the store, then everything.
  std::vector<prometheus::MetricFamily> Collect() const override {
    const_cast<Metrics*>(this)->Refresh();
    return registry_->Collect();
  }

 private:
  void Forget(int64_t attempt_id) {
    std::lock_guard<std::mutex> lock(mu_);
    attempts_.erase(attempt_id);
  }

  // Called with mu_ held, or before serving.
  void Record(const std::string& sweep_id, const TrialResult& r) {
    if (r.kind == TrialKind::kPretrain || r.outcome != TrialOutcome::kCompleted) return;
    scores_[sweep_id][r.target][r.arm][r.seed_index] = r.test_accuracy;
  }

  // The per-arm figures from every stored result. Called with mu_ held, or before serving.
  absl::Status Rebuild() {
    scores_.clear();
    auto sweeps = store_.ListSweeps();
    if (!sweeps.ok()) return sweeps.status();
    for (const SweepStatus& sweep : *sweeps) {
      auto results = store_.Results(sweep.sweep_id, BlockedTrials::kLeftOut);
      if (!results.ok()) return results.status();
      for (const TrialResult& result : *results) Record(sweep.sweep_id, result);
    }
    return absl::OkStatus();
  }

  void Refresh() {
    WriteWorkerTargets();
    auto sweeps = store_.ListSweeps();
    if (sweeps.ok()) {
      for (const SweepStatus& s : *sweeps) {
        const prometheus::Labels sweep = {{"sweep", s.sweep_id}};
        const int counts[] = {s.pending, s.leased, s.done, s.failed, s.blocked, s.cancelled};
        for (size_t i = 0; i < std::size(kStates); ++i) {
          trials_.Add({{"sweep", s.sweep_id}, {"state", TrialStateName(kStates[i])}})
              .Set(counts[i]);
        }
        const int finished = s.done + s.failed + s.blocked + s.cancelled;
        sweep_total_.Add(sweep).Set(s.total);
        sweep_finished_.Add(sweep).Set(finished);
        sweep_progress_.Add(sweep).Set(s.total > 0 ? static_cast<double>(finished) / s.total : 1);
        sweep_running_.Add(sweep).Set(s.state == SweepState::kRunning ? 1 : 0);
        sweep_info_.Add({{"sweep", s.sweep_id}, {"name", s.name}}).Set(1);
      }
    }
    if (auto workers = store_.Workers(); workers.ok()) {
      const int64_t now = NowMs();
      int live = 0;
      for (const WorkerInfo& w : *workers) live += now - w.last_seen_ms <= options_.live_window_ms;
      workers_live_.Set(live);
      workers_registered_.Set(static_cast<double>(workers->size()));
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (rebuild_ && Rebuild().ok()) rebuild_ = false;
    for (const auto& [sweep, targets] : scores_) {
      for (const auto& [target, arms] : targets) {
        const auto baseline = arms.find("baseline");
        for (const auto& [arm, seeds] : arms) {
          const prometheus::Labels labels = {{"sweep", sweep}, {"target", target}, {"arm", arm}};
          double sum = 0, gain = 0;
          int paired = 0;
          for (const auto& [seed, accuracy] : seeds) {
            sum += accuracy;
            if (baseline == arms.end()) continue;
            if (auto b = baseline->second.find(seed); b != baseline->second.end()) {
              gain += accuracy - b->second;
              ++paired;
            }
          }
          arm_seeds_.Add(labels).Set(static_cast<double>(seeds.size()));
          arm_accuracy_.Add(labels).Set(sum / static_cast<double>(seeds.size()));
          if (arm == "baseline") continue;
          arm_paired_.Add(labels).Set(paired);
          if (paired > 0) arm_gain_.Add(labels).Set(gain / paired);
        }
      }
    }
  }

  // The file_sd file: the /metrics address of every worker seen in the last hour.
  void WriteWorkerTargets() {
    if (options_.worker_sd_file.empty()) return;
    std::lock_guard<std::mutex> lock(sd_mu_);  // read and write as one: the newest list wins
    auto workers = store_.Workers();
    if (!workers.ok()) return;
    std::vector<std::string> targets;
    for (const WorkerInfo& w : *workers) {
      const nlohmann::json caps = nlohmann::json::parse(w.capabilities_json, nullptr, false);
      if (!caps.is_object() || !caps.contains("metrics") || !caps["metrics"].is_string()) continue;
      if (NowMs() - w.last_seen_ms > 3600 * 1000) continue;
      targets.push_back(caps["metrics"]);
    }
    const std::string text =
        nlohmann::json::array({{{"targets", targets}, {"labels", nlohmann::json::object()}}})
            .dump(2);
    if (text == written_sd_) return;
    const std::string tmp = options_.worker_sd_file + ".tmp";
    std::ofstream out(tmp);
    out << text << "\n";
    out.close();
    if (!out) return;  // tried again at the next scrape or registration
    std::error_code ec;
    std::filesystem::rename(tmp, options_.worker_sd_file, ec);
    if (!ec) written_sd_ = text;
  }

  const CoordinatorMetricsOptions options_;
  Store& store_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Counter &leases_, &retries_, &failures_, &expired_, &released_;
  prometheus::Family<prometheus::Counter>& completions_;
  prometheus::Family<prometheus::Histogram>&lease_latency_, &trial_duration_;
  prometheus::Family<prometheus::Gauge>&trials_, &sweep_total_, &sweep_finished_, &sweep_progress_,
      &sweep_running_, &sweep_info_;
  prometheus::Gauge &workers_live_, &workers_registered_, &lease_calls_waiting_;
  // By TrialKind's value (1..3).
  std::array<prometheus::Histogram*, 4> lease_latency_by_kind_{}, trial_duration_by_kind_{};
  prometheus::Family<prometheus::Gauge>&arm_seeds_, &arm_accuracy_, &arm_gain_, &arm_paired_;

  std::mutex mu_;
  // Current attempts: sweep id and when they were leased (ms).
  std::unordered_map<int64_t, std::pair<std::string, int64_t>> attempts_;
  bool rebuild_ = false;  // a result of an unknown attempt came: re-read the store
  std::map<std::string, ArmScores> scores_;  // by sweep id
  std::mutex sd_mu_;
  std::string written_sd_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

// Owns the shared pointer the exposer's weak pointer needs.
class Handle final : public CoordinatorMetrics {
 public:
  explicit Handle(std::shared_ptr<Metrics> metrics) : metrics_(std::move(metrics)) {}
  ~Handle() override { metrics_->Stop(); }
  int port() const override { return metrics_->port(); }
  void LeaseGranted(const Lease& lease, double seconds) override {
    metrics_->LeaseGranted(lease, seconds);
  }
  void TrialCompleted(int64_t attempt_id, const TrialResult& result) override {
    metrics_->TrialCompleted(attempt_id, result);
  }
  void AttemptFailed(int64_t attempt_id) override { metrics_->AttemptFailed(attempt_id); }
  void AttemptReleased(int64_t attempt_id) override { metrics_->AttemptReleased(attempt_id); }
  void LeasesExpired(int count) override { metrics_->LeasesExpired(count); }
  void WorkerRegistered() override { metrics_->WorkerRegistered(); }
  void LeaseCallsWaiting(int count) override { metrics_->LeaseCallsWaiting(count); }

 private:
  std::shared_ptr<Metrics> metrics_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinatorMetrics>> CoordinatorMetrics::Start(
    const CoordinatorMetricsOptions& options, Store& store) {
  auto metrics = std::make_shared<Metrics>(options, store);
  if (auto s = metrics->Start(); !s.ok()) return s;
  metrics->Expose(metrics);
  return std::unique_ptr<CoordinatorMetrics>(std::make_unique<Handle>(std::move(metrics)));
}

}  // namespace seedproof
