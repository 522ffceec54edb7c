// What every client of the coordinator needs (workers and the submitting CLI):
// a channel (TLS when a root certificate is given), the bearer token on each
// call, gRPC statuses as absl ones, and retrying while the coordinator is away.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/seedproof.pb.h"
#include "proto/wire_limits.h"

namespace seedproof {

// A channel to the coordinator; TLS when root_cert_file is given. Channels of one
// process with the same address share one connection unless own_connection (the
// coordinator benchmark: its in-process workers stand for separate processes).
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& address,
                                                           const std::string& root_cert_file,
                                                           bool own_connection = false);

struct RpcAuth {
  std::string token;
  // Sets the bearer token and a deadline on one call's context.
  void Apply(grpc::ClientContext& context, int64_t deadline_ms) const;
};

// The token from a file (first line) or, with an empty path, $SEEDPROOF_TOKEN.
absl::StatusOr<std::string> ReadToken(const std::string& token_file);

absl::Status FromGrpc(const grpc::Status& status, const std::string& what);

// Calls `call` until it returns anything but UNAVAILABLE or DEADLINE_EXCEEDED,
// waiting 0.1 s, 0.2 s, ... up to 5 s between tries. Gives up when *stop is set
// or after max_seconds (0: never). The first retry of a call is said on stderr
// ("seedproof: lease: ...: retrying until the coordinator answers").
absl::Status RetryWhileUnavailable(const std::function<absl::Status()>& call,
                                   const std::atomic<bool>* stop = nullptr, double max_seconds = 0);

std::string Hostname();

// "running", "cancelled", "done" (the words of status lines and results files);
// "unspecified" for anything else.
const char* SweepStateWord(rpc::SweepState state);

}  // namespace seedproof
