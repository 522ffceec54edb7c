// The worker processes `seedproof run` supervises, with a stand-in program (a
// shell) for the worker: exits are named, restarts back off and are bounded.
#include "cli/local_workers.h"

#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/seedproof_cli.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing_support::ReadFileText;
using testing_support::WaitUntil;

fs::path Dir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(DescribeExit, NamesTheSignalOrTheExitCode) {
  EXPECT_EQ(DescribeExit(SIGKILL), "killed by signal 9 (Killed)");  // a wait status
  EXPECT_EQ(DescribeExit(3 << 8), "exited with code 3");
}

// A worker that dies at once every time is restarted max_restarts times in a
// row, then given up; every exit is reported and handed to on_gone.
TEST(LocalWorkers, AWorkerThatKeepsDyingIsRestartedABoundedNumberOfTimes) {
  const fs::path dir = Dir("local_workers_dying");
  LocalWorkers workers({.program = "/bin/sh",
                        .args = {"-c", "echo up; exit 3"},
                        .count = 1,
                        .log_dir = dir,
                        .max_restarts = 3,
                        .first_backoff = std::chrono::milliseconds(1),
                        .max_backoff = std::chrono::milliseconds(4),
                        .pass_id = false});
  workers.Start();
  std::vector<std::string> gone, reports;
  bool alive = true;
  ASSERT_TRUE(WaitUntil([&] {
    alive = workers.Supervise(
        0,
        [&](const std::string& id, const std::string& reason) {
          gone.push_back(id + ": " + reason);
        },
        [&](const std::string& line) { reports.push_back(line); });
    return !alive;
  }));
  ASSERT_EQ(gone.size(), 4u);  // the first run and 3 restarts
  for (const std::string& g : gone) EXPECT_THAT(g, HasSubstr("local-0: worker local-0 (pid "));
  EXPECT_THAT(gone[0], HasSubstr(") exited with code 3"));
  ASSERT_EQ(reports.size(), 4u);
  EXPECT_THAT(reports[0], HasSubstr("restarting in 0.0 s (restart 1 of at most 3 in a row)"));
  EXPECT_THAT(reports[0], HasSubstr((dir / "worker-0.log").string()));
  EXPECT_THAT(reports[3], HasSubstr("given up after 3 restarts in a row with no trial finishing"));
  EXPECT_EQ(workers.restarts(), 3);
  // One log across restarts, each marked.
  const std::string log = ReadFileText(dir / "worker-0.log");
  int ups = 0;
  for (size_t at = log.find("up\n"); at != std::string::npos; at = log.find("up\n", at + 1)) ++ups;
  EXPECT_EQ(ups, 4) << log;
  EXPECT_THAT(log, HasSubstr("--- seedproof run: worker local-0 (pid "));
  EXPECT_THAT(log, HasSubstr("exited with code 3; started again (restart 3 in a row) ---"));
}

// A trial finishing while a worker ran resets its count of restarts in a row: a
// worker killed now and then over a long study is never given up.
TEST(LocalWorkers, ProgressBetweenCrashesResetsTheCount) {
  const fs::path dir = Dir("local_workers_progress");
  LocalWorkers workers({.program = "/bin/sh",
                        .args = {"-c", "exit 1"},
                        .count = 1,
                        .log_dir = dir,
                        .max_restarts = 1,
                        .first_backoff = std::chrono::milliseconds(1),
                        .max_backoff = std::chrono::milliseconds(1),
                        .pass_id = false});
  workers.Start();
  int finished = 0, exits = 0;
  const auto count_exit = [&](const std::string&, const std::string&) { ++exits; };
  ASSERT_TRUE(WaitUntil([&] {
    EXPECT_TRUE(workers.Supervise(++finished, count_exit, [](const std::string&) {}));
    return exits >= 5;
  }));
  EXPECT_GE(workers.restarts(), 4);  // the fifth waits out its backoff
}

// Stop ends workers that run until told to, and none is started again.
TEST(LocalWorkers, StopEndsRunningWorkers) {
  const fs::path dir = Dir("local_workers_stop");
  LocalWorkers workers({.program = "/bin/sh",
                        .args = {"-c", "echo up; exec tail -f /dev/null"},
                        .count = 2,
                        .log_dir = dir,
                        .pass_id = false});
  workers.Start();
  ASSERT_TRUE(WaitUntil([&] {
    return ReadFileText(dir / "worker-0.log") == "up\n" &&
           ReadFileText(dir / "worker-1.log") == "up\n";
  }));
  workers.Stop();  // returns once both are reaped
  int reported = 0;
  EXPECT_FALSE(workers.Supervise(
      0, [&](const std::string&, const std::string&) { ++reported; }, [](const std::string&) {}));
  EXPECT_EQ(reported, 0);  // stopped on purpose: no crash to report
}

}  // namespace
}  // namespace seedproof
