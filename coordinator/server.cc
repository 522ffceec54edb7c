#include "coordinator/server.h"

#include <grpcpp/grpcpp.h>
#include <openssl/crypto.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <limits>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coordinator/later_trials.h"
#include "coordinator/lease_waiters.h"
#include "coordinator/metrics.h"
#include "coordinator/server_util.h"
#include "coordinator/store.h"
#include "experiments/plan.h"
#include "experiments/results.h"
#include "experiments/study.h"
#include "nlohmann/json.hpp"
#include "proto/seedproof.grpc.pb.h"
#include "proto/wire_limits.h"

namespace seedproof {
namespace {

constexpr int64_t kMaxLeaseWaitMs = 30000;
constexpr int kMaxWorkerThreads = 4096;
constexpr int kMaxMpiSize = 1 << 20;

grpc::Status Invalid(const std::string& field, const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat(field, ": ", message));
}

// An id or name a client gives, which the coordinator stores: at most
// kMaxNameBytes bytes, and unless it is optional, at least one.
enum class Optional { kNo, kYes };
grpc::Status CheckName(const std::string& field, const std::string& value,
                       Optional optional = Optional::kNo) {
  const size_t least = optional == Optional::kYes ? 0 : 1;
  if (value.size() >= least && value.size() <= static_cast<size_t>(kMaxNameBytes)) {
    return grpc::Status::OK;
  }
  return Invalid(field, absl::StrCat(value.size(), " bytes; ", least, " to ", kMaxNameBytes));
}

// Every call must carry "authorization: Bearer <token>"; compared in constant time.
class TokenCheck {
 public:
  explicit TokenCheck(std::string token) : expected_(absl::StrCat("Bearer ", token)) {}
  grpc::Status operator()(const grpc::ServerContextBase* context) const {
    const auto& metadata = context->client_metadata();
    auto it = metadata.find("authorization");
    if (it == metadata.end()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "no bearer token");
    }
    const grpc::string_ref given = it->second;
    if (given.size() != expected_.size() ||
        CRYPTO_memcmp(given.data(), expected_.data(), expected_.size()) != 0) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong bearer token");
    }
    return grpc::Status::OK;
  }

 private:
  std::string expected_;
};

void FillStatus(const SweepStatus& s, rpc::SweepStatus* out) {
  out->set_sweep_id(s.sweep_id);
  out->set_name(s.name);
  out->set_state(s.state == SweepState::kRunning     ? rpc::SWEEP_RUNNING
                 : s.state == SweepState::kCancelled ? rpc::SWEEP_CANCELLED
                                                     : rpc::SWEEP_DONE);
  out->set_total(s.total);
  out->set_pending(s.pending);
  out->set_leased(s.leased);
  out->set_done(s.done);
  out->set_failed(s.failed);
  out->set_blocked(s.blocked);
  out->set_cancelled(s.cancelled);
  out->set_created_ms(s.created_ms);
  out->set_finished_ms(s.finished_ms);
  const int64_t end = s.finished_ms > 0 ? s.finished_ms : NowMs();
  const double seconds = static_cast<double>(end - s.created_ms) / 1000.0;
  out->set_trials_per_s(seconds > 0 ? (s.done + s.failed + s.blocked) / seconds : 0.0);
}

// Answers a unary callback call at once with what body returns.
template <typename Body>
grpc::ServerUnaryReactor* AnswerNow(grpc::CallbackServerContext* context, Body&& body) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(body());
  return reactor;
}

// Streams of one kind open at once: each holds a thread of gRPC's synchronous
// pool while it lasts. Past the limit a new one is UNAVAILABLE (a worker retries
// its upload or download after a pause) and holds nothing. Watches and result
// streams, which clients may hold for a whole sweep, and artifact transfers,
// which workers need, have a budget each, so one kind never starves the other.
class OpenStreams {
 public:
  OpenStreams(const char* kind, int64_t limit) : kind_(kind), limit_(limit) {}

  // Held while a stream is open.
  class Slot {
   public:
    explicit Slot(OpenStreams* streams) : streams_(streams) {}
    Slot(Slot&& other) noexcept : streams_(std::exchange(other.streams_, nullptr)) {}
    Slot& operator=(Slot&&) = delete;
    ~Slot() {
      if (streams_ != nullptr) streams_->open_.fetch_sub(1);
    }

   private:
    OpenStreams* streams_;
  };

  absl::StatusOr<Slot> Open() {
    if (open_.fetch_add(1) >= limit_) {
      open_.fetch_sub(1);
      return absl::UnavailableError(absl::StrCat(limit_, " ", kind_,
                                                 " are open, the most this coordinator serves at "
                                                 "once (--max-streams); try again later"));
    }
    return Slot(this);
  }

 private:
  const char* const kind_;
  const int64_t limit_;
  std::atomic<int64_t> open_{0};
};

class StudiesService final : public rpc::Studies::Service {
 public:
  StudiesService(Store& store, const TokenCheck& auth, Doorbell& bell, OpenStreams& streams)
      : store_(store), auth_(auth), bell_(bell), streams_(streams) {}

  grpc::Status Submit(grpc::ServerContext* context, const rpc::SubmitRequest* request,
                      rpc::SweepStatus* reply) override {
    if (auto s = auth_(context); !s.ok()) return s;
    if (request->spec_text().empty()) return Invalid("spec_text", "empty");
    if (request->spec_text().size() > static_cast<size_t>(kMaxSpecBytes)) {
      return Invalid("spec_text",
                     absl::StrCat(request->spec_text().size(), " bytes; at most ", kMaxSpecBytes));
    }
    if (request->spec_path().size() > static_cast<size_t>(kMaxPathBytes)) {
      return Invalid("spec_path",
                     absl::StrCat(request->spec_path().size(), " bytes; at most ", kMaxPathBytes));
    }
    const std::string path = request->spec_path().empty() ? "spec.yaml" : request->spec_path();
    // The datasets it ships to workers are kept, encoded, with the sweep.
    auto study = LoadStudy(request->spec_text(), path, nullptr, {.keep_shipped = true});
    if (!study.ok()) {
      return study.status().code() == absl::StatusCode::kInvalidArgument
                 ? Invalid("spec_text", std::string(study.status().message()))
                 : ToGrpc(study.status());
    }
    auto id = store_.SubmitSweep(study->spec.name, request->spec_text(), path, study->plan, NowMs(),
                                 study->shipped);
    if (!id.ok()) return ToGrpc(id.status());
    bell_.Ring();
    auto status = store_.GetSweep(*id);
    if (!status.ok()) return ToGrpc(status.status());
    FillStatus(*status, reply);
    return grpc::Status::OK;
  }

  grpc::Status Get(grpc::ServerContext* context, const rpc::SweepRef* request,
                   rpc::SweepStatus* reply) override {
    if (auto s = auth_(context); !s.ok()) return s;
    auto status = store_.GetSweep(request->sweep_id());
    if (!status.ok()) return ToGrpc(status.status());
    FillStatus(*status, reply);
    return grpc::Status::OK;
  }

  grpc::Status List(grpc::ServerContext* context, const rpc::ListRequest*,
                    rpc::ListReply* reply) override {
    if (auto s = auth_(context); !s.ok()) return s;
    auto sweeps = store_.ListSweeps();
    if (!sweeps.ok()) return ToGrpc(sweeps.status());
    for (const SweepStatus& s : *sweeps) FillStatus(s, reply->add_sweeps());
    return grpc::Status::OK;
  }

  grpc::Status Cancel(grpc::ServerContext* context, const rpc::SweepRef* request,
                      rpc::SweepStatus* reply) override {
    if (auto s = auth_(context); !s.ok()) return s;
    if (auto s = store_.Cancel(request->sweep_id(), NowMs()); !s.ok()) return ToGrpc(s);
    return Get(context, request, reply);
  }

  grpc::Status Watch(grpc::ServerContext* context, const rpc::SweepRef* request,
                     grpc::ServerWriter<rpc::SweepStatus>* writer) override {
    if (auto s = auth_(context); !s.ok()) return s;
    auto slot = streams_.Open();
    if (!slot.ok()) return ToGrpc(slot.status());
    std::string last;
    for (;;) {
      const uint64_t seen = bell_.generation();
      auto status = store_.GetSweep(request->sweep_id());
      if (!status.ok()) return ToGrpc(status.status());
      rpc::SweepStatus message;
      FillStatus(*status, &message);
      message.set_trials_per_s(0);  // changes every call; compared below without it
      const std::string key = message.SerializeAsString();
      FillStatus(*status, &message);
      if (key != last) {
        if (!writer->Write(message)) return grpc::Status::OK;  // the client left
        last = key;
      }
      if (status->state != SweepState::kRunning) return grpc::Status::OK;
      if (context->IsCancelled()) return grpc::Status::CANCELLED;
      bell_.WaitAfter(seen, std::chrono::steady_clock::now() + std::chrono::milliseconds(500));
    }
  }

  grpc::Status Results(grpc::ServerContext* context, const rpc::SweepRef* request,
                       grpc::ServerWriter<rpc::ResultLine>* writer) override {
    if (auto s = auth_(context); !s.ok()) return s;
    auto slot = streams_.Open();
    if (!slot.ok()) return ToGrpc(slot.status());
    auto results = store_.Results(request->sweep_id(), BlockedTrials::kIncluded);
    if (!results.ok()) return ToGrpc(results.status());
    for (const TrialResult& result : *results) {
      rpc::ResultLine line;
      line.set_json(TrialResultToJson(result).dump());
      if (!writer->Write(line)) break;
    }
    return grpc::Status::OK;
  }

 private:
  Store& store_;
  const TokenCheck& auth_;
  Doorbell& bell_;
  OpenStreams& streams_;
};

// The unary calls run on gRPC's callback threads, so a call holds no thread of
// its own and a waiting lease none at all (1,200 -> 2,000 trials/s in bench
// coordinator with a connection per worker); the artifact streams are synchronous.
using TrialsBase = rpc::Trials::WithCallbackMethod_Register<
    rpc::Trials::WithCallbackMethod_Lease<rpc::Trials::WithCallbackMethod_Heartbeat<
        rpc::Trials::WithCallbackMethod_ReportEpoch<rpc::Trials::WithCallbackMethod_Complete<
            rpc::Trials::WithCallbackMethod_Fail<rpc::Trials::WithCallbackMethod_Release<
                rpc::Trials::WithCallbackMethod_SweepSpec<rpc::Trials::Service>>>>>>>>;

class TrialsService final : public TrialsBase {
 public:
  TrialsService(Store& store, const TokenCheck& auth, Doorbell& bell, LeaseWaiters& waiters,
                OpenStreams& streams, const CoordinatorOptions& options)
      : store_(store),
        auth_(auth),
        bell_(bell),
        waiters_(waiters),
        streams_(streams),
        options_(options) {}

  // Before serving: where the events go.
  void UseMetrics(CoordinatorMetrics* metrics) {
    metrics_ = metrics;
    waiters_.UseMetrics(metrics);
  }
  void OnTrialEnded(std::function<void()> callback) { trial_ended_ = std::move(callback); }

  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* context,
                                     const rpc::RegisterRequest* request,
                                     rpc::RegisterReply* reply) override {
    return Answer(context, [&]() -> grpc::Status {
      if (auto s = CheckName("worker_id", request->worker_id()); !s.ok()) return s;
      if (request->threads() < 1 || request->threads() > kMaxWorkerThreads) {
        return Invalid("threads", absl::StrCat(request->threads(), "; 1 to ", kMaxWorkerThreads));
      }
      if (request->mpi_size() < 0 || request->mpi_size() > kMaxMpiSize) {
        return Invalid("mpi_size", absl::StrCat(request->mpi_size(), "; 0 to ", kMaxMpiSize));
      }
      if (request->backends_size() > kMaxBackends) {
        return Invalid("backends",
                       absl::StrCat(request->backends_size(), " names; at most ", kMaxBackends));
      }
      for (int i = 0; i < request->backends_size(); ++i) {
        if (auto s = CheckName(absl::StrCat("backends[", i, "]"), request->backends(i)); !s.ok()) {
          return s;
        }
      }
      if (auto s = CheckName("cpu_isa", request->cpu_isa(), Optional::kYes); !s.ok()) return s;
      if (auto s = CheckName("metrics_address", request->metrics_address(), Optional::kYes);
          !s.ok()) {
        return s;
      }
      nlohmann::json capabilities = {
          {"backends",
           std::vector<std::string>(request->backends().begin(), request->backends().end())},
          {"threads", request->threads()},
          {"cpu_isa", request->cpu_isa()},
          {"mpi_size", request->mpi_size()}};
      if (!request->metrics_address().empty()) capabilities["metrics"] = request->metrics_address();
      if (auto s = store_.RegisterWorker(request->worker_id(), capabilities.dump(), NowMs());
          !s.ok()) {
        return ToGrpc(s);
      }
      if (metrics_ != nullptr) metrics_->WorkerRegistered();
      reply->set_lease_ms(options_.lease_ms);
      reply->set_heartbeat_ms(options_.heartbeat_ms);
      return grpc::Status::OK;
    });
  }

  // The long poll: leased at once if a trial is ready, else the call waits in
  // LeaseWaiters until one is, or for wait_ms.
  grpc::ServerUnaryReactor* Lease(grpc::CallbackServerContext* context,
                                  const rpc::LeaseRequest* request,
                                  rpc::LeaseReply* reply) override {
    const auto start = LeaseCall::Clock::now();
    const grpc::Status status = TryLease(context, *request, start, reply);
    if (!status.ok() || reply->leased() || request->wait_ms() == 0) {
      return AnswerNow(context, [&] { return status; });
    }
    auto* call = new LeaseCall(
        waiters_, request->worker_id(), reply, start,
        start + std::chrono::milliseconds(std::min(request->wait_ms(), kMaxLeaseWaitMs)));
    waiters_.Park(call);
    return call;
  }

  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* context,
                                      const rpc::AttemptRef* request,
                                      rpc::HeartbeatReply* reply) override {
    return Answer(context, [&]() -> grpc::Status {
      auto verdict = store_.Heartbeat(request->attempt_id(), NowMs());
      if (!verdict.ok()) return ToGrpc(verdict.status());
      reply->set_verdict(*verdict == HeartbeatVerdict::kContinue    ? rpc::HeartbeatReply::CONTINUE
                         : *verdict == HeartbeatVerdict::kCancelled ? rpc::HeartbeatReply::CANCELLED
                                                                    : rpc::HeartbeatReply::LOST);
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* ReportEpoch(grpc::CallbackServerContext* context,
                                        const rpc::EpochReport* request, rpc::Ack*) override {
    return Answer(context, [&]() -> grpc::Status {
      std::vector<EpochRecord> epochs;
      for (const std::string& json : request->epoch_json()) {
        const nlohmann::json parsed = nlohmann::json::parse(json, nullptr, false);
        if (!parsed.is_object()) return Invalid("epoch_json", "not a JSON object");
        auto epoch = EpochRecordFromJson(parsed);
        if (!epoch.ok()) return Invalid("epoch_json", std::string(epoch.status().message()));
        epochs.push_back(*epoch);
      }
      for (const EpochRecord& epoch : epochs) {
        if (auto s = store_.RecordEpoch(request->attempt_id(), epoch, NowMs()); !s.ok()) {
          return ToGrpc(s);
        }
      }
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* Complete(grpc::CallbackServerContext* context,
                                     const rpc::CompleteRequest* request,
                                     rpc::CompleteReply* reply) override {
    return Answer(context, [&]() -> grpc::Status {
      const nlohmann::json json = nlohmann::json::parse(request->result_json(), nullptr, false);
      if (json.is_discarded()) return Invalid("result_json", "not JSON");
      auto result = TrialResultFromJson(json);
      if (!result.ok()) return Invalid("result_json", std::string(result.status().message()));
      if (result->outcome == TrialOutcome::kBlocked) {
        return Invalid("result_json.outcome", "a worker reports completed or diverged");
      }
      if (request->model_sha256() != result->model_sha256) {
        return Invalid("model_sha256", absl::StrCat("'", request->model_sha256().substr(0, 80),
                                                    "' differs from result_json's '",
                                                    result->model_sha256.substr(0, 80), "'"));
      }
      auto accepted = store_.Complete(request->attempt_id(), *result, NowMs());
      if (!accepted.ok()) return ToGrpc(accepted.status());
      reply->set_accepted(*accepted);
      if (*accepted && metrics_ != nullptr)
        metrics_->TrialCompleted(request->attempt_id(), *result);
      if (*accepted) trial_ended_();
      bell_.Ring();  // waiting leases go first
      if (!request->lease_next_for().empty()) {
        // The result is stored whatever happens here: a lease that fails is left
        // for the worker's next Lease call to report.
        LeaseInto(request->lease_next_for(), LeaseCall::Clock::now(), reply->mutable_next())
            .IgnoreError();
      }
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* Fail(grpc::CallbackServerContext* context,
                                 const rpc::FailRequest* request, rpc::Ack*) override {
    return Answer(context, [&]() -> grpc::Status {
      if (auto s = store_.Fail(request->attempt_id(), request->reason(), NowMs()); !s.ok()) {
        return ToGrpc(s);
      }
      if (metrics_ != nullptr) metrics_->AttemptFailed(request->attempt_id());
      trial_ended_();
      bell_.Ring();
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* Release(grpc::CallbackServerContext* context,
                                    const rpc::AttemptRef* request, rpc::Ack*) override {
    return Answer(context, [&]() -> grpc::Status {
      if (auto s = store_.Release(request->attempt_id(), NowMs()); !s.ok()) return ToGrpc(s);
      if (metrics_ != nullptr) metrics_->AttemptReleased(request->attempt_id());
      bell_.Ring();
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* SweepSpec(grpc::CallbackServerContext* context,
                                      const rpc::SweepRef* request,
                                      rpc::SpecReply* reply) override {
    return Answer(context, [&]() -> grpc::Status {
      auto spec = store_.SweepSpecText(request->sweep_id());
      if (!spec.ok()) return ToGrpc(spec.status());
      reply->set_spec_text(spec->text);
      reply->set_spec_path(spec->path);
      reply->set_inputs_json(spec->datasets_json);
      return grpc::Status::OK;
    });
  }

  grpc::Status UploadArtifact(grpc::ServerContext* context,
                              grpc::ServerReader<rpc::ArtifactChunk>* reader,
                              rpc::ArtifactRef* reply) override {
    if (auto s = auth_(context); !s.ok()) return s;
    auto slot = streams_.Open();
    if (!slot.ok()) return ToGrpc(slot.status());
    // Written to its file chunk by chunk: an upload holds one chunk in memory.
    auto file = store_.NewArtifact();
    if (!file.ok()) return ToGrpc(file.status());
    rpc::ArtifactChunk chunk;
    std::string sha;
    int64_t attempt_id = 0;
    bool first = true;
    while (reader->Read(&chunk)) {
      if (first) {
        sha = chunk.sha256();
        attempt_id = chunk.attempt_id();
        first = false;
      }
      if ((*file)->size() + static_cast<int64_t>(chunk.data().size()) > options_.max_upload_bytes) {
        return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            absl::StrCat("artifact larger than ", options_.max_upload_bytes,
                                         " bytes (--max-upload-bytes)"));
      }
      if (auto s = (*file)->Append(chunk.data()); !s.ok()) return ToGrpc(s);
    }
    if (first) return Invalid("sha256", "no chunks");
    if (auto s = store_.PutArtifact(attempt_id, sha, **file, NowMs()); !s.ok()) return ToGrpc(s);
    reply->set_sha256(sha);
    return grpc::Status::OK;
  }

  grpc::Status DownloadArtifact(grpc::ServerContext* context, const rpc::ArtifactRef* request,
                                grpc::ServerWriter<rpc::ArtifactChunk>* writer) override {
    if (auto s = auth_(context); !s.ok()) return s;
    auto slot = streams_.Open();
    if (!slot.ok()) return ToGrpc(slot.status());
    // Read from its file chunk by chunk, without the store's lock.
    auto file = store_.OpenArtifact(request->sha256());
    if (!file.ok()) return ToGrpc(file.status());
    for (int64_t offset = 0; offset == 0 || offset < file->size(); offset += kChunkBytes) {
      auto data = file->Read(offset, kChunkBytes);
      if (!data.ok()) return ToGrpc(data.status());
      rpc::ArtifactChunk chunk;
      if (offset == 0) {
        chunk.set_sha256(request->sha256());
        chunk.set_total_bytes(file->size());
      }
      chunk.set_data(*std::move(data));
      if (!writer->Write(chunk)) break;
    }
    return grpc::Status::OK;
  }

 private:
  // Answers a unary call at once: the bearer token first, then body.
  template <typename Body>
  grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context, Body&& body) {
    return AnswerNow(context, [&]() -> grpc::Status {
      if (auto s = auth_(context); !s.ok()) return s;
      return body();
    });
  }

  // Checks the call and leases a ready trial into reply, if there is one.
  grpc::Status TryLease(grpc::CallbackServerContext* context, const rpc::LeaseRequest& request,
                        LeaseCall::Clock::time_point start, rpc::LeaseReply* reply) {
    if (auto s = auth_(context); !s.ok()) return s;
    if (auto s = CheckName("worker_id", request.worker_id()); !s.ok()) return s;
    if (request.wait_ms() < 0) return Invalid("wait_ms", "negative");
    return ToGrpc(LeaseInto(request.worker_id(), start, reply));
  }

  // Leases a ready trial to the worker into reply, if there is one.
  absl::Status LeaseInto(const std::string& worker_id, LeaseCall::Clock::time_point start,
                         rpc::LeaseReply* reply) {
    auto lease = store_.LeaseNext(worker_id, NowMs());
    if (!lease.ok()) return lease.status();
    if (lease->has_value()) {
      FillLease(**lease, reply);
      if (metrics_ != nullptr) {
        metrics_->LeaseGranted(
            **lease, std::chrono::duration<double>(LeaseCall::Clock::now() - start).count());
      }
    }
    return absl::OkStatus();
  }

  Store& store_;
  const TokenCheck& auth_;
  Doorbell& bell_;
  LeaseWaiters& waiters_;
  OpenStreams& streams_;
  const CoordinatorOptions& options_;
  CoordinatorMetrics* metrics_ = nullptr;      // set before serving; nullptr: no metrics
  std::function<void()> trial_ended_ = [] {};  // a trial may have ended: later trials
};

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read"));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class Server final : public CoordinatorServer {
 public:
  Server(const CoordinatorOptions& options, std::unique_ptr<Store> store)
      : options_(options),
        store_(std::move(store)),
        auth_(options.token),
        waiters_(*store_),
        watches_("watch and result streams", options.max_streams),
        transfers_("artifact transfers", options.max_streams),
        studies_(*store_, auth_, bell_, watches_),
        trials_(*store_, auth_, bell_, waiters_, transfers_, options_) {
    bell_.OnRing([this] { waiters_.Serve(); });
  }

  ~Server() override {
    Shutdown();
    if (expiry_.joinable()) expiry_.join();
    if (confirmer_.joinable()) confirmer_.join();
  }

  absl::Status Start() {
    std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
    if (!options_.tls_cert.empty() || !options_.tls_key.empty()) {
      auto cert = ReadFile(options_.tls_cert);
      if (!cert.ok()) return cert.status();
      auto key = ReadFile(options_.tls_key);
      if (!key.ok()) return key.status();
      grpc::SslServerCredentialsOptions ssl;
      ssl.pem_key_cert_pairs.push_back({*key, *cert});
      credentials = grpc::SslServerCredentials(ssl);
    }
    if (!options_.metrics_listen.empty()) {
      auto metrics = CoordinatorMetrics::Start(
          {.listen = options_.metrics_listen,
           .worker_sd_file = options_.worker_sd_file,
           .live_window_ms = std::max<int64_t>(3 * options_.heartbeat_ms, 15000)},
          *store_);
      if (!metrics.ok()) return metrics.status();
      metrics_ = std::move(*metrics);
      trials_.UseMetrics(metrics_.get());
    }
    // Before serving: handlers call it.
    trials_.OnTrialEnded([this] {
      {
        std::lock_guard<std::mutex> lock(mu_);
        confirm_ = true;
      }
      cv_.notify_all();
    });
    grpc::ServerBuilder builder;
    builder.AddListeningPort(options_.listen, credentials, &port_);
    builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
    builder.SetMaxSendMessageSize(kMaxMessageBytes);
    builder.RegisterService(&studies_);
    builder.RegisterService(&trials_);
    server_ = builder.BuildAndStart();
    if (!server_ || port_ == 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen));
    }
    FillMissingTrialSpecs();
    // Leases an earlier process issued: their workers died with it (and the
    // leases are given back, uncounted), or get time to find this one.
    auto adopted = options_.expire_leases_on_start
                       ? store_->ExpireLeases(std::numeric_limits<int64_t>::max())
                       : store_->AdoptLeases(NowMs());
    if (!adopted.ok()) return adopted.status();
    // Later trials (confirmation seeds, sequential steps): on one thread, off the
    // RPC handlers (an analysis can take a while), woken when a trial ends, and
    // every few seconds (after a crash between the last result and the later
    // trials, or an error).
    confirmer_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(mu_);
      while (!stopping_) {
        confirm_ = false;
        lock.unlock();
        if (!store_->SweepsReadyToExtend().empty()) {
          // Errors leave the sweep ready: the next round tries again.
          AddLaterTrials(*store_, NowMs()).IgnoreError();
          bell_.Ring();  // trials may have joined: wake the long polls
        }
        lock.lock();
        cv_.wait_for(lock, std::chrono::seconds(5), [&] { return stopping_ || confirm_; });
      }
    });
    // Leases whose deadline passed go back to the queue.
    expiry_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(mu_);
      const auto period = std::chrono::milliseconds(std::max<int64_t>(options_.lease_ms / 4, 20));
      while (!cv_.wait_for(lock, period, [&] { return stopping_; })) {
        auto expired = store_->ExpireLeases(NowMs());
        if (expired.ok() && *expired > 0) {
          if (metrics_) metrics_->LeasesExpired(*expired);
          confirm_ = true;  // mu_ is held here
          cv_.notify_all();
          bell_.Ring();
        }
      }
    });
    return absl::OkStatus();
  }

  int port() const override { return port_; }
  int metrics_port() const override { return metrics_ ? metrics_->port() : 0; }
  absl::StatusOr<int> WorkerGone(const std::string& worker_id, const std::string& reason) override {
    auto failed = store_->FailWorker(worker_id, reason, NowMs());
    if (!failed.ok()) return failed.status();
    if (failed->empty()) return 0;
    if (metrics_) {
      for (int64_t attempt_id : *failed) metrics_->AttemptFailed(attempt_id);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      confirm_ = true;
    }
    cv_.notify_all();
    bell_.Ring();
    return static_cast<int>(failed->size());
  }
  void Wait() override { server_->Wait(); }
  void Shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    bell_.Ring();
    waiters_.Close();  // the server waits for every callback call to be answered
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }

 private:
  // A database from before the store kept each trial's spec: expanded again from
  // the sweep's spec text, as at its submission (trial ids are content hashes, so
  // the same spec gives the same trials). A spec this version refuses leaves its
  // trials without one; their leases then fail on the worker, naming why.
  void FillMissingTrialSpecs() {
    for (const std::string& sweep_id : store_->SweepsMissingTrialSpecs()) {
      auto text = store_->SweepSpecText(sweep_id);
      // Such a sweep's trials have the ids of a spec expanded without its data.
      absl::StatusOr<LoadedStudy> study =
          text.ok() ? LoadStoredStudy(text->text, text->path, text->datasets_json) : text.status();
      absl::Status filled = study.status();
      if (study.ok()) {
        std::vector<TrialSpec> trials = study->plan.trials;
        trials.insert(trials.end(), study->plan.later_candidates.begin(),
                      study->plan.later_candidates.end());
        filled = store_->FillTrialSpecs(sweep_id, trials).status();
      }
      if (!filled.ok()) {
        std::fprintf(stderr, "seedproof coordinator: sweep %s: its trials' specs: %s\n",
                     sweep_id.c_str(), std::string(filled.message()).c_str());
      }
    }
  }

  CoordinatorOptions options_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<CoordinatorMetrics> metrics_;
  TokenCheck auth_;
  Doorbell bell_;
  LeaseWaiters waiters_;
  OpenStreams watches_, transfers_;
  StudiesService studies_;
  TrialsService trials_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool confirm_ = false;  // a trial ended: look for sweeps ready for confirmation
  std::thread expiry_, confirmer_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    const CoordinatorOptions& options) {
  if (options.token.size() < 16) {
    return absl::InvalidArgumentError("the coordinator's token needs at least 16 characters");
  }
  auto store = Store::Open(options.database, {.max_attempts = options.max_attempts,
                                              .lease_ms = options.lease_ms,
                                              .max_artifact_bytes = options.max_artifact_bytes,
                                              .max_workers = options.max_workers});
  if (!store.ok()) return store.status();
  auto server = std::make_unique<Server>(options, std::move(*store));
  if (auto s = server->Start(); !s.ok()) return s;
  return std::unique_ptr<CoordinatorServer>(std::move(server));
}

}  // namespace seedproof
