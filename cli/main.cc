// seedproof's command line. The only place that parses argv (CLI11 lives in this
// one translation unit); every command returns an absl::Status that becomes a
// message on stderr and a non-zero exit code here.
#include <algorithm>
#include <cstdio>
#include <limits>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "bench/cache_bench.h"
#include "bench/coordinator_bench.h"
#include "bench/data_bench.h"
#include "bench/engine_bench.h"
#include "bench/mpi_bench.h"
#include "bench/peak_bench.h"
#include "cli/cluster_commands.h"
#include "cli/demo.h"
#include "cli/model_commands.h"
#include "cli/report_command.h"
#include "cli/run_command.h"
#include "cli/study_commands.h"

namespace {

int Finish(const absl::Status& status) {
  if (status.ok()) return 0;
  std::fprintf(stderr, "seedproof: error: %s\n", std::string(status.message()).c_str());
  return 1;
}

// "" when address is HOST:PORT: an IPv4 address (each part <= 255), a bracketed
// IPv6 address or a host name, and a port in [min_port, 65535]; else the
// complaint, with `example`. gRPC and the HTTP server behind /metrics would take
// 999.1.1.1 as 231.1.1.1, and a worker would retry a malformed address forever.
std::string HostPortProblem(const std::string& address, int min_port, const char* example) {
  const size_t colon = address.rfind(':');
  const std::string host = colon == std::string::npos ? "" : address.substr(0, colon);
  const std::string port = colon == std::string::npos ? "" : address.substr(colon + 1);
  const std::string expected =
      std::string("expected HOST:PORT like ") + example + ", got '" + address + "'";
  if (host.empty() || port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535 ||
      std::stoi(port) < min_port) {
    return expected;
  }
  if (host.front() == '[') return host.back() == ']' ? "" : expected;
  if (host.find_first_not_of("0123456789.") == std::string::npos) {
    int parts = 0;
    for (size_t begin = 0; begin <= host.size(); ++parts) {
      const size_t end = std::min(host.find('.', begin), host.size());
      const std::string part = host.substr(begin, end - begin);
      if (part.empty() || part.size() > 3 || std::stoi(part) > 255) return expected;
      begin = end + 1;
    }
    return parts == 4 ? "" : expected;
  }
  return host.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") ==
                 std::string::npos
             ? ""
             : expected;
}

// A listening address (port 0: any free one); "" for none where allowed.
const CLI::Validator kListenAddress(
    [](std::string& address) {
      return address.empty() ? "" : HostPortProblem(address, 0, "127.0.0.1:9464");
    },
    "HOST:PORT");
// A count or size of at least one (the coordinator's limits).
const CLI::Range kAtLeastOne(int64_t{1}, std::numeric_limits<int64_t>::max());
// An MPI group's bucket for overlapping reductions: 0 (none) up to 1 GiB.
const CLI::Range kBucketKib(int64_t{0}, int64_t{1} << 20);
// Where the coordinator is.
const CLI::Validator kCoordinatorAddress(
    [](std::string& address) { return HostPortProblem(address, 1, "node1:50051"); }, "HOST:PORT");

}  // namespace

int main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, so every absl::Mutex (gRPC's locks) keeps
  // a lock graph for deadlock detection: 7% of the coordinator's CPU under load and
  // 8% of its trials/s (docs/PERFORMANCE.md). The tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{"seedproof: transfer-learning studies that tell robust gains from seed luck"};
  app.require_subcommand(1);

  seedproof::DemoOptions demo;
  CLI::App* demo_cmd =
      app.add_subcommand("demo", "Train Géron's model A on Fashion-MNIST task A, epoch by epoch");
  demo_cmd->add_option("--backend", demo.backend, "onednn, reference, or a plugin .so path")
      ->capture_default_str();
  demo_cmd->add_option("--threads", demo.threads, "Threads for the math")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  demo_cmd->add_option("--epochs", demo.epochs)
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  demo_cmd->add_option("--batch", demo.batch)->check(CLI::Range(1, 1 << 20))->capture_default_str();
  demo_cmd->add_option("--seed", demo.seed)->capture_default_str();
  demo_cmd->add_option("--data", demo.dataset_dir, "Folder with the Fashion-MNIST IDX files")
      ->check(CLI::ExistingDirectory);
  demo_cmd->add_option("--save", demo.save_path, "Write the trained model to this file");

  std::string plan_spec;
  bool plan_json = false;
  CLI::App* plan_cmd =
      app.add_subcommand("plan", "Validate a sweep spec and print its trials without running them");
  plan_cmd->add_option("spec", plan_spec, "The sweep spec (YAML)")->required();
  plan_cmd->add_flag("--json", plan_json, "One JSON object instead of text");

  CLI::App* model_cmd =
      app.add_subcommand("model", "Model files: what is in one; any trained model as ONNX");
  model_cmd->require_subcommand(1);
  std::string show_path;
  CLI::App* model_show_cmd = model_cmd->add_subcommand(
      "show", "Layers, shapes, parameters and checksum of a seedproof or ONNX model file");
  model_show_cmd->add_option("file", show_path, "A .spm or .onnx file")->required();
  seedproof::ModelExportOptions model_export;
  CLI::App* model_export_cmd = model_cmd->add_subcommand(
      "export", "Write a model file, or a trial of a finished study, as ONNX");
  model_export_cmd
      ->add_option("source", model_export.source,
                   "A seedproof model file, or a `seedproof run` folder (or its database)")
      ->required();
  model_export_cmd->add_option("-o,--out", model_export.out, "The ONNX file to write")->required();
  model_export_cmd->add_option("--trial", model_export.trial, "A study's trial, by id");
  model_export_cmd->add_option("--arm", model_export.arm,
                               "A study's arm (or baseline; best: the highest mean test accuracy)");
  model_export_cmd
      ->add_option("--seed", model_export.seed, "The arm's seed (default: its most accurate one)")
      ->check(CLI::Range(0, 1 << 30));
  model_export_cmd->add_option("--target", model_export.target, "The target task (when several)");

  seedproof::RunCommandOptions run;
  CLI::App* run_cmd = app.add_subcommand(
      "run", "Run a whole study here: embedded coordinator, local workers, SQLite");
  run_cmd->add_option("spec", run.spec_path, "The sweep spec (YAML)")->required();
  run_cmd->add_option("--out", run.out_dir, "Results folder (default runs/<sweep name>)");
  run_cmd->add_option("--workers", run.workers, "Worker processes (default: one per core)")
      ->check(CLI::Range(1, 1024));
  run_cmd->add_option("--threads", run.threads, "Backend threads per worker")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  run_cmd->add_option("--backend", run.backend)->capture_default_str();
  run_cmd
      ->add_option("--metrics-listen", run.metrics_listen,
                   "Serve Prometheus /metrics here (coordinator; workers on free ports)")
      ->check(kListenAddress);

  CLI::App* bench_cmd = app.add_subcommand("bench", "Benchmarks (JSON lines on stdout)");
  bench_cmd->require_subcommand(1);
  seedproof::EngineBenchOptions engine;
  std::vector<int64_t> batches;
  std::vector<int> threads;
  bool frozen_only = false;
  CLI::App* engine_cmd = bench_cmd->add_subcommand(
      "engine",
      "Train Géron's model A for an epoch per configuration; without --batch, "
      "--threads or --frozen every combination of 32/256, 1/2 threads, frozen or not");
  engine_cmd->add_option("--backend", engine.backend)->capture_default_str();
  engine_cmd->add_option("--batch", batches, "Batch size (repeatable)")
      ->check(CLI::Range(1, 1 << 20));
  engine_cmd->add_option("--threads", threads, "Thread count (repeatable)")
      ->check(CLI::Range(1, 1024));
  engine_cmd->add_flag("--frozen", frozen_only, "Only the frozen case: 5 hidden layers frozen");
  engine_cmd->add_option("--epochs", engine.epochs, "Timed epochs per configuration")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  engine_cmd->add_option("--data", engine.dataset_dir)->check(CLI::ExistingDirectory);
  engine_cmd
      ->add_option("--spec", engine.spec_path,
                   "Train this sweep spec's source model with its pretrain optimizer "
                   "instead of model A (e.g. experiments/specs/geron-cnn.yaml)")
      ->check(CLI::ExistingFile);
  engine_cmd->add_option("--examples", engine.examples, "Train on the first N task-A images only")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));

  seedproof::CacheBenchOptions cache;
  CLI::App* cache_cmd = bench_cmd->add_subcommand(
      "cache", "The frozen phase of Géron's reuse-5 transfer with and without the prefix cache");
  cache_cmd->add_option("--spec", cache.spec_path)->check(CLI::ExistingFile)->capture_default_str();
  cache_cmd->add_option("--backend", cache.backend)->capture_default_str();
  cache_cmd->add_option("--threads", cache.threads)
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cache_cmd->add_option("--repeats", cache.repeats)
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();

  seedproof::DataBenchOptions data_bench;
  CLI::App* data_bench_cmd = bench_cmd->add_subcommand(
      "data", "Reading, decoding and hashing datasets in every format, images/s on one core");
  data_bench_cmd
      ->add_option("--dir", data_bench.dir,
                   "Where tests/data/write_formats.py wrote the formats' files")
      ->required()
      ->check(CLI::ExistingDirectory);
  data_bench_cmd->add_option("--repeats", data_bench.repeats, "Timed reads per format")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();

  seedproof::PeakBenchOptions peak;
  std::vector<int> peak_threads;
  CLI::App* peak_cmd = bench_cmd->add_subcommand(
      "peak", "FMA GFLOP/s per core, and the samples/s it allows Géron's model A at most");
  peak_cmd->add_option("--threads", peak_threads, "Threads at once (repeatable; default 1 and 2)")
      ->check(CLI::Range(1, 1024));
  peak_cmd->add_option("--seconds", peak.seconds, "Timed seconds per thread count")
      ->check(CLI::Range(0.05, 600.0))
      ->capture_default_str();

  seedproof::MpiBenchOptions mpi_bench;
  CLI::App* mpi_bench_cmd = bench_cmd->add_subcommand(
      "mpi", "Data-parallel pretraining of Géron's model A; run under mpirun -np R");
  mpi_bench_cmd->add_option("--backend", mpi_bench.backend)->capture_default_str();
  mpi_bench_cmd->add_option("--batch", mpi_bench.batch, "Global batch, split across the ranks")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  mpi_bench_cmd->add_option("--epochs", mpi_bench.epochs)
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  mpi_bench_cmd->add_option("--examples", mpi_bench.examples, "First N training images (0: all)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30))
      ->capture_default_str();
  mpi_bench_cmd->add_option("--threads", mpi_bench.threads, "Backend threads per rank")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  mpi_bench_cmd->add_option("--seed", mpi_bench.seed)->capture_default_str();
  mpi_bench_cmd
      ->add_option("--bucket-kib", mpi_bench.bucket_kib,
                   "Overlap the gradients' sum with the backward pass in buckets of N KiB (0: "
                   "one sum after it)")
      ->check(kBucketKib)
      ->capture_default_str();

  seedproof::CoordinatorBenchOptions coordinator_bench;
  CLI::App* coordinator_bench_cmd = bench_cmd->add_subcommand(
      "coordinator",
      "Trials/s and lease latency through gRPC + SQLite with workers that train nothing");
  coordinator_bench_cmd->add_option("--workers", coordinator_bench.workers)
      ->check(CLI::Range(1, 2000))
      ->capture_default_str();
  coordinator_bench_cmd->add_option("--trials", coordinator_bench.trials)
      ->check(CLI::Range(2, 200000))
      ->capture_default_str();
  coordinator_bench_cmd->add_option(
      "--backend", coordinator_bench.backend,
      "The workers' backend (default: the no-op plugin in the build's plugins/)");

  // ---- The distributed system ----
  std::string token_file;
  auto add_token = [&](CLI::App* cmd) {
    cmd->add_option("--token-file", token_file,
                    "File whose first line is the bearer token (default: $SEEDPROOF_TOKEN)");
  };
  seedproof::CoordinatorOptions coordinator;
  std::string port_file;
  CLI::App* coordinator_cmd =
      app.add_subcommand("coordinator", "Serve sweeps to workers (gRPC), state in SQLite");
  coordinator_cmd->add_option("--listen", coordinator.listen)
      ->check(kListenAddress)
      ->capture_default_str();
  coordinator_cmd->add_option("--db", coordinator.database, "SQLite file")->required();
  coordinator_cmd->add_option("--tls-cert", coordinator.tls_cert, "PEM certificate chain");
  coordinator_cmd->add_option("--tls-key", coordinator.tls_key, "PEM private key");
  coordinator_cmd->add_option("--lease-ms", coordinator.lease_ms)
      ->check(CLI::Range(int64_t{100}, int64_t{86400000}))
      ->capture_default_str();
  coordinator_cmd->add_option("--heartbeat-ms", coordinator.heartbeat_ms)
      ->check(CLI::Range(int64_t{20}, int64_t{3600000}))
      ->capture_default_str();
  coordinator_cmd->add_option("--max-attempts", coordinator.max_attempts)
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  coordinator_cmd
      ->add_option("--max-artifact-bytes", coordinator.max_artifact_bytes,
                   "All stored models and shipped datasets together")
      ->check(kAtLeastOne)
      ->capture_default_str();
  coordinator_cmd
      ->add_option("--max-upload-bytes", coordinator.max_upload_bytes, "One model a worker uploads")
      ->check(kAtLeastOne)
      ->capture_default_str();
  coordinator_cmd
      ->add_option("--max-workers", coordinator.max_workers,
                   "Worker ids kept (every id ever registered)")
      ->check(kAtLeastOne)
      ->capture_default_str();
  coordinator_cmd
      ->add_option("--max-streams", coordinator.max_streams,
                   "Streams open at once: watches and results, and artifact transfers, each")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  coordinator.metrics_listen = "127.0.0.1:9464";
  coordinator_cmd
      ->add_option("--metrics-listen", coordinator.metrics_listen,
                   "Prometheus /metrics address (port 0: any free one; \"\": none)")
      ->check(kListenAddress)
      ->capture_default_str();
  coordinator_cmd->add_option("--worker-sd-file", coordinator.worker_sd_file,
                              "Write the workers' /metrics addresses here (Prometheus file_sd)");
  coordinator_cmd->add_option("--port-file", port_file,
                              "Write the bound ports here once serving (gRPC, then metrics)");
  add_token(coordinator_cmd);

  seedproof::WorkerOptions worker;
  CLI::App* worker_cmd = app.add_subcommand("worker", "Lease and run trials from a coordinator");
  worker_cmd->add_option("--coordinator", worker.coordinator)
      ->check(kCoordinatorAddress)
      ->capture_default_str();
  worker_cmd->add_option("--id", worker.worker_id, "Worker id (default host:pid)");
  worker_cmd->add_option("--backend", worker.backend)->capture_default_str();
  worker_cmd->add_option("--threads", worker.threads)
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  worker_cmd->add_option("--tls-root", worker.root_cert, "PEM root certificate: use TLS");
  worker_cmd->add_option("--max-trials", worker.max_trials)->check(CLI::Range(0, 1 << 30));
  worker_cmd->add_flag("--exit-when-idle", worker.exit_when_idle, "Stop when nothing is ready");
  worker_cmd
      ->add_option("--split-min-examples", worker.split_min_examples,
                   "Under mpirun: trials with fewer training examples run one per rank")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))
      ->capture_default_str();
  worker_cmd
      ->add_option("--bucket-kib", worker.bucket_kib,
                   "Under mpirun: data-parallel steps sum gradients in buckets of N KiB while "
                   "the backward pass runs (0: one sum after it)")
      ->check(kBucketKib)
      ->capture_default_str();
  worker.metrics_listen = "127.0.0.1:0";
  worker_cmd
      ->add_option("--metrics-listen", worker.metrics_listen,
                   "Prometheus /metrics address (port 0: any free one; \"\": none)")
      ->check(kListenAddress)
      ->capture_default_str();
  add_token(worker_cmd);

  seedproof::ClientOptions client;
  auto add_client = [&](CLI::App* cmd) {
    cmd->add_option("--coordinator", client.coordinator)
        ->check(kCoordinatorAddress)
        ->capture_default_str();
    cmd->add_option("--tls-root", client.root_cert, "PEM root certificate: use TLS");
    add_token(cmd);
  };
  std::string submit_spec, sweep_id;
  CLI::App* submit_cmd = app.add_subcommand("submit", "Submit a sweep spec to a coordinator");
  submit_cmd->add_option("spec", submit_spec, "The sweep spec (YAML)")->required();
  add_client(submit_cmd);
  CLI::App* status_cmd = app.add_subcommand("status", "Counts by state, rate and ETA");
  status_cmd->add_option("sweep", sweep_id, "Sweep id (default: every sweep)");
  add_client(status_cmd);
  CLI::App* cancel_cmd = app.add_subcommand("cancel", "Stop leasing a sweep's trials");
  cancel_cmd->add_option("sweep", sweep_id, "Sweep id")->required();
  add_client(cancel_cmd);
  std::string results_out;
  CLI::App* results_cmd = app.add_subcommand("results", "Fetch a sweep's results as results.jsonl");
  results_cmd->add_option("sweep", sweep_id, "Sweep id")->required();
  results_cmd->add_option("--out", results_out, "File (default: stdout)");
  add_client(results_cmd);

  seedproof::ReportCommandOptions report;
  CLI::App* report_cmd = app.add_subcommand(
      "report", "Which arms are robust gains, robust losses, seed-dependent or no effect");
  report_cmd
      ->add_option("source", report.source,
                   "A results file, a `seedproof run` folder, or a sweep id on a coordinator")
      ->required();
  report_cmd->add_option("--format", report.format, "table, json, md or html")
      ->capture_default_str();
  report_cmd->add_option("-o,--out", report.out, "File (default: stdout)");
  report_cmd->add_option("--level", report.level, "Confidence level (default: the spec's)")
      ->check(CLI::Range(0.5, 0.9999));
  report_cmd->add_option("--correction", report.correction,
                         "holm, bh or none (default: the spec's)");
  report_cmd->add_option("--compare", report.compare,
                         "ARM,OTHER_ARM: also compare two arms, paired by seed; all: every pair");
  report_cmd->add_option("--resamples", report.resamples, "Bootstrap resamples")
      ->check(CLI::Range(1000, 10000000))
      ->capture_default_str();
  add_client(report_cmd);

  CLI11_PARSE(app, argc, argv);

  if (coordinator_cmd->parsed()) {
    return seedproof::CoordinatorCommand(coordinator, token_file, port_file);
  }
  if (worker_cmd->parsed()) return seedproof::WorkerCommand(worker, token_file);
  client.token_file = token_file;
  if (submit_cmd->parsed()) return seedproof::SubmitCommand(client, submit_spec);
  if (status_cmd->parsed()) return seedproof::StatusCommand(client, sweep_id);
  if (cancel_cmd->parsed()) return seedproof::CancelCommand(client, sweep_id);
  if (results_cmd->parsed()) return seedproof::ResultsCommand(client, sweep_id, results_out);
  if (report_cmd->parsed()) {
    report.client = client;
    return seedproof::ReportCommand(report);
  }

  if (model_show_cmd->parsed()) return seedproof::ModelShowCommand(show_path);
  if (model_export_cmd->parsed()) return seedproof::ModelExportCommand(model_export);
  if (demo_cmd->parsed()) return Finish(seedproof::RunDemo(demo));
  if (plan_cmd->parsed()) return seedproof::PlanCommand(plan_spec, plan_json);
  if (run_cmd->parsed()) return seedproof::RunCommand(run);
  if (engine_cmd->parsed()) {
    if (!batches.empty()) engine.batches = batches;
    if (!threads.empty()) engine.threads = threads;
    if (frozen_only)
      engine.frozen = {true};
    else if (!batches.empty() || !threads.empty())
      engine.frozen = {false};
    return Finish(seedproof::RunEngineBench(engine));
  }
  if (cache_cmd->parsed()) return Finish(seedproof::RunCacheBench(cache));
  if (data_bench_cmd->parsed()) return Finish(seedproof::RunDataBench(data_bench));
  if (peak_cmd->parsed()) {
    if (!peak_threads.empty()) peak.threads = peak_threads;
    return Finish(seedproof::RunPeakBench(peak));
  }
  if (mpi_bench_cmd->parsed()) return Finish(seedproof::RunMpiBench(mpi_bench));
  if (coordinator_bench_cmd->parsed()) {
    return Finish(seedproof::RunCoordinatorBench(coordinator_bench));
  }
  return 2;
}
