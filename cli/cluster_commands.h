// The distributed commands: seedproof coordinator | worker | submit | status |
// cancel. Each returns the process exit code (0 ok, 1 failed, 2 bad input).
#pragma once

#include <string>

#include "coordinator/server.h"
#include "worker/worker.h"

namespace seedproof {

// Where a client finds the coordinator and how it proves itself.
struct ClientOptions {
  std::string coordinator = "127.0.0.1:50051";
  std::string token_file;  // empty: $SEEDPROOF_TOKEN
  std::string root_cert;   // PEM: TLS
};

// Serves until SIGINT or SIGTERM.
// port_file: written with the bound port once serving (for scripts and tests).
int CoordinatorCommand(CoordinatorOptions options, const std::string& token_file,
                       const std::string& port_file);
// Leases and runs trials until SIGINT or SIGTERM (the current trial stops at its
// next epoch boundary and its lease is released).
int WorkerCommand(WorkerOptions options, const std::string& token_file);
// Prints the new sweep's id; exit 2 when the coordinator rejects the spec.
int SubmitCommand(const ClientOptions& client, const std::string& spec_path);
// One sweep, or every sweep: counts by state, rate, ETA.
int StatusCommand(const ClientOptions& client, const std::string& sweep_id);
int CancelCommand(const ClientOptions& client, const std::string& sweep_id);
// Writes the sweep's results as results.jsonl (docs/RESULTS_FORMAT.md) to out_path.
int ResultsCommand(const ClientOptions& client, const std::string& sweep_id,
                   const std::string& out_path);

}  // namespace seedproof
