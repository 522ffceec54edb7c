// What the coordinator's gRPC code shares: the clock the store is given and the
// mapping of an absl::Status onto the wire. Included by server.cc and
// lease_waiters.cc only.
#pragma once

#include <grpcpp/support/status.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace seedproof {

// Milliseconds since the epoch: every time the store keeps.
inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The same code and message (absl's codes are gRPC's).
inline grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace seedproof
