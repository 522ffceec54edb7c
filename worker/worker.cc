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
#include <optional>
#include <thread>
#include <utility>

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
    return Upload(bytes, attempt_id_);
  }

  // A model file for an attempt (the current one, or one a group's rank ran).
  absl::StatusOr<std::string> Upload(const std::string& bytes, int64_t attempt_id) {
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
          chunk.set_attempt_id(attempt_id);
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
    if (sha256) *sha256 = source_sha256_;
    // Consecutive transfers mostly share a source: the last one loaded is kept
    // and copied.
    if (source_sha256_ != loaded_sha256_) {
      auto bytes = Download();
      if (!bytes.ok()) return bytes.status();
      const std::string path = absl::StrCat(dir_, "/", source_sha256_, ".spm");
      std::ofstream(path, std::ios::binary)
          .write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
      auto model = backend.Load(path);
      fs::remove(path);
      if (!model.ok()) return model.status();
      loaded_ = *std::move(model);
      loaded_sha256_ = source_sha256_;
    }
    return loaded_->Clone();
  }

  // The leased source model's file, checked against its SHA-256.
  // The last one is kept: a worker group's rank 0 fetches it to broadcast, then
  // loads it for its own part, and consecutive transfers mostly share a source.
  absl::StatusOr<std::string> Download() {
    if (source_sha256_ == kept_sha256_) return kept_bytes_;
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
    kept_sha256_ = source_sha256_;
    kept_bytes_ = bytes;
    return bytes;
  }

 private:
  rpc::Trials::Stub& stub_;
  const RpcAuth& auth_;
  std::string dir_;
  int64_t attempt_id_ = 0;
  std::string source_trial_, source_sha256_;
  std::string kept_sha256_, kept_bytes_;  // the last model downloaded
  std::string loaded_sha256_;             // and the last one loaded
  std::unique_ptr<Model> loaded_;
};

// Beats for the attempts a worker is running, from one background thread that
// lives as long as the worker: an attempt's first beat comes one period after it
// began (a shorter trial costs no call), then one every period, each preceded by
// the epoch metrics queued since the last (training never waits on the network).
// An attempt's end flag is set when the coordinator says it must end (cancelled
// sweep, or a lease that expired and moved on).
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
             WorkerMetrics* metrics)
      : stub_(stub), auth_(auth), period_(period), metrics_(metrics) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Heartbeats() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }

  std::unique_ptr<Beat> Begin(int64_t attempt_id) {
    auto beat = std::make_unique<Beat>(*this, attempt_id);
    {
      std::lock_guard<std::mutex> lock(mu_);
      attempts_[attempt_id] = {Clock::now() + period_, {}, beat.get()};
    }
    changed_.notify_all();
    return beat;
  }

 private:
  struct Attempt {
    Clock::time_point next_beat;
    std::vector<std::string> epochs;  // queued since the last beat
    Beat* beat;
  };

  void QueueEpoch(int64_t attempt_id, std::string json) {
    std::lock_guard<std::mutex> lock(mu_);
    attempts_.at(attempt_id).epochs.push_back(std::move(json));
  }

  // Waits out a beat in flight for the attempt, so its verdict never lands on a
  // Beat that is gone.
  void End(int64_t attempt_id, bool result_carries_epochs) {
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

  void Loop() {
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

  // One heartbeat; true when the coordinator says the attempt must end. An
  // unreachable coordinator is not a verdict: keep training and beating.
  bool SendHeartbeat(int64_t attempt_id) {
    grpc::ClientContext ctx;
    auth_.Apply(ctx, 5000);
    rpc::AttemptRef ref;
    ref.set_attempt_id(attempt_id);
    rpc::HeartbeatReply reply;
    if (!stub_.Heartbeat(&ctx, ref, &reply).ok()) return false;
    if (metrics_ != nullptr) metrics_->CoordinatorAnswered();
    return reply.verdict() != rpc::HeartbeatReply::CONTINUE;
  }

  // Metrics are best effort (the result carries every epoch); results are not.
  void SendEpochs(int64_t attempt_id, std::vector<std::string> epochs) {
    if (epochs.empty()) return;
    rpc::EpochReport report;
    report.set_attempt_id(attempt_id);
    for (std::string& e : epochs) report.add_epoch_json(std::move(e));
    grpc::ClientContext ctx;
    auth_.Apply(ctx, 5000);
    rpc::Ack ack;
    stub_.ReportEpoch(&ctx, report, &ack);
  }

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

}  // namespace

// One per worker process, or one for the workers of a benchmark.
class WorkerShared {
 public:
  TrialCache& cache() { return cache_; }

  // The plan of a sweep, expanded by the first worker that needs it while the
  // others wait for it.
  absl::StatusOr<std::shared_ptr<const SweepPlan>> Plan(
      const std::string& sweep_id, const std::function<absl::StatusOr<SweepPlan>()>& expand) {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = plans_.find(sweep_id); it != plans_.end()) return it->second;
    auto plan = expand();
    if (!plan.ok()) return plan.status();
    return plans_.emplace(sweep_id, std::make_shared<const SweepPlan>(*std::move(plan)))
        .first->second;
  }

 private:
  TrialCache cache_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const SweepPlan>> plans_;
};

namespace {

// A worker group's messages from rank 0 (a JSON header, then source models):
//   {"command": "trial", "items": [ITEM]} + 1 model: every rank trains the trial on its
//       part of each batch (data parallel);
//   {"command": "batch", "items": [ITEM, ...]} + 1 model per item: rank r runs items[r]
//       alone, then the outcomes and models are gathered to rank 0;
//   {"command": "stop"}.
// ITEM = {"sweep_id", "trial_id", "spec_text", "spec_path"}; "" where there is no model.
nlohmann::json GroupItem(const std::string& sweep_id, const std::string& trial_id,
                         const SweepPlan& plan) {
  return {{"sweep_id", sweep_id},
          {"trial_id", trial_id},
          {"spec_text", plan.spec_text},
          {"spec_path", plan.spec_path}};
}

// A trial's outcome as it travels to rank 0 in batch mode.
std::string PackOutcome(const absl::StatusOr<TrialResult>& result) {
  if (result.ok()) return nlohmann::json({{"result", TrialResultToJson(*result)}}).dump();
  return nlohmann::json({{"code", static_cast<int>(result.status().code())},
                         {"message", std::string(result.status().message())}})
      .dump();
}

absl::StatusOr<TrialResult> UnpackOutcome(const std::string& text) {
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_object() && json.contains("result")) return TrialResultFromJson(json["result"]);
  if (json.is_object() && json.contains("code") && json["code"].is_number_integer()) {
    return absl::Status(static_cast<absl::StatusCode>(json["code"].get<int>()),
                        json.value("message", std::string()));
  }
  return absl::InternalError("a rank sent no outcome");
}

// Ranks 1..R-1 of a worker group: run what rank 0 broadcasts until it says stop.
// Rank 0 alone talks to the coordinator.
absl::Status RunFollower(const WorkerOptions& options, MpiGroup& group,
                         const std::atomic<bool>* stop) {
  auto backend = MakeBackend(options.backend, {.threads = options.threads});
  if (!backend.ok()) return backend.status();
  const fs::path scratch = fs::temp_directory_path() / absl::StrCat("seedproof-worker-", getpid());
  fs::create_directories(scratch);
  DirectoryArtifactStore artifacts(scratch.string());
  TrialCache cache;
  std::map<std::string, SweepPlan> plans;  // by sweep id
  auto find_trial = [&](const nlohmann::json& item) -> absl::StatusOr<const TrialSpec*> {
    const std::string sweep_id = item.value("sweep_id", "");
    auto plan = plans.find(sweep_id);
    if (plan == plans.end()) {
      plan = plans
                 .emplace(sweep_id,
                          ExpandForWorker(item.value("spec_text", ""), item.value("spec_path", "")))
                 .first;
    }
    auto trial = plan->second.trials.find(item.value("trial_id", ""));
    if (trial == plan->second.trials.end()) {
      // Rank 0 found it in the same expansion: this rank cannot go on in step.
      return absl::InternalError(absl::StrCat("rank ", group.rank(), ": trial ",
                                              item.value("trial_id", ""), " is not in the plan"));
    }
    return &trial->second;
  };
  for (;;) {
    std::string header;
    if (auto s = group.Broadcast(header); !s.ok()) return s;
    const nlohmann::json command = nlohmann::json::parse(header, nullptr, false);
    const std::string kind = command.is_object() ? command.value("command", "") : "";
    if (kind != "trial" && kind != "batch") break;
    const nlohmann::json& items = command["items"];
    // This rank's item: the one trial, or items[rank] of a batch (none when short).
    const bool parallel = kind == "trial";
    const size_t mine = parallel ? 0 : static_cast<size_t>(group.rank());
    const TrialSpec* trial = nullptr;
    for (size_t i = 0; i < items.size(); ++i) {
      std::string source_model;
      if (auto s = group.Broadcast(source_model); !s.ok()) return s;
      if (i != mine) continue;
      auto found = find_trial(items[i]);
      if (!found.ok()) return found.status();
      trial = *found;
      if (!source_model.empty()) {
        std::ofstream(artifacts.PathOf(trial->source_trial), std::ios::binary)
            .write(source_model.data(), static_cast<std::streamsize>(source_model.size()));
      }
    }
    absl::StatusOr<TrialResult> result = absl::NotFoundError("no trial for this rank");
    if (trial != nullptr) {
      TrialContext ctx;
      ctx.backend = backend->get();
      ctx.artifacts = &artifacts;
      ctx.cache = &cache;
      ctx.threads = options.threads;
      if (parallel) {
        ctx.reducer = &group.reducer();
        ctx.replica = group.rank();
        ctx.replicas = group.size();
        ctx.should_stop = [&] { return group.AnyTrue(stop && stop->load()); };
      } else {
        ctx.should_stop = [&] { return stop && stop->load(); };
      }
      result = RunTrial(*trial, ctx);
    }
    if (parallel) {
      // Rank 0 reports the trial.
      if (!result.ok() && result.status().code() != absl::StatusCode::kCancelled) {
        std::fprintf(stderr, "rank %d: %s\n", group.rank(),
                     std::string(result.status().message()).c_str());
      }
      continue;
    }
    // Batch: the outcome, and the model a pretrain trial made, go to rank 0.
    std::string model;
    if (result.ok() && !result->model_sha256.empty()) {
      std::ifstream in(artifacts.PathOf(result->trial_id), std::ios::binary);
      model.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    if (auto s = group.Gather(trial != nullptr ? PackOutcome(result) : "").status(); !s.ok()) {
      return s;
    }
    if (auto s = group.Gather(model).status(); !s.ok()) return s;
  }
  fs::remove_all(scratch);
  return absl::OkStatus();
}

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
      auto trial = TrialOf(**lease);
      if (!trial.ok()) return trial.status();
      absl::Status ran;
      if (group_ == nullptr || *trial == nullptr || !Small(**trial)) {
        ran = RunAlone(**lease, *trial);
        ++trials_done_;
      } else {
        // Small trials: one per rank, as many as the coordinator has ready now.
        std::vector<std::pair<rpc::LeaseReply, const TrialSpec*>> batch = {{**lease, *trial}};
        while (static_cast<int>(batch.size()) < group_->size()) {
          auto more = Lease(0);
          if (!more.ok()) return more.status();
          if (!*more) break;
          auto more_trial = TrialOf(**more);
          if (!more_trial.ok()) return more_trial.status();
          if (*more_trial == nullptr || !Small(**more_trial)) {
            Release((*more)->attempt_id());  // the next round takes it, data parallel
            break;
          }
          batch.emplace_back(**more, *more_trial);
        }
        trials_done_ += static_cast<int>(batch.size());
        ran = RunBatch(batch);
      }
      if (!ran.ok()) return ran;
    }
    if (next_) Release(next_->attempt_id());  // stopping with a trial in hand
    fs::remove_all(scratch_);
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
    // Several workers of one process (a benchmark) each have their own.
    static std::atomic<int> workers_started = 0;
    scratch_ = fs::temp_directory_path() /
               absl::StrCat("seedproof-worker-", getpid(), "-", workers_started++);
    fs::create_directories(scratch_);
    artifacts_ = std::make_unique<CoordinatorArtifactStore>(*stub_, auth_, scratch_.string());
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

  // The leased trial, from the sweep's spec expanded here exactly as the
  // coordinator did (trial ids are content hashes, so both sides agree); nullptr
  // when this worker's expansion does not have it (reported as a failure).
  absl::StatusOr<const TrialSpec*> TrialOf(const rpc::LeaseReply& lease) {
    auto plan = plans_.find(lease.sweep_id());
    if (plan == plans_.end()) {
      auto expanded = shared_->Plan(lease.sweep_id(), [&]() -> absl::StatusOr<SweepPlan> {
        rpc::SpecReply spec_reply;
        auto fetch = [&]() -> absl::Status {
          grpc::ClientContext ctx;
          auth_.Apply(ctx, 10000);
          rpc::SweepRef ref;
          ref.set_sweep_id(lease.sweep_id());
          return FromGrpc(stub_->SweepSpec(&ctx, ref, &spec_reply), "sweep spec");
        };
        if (auto s = RetryWhileUnavailable(fetch, stop_); !s.ok()) return s;
        return ExpandForWorker(spec_reply.spec_text(), spec_reply.spec_path());
      });
      if (!expanded.ok()) return expanded.status();
      plan = plans_.emplace(lease.sweep_id(), *std::move(expanded)).first;
    }
    auto trial = plan->second->trials.find(lease.trial_id());
    return trial == plan->second->trials.end() ? nullptr : &trial->second;
  }

  absl::Status NotInPlan(const rpc::LeaseReply& lease) const {
    return absl::NotFoundError(absl::StrCat("trial ", lease.trial_id(), " is not in sweep ",
                                            lease.sweep_id(), "'s plan as this worker expands it"));
  }

  TrialContext ContextFor(Heartbeats::Beat& beat, bool parallel) {
    TrialContext ctx;
    ctx.backend = backend_.get();
    ctx.artifacts = artifacts_.get();
    ctx.cache = &shared_->cache();
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
      TrialResult one;
      one.epochs = {e};
      beat.QueueEpoch(TrialResultToJson(one)["epochs"][0].dump());
      if (metrics_) metrics_->EpochDone(e);
    };
    if (metrics_) ctx.on_step = [this](double seconds) { metrics_->StepDone(seconds); };
    return ctx;
  }

  // One trial here (or data parallel across the whole group), reported.
  absl::Status RunAlone(const rpc::LeaseReply& lease, const TrialSpec* trial) {
    absl::StatusOr<TrialResult> result = NotInPlan(lease);
    if (trial != nullptr) {
      LogStart(lease, *trial);
      artifacts_->BeginAttempt(lease.attempt_id(), trial->source_trial, lease.source_sha256());
      absl::Status shared = absl::OkStatus();
      if (group_ != nullptr) {
        // The other ranks get the trial and its source model first.
        absl::StatusOr<std::string> source_model = std::string();
        if (!trial->source_trial.empty()) source_model = artifacts_->Download();
        shared = source_model.status();
        if (source_model.ok()) {
          std::string header =
              nlohmann::json(
                  {{"command", "trial"},
                   {"items",
                    {GroupItem(lease.sweep_id(), trial->id, *plans_.at(lease.sweep_id()))}}})
                  .dump();
          if (auto s = group_->Broadcast(header); !s.ok()) return s;
          if (auto s = group_->Broadcast(*source_model); !s.ok()) return s;
        }
      }
      if (shared.ok()) {
        std::unique_ptr<Heartbeats::Beat> beat = heartbeats_->Begin(lease.attempt_id());
        if (metrics_) metrics_->TrialStarted(trial->kind);
        TrialContext ctx = ContextFor(*beat, /*parallel=*/true);
        result = RunTrial(*trial, ctx);
        if (result.ok()) beat->ResultCarriesEpochs();
      } else {
        result = shared;
      }
    }
    return Finish(lease.attempt_id(), result, "", /*lease_next=*/true);
  }

  // Small trials, items[r] on rank r at once; rank 0 heartbeats and reports all.
  absl::Status RunBatch(const std::vector<std::pair<rpc::LeaseReply, const TrialSpec*>>& leased) {
    // A trial whose source model cannot be had fails alone; the rest run.
    std::vector<std::pair<rpc::LeaseReply, const TrialSpec*>> batch;
    nlohmann::json items = nlohmann::json::array();
    std::vector<std::string> source_models;
    for (const auto& [lease, trial] : leased) {
      artifacts_->BeginAttempt(lease.attempt_id(), trial->source_trial, lease.source_sha256());
      absl::StatusOr<std::string> model = std::string();
      if (!trial->source_trial.empty()) model = artifacts_->Download();
      if (!model.ok()) {
        if (auto s = Finish(lease.attempt_id(), model.status(), ""); !s.ok()) return s;
        continue;
      }
      batch.emplace_back(lease, trial);
      items.push_back(GroupItem(lease.sweep_id(), trial->id, *plans_.at(lease.sweep_id())));
      source_models.push_back(*std::move(model));
    }
    if (batch.empty()) return absl::OkStatus();
    std::fprintf(stderr, "worker %s: %zu trials, one per rank\n", worker_id_.c_str(), batch.size());
    for (const auto& [lease, trial] : batch) LogStart(lease, *trial);
    std::string header = nlohmann::json({{"command", "batch"}, {"items", items}}).dump();
    if (auto s = group_->Broadcast(header); !s.ok()) return s;
    for (std::string& model : source_models) {
      if (auto s = group_->Broadcast(model); !s.ok()) return s;
    }
    // Every attempt beats while its rank trains; rank 0 runs items[0].
    std::vector<std::unique_ptr<Heartbeats::Beat>> beats;
    for (const auto& [lease, trial] : batch)
      beats.push_back(heartbeats_->Begin(lease.attempt_id()));
    const auto& [lease, trial] = batch.front();
    artifacts_->BeginAttempt(lease.attempt_id(), trial->source_trial, lease.source_sha256());
    if (metrics_) metrics_->TrialStarted(trial->kind);
    TrialContext ctx = ContextFor(*beats.front(), /*parallel=*/false);
    const absl::StatusOr<TrialResult> own = RunTrial(*trial, ctx);
    if (own.ok()) beats.front()->ResultCarriesEpochs();
    auto outcomes = group_->Gather("");
    if (!outcomes.ok()) return outcomes.status();
    auto models = group_->Gather("");
    if (!models.ok()) return models.status();
    beats.clear();
    if (auto s = Finish(lease.attempt_id(), own, ""); !s.ok()) return s;
    for (size_t r = 1; r < batch.size(); ++r) {
      if (auto s = Finish(batch[r].first.attempt_id(), UnpackOutcome((*outcomes)[r]), (*models)[r]);
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
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
  absl::Status Finish(int64_t attempt_id, const absl::StatusOr<TrialResult>& result,
                      const std::string& model, bool lease_next = false) {
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
    if (result.ok() && !model.empty()) {
      if (auto s = artifacts_->Upload(model, attempt_id); !s.ok()) return s.status();
    }
    // A retried Complete asks again: a trial the lost reply leased expires unused.
    lease_next = lease_next && result.ok() && !stopping() &&
                 (options_.max_trials == 0 || trials_done_ + 1 < options_.max_trials);
    auto report = [&]() -> absl::Status {
      grpc::ClientContext ctx;
      auth_.Apply(ctx, 10000);
      if (!result.ok()) {
        rpc::FailRequest request;
        request.set_attempt_id(attempt_id);
        request.set_reason(std::string(result.status().message()));
        rpc::Ack ack;
        return FromGrpc(stub_->Fail(&ctx, request, &ack), "fail");
      }
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
    return RetryWhileUnavailable(report);
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
  fs::path scratch_;
  std::unique_ptr<CoordinatorArtifactStore> artifacts_;
  std::unique_ptr<Heartbeats> heartbeats_;  // after stub_ and metrics_: stops before them
  std::shared_ptr<WorkerShared> shared_;
  std::map<std::string, std::shared_ptr<const SweepPlan>> plans_;  // by sweep id, from shared_
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
    if (group->rank() > 0) return RunFollower(options, *group, stop);
  }
  absl::Status status = Worker(options, stop, group.get()).Run();
  if (group) {
    // However rank 0's loop ended, the other ranks stop too.
    std::string stop_command = nlohmann::json({{"command", "stop"}}).dump();
    group->Broadcast(stop_command).IgnoreError();
  }
  return status;
}

}  // namespace seedproof
