// seedproof's command line. The only place that parses argv (CLI11 lives in this
// one translation unit); every command returns an absl::Status that becomes a
// message on stderr and a non-zero exit code here.
#include <algorithm>
#include <cstdio>
#include <thread>

#include "CLI/CLI.hpp"
#include "bench/cache_bench.h"
#include "bench/engine_bench.h"
#include "cli/demo.h"
#include "cli/study_commands.h"

namespace {

int Finish(const absl::Status& status) {
  if (status.ok()) return 0;
  std::fprintf(stderr, "seedproof: error: %s\n", std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
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

  seedproof::RunCommandOptions run;
  run.study.parallel_trials = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  CLI::App* run_cmd = app.add_subcommand("run", "Run a whole study on this machine");
  run_cmd->add_option("spec", run.spec_path, "The sweep spec (YAML)")->required();
  run_cmd->add_option("--out", run.study.out_dir, "Results folder (default runs/<sweep name>)");
  run_cmd->add_option("--parallel", run.study.parallel_trials, "Trials at once")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  run_cmd->add_option("--threads", run.study.threads_per_trial, "Backend threads per trial")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  run_cmd->add_option("--backend", run.study.backend)->capture_default_str();

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

  CLI11_PARSE(app, argc, argv);

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
  return 2;
}
