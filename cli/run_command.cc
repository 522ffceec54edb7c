#include "cli/run_command.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/local_workers.h"
#include "cli/report_command.h"
#include "cli/results_file.h"
#include "cli/study_commands.h"
#include "coordinator/server.h"
#include "proto/seedproof.grpc.pb.h"
#include "worker/rpc_client.h"

namespace seedproof {
namespace {

// The first failed attempt a worker logged ("worker W: trial T (attempt N) failed:
// why"), or "".
std::string FirstFailureLogged(const LocalWorkers& workers, int count) {
  for (int w = 0; w < count; ++w) {
    std::ifstream log(workers.LogOf(w));
    for (std::string line; std::getline(log, line);) {
      if (line.find(") failed: ") != std::string::npos) return line;
    }
  }
  return "";
}

namespace fs = std::filesystem;

int Fail(const std::string& message) {
  std::fprintf(stderr, "\nseedproof: error: %s\n", message.c_str());
  return 1;
}

// A fresh 128-bit token for this run's coordinator, readable by this user only.
absl::StatusOr<std::string> WriteToken(const fs::path& path) {
  std::random_device random;
  std::string token;
  for (int i = 0; i < 4; ++i) absl::StrAppend(&token, absl::Hex(random(), absl::kZeroPad8));
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return absl::PermissionDeniedError(absl::StrCat(path.string(), ": cannot write"));
  const std::string line = token + "\n";
  const bool ok = write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  close(fd);
  if (!ok) return absl::PermissionDeniedError(absl::StrCat(path.string(), ": cannot write"));
  return token;
}

class ProgressBar {
 public:
  void Show(const rpc::SweepStatus& s, int already_done) {
    const int finished = s.done() + s.failed() + s.blocked() + s.cancelled();
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const int ran = finished - already_done;  // the rate is this run's
    const double eta = ran > 0 ? elapsed * (s.total() - finished) / ran : 0.0;
    const std::string problems =
        s.failed() + s.blocked() > 0
            ? absl::StrCat("  (", s.failed(), " failed, ", s.blocked(), " blocked)")
            : "";
    if (tty_) {
      constexpr int kWidth = 30;
      const int filled = s.total() > 0 ? kWidth * finished / s.total() : kWidth;
      std::fprintf(stderr, "\r[%s%s] %d/%d trials  %d running  %.0fs elapsed  ETA %.0fs%s   ",
                   std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(),
                   finished, s.total(), s.leased(), elapsed, eta, problems.c_str());
    } else if (const int decile = s.total() > 0 ? 10 * finished / s.total() : 10;
               decile != last_decile_) {
      last_decile_ = decile;
      std::fprintf(stderr, "%d/%d trials, %.0fs elapsed, ETA %.0fs%s\n", finished, s.total(),
                   elapsed, eta, problems.c_str());
    }
  }
  // A line of its own between progress updates (the bar is drawn again after it).
  void Note(const std::string& line) {
    std::fprintf(stderr, "%s%s\n", tty_ ? "\r\33[K" : "", line.c_str());
  }
  void End() {
    if (tty_) std::fprintf(stderr, "\n");
  }

 private:
  const bool tty_ = isatty(STDERR_FILENO);
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  int last_decile_ = -1;
};

}  // namespace

int RunCommand(RunCommandOptions options) {
  std::ifstream spec_in(options.spec_path);
  if (!spec_in) {
    std::fprintf(stderr, "%s: cannot read: %s\n", options.spec_path.c_str(), std::strerror(errno));
    return 2;
  }
  const std::string spec_text((std::istreambuf_iterator<char>(spec_in)),
                              std::istreambuf_iterator<char>());
  auto loaded = LoadAndExpand(options.spec_path);  // every error here, before anything starts
  if (!loaded) return 2;
  const SweepSpec& spec = loaded->spec;
  if (options.out_dir.empty()) options.out_dir = "runs/" + spec.name;
  if (options.workers <= 0) {
    options.workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  const fs::path out = options.out_dir;
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return Fail(absl::StrCat(out.string(), ": cannot create: ", ec.message()));

  auto token = WriteToken(out / "token");
  if (!token.ok()) return Fail(std::string(token.status().message()));
  CoordinatorOptions coordinator;
  coordinator.listen = "127.0.0.1:0";
  coordinator.database = (out / "seedproof.db").string();
  coordinator.token = *token;
  coordinator.lease_ms = 60000;
  coordinator.heartbeat_ms = 2000;
  // Only this command's workers use this database, and they died with it.
  coordinator.expire_leases_on_start = true;
  coordinator.metrics_listen = options.metrics_listen;
  if (!options.metrics_listen.empty()) coordinator.worker_sd_file = (out / "workers.json").string();
  auto server = CoordinatorServer::Start(coordinator);
  if (!server.ok()) return Fail(std::string(server.status().message()));
  const std::string address = absl::StrCat("127.0.0.1:", (*server)->port());

  auto channel = MakeChannel(address, "");
  auto stub = rpc::Studies::NewStub(*channel);
  const RpcAuth auth{*token};

  // Resume the sweep of this spec if the folder holds it; never mix studies.
  std::string sweep_id;
  {
    grpc::ClientContext ctx;
    auth.Apply(ctx, 10000);
    rpc::ListReply list;
    if (auto s = FromGrpc(stub->List(&ctx, rpc::ListRequest(), &list), "list"); !s.ok()) {
      return Fail(std::string(s.message()));
    }
    for (const rpc::SweepStatus& s : list.sweeps()) {
      if (s.name() != spec.name) {
        return Fail(absl::StrCat(out.string(), " holds another study (", s.name(),
                                 "); choose another --out"));
      }
      sweep_id = s.sweep_id();  // the latest submission of this study
    }
  }
  int already_done = 0;
  if (!sweep_id.empty()) {
    grpc::ClientContext ctx;
    auth.Apply(ctx, 10000);
    rpc::SweepRef ref;
    ref.set_sweep_id(sweep_id);
    rpc::SweepStatus status;
    if (auto s = FromGrpc(stub->Get(&ctx, ref, &status), "status"); !s.ok()) {
      return Fail(std::string(s.message()));
    }
    already_done = status.done() + status.failed() + status.blocked() + status.cancelled();
    std::fprintf(stderr, "resuming %s in %s: %d of %d trials already finished\n", sweep_id.c_str(),
                 out.c_str(), already_done, status.total());
  } else {
    grpc::ClientContext ctx;
    auth.Apply(ctx, 60000);
    rpc::SubmitRequest request;
    request.set_spec_text(spec_text);
    request.set_spec_path(options.spec_path);
    rpc::SweepStatus status;
    if (auto s = FromGrpc(stub->Submit(&ctx, request, &status), "submit"); !s.ok()) {
      return Fail(std::string(s.message()));
    }
    sweep_id = status.sweep_id();
  }
  std::fprintf(stderr, "%s: sweep %s, %zu trials, %d worker process(es) x %d thread(s)\n",
               spec.name.c_str(), sweep_id.c_str(), loaded->plan.trials.size(), options.workers,
               options.threads);
  if ((*server)->metrics_port() > 0) {
    std::fprintf(stderr, "metrics: %s (port %d), workers' addresses in %s\n",
                 options.metrics_listen.c_str(), (*server)->metrics_port(),
                 coordinator.worker_sd_file.c_str());
  }

  LocalWorkers workers(
      {.args = {"worker", "--coordinator", address, "--token-file", (out / "token").string(),
                "--backend", options.backend, "--threads", std::to_string(options.threads),
                "--metrics-listen", options.metrics_listen.empty() ? "" : "127.0.0.1:0"},
       .count = options.workers,
       .log_dir = out});
  workers.Start();

  ProgressBar bar;
  rpc::SweepStatus status;
  std::string failure;
  // A dead worker's attempts fail now (each counts as a failed attempt, as an
  // expired lease would) so its trial runs again without waiting out the lease.
  const auto worker_gone = [&](const std::string& worker_id, const std::string& reason) {
    (*server)->WorkerGone(worker_id, reason).IgnoreError();
  };
  const auto note = [&](const std::string& line) { bar.Note(line); };
  for (;;) {
    grpc::ClientContext ctx;
    auth.Apply(ctx, 10000);
    rpc::SweepRef ref;
    ref.set_sweep_id(sweep_id);
    if (auto s = FromGrpc(stub->Get(&ctx, ref, &status), "status"); !s.ok()) {
      failure = std::string(s.message());
      break;
    }
    bar.Show(status, already_done);
    if (status.state() != rpc::SWEEP_RUNNING) break;
    const int finished = status.done() + status.failed() + status.blocked() + status.cancelled();
    if (!workers.Supervise(finished, worker_gone, note)) {
      failure = absl::StrCat("every worker was given up after repeated crashes; see ",
                             workers.LogOf(0).string());
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  bar.End();
  workers.Stop();
  if (workers.restarts() > 0) {
    std::fprintf(stderr, "%d worker restart(s) during this run\n", workers.restarts());
  }
  if (!failure.empty()) return Fail(failure);

  // The results file, written whole and then renamed into place, and the report.
  auto text = FetchResultsFile(*channel, auth, sweep_id);
  if (!text.ok()) return Fail(std::string(text.status().message()));
  const fs::path results = out / "results.jsonl";
  if (auto s = WriteFileAtomically(results.string(), *text); !s.ok()) {
    return Fail(std::string(s.message()));
  }
  std::string report_line;
  if (auto study = ParseResultsFile(*text, results.string()); !study.ok()) {
    return Fail(std::string(study.status().message()));
  } else if (auto report = WriteRunReports(*study, out.string()); !report.ok()) {
    return Fail(std::string(report.status().message()));
  } else {
    report_line = absl::StrCat("report: ", *report, " (and `seedproof report ", out.string(),
                               " --format table|json|md|html`)\n");
  }
  (*server)->Shutdown();
  if (const std::string why = FirstFailureLogged(workers, options.workers); !why.empty()) {
    std::fprintf(stderr, "%s\n(the workers' logs in %s say why each attempt failed)\n",
                 why.c_str(), out.c_str());
  }
  std::printf(
      "\n%s: %d done, %d failed, %d blocked, %d cancelled of %d trials\nresults: %s\n"
      "database: %s\n%s",
      sweep_id.c_str(), status.done(), status.failed(), status.blocked(), status.cancelled(),
      status.total(), results.c_str(), (out / "seedproof.db").c_str(), report_line.c_str());
  return status.failed() > 0 ? 1 : 0;
}

}  // namespace seedproof
