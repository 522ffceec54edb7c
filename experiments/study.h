// Runs a whole plan in this process: trials in dependency order, a few at a
// time, each result appended to a results file as it completes. This is the
// engine of `seedproof run` until the coordinator and workers take it over.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "experiments/sweep.h"
#include "experiments/trial.h"

namespace seedproof {

struct StudyOptions {
  std::string backend = "onednn";
  int parallel_trials = 1;    // trials running at once
  int threads_per_trial = 1;  // backend threads of each
  std::string out_dir;        // results.jsonl and artifacts/ go here
};

struct StudyProgress {
  int done = 0, total = 0, diverged = 0, blocked = 0;
  int resumed = 0;  // of done: recorded by an earlier run of the same study
  const TrialResult* last = nullptr;
};

// Writes out_dir/results.jsonl: a first line {"sweep": {...}} naming the spec, then
// one TrialResult object per line in completion order. Stops at the first failed
// trial (a diverged trial is a result, not a failure). Resumes: trials already in
// the file are not run again and new results are appended; a file of another
// study (other name, trials, arms, targets or seeds) is left alone and is an error.
absl::Status RunStudy(const SweepSpec& spec, const Plan& plan, const StudyOptions& options,
                      const std::function<void(const StudyProgress&)>& on_progress);

}  // namespace seedproof
