#include "cli/cluster_commands.h"

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "absl/strings/str_cat.h"
#include "cli/results_file.h"
#include "nlohmann/json.hpp"
#include "proto/seedproof.grpc.pb.h"
#include "worker/rpc_client.h"

namespace seedproof {
namespace {

std::atomic<bool> g_stop = false;

extern "C" void OnStopSignal(int) { g_stop = true; }

void HandleStopSignals() {
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "seedproof: error: %s\n", std::string(status.message()).c_str());
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

struct Client {
  std::unique_ptr<rpc::Studies::Stub> stub;
  RpcAuth auth;
};

absl::StatusOr<Client> Connect(const ClientOptions& options) {
  auto token = ReadToken(options.token_file);
  if (!token.ok()) return token.status();
  auto channel = MakeChannel(options.coordinator, options.root_cert);
  if (!channel.ok()) return channel.status();
  return Client{rpc::Studies::NewStub(*channel), RpcAuth{*token}};
}

void PrintStatus(const rpc::SweepStatus& s) {
  const int finished = s.done() + s.failed() + s.blocked() + s.cancelled();
  const double rate = s.trials_per_s();
  std::printf(
      "%s  %s  %s  %d/%d finished  (pending %d, leased %d, done %d, failed %d, blocked %d, "
      "cancelled %d)  %.2f trials/s",
      s.sweep_id().c_str(), s.name().c_str(), SweepStateWord(s.state()), finished, s.total(),
      s.pending(), s.leased(), s.done(), s.failed(), s.blocked(), s.cancelled(), rate);
  if (s.state() == rpc::SWEEP_RUNNING && rate > 0) {
    std::printf("  ETA %.0fs", (s.total() - finished) / rate);
  }
  std::printf("\n");
}

}  // namespace

int CoordinatorCommand(CoordinatorOptions options, const std::string& token_file,
                       const std::string& port_file) {
  auto token = ReadToken(token_file);
  if (!token.ok()) return Fail(token.status());
  options.token = *token;
  HandleStopSignals();
  auto server = CoordinatorServer::Start(options);
  if (!server.ok()) return Fail(server.status());
  std::fprintf(stderr, "coordinator listening on port %d, database %s\n", (*server)->port(),
               options.database.c_str());
  if ((*server)->metrics_port() > 0) {
    std::fprintf(stderr, "metrics on port %d\n", (*server)->metrics_port());
  }
  if (!port_file.empty()) {
    // Line 1: the gRPC port; line 2: the metrics port (0: not served).
    const absl::Status written = WriteFileAtomically(
        port_file, absl::StrCat((*server)->port(), "\n", (*server)->metrics_port(), "\n"));
    if (!written.ok()) {
      (*server)->Shutdown();
      return Fail(written);
    }
  }
  std::thread stopper([&] {
    while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    (*server)->Shutdown();
  });
  (*server)->Wait();
  g_stop = true;
  stopper.join();
  return 0;
}

int WorkerCommand(WorkerOptions options, const std::string& token_file) {
  auto token = ReadToken(token_file);
  if (!token.ok()) return Fail(token.status());
  options.token = *token;
  HandleStopSignals();
  if (auto s = RunWorker(options, &g_stop); !s.ok()) return Fail(s);
  return 0;
}

int SubmitCommand(const ClientOptions& client_options, const std::string& spec_path) {
  std::ifstream in(spec_path);
  if (!in) return Fail(absl::InvalidArgumentError(absl::StrCat(spec_path, ": cannot read")));
  rpc::SubmitRequest request;
  request.set_spec_text(
      std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
  // Absolute: the coordinator takes a dataset's relative path from the spec's
  // folder, and its own working folder is not this one.
  std::error_code ec;
  const std::filesystem::path absolute = std::filesystem::absolute(spec_path, ec);
  request.set_spec_path(ec ? spec_path : absolute.lexically_normal().string());
  auto client = Connect(client_options);
  if (!client.ok()) return Fail(client.status());
  grpc::ClientContext ctx;
  client->auth.Apply(ctx, 60000);
  rpc::SweepStatus reply;
  const grpc::Status status = client->stub->Submit(&ctx, request, &reply);
  if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
    // The coordinator's spec errors, one per line, as `seedproof plan` prints them.
    std::string message = status.error_message();
    if (message.rfind("spec_text: ", 0) == 0) message = message.substr(11);
    std::fprintf(stderr, "%s\n", message.c_str());
    return 2;
  }
  if (!status.ok()) return Fail(FromGrpc(status, "submit"));
  std::printf("%s\n", reply.sweep_id().c_str());
  return 0;
}

int StatusCommand(const ClientOptions& client_options, const std::string& sweep_id) {
  auto client = Connect(client_options);
  if (!client.ok()) return Fail(client.status());
  grpc::ClientContext ctx;
  client->auth.Apply(ctx, 10000);
  if (sweep_id.empty()) {
    rpc::ListReply reply;
    const grpc::Status status = client->stub->List(&ctx, rpc::ListRequest(), &reply);
    if (!status.ok()) return Fail(FromGrpc(status, "list"));
    for (const rpc::SweepStatus& s : reply.sweeps()) PrintStatus(s);
    return 0;
  }
  rpc::SweepRef ref;
  ref.set_sweep_id(sweep_id);
  rpc::SweepStatus reply;
  const grpc::Status status = client->stub->Get(&ctx, ref, &reply);
  if (!status.ok()) return Fail(FromGrpc(status, "status"));
  PrintStatus(reply);
  return 0;
}

int CancelCommand(const ClientOptions& client_options, const std::string& sweep_id) {
  auto client = Connect(client_options);
  if (!client.ok()) return Fail(client.status());
  grpc::ClientContext ctx;
  client->auth.Apply(ctx, 10000);
  rpc::SweepRef ref;
  ref.set_sweep_id(sweep_id);
  rpc::SweepStatus reply;
  const grpc::Status status = client->stub->Cancel(&ctx, ref, &reply);
  if (!status.ok()) return Fail(FromGrpc(status, "cancel"));
  PrintStatus(reply);
  return 0;
}

int ResultsCommand(const ClientOptions& client_options, const std::string& sweep_id,
                   const std::string& out_path) {
  auto token = ReadToken(client_options.token_file);
  if (!token.ok()) return Fail(token.status());
  auto channel = MakeChannel(client_options.coordinator, client_options.root_cert);
  if (!channel.ok()) return Fail(channel.status());
  auto text = FetchResultsFile(*channel, RpcAuth{*token}, sweep_id);
  if (!text.ok()) return Fail(text.status());
  if (out_path.empty() || out_path == "-") {
    std::fwrite(text->data(), 1, text->size(), stdout);
    return 0;
  }
  if (auto s = WriteFileAtomically(out_path, *text); !s.ok()) return Fail(s);
  return 0;
}

}  // namespace seedproof
