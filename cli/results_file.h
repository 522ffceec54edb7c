// The results file (docs/RESULTS_FORMAT.md): one header line naming the study
// (with its spec, so the file is enough to analyse it) and one line per trial
// result. `run` and `results` write it; `report` reads it, or reads the same
// lines from a coordinator or from a run folder's database.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cli/results_parse.h"
#include "worker/rpc_client.h"

namespace seedproof {

// The whole file for a sweep, fetched from a coordinator.
absl::StatusOr<std::string> FetchResultsFile(const std::shared_ptr<grpc::Channel>& channel,
                                             const RpcAuth& auth, const std::string& sweep_id);

// The latest sweep in a coordinator database (a `seedproof run` folder's
// seedproof.db), as a results file: works while the run is going on.
absl::StatusOr<std::string> ResultsFileFromDatabase(const std::string& database_path);

// Writes text to path through a temporary file and a rename, so a reader never
// sees half a file.
absl::Status WriteFileAtomically(const std::string& path, const std::string& text);

}  // namespace seedproof
