// `seedproof run SPEC`: the whole system on this machine. An embedded
// coordinator on loopback with an SQLite file in the results folder, N local
// worker processes, a progress bar, and the results file at the end. Running it
// again on the same folder resumes: finished trials are not redone.
#pragma once

#include <string>

namespace seedproof {

struct RunCommandOptions {
  std::string spec_path;
  std::string out_dir;  // empty: runs/<sweep name>
  int workers = 0;      // 0: one per core
  int threads = 1;      // backend threads per worker
  std::string backend = "onednn";
  // Prometheus /metrics of the embedded coordinator; empty: none. When given, the
  // workers serve theirs on free loopback ports, listed in DIR/workers.json (file_sd).
  std::string metrics_listen;
};

// 0 done, 1 failed, 2 the spec is invalid (nothing runs).
int RunCommand(RunCommandOptions options);

}  // namespace seedproof
