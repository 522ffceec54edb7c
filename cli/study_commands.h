// `seedproof plan` and `seedproof run`. Each returns the process exit code:
// 0 done, 1 failed while running, 2 the spec is invalid (one error per line on
// stderr as FILE:LINE:COL: FIELD: message; nothing runs).
#pragma once

#include <string>

#include "experiments/study.h"

namespace seedproof {

int PlanCommand(const std::string& spec_path, bool json);

struct RunCommandOptions {
  std::string spec_path;
  StudyOptions study;  // out_dir empty: runs/<sweep name>
};
int RunCommand(RunCommandOptions options);

}  // namespace seedproof
