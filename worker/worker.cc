#include "worker/worker.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "experiments/plan.h"
#include "experiments/results.h"
#include "experiments/sweep_parse.h"
#include "experiments/trial.h"
#include "nlohmann/json.hpp"
#include "proto/seedproof.grpc.pb.h"
#include "worker/metrics.h"
#include "worker/mpi.h"
#include "worker/rpc_client.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kChunkBytes = 1 << 20;

// Pretrain models go up to the coordinator, addressed by SHA-256; transfer
// trials fetch their source by the hash the lease names.
class CoordinatorArtifactStore final : public ArtifactStore {
 public:
  CoordinatorArtifactStore(rpc::Trials::Stub& stub, const RpcAuth& auth, std::string scratch_dir)
      : stub_(stub), auth_(auth), dir_(std::move(scratch_dir)) {}

  void BeginAttempt(int64_t attempt_id, const std::string& source_trial,
                    const std::string& source_sha256) {
    attempt_id_ = attempt_id;
    source_trial_ = source_trial;
    source_sha256_ = source_sha256;
  }

  absl::StatusOr<std::string> Put(const std::string& trial_id, const Model& model) override {
    const std::string path = absl::StrCat(dir_, "/", trial_id, ".spm");
    if (auto s = model.Save(path); !s.ok()) return s;
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    fs::remove(path);
    const std::string sha = Sha256Hex(bytes);
    auto upload = [&]() -> absl::Status {
      grpc::ClientContext ctx;
      auth_.Apply(ctx, /*deadline_ms=*/60000);
      rpc::ArtifactRef ref;
      auto writer = stub_.UploadArtifact(&ctx, &ref);
      for (int64_t offset = 0; offset == 0 || offset < static_cast<int64_t>(bytes.size());
           offset += kChunkBytes) {
        rpc::ArtifactChunk chunk;
        if (offset == 0) {
          chunk.set_sha256(sha);
          chunk.set_attempt_id(attempt_id_);
        }
        chunk.set_data(bytes.substr(offset, kChunkBytes));
        if (!writer->Write(chunk)) break;
      }
      writer->WritesDone();
      return FromGrpc(writer->Finish(), "upload of a model");
    };
    if (auto s = RetryWhileUnavailable(upload); !s.ok()) return s;
    return sha;
  }

  absl::StatusOr<std::unique_ptr<Model>> Get(const std::string& trial_id, Backend& backend,
                                             std::string* sha256) override {
    if (trial_id != source_trial_ || source_sha256_.empty()) {
      return absl::NotFoundError(absl::StrCat("no artifact of trial ", trial_id, " was leased"));
    }
    auto bytes = Download();
    if (!bytes.ok()) return bytes.status();
    const std::string path = absl::StrCat(dir_, "/", source_sha256_, ".spm");
    std::ofstream(path, std::ios::binary)
        .write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
    auto model = backend.Load(path);
    fs::remove(path);
    if (sha256) *sha256 = source_sha256_;
    return model;
  }

  // The leased source model's file, checked against its SHA-256.
  absl::StatusOr<std::string> Download() {
    std::string bytes;
    auto download = [&]() -> absl::Status {
      bytes.clear();
      grpc::ClientContext ctx;
      auth_.Apply(ctx, 60000);
      rpc::ArtifactRef ref;
      ref.set_sha256(source_sha256_);
      auto reader = stub_.DownloadArtifact(&ctx, ref);
      rpc::ArtifactChunk chunk;
      while (reader->Read(&chunk)) bytes += chunk.data();
      return FromGrpc(reader->Finish(), absl::StrCat("download of model ", source_sha256_));
    };
    if (auto s = RetryWhileUnavailable(download); !s.ok()) return s;
    if (Sha256Hex(bytes) != source_sha256_) {
      return absl::DataLossError(absl::StrCat("model ", source_sha256_, " arrived damaged"));
    }
    return bytes;
  }

 private:
  rpc::Trials::Stub& stub_;
  const RpcAuth& auth_;
  std::string dir_;
  int64_t attempt_id_ = 0;
  std::string source_trial_, source_sha256_;
};

// Beats every `period` until stopped, and sends the epoch metrics queued since
// the last beat (training never waits on the network); sets end_trial when the
// coordinator says the attempt must end (cancelled sweep, or a lease that
// expired and moved on).
class HeartbeatThread {
 public:
  HeartbeatThread(rpc::Trials::Stub& stub, const RpcAuth& auth, int64_t attempt_id,
                  std::chrono::milliseconds period, std::atomic<bool>& end_trial,
                  WorkerMetrics* metrics)
      : stub_(stub), auth_(auth), attempt_id_(attempt_id) {
    thread_ = std::thread([this, period, &end_trial, metrics] {
      std::unique_lock<std::mutex> lock(mu_);
      while (!cv_.wait_for(lock, period, [&] { return done_; })) {
        lock.unlock();
        Flush();
        grpc::ClientContext ctx;
        auth_.Apply(ctx, 5000);
        rpc::AttemptRef ref;
        ref.set_attempt_id(attempt_id_);
        rpc::HeartbeatReply reply;
        // An unreachable coordinator is not a verdict: keep training and beating.
        if (stub_.Heartbeat(&ctx, ref, &reply).ok()) {
          if (metrics != nullptr) metrics->CoordinatorAnswered();
          if (reply.verdict() != rpc::HeartbeatReply::CONTINUE) end_trial = true;
        }
        lock.lock();
      }
    });
  }
  ~HeartbeatThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
    Flush();
  }
  void QueueEpoch(std::string json) {
    std::lock_guard<std::mutex> lock(mu_);
    epochs_.push_back(std::move(json));
  }

 private:
  // Metrics are best effort (the result carries every epoch); results are not.
  void Flush() {
    rpc::EpochReport report;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (epochs_.empty()) return;
      for (std::string& e : epochs_) report.add_epoch_json(std::move(e));
      epochs_.clear();
    }
    report.set_attempt_id(attempt_id_);
    grpc::ClientContext ctx;
    auth_.Apply(ctx, 5000);
    rpc::Ack ack;
    stub_.ReportEpoch(&ctx, report, &ack);
  }

  rpc::Trials::Stub& stub_;
  const RpcAuth& auth_;
  const int64_t attempt_id_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::vector<std::string> epochs_;
  std::thread thread_;
};

struct SweepPlan {
  std::map<std::string, TrialSpec> trials;  // by id
  std::string spec_text, spec_path;
};

SweepPlan ExpandForWorker(const std::string& spec_text, const std::string& spec_path) {
  SweepPlan sweep_plan{.trials = {}, .spec_text = spec_text, .spec_path = spec_path};
  auto spec = ParseSweepSpecText(spec_text, spec_path);
  if (spec.ok()) {
    Plan plan = ExpandSweep(*spec);
    for (TrialSpec& t : plan.trials) sweep_plan.trials[t.id] = std::move(t);
    for (TrialSpec& t : plan.confirmation_candidates) sweep_plan.trials[t.id] = std::move(t);
  }
  return sweep_plan;
}

// Ranks 1..R-1 of a worker group: run each trial rank 0 broadcasts on their part
// of every batch, until rank 0 says stop. Rank 0 alone talks to the coordinator.
absl::Status RunFollower(const WorkerOptions& options, MpiGroup& group,
                         const std::atomic<bool>* stop) {
  auto backend = MakeBackend(options.backend, {.threads = options.threads});
  if (!backend.ok()) return backend.status();
  const fs::path scratch =
      fs::temp_directory_path() / absl::StrCat("seedproof-worker-", getpid());
  fs::create_directories(scratch);
  DirectoryArtifactStore artifacts(scratch.string());
  TrialCache cache;
  std::map<std::string, SweepPlan> plans;  // by sweep id
  for (;;) {
    std::string header, source_model;
    if (auto s = group.Broadcast(header); !s.ok()) return s;
    const nlohmann::json command = nlohmann::json::parse(header, nullptr, false);
    if (!command.is_object() || command.value("command", "") != "trial") break;
    if (auto s = group.Broadcast(source_model); !s.ok()) return s;
    const std::string sweep_id = command.value("sweep_id", "");
    auto plan_it = plans.find(sweep_id);
    if (plan_it == plans.end()) {
      plan_it = plans
                    .emplace(sweep_id, ExpandForWorker(command.value("spec_text", ""),
                                                       command.value("spec_path", "")))
                    .first;
    }
    auto trial = plan_it->second.trials.find(command.value("trial_id", ""));
    if (trial == plan_it->second.trials.end()) {
      // Rank 0 found it in the same expansion: this cannot go on in step with it.
      return absl::InternalError(absl::StrCat("rank ", group.rank(), ": trial ",
                                              command.value("trial_id", ""), " is not in the plan"));
    }
    if (!source_model.empty()) {
      std::ofstream(artifacts.PathOf(trial->second.source_trial), std::ios::binary)
          .write(source_model.data(), static_cast<std::streamsize>(source_model.size()));
    }
    TrialContext ctx;
    ctx.backend = backend->get();
    ctx.reducer = &group.reducer();
    ctx.artifacts = &artifacts;
    ctx.cache = &cache;
    ctx.threads = options.threads;
    ctx.replica = group.rank();
    ctx.replicas = group.size();
    ctx.should_stop = [&] { return group.AnyTrue(stop && stop->load()); };
    auto result = RunTrial(trial->second, ctx);  // rank 0 reports it
    if (!result.ok() && result.status().code() != absl::StatusCode::kCancelled) {
      std::fprintf(stderr, "rank %d: %s\n", group.rank(),
                   std::string(result.status().message()).c_str());
    }
  }
  fs::remove_all(scratch);
  return absl::OkStatus();
}

}  // namespace

absl::Status RunWorker(const WorkerOptions& options, const std::atomic<bool>* stop) {
  // Under mpirun with several ranks: one worker group, rank 0 its voice.
  std::unique_ptr<MpiGroup> group;
  if (MpiGroup::Launched()) {
    auto joined = MpiGroup::Join();
    if (!joined.ok()) return joined.status();
    group = std::move(*joined);
    if (group->rank() > 0) return RunFollower(options, *group, stop);
  }
  // Every way out of rank 0's loop tells the other ranks to stop.
  struct StopFollowers {
    MpiGroup* group;
    ~StopFollowers() {
      if (group == nullptr) return;
      std::string stop_command = nlohmann::json({{"command", "stop"}}).dump();
      group->Broadcast(stop_command).IgnoreError();
    }
  } stop_followers{group.get()};
  auto channel = MakeChannel(options.coordinator, options.root_cert);
  if (!channel.ok()) return channel.status();
  auto stub = rpc::Trials::NewStub(*channel);
  const RpcAuth auth{options.token};
  const std::string worker_id =
      options.worker_id.empty() ? absl::StrCat(Hostname(), ":", getpid()) : options.worker_id;

  auto backend = MakeBackend(options.backend, {.threads = options.threads});
  if (!backend.ok()) return backend.status();
  std::unique_ptr<WorkerMetrics> metrics;
  std::string metrics_address;
  if (!options.metrics_listen.empty()) {
    auto started = WorkerMetrics::Start(options.metrics_listen);
    if (!started.ok()) return started.status();
    metrics = std::move(*started);
    // Where Prometheus finds it: the host it listens on (or this host's name when
    // it listens on every interface) and the port it got.
    std::string host = options.metrics_listen.substr(0, options.metrics_listen.rfind(':'));
    if (host.empty() || host == "0.0.0.0" || host == "[::]") host = Hostname();
    metrics_address = absl::StrCat(host, ":", metrics->port());
  }
  GradientReducer* group_reducer = group ? &group->reducer() : nullptr;
  const std::unique_ptr<GradientReducer> timed_reducer =
      metrics ? metrics->TimedReducer(group_reducer) : nullptr;
  GradientReducer* reducer = timed_reducer ? timed_reducer.get() : group_reducer;

  rpc::RegisterReply registered;
  auto do_register = [&]() -> absl::Status {
    grpc::ClientContext ctx;
    auth.Apply(ctx, 5000);
    rpc::RegisterRequest request;
    request.set_worker_id(worker_id);
    request.add_backends((*backend)->name());
    request.set_threads(options.threads);
    request.set_cpu_isa(CpuIsa());
    request.set_mpi_size(group ? group->size() : 1);
    request.set_metrics_address(metrics_address);
    return FromGrpc(stub->Register(&ctx, request, &registered), "register");
  };
  if (auto s = RetryWhileUnavailable(do_register, stop); !s.ok()) return s;

  const fs::path scratch = fs::temp_directory_path() / absl::StrCat("seedproof-worker-", getpid());
  fs::create_directories(scratch);
  CoordinatorArtifactStore artifacts(*stub, auth, scratch.string());
  TrialCache cache;
  std::map<std::string, SweepPlan> plans;  // by sweep id

  int trials_done = 0;
  while (!(stop && stop->load())) {
    if (options.max_trials > 0 && trials_done >= options.max_trials) break;
    rpc::LeaseReply lease;
    auto do_lease = [&]() -> absl::Status {
      grpc::ClientContext ctx;
      auth.Apply(ctx, 10000);
      rpc::LeaseRequest request;
      request.set_worker_id(worker_id);
      // Short enough that SIGTERM is noticed promptly between polls.
      request.set_wait_ms(options.exit_when_idle ? 200 : 500);
      return FromGrpc(stub->Lease(&ctx, request, &lease), "lease");
    };
    if (auto s = RetryWhileUnavailable(do_lease, stop); !s.ok()) return s;
    if (metrics) metrics->CoordinatorAnswered();
    if (!lease.leased()) {
      if (options.exit_when_idle) break;
      continue;
    }

    // The trial comes from the sweep's spec, expanded here exactly as the
    // coordinator did: trial ids are content hashes, so both sides agree.
    auto plan_it = plans.find(lease.sweep_id());
    if (plan_it == plans.end()) {
      rpc::SpecReply spec_reply;
      auto fetch = [&]() -> absl::Status {
        grpc::ClientContext ctx;
        auth.Apply(ctx, 10000);
        rpc::SweepRef ref;
        ref.set_sweep_id(lease.sweep_id());
        return FromGrpc(stub->SweepSpec(&ctx, ref, &spec_reply), "sweep spec");
      };
      if (auto s = RetryWhileUnavailable(fetch, stop); !s.ok()) return s;
      plan_it = plans
                    .emplace(lease.sweep_id(),
                             ExpandForWorker(spec_reply.spec_text(), spec_reply.spec_path()))
                    .first;
    }

    std::atomic<bool> end_trial = false;
    absl::StatusOr<TrialResult> result =
        absl::NotFoundError(absl::StrCat("trial ", lease.trial_id(), " is not in sweep ",
                                         lease.sweep_id(), "'s plan as this worker expands it"));
    auto trial_it = plan_it->second.trials.find(lease.trial_id());
    if (trial_it != plan_it->second.trials.end() && group) {
      // The group's other ranks get the trial and its source model first.
      const TrialSpec& trial = trial_it->second;
      artifacts.BeginAttempt(lease.attempt_id(), trial.source_trial, lease.source_sha256());
      absl::StatusOr<std::string> source_model = std::string();
      if (!trial.source_trial.empty()) source_model = artifacts.Download();
      if (source_model.ok()) {
        std::string header = nlohmann::json({{"command", "trial"},
                                             {"sweep_id", lease.sweep_id()},
                                             {"trial_id", trial.id},
                                             {"spec_text", plan_it->second.spec_text},
                                             {"spec_path", plan_it->second.spec_path}})
                                 .dump();
        if (auto s = group->Broadcast(header); !s.ok()) return s;
        if (auto s = group->Broadcast(*source_model); !s.ok()) return s;
      } else {
        result = source_model.status();
        trial_it = plan_it->second.trials.end();  // reported as failed below
      }
    }
    if (trial_it != plan_it->second.trials.end()) {
      const TrialSpec& trial = trial_it->second;
      artifacts.BeginAttempt(lease.attempt_id(), trial.source_trial, lease.source_sha256());
      HeartbeatThread heartbeat(*stub, auth, lease.attempt_id(),
                                std::chrono::milliseconds(registered.heartbeat_ms()), end_trial,
                                metrics.get());
      if (metrics) metrics->TrialStarted(trial.kind);
      TrialContext ctx;
      ctx.backend = backend->get();
      ctx.reducer = reducer;
      ctx.replica = 0;
      ctx.replicas = group ? group->size() : 1;
      ctx.artifacts = &artifacts;
      ctx.cache = &cache;
      ctx.threads = options.threads;
      // SIGTERM, or the coordinator taking the attempt back; a group stops together.
      ctx.should_stop = [&] {
        const bool local = (stop && stop->load()) || end_trial.load();
        return group ? group->AnyTrue(local) : local;
      };
      ctx.on_epoch = [&](const EpochRecord& e) {
        TrialResult one;
        one.epochs = {e};
        heartbeat.QueueEpoch(TrialResultToJson(one)["epochs"][0].dump());
        if (metrics) metrics->EpochDone(e);
      };
      if (metrics) ctx.on_step = [&](double seconds) { metrics->StepDone(seconds); };
      result = RunTrial(trial, ctx);
    }

    if (metrics) {
      metrics->TrialEnded(
          !result.ok()
              ? (result.status().code() == absl::StatusCode::kCancelled ? "released" : "failed")
              : TrialOutcomeName(result->outcome));
    }
    if (!result.ok() && result.status().code() == absl::StatusCode::kCancelled) {
      // Stopped (SIGTERM, cancelled sweep, lost lease): give the lease back.
      auto release = [&]() -> absl::Status {
        grpc::ClientContext ctx;
        auth.Apply(ctx, 5000);
        rpc::AttemptRef ref;
        ref.set_attempt_id(lease.attempt_id());
        rpc::Ack ack;
        return FromGrpc(stub->Release(&ctx, ref, &ack), "release");
      };
      RetryWhileUnavailable(release, nullptr, /*max_seconds=*/10).IgnoreError();
      continue;
    }
    auto report = [&]() -> absl::Status {
      grpc::ClientContext ctx;
      auth.Apply(ctx, 10000);
      if (!result.ok()) {
        rpc::FailRequest request;
        request.set_attempt_id(lease.attempt_id());
        request.set_reason(std::string(result.status().message()));
        rpc::Ack ack;
        return FromGrpc(stub->Fail(&ctx, request, &ack), "fail");
      }
      rpc::CompleteRequest request;
      request.set_attempt_id(lease.attempt_id());
      request.set_result_json(TrialResultToJson(*result).dump());
      request.set_model_sha256(result->model_sha256);
      rpc::CompleteReply reply;
      return FromGrpc(stub->Complete(&ctx, request, &reply), "complete");
    };
    // A finished result is never dropped: retry until the coordinator takes it.
    if (auto s = RetryWhileUnavailable(report); !s.ok()) return s;
    ++trials_done;
  }
  fs::remove_all(scratch);
  return absl::OkStatus();
}

}  // namespace seedproof
