#include "bench/coordinator_bench.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/server.h"
#include "experiments/plan.h"
#include "experiments/results.h"
#include "experiments/sweep_parse.h"
#include "experiments/trial.h"
#include "nlohmann/json.hpp"
#include "proto/seedproof.grpc.pb.h"
#include "worker/rpc_client.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;
constexpr char kToken[] = "coordinator-bench-token-0123456789";

// One pretrain trial, then a scratch and a transfer trial per seed.
std::string BenchSpec(int seeds) {
  return absl::StrCat(R"(name: coordinator-bench
source: {classes: [0, 1, 2, 3, 4, 7, 8, 9]}
target: {positive: [6], negative: [5], train_size: 200}
model: {layers: [{dense: 10}]}
pretrain: {epochs: 1, lr: 0.01}
transfer:
  reuse: [1]
  schedules: {frozen: [{epochs: 1, train: head, lr: 0.01}]}
seeds: )",
                      seeds, "\n");
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0.0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

absl::Status RunCoordinatorBench(const CoordinatorBenchOptions& options) {
  const int seeds = std::max(1, options.trials / 2);
  const std::string spec_text = BenchSpec(seeds);
  auto spec = ParseSweepSpecText(spec_text, "coordinator-bench.yaml");
  if (!spec.ok()) return spec.status();
  std::map<std::string, TrialSpec> trials;
  for (TrialSpec& t : ExpandSweep(*spec).trials) trials[t.id] = std::move(t);

  const fs::path dir =
      fs::temp_directory_path() / absl::StrCat("seedproof-coordinator-bench-", getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  CoordinatorOptions coordinator;
  coordinator.listen = "127.0.0.1:0";
  coordinator.database = (dir / "bench.db").string();
  coordinator.token = kToken;
  auto server = CoordinatorServer::Start(coordinator);
  if (!server.ok()) return server.status();
  const std::string address = absl::StrCat("127.0.0.1:", (*server)->port());
  const RpcAuth auth{kToken};

  std::string sweep_id;
  {
    auto channel = MakeChannel(address, "");
    if (!channel.ok()) return channel.status();
    auto studies = rpc::Studies::NewStub(*channel);
    grpc::ClientContext ctx;
    auth.Apply(ctx, 120000);
    rpc::SubmitRequest request;
    request.set_spec_text(spec_text);
    rpc::SweepStatus status;
    if (auto s = FromGrpc(studies->Submit(&ctx, request, &status), "submit"); !s.ok()) return s;
    sweep_id = status.sweep_id();
  }

  // A small stand-in for a pretrained model: its bytes and hash.
  const std::string model_bytes(4096, 'm');
  const std::string model_sha = Sha256Hex(model_bytes);

  std::mutex mu;
  std::vector<double> lease_ms;
  std::map<std::string, int> accepted;  // trial id -> accepted completions
  std::atomic<bool> failed = false;
  std::string failure;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < options.workers; ++w) {
    workers.emplace_back([&, w] {
      auto channel = *MakeChannel(address, "", /*own_connection=*/!options.shared_connection);
      auto stub = rpc::Trials::NewStub(channel);
      auto fail = [&](const absl::Status& s) {
        std::lock_guard<std::mutex> lock(mu);
        if (!failed.exchange(true)) failure = std::string(s.message());
      };
      const std::string worker_id = absl::StrCat("bench-", w);
      {
        grpc::ClientContext ctx;
        auth.Apply(ctx, 30000);
        // 200 connections open at once; a worker would retry one that failed.
        ctx.set_wait_for_ready(true);
        rpc::RegisterRequest request;
        request.set_worker_id(worker_id);
        request.set_threads(1);
        rpc::RegisterReply reply;
        if (auto s = FromGrpc(stub->Register(&ctx, request, &reply), "register"); !s.ok()) {
          return fail(s);
        }
      }
      std::vector<double> mine;
      std::vector<std::string> done;
      while (!failed.load()) {
        rpc::LeaseReply lease;
        grpc::ClientContext ctx;
        auth.Apply(ctx, 30000);
        rpc::LeaseRequest request;
        request.set_worker_id(worker_id);
        request.set_wait_ms(200);
        const auto t0 = std::chrono::steady_clock::now();
        if (auto s = FromGrpc(stub->Lease(&ctx, request, &lease), "lease"); !s.ok()) {
          return fail(s);
        }
        if (!lease.leased()) {
          // Nothing ready: the sweep is done, or the pretrain trial is running.
          grpc::ClientContext gctx;
          auth.Apply(gctx, 30000);
          auto studies = rpc::Studies::NewStub(channel);
          rpc::SweepRef ref;
          ref.set_sweep_id(sweep_id);
          rpc::SweepStatus status;
          if (studies->Get(&gctx, ref, &status).ok() && status.state() != "running") break;
          continue;
        }
        mine.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count());
        const TrialSpec& trial = trials.at(lease.trial_id());
        TrialResult result = ResultFor(trial);
        result.provenance.backend = "none";
        if (trial.kind == TrialKind::kPretrain) {
          grpc::ClientContext uctx;
          auth.Apply(uctx, 30000);
          rpc::ArtifactRef ref;
          auto writer = stub->UploadArtifact(&uctx, &ref);
          rpc::ArtifactChunk chunk;
          chunk.set_sha256(model_sha);
          chunk.set_attempt_id(lease.attempt_id());
          chunk.set_data(model_bytes);
          writer->Write(chunk);
          writer->WritesDone();
          if (auto s = FromGrpc(writer->Finish(), "upload"); !s.ok()) return fail(s);
          result.model_sha256 = model_sha;
        }
        grpc::ClientContext cctx;
        auth.Apply(cctx, 30000);
        rpc::CompleteRequest complete;
        complete.set_attempt_id(lease.attempt_id());
        complete.set_result_json(TrialResultToJson(result).dump());
        complete.set_model_sha256(result.model_sha256);
        rpc::CompleteReply reply;
        if (auto s = FromGrpc(stub->Complete(&cctx, complete, &reply), "complete"); !s.ok()) {
          return fail(s);
        }
        if (reply.accepted()) done.push_back(trial.id);
      }
      std::lock_guard<std::mutex> lock(mu);
      lease_ms.insert(lease_ms.end(), mine.begin(), mine.end());
      for (const std::string& id : done) ++accepted[id];
    });
  }
  for (std::thread& t : workers) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  (*server)->Shutdown();
  fs::remove_all(dir);
  if (failed) return absl::InternalError(failure);

  int64_t lost = 0, duplicated = 0;
  for (const auto& [id, trial] : trials) {
    auto it = accepted.find(id);
    if (it == accepted.end())
      ++lost;
    else
      duplicated += it->second - 1;
  }
  nlohmann::ordered_json line = {
      {"workers", options.workers},
      {"connections", options.shared_connection ? 1 : options.workers},
      {"trials", trials.size()},
      {"seconds", seconds},
      {"trials_per_s", static_cast<double>(trials.size()) / seconds},
      {"lease_p50_ms", Percentile(lease_ms, 0.50)},
      {"lease_p99_ms", Percentile(lease_ms, 0.99)},
      {"lost", lost},
      {"duplicated", duplicated},
  };
  std::printf("%s\n", line.dump().c_str());
  return absl::OkStatus();
}

}  // namespace seedproof
