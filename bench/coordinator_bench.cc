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
#include "coordinator/store.h"
#include "experiments/plan.h"
#include "experiments/study.h"
#include "experiments/sweep_parse.h"
#include "nlohmann/json.hpp"
#include "proto/seedproof.grpc.pb.h"
#include "worker/rpc_client.h"
#include "worker/worker.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;
constexpr char kToken[] = "coordinator-bench-token-0123456789";

// One pretrain trial, then a scratch and a transfer trial per seed.
std::string BenchSpec(int seeds) {
  return absl::StrCat(R"(name: coordinator-bench
source: {classes: [0, 1, 2, 3, 4, 7, 8, 9], train_size: 2000}
target: {positive: [6], negative: [5], train_size: 200}
model: {layers: [{dense: 10}]}
pretrain: {epochs: 1, lr: 0.01}
transfer:
  reuse: [1]
  schedules: {frozen: [{epochs: 1, train: head, lr: 0.01}]}
seeds: )",
                      seeds, "\n");
}

// The no-op backend plugin where the build puts it: plugins/ beside cli/.
std::string DefaultBackend() {
  std::error_code error;
  const fs::path exe = fs::read_symlink("/proc/self/exe", error);
  return (exe.parent_path().parent_path() / "plugins" / "libseedproof_noop_backend.so").string();
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0.0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

absl::Status RunCoordinatorBench(const CoordinatorBenchOptions& options) {
  const std::string backend = options.backend.empty() ? DefaultBackend() : options.backend;
  if (!fs::exists(backend)) {
    return absl::NotFoundError(
        absl::StrCat("bench coordinator: no backend plugin at ", backend,
                     " (build the seedproof_noop_backend target, or name one with --backend)"));
  }
  const int seeds = std::max(1, options.trials / 2);
  const std::string spec_text = BenchSpec(seeds);
  // As the coordinator loads it: the datasets read and hashed.
  auto study = LoadStudy(spec_text, "coordinator-bench.yaml");
  if (!study.ok()) return study.status();
  const SweepSpec* spec = &study->spec;
  const size_t trials = study->plan.trials.size();

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
  auto channel = MakeChannel(address, "");
  if (!channel.ok()) return channel.status();
  auto studies = rpc::Studies::NewStub(*channel);
  rpc::SweepStatus status;
  {
    grpc::ClientContext ctx;
    auth.Apply(ctx, 120000);
    rpc::SubmitRequest request;
    request.set_spec_text(spec_text);
    if (auto s = FromGrpc(studies->Submit(&ctx, request, &status), "submit"); !s.ok()) return s;
  }

  // The workers share what one worker process would load once: the dataset is
  // read before the clock starts.
  std::shared_ptr<WorkerShared> shared = MakeWorkerShared();
  for (const DatasetSpec& dataset : spec->datasets) {
    if (auto s = Preload(*shared, dataset); !s.ok()) return s;
  }

  std::mutex mu;
  std::vector<double> lease_ms;
  std::atomic<bool> stop = false;
  absl::Status failure;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < options.workers; ++w) {
    workers.emplace_back([&, w] {
      std::vector<double> mine;
      WorkerOptions worker;
      worker.coordinator = address;
      worker.token = kToken;
      worker.worker_id = absl::StrCat("bench-", w);
      worker.backend = backend;
      worker.shared = shared;
      worker.log_trials = false;  // 20,000 lines would measure the terminal
      // Leases that waited for the pretrain trial measure it, not the coordinator.
      worker.on_lease = [&mine](double seconds, bool leased) {
        if (leased) mine.push_back(seconds * 1e3);
      };
      absl::Status ran = RunWorker(worker, &stop);
      std::lock_guard<std::mutex> lock(mu);
      lease_ms.insert(lease_ms.end(), mine.begin(), mine.end());
      if (!ran.ok() && failure.ok()) {
        failure = ran;
        stop = true;
      }
    });
  }
  // The clock stops when the coordinator says the sweep is over.
  while (!stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    grpc::ClientContext ctx;
    auth.Apply(ctx, 30000);
    rpc::SweepRef ref;
    ref.set_sweep_id(status.sweep_id());
    rpc::SweepStatus now;
    if (auto s = FromGrpc(studies->Get(&ctx, ref, &now), "status"); !s.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      failure.Update(s);
      break;
    }
    if (now.state() != rpc::SWEEP_RUNNING) break;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stop = true;
  for (std::thread& t : workers) t.join();
  (*server)->Shutdown();

  // What the store holds: every trial's result, once.
  int64_t stored = 0, duplicated = 0;
  if (failure.ok()) {
    auto store = Store::Open(coordinator.database, {.migrate = false});
    if (!store.ok()) return store.status();
    auto sweeps = (*store)->ListSweeps();
    if (!sweeps.ok()) return sweeps.status();
    std::map<std::string, int> results_of;  // trial id -> results listed
    for (const SweepStatus& sweep : *sweeps) {
      auto results = (*store)->Results(sweep.sweep_id, BlockedTrials::kLeftOut);
      if (!results.ok()) return results.status();
      for (const TrialResult& result : *results) ++results_of[result.trial_id];
    }
    for (const auto& [trial, count] : results_of) {
      ++stored;
      duplicated += count - 1;
    }
  }
  fs::remove_all(dir);
  if (!failure.ok()) return failure;

  nlohmann::ordered_json line = {
      {"workers", options.workers},
      {"backend", fs::path(backend).filename().string()},
      {"trials", trials},
      {"seconds", seconds},
      {"trials_per_s", static_cast<double>(trials) / seconds},
      {"lease_p50_ms", Percentile(lease_ms, 0.50)},
      {"lease_p99_ms", Percentile(lease_ms, 0.99)},
      {"lost", static_cast<int64_t>(trials) - stored},
      {"duplicated", duplicated},
  };
  std::printf("%s\n", line.dump().c_str());
  return absl::OkStatus();
}

}  // namespace seedproof
