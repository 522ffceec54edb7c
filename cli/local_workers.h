// The worker processes of `seedproof run`: started on this machine, watched, and
// restarted when one dies, so that a study of hours does not end because the
// kernel's OOM killer took a worker.
//
//   LocalWorkers workers({.program = "/proc/self/exe", .args = {...}, .count = 2, ...});
//   workers.Start();
//   while (running) {
//     if (!workers.Supervise(trials_finished, on_gone, report)) break;  // all gave up
//   }
//   workers.Stop();
//
// A worker that exits while the study runs (a signal, or any exit code: it is
// meant to run until Stop) is reported, on_gone gives its attempts back to the
// coordinator at once, and it is started again after a backoff that doubles with
// each restart. Restarts are bounded: a worker that dies max_restarts times in a
// row, with no trial of the study finishing in between, is given up. A trial that
// keeps killing its worker fails by the coordinator's own rule (max attempts).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace seedproof {

struct LocalWorkerOptions {
  std::string program = "/proc/self/exe";  // this binary
  // argv after the program name; each worker also gets "--id", "local-<i>".
  std::vector<std::string> args;
  int count = 1;
  std::filesystem::path log_dir;  // worker i writes log_dir/worker-<i>.log
  int max_restarts = 5;           // in a row, without a trial finishing in between
  std::chrono::milliseconds first_backoff{500};
  std::chrono::milliseconds max_backoff{30000};
  // Adds "--id local-<i>" to each worker's argv (off for programs that are not a
  // seedproof worker).
  bool pass_id = true;
};

class LocalWorkers {
 public:
  explicit LocalWorkers(LocalWorkerOptions options);
  ~LocalWorkers();  // Stop()
  LocalWorkers(const LocalWorkers&) = delete;
  LocalWorkers& operator=(const LocalWorkers&) = delete;

  // Starts every worker; each gets SIGTERM if this process dies.
  void Start();
  // Reaps workers that exited, reports each through report (which worker, its pid,
  // the signal or exit code, its log, and what happens next), calls on_gone with
  // its id and that reason, and starts again those whose backoff has passed.
  // trials_finished: the study's finished trials so far (a worker that saw one
  // finish since it started has its count of restarts in a row reset). Returns
  // false once every worker has been given up.
  bool Supervise(
      int trials_finished,
      const std::function<void(const std::string& worker_id, const std::string& reason)>& on_gone,
      const std::function<void(const std::string& line)>& report);
  // SIGTERM to every running worker, then waits for each; Supervise then starts
  // none again and returns false.
  void Stop();

  int restarts() const { return restarts_; }  // over all workers, so far
  std::filesystem::path LogOf(int worker) const;

 private:
  struct Slot {
    std::string id;
    pid_t pid = -1;                                  // -1: not running
    int restarts_in_a_row = 0;                       // since a trial last finished while it ran
    int finished_at_start = 0;                       // the study's finished trials when it started
    std::chrono::steady_clock::time_point start_at;  // when not running and not given up
    bool given_up = false;
    std::string last_exit;  // how it last ended, for its log
  };
  void Launch(int worker, int trials_finished, const std::string& why_again);

  const LocalWorkerOptions options_;
  std::vector<Slot> slots_;
  int restarts_ = 0;
  bool stopped_ = false;
};

// "killed by signal 9 (Killed)" or "exited with code 3", from a waitpid status.
std::string DescribeExit(int wait_status);

}  // namespace seedproof
