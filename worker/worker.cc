#include "worker/worker.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "data/dataset_blob.h"
#include "experiments/fingerprint.h"
#include "experiments/plan.h"
#include "experiments/results.h"
#include "experiments/trial.h"
#include "nlohmann/json.hpp"
#include "proto/seedproof.grpc.pb.h"
#include "worker/artifacts.h"
#include "worker/group.h"
#include "worker/heartbeats.h"
#include "worker/leased_trial.h"
#include "worker/metrics.h"
#include "worker/mpi.h"
#include "worker/rpc_client.h"

namespace seedproof {

// One per worker process, or one for the workers of a benchmark.
class WorkerShared {
 public:
  TrialCache& cache() { return cache_; }

 private:
  TrialCache cache_;
};

namespace {

// A worker that talks to the coordinator: a single process, or rank 0 of a group.
class Worker {
 public:
  Worker(const WorkerOptions& options, const std::atomic<bool>* stop, MpiGroup* group)
      : options_(options),
        stop_(stop),
        group_(group),
        shared_(options.shared ? options.shared : MakeWorkerShared()) {}

  absl::Status Run() {
    if (auto s = Setup(); !s.ok()) return s;
    while (!stopping()) {
      if (options_.max_trials > 0 && trials_done_ >= options_.max_trials) break;
      // The trial the last Complete leased, if it did; else a long poll.
      absl::StatusOr<std::optional<rpc::LeaseReply>> lease = std::exchange(next_, std::nullopt);
      if (!*lease) lease = Lease(options_.exit_when_idle ? 200 : 500);
      if (!lease.ok()) return lease.status();
      if (!*lease) {
        if (options_.exit_when_idle) break;
        continue;
      }
      // A lease whose trial cannot be had fails that attempt alone (RunAlone).
      absl::StatusOr<TrialSpec> trial = LeasedTrial((*lease)->trial_id(), (*lease)->trial_json());
      absl::Status ran;
      if (group_ == nullptr || !trial.ok() || !Small(*trial)) {
        ran = RunAlone(**lease, trial);
        ++trials_done_;
      } else {
        // Small trials: one per rank, as many as the coordinator has ready now.
        std::vector<std::pair<rpc::LeaseReply, TrialSpec>> batch;
        batch.emplace_back(**lease, *std::move(trial));
        while (static_cast<int>(batch.size()) < group_->size()) {
          auto more = Lease(0);
          if (!more.ok()) return more.status();
          if (!*more) break;
          auto more_trial = LeasedTrial((*more)->trial_id(), (*more)->trial_json());
          if (!more_trial.ok() || !Small(*more_trial)) {
            Release((*more)->attempt_id());  // the next round takes it, alone
            break;
          }
          batch.emplace_back(**more, *std::move(more_trial));
        }
        trials_done_ += static_cast<int>(batch.size());
        ran = RunBatch(batch);
      }
      if (!ran.ok()) return ran;
    }
    if (next_) Release(next_->attempt_id());  // stopping with a trial in hand
    return absl::OkStatus();
  }

 private:
  bool stopping() const { return stop_ && stop_->load(); }

  // Small enough for one rank: fewer training examples than split_min_examples.
  bool Small(const TrialSpec& trial) const {
    return TaskTrainExamples(trial.task, trial.dataset, {}) < options_.split_min_examples;
  }

  absl::Status Setup() {
    // A connection of its own even beside other workers in this process.
    auto channel = MakeChannel(options_.coordinator, options_.root_cert, /*own_connection=*/true);
    if (!channel.ok()) return channel.status();
    stub_ = rpc::Trials::NewStub(*channel);
    auth_ = RpcAuth{options_.token};
    worker_id_ =
        options_.worker_id.empty() ? absl::StrCat(Hostname(), ":", getpid()) : options_.worker_id;
    auto backend = MakeBackend(options_.backend, {.threads = options_.threads});
    if (!backend.ok()) return backend.status();
    backend_ = std::move(*backend);
    std::string metrics_address;
    if (!options_.metrics_listen.empty()) {
      auto started = WorkerMetrics::Start(options_.metrics_listen);
      if (!started.ok()) return started.status();
      metrics_ = std::move(*started);
      // Where Prometheus finds it: the host it listens on (or this host's name when
      // it listens on every interface) and the port it got.
      std::string host = options_.metrics_listen.substr(0, options_.metrics_listen.rfind(':'));
      if (host.empty() || host == "0.0.0.0" || host == "[::]") host = Hostname();
      metrics_address = absl::StrCat(host, ":", metrics_->port());
    }
    // Data parallel steps reduce across the group; a trial of its own (alone, or
    // one per rank) reduces nothing: an MPI call there would wait forever.
    GradientReducer* group_reducer = group_ ? &group_->reducer() : nullptr;
    if (metrics_) {
      timed_group_reducer_ = metrics_->TimedReducer(group_reducer);
      timed_local_reducer_ = metrics_->TimedReducer(nullptr);
    }
    parallel_reducer_ = timed_group_reducer_ ? timed_group_reducer_.get() : group_reducer;

    auto do_register = [&]() -> absl::Status {
      grpc::ClientContext ctx;
      auth_.Apply(ctx, 5000);
      rpc::RegisterRequest request;
      request.set_worker_id(worker_id_);
      request.add_backends(backend_->name());
      request.set_threads(options_.threads);
      request.set_cpu_isa(CpuIsa());
      request.set_mpi_size(group_ ? group_->size() : 1);
      request.set_metrics_address(metrics_address);
      return FromGrpc(stub_->Register(&ctx, request, &registered_), "register");
    };
    if (auto s = RetryWhileUnavailable(do_register, stop_); !s.ok()) return s;
    artifacts_ = std::make_unique<CoordinatorArtifactStore>(*stub_, auth_);
    datasets_ = std::make_unique<CoordinatorDatasets>(*stub_, auth_);
    heartbeats_ = std::make_unique<Heartbeats>(
        *stub_, auth_, std::chrono::milliseconds(registered_.heartbeat_ms()), metrics_.get());
    return absl::OkStatus();
  }

  // The next trial, or nullopt when none is ready within wait_ms.
  absl::StatusOr<std::optional<rpc::LeaseReply>> Lease(int64_t wait_ms) {
    rpc::LeaseReply lease;
    auto do_lease = [&]() -> absl::Status {
      grpc::ClientContext ctx;
      auth_.Apply(ctx, 10000);
      rpc::LeaseRequest request;
      request.set_worker_id(worker_id_);
      // Short enough that SIGTERM is noticed promptly between polls.
      request.set_wait_ms(wait_ms);
      return FromGrpc(stub_->Lease(&ctx, request, &lease), "lease");
    };
    const auto start = std::chrono::steady_clock::now();
    if (auto s = RetryWhileUnavailable(do_lease, stop_); !s.ok()) return s;
    if (metrics_) metrics_->CoordinatorAnswered();
    AskedForTrial(start, lease.leased());
    if (!lease.leased()) return std::nullopt;
    return lease;
  }

  // A call that asked for a trial (Lease, or Complete with lease_next_for) ended.
  void AskedForTrial(std::chrono::steady_clock::time_point start, bool leased) const {
    if (!options_.on_lease) return;
    options_.on_lease(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), leased);
  }

  TrialContext ContextFor(Heartbeats::Beat& beat, bool parallel) {
    TrialContext ctx;
    ctx.backend = backend_.get();
    ctx.artifacts = artifacts_.get();
    ctx.cache = &shared_->cache();
    ctx.datasets = datasets_.get();
    ctx.threads = options_.threads;
    ctx.reducer = parallel ? parallel_reducer_ : timed_local_reducer_.get();
    ctx.replica = 0;
    ctx.replicas = parallel && group_ ? group_->size() : 1;
    // SIGTERM, or the coordinator taking the attempt back; a group stops together.
    ctx.should_stop = [this, &beat, parallel] {
      const bool local = stopping() || beat.end_trial().load();
      return parallel && group_ ? group_->AnyTrue(local) : local;
    };
    ctx.on_epoch = [this, &beat](const EpochRecord& e) {
      beat.QueueEpoch(EpochRecordToJson(e).dump());
      if (metrics_) metrics_->EpochDone(e);
    };
    if (metrics_) ctx.on_step = [this](double seconds) { metrics_->StepDone(seconds); };
    return ctx;
  }

  // One trial here (or data parallel across the whole group, when it splits
  // across replicas; else on this rank alone while the others wait), reported.
  absl::Status RunAlone(const rpc::LeaseReply& lease, const absl::StatusOr<TrialSpec>& trial) {
    absl::StatusOr<TrialResult> result = absl::UnknownError("not run");
    if (!trial.ok()) result = trial.status();
    if (trial.ok()) {
      LogStart(lease, *trial);
      artifacts_->BeginAttempt(lease.attempt_id(), *trial, lease.source_sha256());
      absl::Status shared = absl::OkStatus();
      const bool parallel = group_ != nullptr && SplitsAcrossReplicas(*trial);
      if (parallel) {
        // The other ranks get the trial, its source model and data first.
        absl::StatusOr<std::string> source_model = std::string();
        if (!SourceKey(*trial).empty()) source_model = artifacts_->Download();
        absl::StatusOr<GroupDatasets> datasets = DatasetsForGroup({&*trial});
        shared = !source_model.ok() ? source_model.status() : datasets.status();
        if (shared.ok()) {
          if (auto s = SendTrial(*group_, lease, *source_model, *std::move(datasets)); !s.ok()) {
            return s;
          }
        }
      }
      if (shared.ok()) {
        std::unique_ptr<Heartbeats::Beat> beat = heartbeats_->Begin(lease.attempt_id());
        if (metrics_) metrics_->TrialStarted(trial->kind);
        TrialContext ctx = ContextFor(*beat, parallel || group_ == nullptr);
        result = RunTrial(*trial, ctx);
        if (result.ok()) beat->ResultCarriesEpochs();
      } else {
        result = shared;
      }
    }
    return Finish(lease, result, "", /*lease_next=*/true);
  }

  // Small trials, items[r] on rank r at once; rank 0 heartbeats and reports all.
  absl::Status RunBatch(const std::vector<std::pair<rpc::LeaseReply, TrialSpec>>& leased) {
    // A trial whose source model cannot be had fails alone; the rest run.
    std::vector<std::pair<rpc::LeaseReply, TrialSpec>> batch;
    std::vector<std::string> source_models;
    GroupDatasets datasets;
    for (const auto& [lease, trial] : leased) {
      artifacts_->BeginAttempt(lease.attempt_id(), trial, lease.source_sha256());
      absl::StatusOr<std::string> model = std::string();
      if (!SourceKey(trial).empty()) model = artifacts_->Download();
      absl::StatusOr<GroupDatasets> data = DatasetsForGroup({&trial});
      const absl::Status ready = !model.ok() ? model.status() : data.status();
      if (!ready.ok()) {
        if (auto s = Finish(lease, ready, ""); !s.ok()) return s;
        continue;
      }
      batch.emplace_back(lease, trial);
      source_models.push_back(*std::move(model));
      for (auto& d : *data) datasets.push_back(std::move(d));
    }
    if (batch.empty()) return absl::OkStatus();
    std::fprintf(stderr, "worker %s: %zu trials, one per rank\n", worker_id_.c_str(), batch.size());
    for (const auto& [lease, trial] : batch) LogStart(lease, trial);
    std::vector<const rpc::LeaseReply*> leases;
    for (const auto& [lease, trial] : batch) leases.push_back(&lease);
    if (auto s = SendBatch(*group_, leases, source_models, std::move(datasets)); !s.ok()) return s;
    // Every attempt beats while its rank trains; rank 0 runs items[0].
    std::vector<std::unique_ptr<Heartbeats::Beat>> beats;
    for (const auto& [lease, trial] : batch)
      beats.push_back(heartbeats_->Begin(lease.attempt_id()));
    const auto& [lease, trial] = batch.front();
    artifacts_->BeginAttempt(lease.attempt_id(), trial, lease.source_sha256());
    if (metrics_) metrics_->TrialStarted(trial.kind);
    TrialContext ctx = ContextFor(*beats.front(), /*parallel=*/false);
    const absl::StatusOr<TrialResult> own = RunTrial(trial, ctx);
    if (own.ok()) beats.front()->ResultCarriesEpochs();
    auto others = GatherBatch(*group_, batch.size());
    if (!others.ok()) return others.status();
    beats.clear();
    if (auto s = Finish(lease, own, ""); !s.ok()) return s;
    for (size_t r = 1; r < batch.size(); ++r) {
      const auto& [outcome, model] = (*others)[r];
      if (auto s = Finish(batch[r].first, outcome, model); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // The shipped datasets these trials read that the group's other ranks lack,
  // encoded from this process's copy (fetched once from the coordinator); from
  // here on they count as sent.
  absl::StatusOr<GroupDatasets> DatasetsForGroup(const std::vector<const TrialSpec*>& trials) {
    GroupDatasets out;
    for (const TrialSpec* trial : trials) {
      const DatasetSpec& d = trial->dataset;
      if (!d.ship || d.sha256.empty() || group_datasets_.contains(d.sha256)) continue;
      auto data = shared_->cache().Data(d, datasets_.get());
      if (!data.ok()) return data.status();
      out.emplace_back(d.sha256, EncodeDataset((*data)->data));
      group_datasets_.insert(d.sha256);
    }
    return out;
  }

  void LogStart(const rpc::LeaseReply& lease, const TrialSpec& trial) const {
    if (!options_.log_trials) return;
    std::fprintf(stderr, "worker %s: trial %s (%s, attempt %d) started\n", worker_id_.c_str(),
                 trial.id.c_str(), TrialKindName(trial.kind), lease.attempt());
  }

  void Release(int64_t attempt_id) {
    auto release = [&]() -> absl::Status {
      grpc::ClientContext ctx;
      auth_.Apply(ctx, 5000);
      rpc::AttemptRef ref;
      ref.set_attempt_id(attempt_id);
      rpc::Ack ack;
      return FromGrpc(stub_->Release(&ctx, ref, &ack), "release");
    };
    RetryWhileUnavailable(release, nullptr, /*max_seconds=*/10).IgnoreError();
  }

  // Gives the lease back (stopped), or fails or completes the attempt; a model
  // another rank made is uploaded first. A finished result is never dropped:
  // reporting retries until the coordinator takes it. lease_next: a completion
  // also asks for the next trial (into next_), unless the worker is about to stop.
  absl::Status Finish(const rpc::LeaseReply& lease, const absl::StatusOr<TrialResult>& result,
                      const std::string& model, bool lease_next = false) {
    const int64_t attempt_id = lease.attempt_id();
    if (metrics_) {
      metrics_->TrialEnded(
          !result.ok()
              ? (result.status().code() == absl::StatusCode::kCancelled ? "released" : "failed")
              : TrialOutcomeName(result->outcome));
    }
    if (!result.ok() && result.status().code() == absl::StatusCode::kCancelled) {
      Release(attempt_id);
      return absl::OkStatus();
    }
    if (!result.ok()) {  // the coordinator keeps the reason too; the log is where people look
      std::fprintf(stderr, "worker %s: trial %s (attempt %d) failed: %s\n", worker_id_.c_str(),
                   lease.trial_id().c_str(), lease.attempt(),
                   std::string(result.status().message()).c_str());
    }
    if (result.ok() && !model.empty()) {
      if (auto s = artifacts_->Upload(model, attempt_id); !s.ok()) {
        return Refused(lease, s.status(), "the upload of its model");
      }
    }
    // A retried Complete asks again: a trial the lost reply leased expires unused.
    lease_next = lease_next && result.ok() && !stopping() &&
                 (options_.max_trials == 0 || trials_done_ + 1 < options_.max_trials);
    auto report = [&]() -> absl::Status {
      if (!result.ok()) return ReportFailure(attempt_id, std::string(result.status().message()));
      grpc::ClientContext ctx;
      auth_.Apply(ctx, 10000);
      rpc::CompleteRequest request;
      request.set_attempt_id(attempt_id);
      request.set_result_json(TrialResultToJson(*result).dump());
      request.set_model_sha256(result->model_sha256);
      if (lease_next) request.set_lease_next_for(worker_id_);
      rpc::CompleteReply reply;
      const auto start = std::chrono::steady_clock::now();
      absl::Status status = FromGrpc(stub_->Complete(&ctx, request, &reply), "complete");
      if (status.ok() && metrics_) metrics_->CoordinatorAnswered();
      if (status.ok() && reply.next().leased()) {
        next_ = reply.next();
        AskedForTrial(start, true);
      }
      return status;
    };
    if (auto s = RetryWhileUnavailable(report); !s.ok()) {
      return Refused(lease, s, result.ok() ? "its result" : "its failure");
    }
    return absl::OkStatus();
  }

  absl::Status ReportFailure(int64_t attempt_id, const std::string& reason) {
    grpc::ClientContext ctx;
    auth_.Apply(ctx, 10000);
    rpc::FailRequest request;
    request.set_attempt_id(attempt_id);
    request.set_reason(reason);  // the coordinator keeps kMaxReasonBytes of it
    rpc::Ack ack;
    return FromGrpc(stub_->Fail(&ctx, request, &ack), "fail");
  }

  // The coordinator refused what this worker said of one attempt (what). Only a
  // refused token, or a coordinator gone for good while stopping, ends the
  // worker; else the attempt fails with the refusal as its reason (a no-op when
  // the attempt already ended), and the worker goes on to the next trial.
  absl::Status Refused(const rpc::LeaseReply& lease, const absl::Status& refusal,
                       const char* what) {
    const absl::StatusCode code = refusal.code();
    if (code == absl::StatusCode::kUnauthenticated || code == absl::StatusCode::kPermissionDenied ||
        code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded) {
      return refusal;
    }
    std::fprintf(stderr, "worker %s: trial %s (attempt %d): the coordinator refused %s: %s\n",
                 worker_id_.c_str(), lease.trial_id().c_str(), lease.attempt(), what,
                 std::string(refusal.message()).c_str());
    const std::string reason =
        absl::StrCat("the coordinator refused ", what, ": ", refusal.message());
    auto fail = [&] { return ReportFailure(lease.attempt_id(), reason); };
    if (auto s = RetryWhileUnavailable(fail, stop_); !s.ok()) {
      std::fprintf(stderr, "worker %s: trial %s: reporting that failure: %s\n", worker_id_.c_str(),
                   lease.trial_id().c_str(), std::string(s.message()).c_str());
      if (s.code() == absl::StatusCode::kUnauthenticated) return s;
    }
    return absl::OkStatus();
  }

  const WorkerOptions& options_;
  const std::atomic<bool>* stop_;
  MpiGroup* group_;  // nullptr: a single process
  std::unique_ptr<rpc::Trials::Stub> stub_;
  RpcAuth auth_;
  std::string worker_id_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<WorkerMetrics> metrics_;
  // Timed wrappers of the group's reducer and of the local one (with metrics).
  std::unique_ptr<GradientReducer> timed_group_reducer_, timed_local_reducer_;
  GradientReducer* parallel_reducer_ = nullptr;  // the group's, timed with metrics
  rpc::RegisterReply registered_;
  std::unique_ptr<CoordinatorArtifactStore> artifacts_;
  std::unique_ptr<CoordinatorDatasets> datasets_;
  std::set<std::string> group_datasets_;    // the shipped datasets the other ranks have
  std::unique_ptr<Heartbeats> heartbeats_;  // after stub_ and metrics_: stops before them
  std::shared_ptr<WorkerShared> shared_;
  int trials_done_ = 0;
  std::optional<rpc::LeaseReply> next_;  // leased by the last Complete, not started yet
};

}  // namespace

std::shared_ptr<WorkerShared> MakeWorkerShared() { return std::make_shared<WorkerShared>(); }

absl::Status Preload(WorkerShared& shared, const DatasetSpec& dataset) {
  return shared.cache().Data(dataset).status();
}

absl::Status RunWorker(const WorkerOptions& options, const std::atomic<bool>* stop) {
  // Under mpirun with several ranks: one worker group, rank 0 its voice.
  std::unique_ptr<MpiGroup> group;
  if (MpiGroup::Launched()) {
    auto joined = MpiGroup::Join();
    if (!joined.ok()) return joined.status();
    group = std::move(*joined);
    group->set_bucket_floats(options.bucket_kib * 1024 / static_cast<int64_t>(sizeof(float)));
    if (group->rank() > 0) return RunFollower(options, *group, stop);
  }
  absl::Status status = Worker(options, stop, group.get()).Run();
  if (group) {
    SendStop(*group);  // however rank 0's loop ended
  }
  return status;
}

}  // namespace seedproof
