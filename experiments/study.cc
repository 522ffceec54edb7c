#include "experiments/study.h"

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "experiments/results.h"
#include "nlohmann/json.hpp"

namespace seedproof {
namespace {

// The outcomes of the trials an earlier run of this study wrote to `path`, by id
// (empty if there is no file yet). A file of another study is an error: its
// results are never overwritten. A last line cut short (the run was killed
// mid-write) is dropped; any other unreadable line is an error naming it.
absl::StatusOr<std::map<std::string, TrialOutcome>> ReadRecordedTrials(
    const std::string& path, const nlohmann::json& header) {
  std::map<std::string, TrialOutcome> recorded;
  std::ifstream in(path, std::ios::binary);
  if (!in) return recorded;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  if (text.empty()) return recorded;
  size_t complete = text.rfind('\n');
  complete = complete == std::string::npos ? 0 : complete + 1;
  int line_number = 0;
  for (size_t start = 0; start < complete;) {
    const size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      return absl::DataLossError(absl::StrCat(path, ":", line_number, ": not a JSON object"));
    }
    if (line_number == 1) {
      nlohmann::json found = j;
      if (found.contains("sweep")) found["sweep"].erase("spec");
      if (found != header) {
        return absl::FailedPreconditionError(absl::StrCat(
            path, " holds the results of another study (", j.dump(), "); choose another --out"));
      }
      continue;
    }
    auto result = TrialResultFromJson(j);
    if (!result.ok()) {
      return absl::DataLossError(absl::StrCat(path, ":", line_number, ": ", result.status().message()));
    }
    recorded[result->trial_id] = result->outcome;
  }
  if (complete < text.size()) {
    // Keep only the complete lines; the cut-short trial runs again.
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(complete));
    if (!out) return absl::DataLossError(absl::StrCat(path, ": cannot drop its cut-short last line"));
  }
  return recorded;  // no complete line: the header itself was cut short, and is gone
}

}  // namespace

absl::Status RunStudy(const SweepSpec& spec, const Plan& plan, const StudyOptions& options,
                      const std::function<void(const StudyProgress&)>& on_progress) {
  std::error_code ec;
  std::filesystem::create_directories(options.out_dir + "/artifacts", ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat(options.out_dir, ": cannot create the results folder: ", ec.message()));
  }
  const std::string results_path = options.out_dir + "/results.jsonl";
  const nlohmann::json header = {{"sweep",
                                  {{"name", spec.name},
                                   {"trials", plan.trials.size()},
                                   {"arms", plan.arms},
                                   {"targets", plan.targets},
                                   {"seeds", spec.seeds.count}}}};
  auto recorded = ReadRecordedTrials(results_path, header);
  if (!recorded.ok()) return recorded.status();
  std::ofstream results(results_path, std::ios::app);
  if (!results) return absl::PermissionDeniedError(absl::StrCat(results_path, ": cannot write"));
  if (recorded->empty() && std::filesystem::file_size(results_path, ec) == 0) {
    nlohmann::json first = header;
    first["sweep"]["spec"] = spec.path;  // where it came from; may differ on a resume
    results << first.dump() << "\n" << std::flush;
  }

  std::vector<std::unique_ptr<Backend>> backends;  // one per runner thread
  for (int i = 0; i < options.parallel_trials; ++i) {
    auto backend = MakeBackend(options.backend, {.threads = options.threads_per_trial});
    if (!backend.ok()) return backend.status();
    backends.push_back(std::move(*backend));
  }
  DirectoryArtifactStore artifacts(options.out_dir + "/artifacts");
  TrialCache cache;

  // The scheduler: a trial is ready when the pretrain trial it reuses is done.
  std::mutex mu;
  std::condition_variable changed;
  std::set<std::string> done;
  size_t next = 0;  // plan order puts dependencies first; scan from here
  std::vector<bool> started(plan.trials.size(), false);
  StudyProgress progress;
  progress.total = static_cast<int>(plan.trials.size());
  // Trials an earlier run recorded are not run again. A completed pretrain trial
  // counts only while its model file is still there.
  for (size_t i = 0; i < plan.trials.size(); ++i) {
    const TrialSpec& t = plan.trials[i];
    auto it = recorded->find(t.id);
    if (it == recorded->end()) continue;
    if (t.kind == TrialKind::kPretrain && it->second == TrialOutcome::kCompleted &&
        !std::filesystem::exists(artifacts.PathOf(t.id))) {
      continue;
    }
    started[i] = true;
    ++progress.done;
    ++progress.resumed;
    if (it->second == TrialOutcome::kCompleted) done.insert(t.id);
  }
  if (on_progress && progress.resumed > 0) on_progress(progress);
  absl::Status failure;

  auto ready = [&](const TrialSpec& t) {
    return t.source_trial.empty() || done.count(t.source_trial) > 0;
  };
  auto runner = [&](int index) {
    TrialContext ctx;
    ctx.backend = backends[index].get();
    ctx.artifacts = &artifacts;
    ctx.cache = &cache;
    ctx.threads = options.threads_per_trial;
    for (;;) {
      const TrialSpec* trial = nullptr;
      {
        std::unique_lock<std::mutex> lock(mu);
        for (;;) {
          if (!failure.ok() || progress.done == progress.total) return;
          for (size_t i = next; i < plan.trials.size(); ++i) {
            if (!started[i] && ready(plan.trials[i])) {
              started[i] = true;
              trial = &plan.trials[i];
              break;
            }
          }
          while (next < plan.trials.size() && started[next]) ++next;
          if (trial) break;
          if (next == plan.trials.size()) return;  // everything started; others finish
          changed.wait(lock);
        }
      }
      auto result = RunTrial(*trial, ctx);
      std::lock_guard<std::mutex> lock(mu);
      if (!result.ok()) {
        if (failure.ok()) failure = result.status();
      } else {
        auto record = [&](const TrialResult& r) {
          results << TrialResultToJson(r).dump() << "\n" << std::flush;
          ++progress.done;
          progress.diverged += r.outcome == TrialOutcome::kDiverged ? 1 : 0;
          progress.blocked += r.outcome == TrialOutcome::kBlocked ? 1 : 0;
          progress.last = &r;
          if (on_progress) on_progress(progress);
          progress.last = nullptr;
        };
        record(*result);
        if (result->outcome == TrialOutcome::kCompleted) {
          done.insert(trial->id);
        } else {
          // Its dependents can never run: record them as blocked by it.
          for (size_t i = 0; i < plan.trials.size(); ++i) {
            if (!started[i] && plan.trials[i].source_trial == trial->id) {
              started[i] = true;
              record(BlockedResult(plan.trials[i], trial->id));
            }
          }
        }
      }
      changed.notify_all();
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < options.parallel_trials; ++i) threads.emplace_back(runner, i);
  for (std::thread& t : threads) t.join();
  if (!failure.ok()) return failure;
  if (!results) return absl::ResourceExhaustedError(absl::StrCat(results_path, ": write failed"));
  return absl::OkStatus();
}

}  // namespace seedproof
