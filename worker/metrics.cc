#include "worker/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>

#include "absl/strings/str_cat.h"

namespace seedproof {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

const prometheus::Histogram::BucketBoundaries kStepBuckets = {1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3,
                                                              0.01, 0.03, 0.1,  0.3,  1};

class Timed final : public GradientReducer {
 public:
  Timed(GradientReducer& inner, prometheus::Histogram& histogram)
      : inner_(inner), histogram_(histogram) {}
  absl::StatusOr<int64_t> Reduce(std::span<float> gradients, int64_t local_examples) override {
    const auto start = std::chrono::steady_clock::now();
    auto total = inner_.Reduce(gradients, local_examples);
    histogram_.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return total;
  }
  // The overlapped part of a reduction runs inside the backward pass, which the
  // step histogram times; this one times what is left for Reduce.
  int64_t bucket_floats() const override { return inner_.bucket_floats(); }
  void Ready(std::span<float> gradients, int64_t begin) override { inner_.Ready(gradients, begin); }

 private:
  GradientReducer& inner_;
  prometheus::Histogram& histogram_;
};

class Metrics final : public WorkerMetrics, public prometheus::Collectable {
 public:
  Metrics()
      : registry_(std::make_shared<prometheus::Registry>()),
        samples_(BuildGauge()
                     .Name("seedproof_worker_samples_per_second")
                     .Help("Training examples per second in the last epoch")
                     .Register(*registry_)
                     .Add({})),
        step_(BuildHistogram()
                  .Name("seedproof_worker_step_seconds")
                  .Help("Wall time of each training step (batch gathering included)")
                  .Register(*registry_)
                  .Add({}, kStepBuckets)),
        allreduce_(BuildHistogram()
                       .Name("seedproof_worker_allreduce_seconds")
                       .Help("Gradient reduction per step (local workers: no reduction)")
                       .Register(*registry_)
                       .Add({}, kStepBuckets)),
        kind_(BuildGauge()
                  .Name("seedproof_worker_trial_kind")
                  .Help("1 for the kind of trial running now (idle: none)")
                  .Register(*registry_)),
        trials_(BuildCounter()
                    .Name("seedproof_worker_trials_total")
                    .Help("Trials this worker ended, by outcome")
                    .Register(*registry_)),
        heartbeat_age_(BuildGauge()
                           .Name("seedproof_worker_heartbeat_age_seconds")
                           .Help("Seconds since the coordinator last answered a heartbeat or "
                                 "lease poll")
                           .Register(*registry_)
                           .Add({})),
        last_answer_(SteadySeconds()) {
    for (const char* kind : {"idle", "pretrain", "scratch", "transfer"}) {
      kind_.Add({{"kind", kind}}).Set(std::string(kind) == "idle" ? 1 : 0);
    }
    for (const char* outcome : {"completed", "diverged", "failed", "released"}) {
      trials_.Add({{"outcome", outcome}});
    }
  }

  absl::Status Start(const std::string& listen) {
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(listen, 1);
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("metrics: cannot listen on ", listen, ": ", e.what()));
    }
    const std::vector<int> ports = exposer_->GetListeningPorts();
    if (ports.empty())
      return absl::UnavailableError(absl::StrCat("metrics: cannot listen on ", listen));
    port_ = ports[0];
    return absl::OkStatus();
  }
  void Expose(const std::shared_ptr<Metrics>& self) { exposer_->RegisterCollectable(self); }
  // Stops serving (joins the HTTP threads) before the owner lets go.
  void Stop() { exposer_.reset(); }

  int port() const override { return port_; }
  void TrialStarted(TrialKind kind) override { SetKind(TrialKindName(kind)); }
  void TrialEnded(const std::string& outcome) override {
    trials_.Add({{"outcome", outcome}}).Increment();
    SetKind("idle");
  }
  void EpochDone(const EpochRecord& e) override {
    if (e.seconds <= 0 || e.steps <= 0) return;
    samples_.Set(static_cast<double>(e.examples) / e.seconds);
  }
  void StepDone(double seconds) override { step_.Observe(seconds); }
  void CoordinatorAnswered() override { last_answer_ = SteadySeconds(); }
  std::unique_ptr<GradientReducer> TimedReducer(GradientReducer* inner) override {
    return std::make_unique<Timed>(inner ? *inner : LocalGradientReducer(), allreduce_);
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    heartbeat_age_.Set(SteadySeconds() - last_answer_.load());
    return registry_->Collect();
  }

 private:
  void SetKind(const std::string& now) {
    for (const char* kind : {"idle", "pretrain", "scratch", "transfer"}) {
      kind_.Add({{"kind", kind}}).Set(now == kind ? 1 : 0);
    }
  }

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge& samples_;
  prometheus::Histogram &step_, &allreduce_;
  prometheus::Family<prometheus::Gauge>& kind_;
  prometheus::Family<prometheus::Counter>& trials_;
  prometheus::Gauge& heartbeat_age_;
  std::atomic<double> last_answer_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

// Owns the shared pointer the exposer's weak pointer needs.
class Handle final : public WorkerMetrics {
 public:
  explicit Handle(std::shared_ptr<Metrics> m) : m_(std::move(m)) {}
  ~Handle() override { m_->Stop(); }
  int port() const override { return m_->port(); }
  void TrialStarted(TrialKind kind) override { m_->TrialStarted(kind); }
  void TrialEnded(const std::string& outcome) override { m_->TrialEnded(outcome); }
  void EpochDone(const EpochRecord& epoch) override { m_->EpochDone(epoch); }
  void StepDone(double seconds) override { m_->StepDone(seconds); }
  void CoordinatorAnswered() override { m_->CoordinatorAnswered(); }
  std::unique_ptr<GradientReducer> TimedReducer(GradientReducer* inner) override {
    return m_->TimedReducer(inner);
  }

 private:
  std::shared_ptr<Metrics> m_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<WorkerMetrics>> WorkerMetrics::Start(const std::string& listen) {
  auto metrics = std::make_shared<Metrics>();
  if (auto s = metrics->Start(listen); !s.ok()) return s;
  metrics->Expose(metrics);
  return std::unique_ptr<WorkerMetrics>(std::make_unique<Handle>(std::move(metrics)));
}

}  // namespace seedproof
