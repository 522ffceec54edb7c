#include "worker/rpc_client.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <thread>

#include "absl/strings/str_cat.h"

namespace seedproof {

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& address,
                                                           const std::string& root_cert_file,
                                                           bool own_connection) {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!root_cert_file.empty()) {
    std::ifstream in(root_cert_file);
    if (!in) return absl::NotFoundError(absl::StrCat(root_cert_file, ": cannot read"));
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    credentials = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  if (own_connection) args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, credentials, args);
}

void RpcAuth::Apply(grpc::ClientContext& context, int64_t deadline_ms) const {
  context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
}

absl::StatusOr<std::string> ReadToken(const std::string& token_file) {
  std::string token;
  if (token_file.empty()) {
    const char* env = std::getenv("SEEDPROOF_TOKEN");
    if (!env || !*env) {
      return absl::InvalidArgumentError("no token: give --token-file or set SEEDPROOF_TOKEN");
    }
    token = env;
  } else {
    std::ifstream in(token_file);
    if (!in) return absl::NotFoundError(absl::StrCat(token_file, ": cannot read the token"));
    std::getline(in, token);
  }
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.size() < 16) {
    return absl::InvalidArgumentError(
        absl::StrCat(token_file.empty() ? "SEEDPROOF_TOKEN" : token_file,
                     ": a token has at least 16 characters"));
  }
  return token;
}

absl::Status FromGrpc(const grpc::Status& status, const std::string& what) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

absl::Status RetryWhileUnavailable(const std::function<absl::Status()>& call,
                                   const std::atomic<bool>* stop, double max_seconds) {
  const auto start = std::chrono::steady_clock::now();
  auto wait = std::chrono::milliseconds(100);
  for (;;) {
    absl::Status s = call();
    if (s.code() != absl::StatusCode::kUnavailable &&
        s.code() != absl::StatusCode::kDeadlineExceeded) {
      return s;
    }
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if ((stop && stop->load()) || (max_seconds > 0 && elapsed > max_seconds)) return s;
    if (wait == std::chrono::milliseconds(100)) {
      std::fprintf(stderr, "seedproof: %s: retrying until the coordinator answers\n",
                   std::string(s.message()).c_str());
    }
    std::this_thread::sleep_for(wait);
    wait = std::min(wait * 2, std::chrono::milliseconds(5000));
  }
}

std::string Hostname() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

const char* SweepStateWord(rpc::SweepState state) {
  switch (state) {
    case rpc::SWEEP_RUNNING:
      return "running";
    case rpc::SWEEP_CANCELLED:
      return "cancelled";
    case rpc::SWEEP_DONE:
      return "done";
    default:
      return "unspecified";
  }
}

}  // namespace seedproof
