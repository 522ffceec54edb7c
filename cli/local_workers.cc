#include "cli/local_workers.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace seedproof {

std::string DescribeExit(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    const int signal = WTERMSIG(wait_status);
    return absl::StrCat("killed by signal ", signal, " (", strsignal(signal), ")");
  }
  if (WIFEXITED(wait_status)) return absl::StrCat("exited with code ", WEXITSTATUS(wait_status));
  return absl::StrCat("ended with wait status ", wait_status);
}

LocalWorkers::LocalWorkers(LocalWorkerOptions options) : options_(std::move(options)) {
  slots_.resize(options_.count);
  for (int i = 0; i < options_.count; ++i) slots_[i].id = absl::StrCat("local-", i);
}

LocalWorkers::~LocalWorkers() { Stop(); }

std::filesystem::path LocalWorkers::LogOf(int worker) const {
  return options_.log_dir / absl::StrCat("worker-", worker, ".log");
}

void LocalWorkers::Start() {
  for (int i = 0; i < options_.count; ++i) Launch(i, 0, "");
}

void LocalWorkers::Launch(int worker, int trials_finished, const std::string& why_again) {
  Slot& slot = slots_[worker];
  const std::filesystem::path log = LogOf(worker);
  // A restarted worker's log goes on after the crash's, with a line between.
  if (!why_again.empty()) {
    std::ofstream(log, std::ios::app) << "\n--- seedproof run: " << why_again << " ---\n";
  }
  std::vector<std::string> args = {options_.program};
  args.insert(args.end(), options_.args.begin(), options_.args.end());
  if (options_.pass_id) {
    args.push_back("--id");
    args.push_back(slot.id);
  }
  // Everything the child needs is built before fork: after it, only calls that
  // are safe in the child of a threaded process.
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int flags = O_WRONLY | O_CREAT | (why_again.empty() ? O_TRUNC : O_APPEND);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);  // the parent died before prctl
    const int fd = open(log.c_str(), flags, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  slot.pid = pid;
  slot.finished_at_start = trials_finished;
}

bool LocalWorkers::Supervise(
    int trials_finished, const std::function<void(const std::string&, const std::string&)>& on_gone,
    const std::function<void(const std::string&)>& report) {
  if (stopped_) return false;
  const auto now = std::chrono::steady_clock::now();
  bool any_left = false;
  for (int i = 0; i < static_cast<int>(slots_.size()); ++i) {
    Slot& slot = slots_[i];
    int wait_status = 0;
    if (slot.pid > 0 && waitpid(slot.pid, &wait_status, WNOHANG) == slot.pid) {
      const std::string reason =
          absl::StrCat("worker ", slot.id, " (pid ", slot.pid, ") ", DescribeExit(wait_status));
      slot.pid = -1;
      slot.last_exit = reason;
      on_gone(slot.id, reason);
      if (trials_finished > slot.finished_at_start) slot.restarts_in_a_row = 0;
      if (slot.restarts_in_a_row >= options_.max_restarts) {
        slot.given_up = true;
        report(
            absl::StrCat(reason, "; given up after ", slot.restarts_in_a_row,
                         " restarts in a row with no trial finishing; log: ", LogOf(i).string()));
      } else {
        const auto backoff =
            std::min(options_.max_backoff,
                     options_.first_backoff * (1 << std::min(slot.restarts_in_a_row, 20)));
        ++slot.restarts_in_a_row;
        slot.start_at = now + backoff;
        report(absl::StrCat(reason, "; its trial goes back to the queue; restarting in ",
                            absl::StrFormat("%.1f", std::chrono::duration<double>(backoff).count()),
                            " s (restart ", slot.restarts_in_a_row, " of at most ",
                            options_.max_restarts, " in a row); log: ", LogOf(i).string()));
      }
    }
    if (slot.pid < 0 && !slot.given_up && now >= slot.start_at) {
      ++restarts_;
      Launch(i, trials_finished,
             absl::StrCat(slot.last_exit, "; started again (restart ", slot.restarts_in_a_row,
                          " in a row)"));
    }
    any_left = any_left || !slot.given_up;
  }
  return any_left;
}

void LocalWorkers::Stop() {
  stopped_ = true;
  for (Slot& slot : slots_) {
    if (slot.pid > 0) kill(slot.pid, SIGTERM);
  }
  for (Slot& slot : slots_) {
    if (slot.pid > 0) waitpid(slot.pid, nullptr, 0);
    slot.pid = -1;
  }
}

}  // namespace seedproof
