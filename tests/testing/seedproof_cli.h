// Running the built `seedproof` binary from a test, and reading the results
// files it writes. Shared by tests/cli and tests/cluster.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace seedproof::testing_support {

inline const std::string kSeedproof = absl::StrCat(SEEDPROOF_BINARY_DIR, "/cli/seedproof");

struct CommandRun {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `seedproof ARGS` through the shell and waits for it.
inline CommandRun RunSeedproof(const std::string& args) {
  // CTest runs tests in parallel processes: each call gets its own file.
  static int calls = 0;
  const std::filesystem::path err_file =
      std::filesystem::path(::testing::TempDir()) /
      absl::StrCat("seedproof_stderr_", getpid(), "_", ++calls, ".txt");
  const std::string command = absl::StrCat(kSeedproof, " ", args, " 2>", err_file.string());
  CommandRun run;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return run;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) run.out.append(buffer, n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream err(err_file);
  run.err.assign(std::istreambuf_iterator<char>(err), std::istreambuf_iterator<char>());
  std::filesystem::remove(err_file);
  return run;
}

// Starts `seedproof ARGS...` without waiting for it; its stdout and stderr go to
// output_file.
inline pid_t StartSeedproof(const std::vector<std::string>& args,
                            const std::filesystem::path& output_file) {
  std::vector<std::string> argv_strings = {kSeedproof};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    if (std::freopen(output_file.c_str(), "w", stderr) == nullptr) _exit(126);
    dup2(STDERR_FILENO, STDOUT_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// Polls ready() until it is true or timeout passes; true if it became true. The
// one way these tests wait for something to happen: on state they can see (a
// file, a log line, a count), never on the clock alone.
inline bool WaitUntil(const std::function<bool()>& ready,
                      std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (ready()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// The whole file; "" when it cannot be read (yet).
inline std::string ReadFileText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The live children of a process, from /proc (a zombie counts as gone).
inline std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> children;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces.
    const std::string stat = ReadFileText(entry.path() / "stat");
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) != 2) continue;
    if (ppid == parent && state != 'Z') children.push_back(std::stoi(name));
  }
  return children;
}

// Gone: exited and reaped, or a zombie.
inline bool ProcessGone(pid_t pid) {
  const std::string stat = ReadFileText(absl::StrCat("/proc/", pid, "/stat"));
  const size_t close = stat.rfind(')');
  return close == std::string::npos || stat.compare(close, 4, ") Z ") == 0;
}

// Kills a `seedproof run` as a crash would, with its workers frozen first so none
// moves the study on (SIGSTOP them, SIGKILL the run, then them); true once every
// worker is gone (WaitUntil's deadline).
inline bool CrashRunAndWorkers(pid_t run) {
  const std::vector<pid_t> workers = ChildrenOf(run);
  for (pid_t worker : workers) kill(worker, SIGSTOP);
  kill(run, SIGKILL);
  waitpid(run, nullptr, 0);
  for (pid_t worker : workers) kill(worker, SIGKILL);
  return !workers.empty() &&
         WaitUntil([&] { return std::all_of(workers.begin(), workers.end(), ProcessGone); });
}

// The child of parent whose command line holds arg (e.g. "local-1"); -1 if none.
inline pid_t ChildWithArg(pid_t parent, const std::string& arg) {
  for (pid_t child : ChildrenOf(parent)) {
    std::string cmdline = ReadFileText(absl::StrCat("/proc/", child, "/cmdline"));
    for (char& c : cmdline) c = c == '\0' ? '\n' : c;
    if (absl::StrContains(absl::StrCat("\n", cmdline), absl::StrCat("\n", arg, "\n"))) {
      return child;
    }
  }
  return -1;
}

// GET http://127.0.0.1:port/path (HTTP/1.0): the response, headers and all;
// "" when nothing answers.
inline std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\n\r\n");
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buffer[4096];
      for (ssize_t n; (n = read(fd, buffer, sizeof buffer)) > 0;) response.append(buffer, n);
    }
  }
  close(fd);
  return response;
}

// The value of an unlabelled series in Prometheus text (e.g. "seedproof_x 3");
// -1 when it is not there.
inline double MetricValue(const std::string& text, const std::string& name) {
  const std::string prefix = absl::StrCat("\n", name, " ");
  const size_t at = text.find(prefix);
  if (at == std::string::npos) return -1;
  return std::atof(text.c_str() + at + prefix.size());
}

inline std::vector<nlohmann::json> ReadJsonLines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

// A results file's trials by id, wall-clock times removed (they differ run to
// run; everything else must not). A trial recorded twice fails the test.
inline std::map<std::string, nlohmann::json> ResultsById(const std::filesystem::path& path) {
  const std::vector<nlohmann::json> lines = ReadJsonLines(path);
  std::map<std::string, nlohmann::json> by_id;
  for (size_t i = 1; i < lines.size(); ++i) {  // line 0: the header
    nlohmann::json r = lines[i];
    r.erase("wall_seconds");
    r.erase("phase_seconds");
    for (auto& e : r["epochs"]) e.erase("seconds");
    EXPECT_EQ(by_id.count(r["trial_id"]), 0u) << "recorded twice: " << r["trial_id"];
    by_id[r["trial_id"]] = r;
  }
  return by_id;
}

}  // namespace seedproof::testing_support
