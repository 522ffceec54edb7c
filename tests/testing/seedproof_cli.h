// Running the built `seedproof` binary from a test, and reading the results
// files it writes. Shared by tests/cli and tests/cluster.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

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
