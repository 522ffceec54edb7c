// The coordinator process: the Studies and Trials gRPC services over a Store.
// Submitted specs are validated and expanded here; workers lease trials with a
// long poll; leases expire unless heartbeats renew them.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace seedproof {

struct CoordinatorOptions {
  std::string listen = "127.0.0.1:50051";  // port 0: pick a free one (see port())
  std::string database;                    // SQLite file
  std::string token;                       // every call must carry it
  std::string tls_cert, tls_key;           // PEM files: serve TLS when both are given
  int64_t lease_ms = 30000;
  int64_t heartbeat_ms = 5000;
  int max_attempts = 3;
  int64_t max_artifact_bytes = int64_t{64} << 30;  // StoreOptions::max_artifact_bytes
  int64_t max_upload_bytes = int64_t{512} << 20;   // one artifact a worker uploads
  int64_t max_workers = 100000;                    // StoreOptions::max_workers
  // Streams open at once of each kind (Watch and Results; artifact uploads and
  // downloads), each holding a thread while it lasts; one more is UNAVAILABLE.
  int64_t max_streams = 256;
  // Every lease in the database belongs to a worker that is gone (`seedproof run`
  // restarting with its own workers): give them back now, uncounted, instead of
  // waiting for their deadlines.
  bool expire_leases_on_start = false;
  // Prometheus /metrics (docs/OBSERVABILITY.md); empty: not served.
  std::string metrics_listen;
  // A Prometheus file_sd file of the workers' /metrics addresses; empty: none.
  std::string worker_sd_file;
};

class CoordinatorServer {
 public:
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(
      const CoordinatorOptions& options);
  virtual ~CoordinatorServer() = default;
  virtual int port() const = 0;
  virtual int metrics_port() const = 0;  // 0 when metrics are not served
  // The worker's process is known to have died (`seedproof run` reaped it): each
  // attempt it held fails now with reason, counting towards max_attempts, instead
  // of expiring at its deadline; waiting workers are woken. Returns how many.
  virtual absl::StatusOr<int> WorkerGone(const std::string& worker_id,
                                         const std::string& reason) = 0;
  // Blocks until Shutdown (from another thread or a signal handler's thread).
  virtual void Wait() = 0;
  virtual void Shutdown() = 0;
};

}  // namespace seedproof
