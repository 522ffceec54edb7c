// The scheduler alone: no database, only the rules of a trial's life.
#include "coordinator/scheduler.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace seedproof {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int kMaxAttempts = 3;
constexpr int64_t kDeadline = 1000;

TrialSpec Spec(const std::string& id, TrialKind kind, const std::string& source = "") {
  TrialSpec trial;
  trial.id = id;
  trial.kind = kind;
  trial.source_trial = source;
  return trial;
}

// "p" pretrains, "s" is a baseline, "t0".."t{n-1}" reuse p's model and "u" reuses t0's.
std::vector<TrialSpec> Dag(int transfers) {
  std::vector<TrialSpec> specs = {Spec("p", TrialKind::kPretrain), Spec("s", TrialKind::kScratch)};
  for (int i = 0; i < transfers; ++i) {
    specs.push_back(Spec(absl::StrCat("t", i), TrialKind::kTransfer, "p"));
  }
  specs.push_back(Spec("u", TrialKind::kTransfer, "t0"));
  return specs;
}

class SchedulerTest : public ::testing::Test {
 protected:
  // Adds a sweep of specs named `id`; it awaits confirmation when asked to.
  Scheduler::Sweep& Add(const std::string& id, const std::vector<TrialSpec>& specs,
                        bool awaiting_confirmation = false) {
    Scheduler::Sweep sweep;
    sweep.seq = scheduler_.NextSeq();
    sweep.id = id;
    sweep.awaiting_trials = awaiting_confirmation;
    auto added = Scheduler::AppendTrials(sweep, specs, /*skip_known=*/false);
    EXPECT_TRUE(added.ok()) << added.status();
    return scheduler_.AddSweep(std::move(sweep));
  }

  // Leases the next trial to a new attempt; "" when there is none.
  std::string Lease(int64_t deadline = kDeadline) {
    auto next = scheduler_.Next();
    if (!next) return "";
    scheduler_.StartAttempt(++attempts_, *next->sweep, next->trial, "w1", deadline);
    return next->sweep->trials[next->trial].id;
  }

  // The ids of the trials the calls since the last TakeChanges changed.
  std::vector<std::string> ChangedTrials() {
    std::vector<std::string> ids;
    for (const Scheduler::TrialRef& t : scheduler_.TakeChanges().trials) {
      ids.push_back(t.sweep->trials[t.trial].id);
    }
    return ids;
  }

  static TrialState StateOf(const Scheduler::Sweep& sweep, const std::string& id) {
    return sweep.trials[sweep.index.at(id)].state;
  }

  Scheduler scheduler_{kMaxAttempts};
  int64_t attempts_ = 0;  // the last attempt id issued; attempt n leased the nth Lease()
};

TEST_F(SchedulerTest, LeasesTheOldestSweepFirstInPlanOrderAndTransfersOnlyAfterTheirSource) {
  Add("a", Dag(2));
  Add("b", {Spec("x", TrialKind::kScratch)});
  EXPECT_EQ(Lease(), "p");
  EXPECT_EQ(Lease(), "s");
  EXPECT_EQ(Lease(), "x");  // a's transfers wait for p's model
  EXPECT_EQ(Lease(), "");
  scheduler_.Complete(1, TrialOutcome::kCompleted, "sha-of-p", 10);
  EXPECT_EQ(Lease(), "t0");
  EXPECT_EQ(Lease(), "t1");
  EXPECT_EQ(Lease(), "");  // u waits for t0
}

TEST_F(SchedulerTest, ADivergedSourceBlocksItsDependentsTransitivelyAndEndsTheSweep) {
  Scheduler::Sweep& sweep = Add("a", Dag(2));
  ASSERT_EQ(Lease(), "p");
  ASSERT_EQ(Lease(), "s");
  scheduler_.TakeChanges();
  scheduler_.Complete(1, TrialOutcome::kDiverged, "", 10);
  EXPECT_THAT(ChangedTrials(), ElementsAre("p", "t0", "u", "t1"));
  for (const char* id : {"t0", "t1", "u"}) {
    EXPECT_EQ(StateOf(sweep, id), TrialState::kBlocked) << id;
    EXPECT_EQ(sweep.trials[sweep.index.at(id)].blocked_by, "p") << id;
  }
  EXPECT_EQ(sweep.state, SweepState::kRunning);  // s still runs
  scheduler_.Complete(2, TrialOutcome::kCompleted, "", 20);
  EXPECT_EQ(sweep.state, SweepState::kDone);
  EXPECT_EQ(sweep.finished_ms, 20);
  const Scheduler::Changes changes = scheduler_.TakeChanges();
  ASSERT_EQ(changes.sweeps.size(), 1u);
  EXPECT_EQ(changes.sweeps[0]->id, "a");
  const SweepStatus status = scheduler_.StatusOf(sweep);
  EXPECT_EQ(status.done, 2);
  EXPECT_EQ(status.blocked, 3);
  EXPECT_EQ(status.total, 5);
}

TEST_F(SchedulerTest, CountedEndsFailATrialAtMaxAttemptsAndAReleaseIsNotCounted) {
  Scheduler::Sweep& sweep = Add("a", Dag(1));
  for (int attempt = 1; attempt < kMaxAttempts; ++attempt) {
    ASSERT_EQ(Lease(), "p");
    scheduler_.EndUnfinished(attempts_, /*counted=*/true, 10);
    EXPECT_EQ(StateOf(sweep, "p"), TrialState::kPending);
  }
  ASSERT_EQ(Lease(), "p");
  scheduler_.EndUnfinished(attempts_, /*counted=*/false, 10);  // released
  EXPECT_EQ(sweep.trials[0].failed_attempts, kMaxAttempts - 1);
  ASSERT_EQ(Lease(), "p");
  scheduler_.EndUnfinished(attempts_, /*counted=*/true, 10);
  EXPECT_EQ(StateOf(sweep, "p"), TrialState::kFailed);
  EXPECT_EQ(StateOf(sweep, "t0"), TrialState::kBlocked);
  EXPECT_EQ(StateOf(sweep, "u"), TrialState::kBlocked);
  EXPECT_EQ(Lease(), "s");
  EXPECT_EQ(Lease(), "");
}

TEST_F(SchedulerTest, DeadlinesExpireInOrderAndARenewalMovesOne) {
  Add("a", {Spec("x0", TrialKind::kScratch), Spec("x1", TrialKind::kScratch)});
  ASSERT_EQ(Lease(100), "x0");
  ASSERT_EQ(Lease(50), "x1");
  EXPECT_THAT(scheduler_.ExpiredBefore(50), IsEmpty());
  EXPECT_THAT(scheduler_.ExpiredBefore(101), ElementsAre(2, 1));
  scheduler_.Renew(2, 200);
  EXPECT_THAT(scheduler_.ExpiredBefore(101), ElementsAre(1));
  EXPECT_THAT(scheduler_.AttemptsOf("w1"), ElementsAre(1, 2));
  scheduler_.EndUnfinished(1, /*counted=*/true, 101);
  EXPECT_EQ(scheduler_.FindAttempt(1), nullptr);
  EXPECT_THAT(scheduler_.AttemptsOf("w1"), ElementsAre(2));
}

TEST_F(SchedulerTest, CancellingStopsLeasingAndALeasedTrialEndsCancelled) {
  Scheduler::Sweep& sweep = Add("a", Dag(1));
  ASSERT_EQ(Lease(), "p");
  ASSERT_TRUE(scheduler_.Cancel(sweep, 5).ok());
  EXPECT_EQ(Lease(), "");
  EXPECT_EQ(StateOf(sweep, "s"), TrialState::kCancelled);
  EXPECT_EQ(StateOf(sweep, "p"), TrialState::kLeased);  // runs on
  scheduler_.EndUnfinished(1, /*counted=*/true, 6);
  EXPECT_EQ(StateOf(sweep, "p"), TrialState::kCancelled);
  EXPECT_TRUE(scheduler_.Cancel(sweep, 7).ok());  // again: nothing changes
  EXPECT_EQ(sweep.finished_ms, 5);

  Scheduler::Sweep& done = Add("b", {Spec("x", TrialKind::kScratch)});
  ASSERT_EQ(Lease(), "x");
  scheduler_.Complete(attempts_, TrialOutcome::kCompleted, "", 8);
  const absl::Status refused = scheduler_.Cancel(done, 9);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.message(), HasSubstr("sweep b"));
}

TEST_F(SchedulerTest, ConfirmationTrialsWaitForTheirTurnAndAreBlockedBehindAFailedSource) {
  Scheduler::Sweep& sweep = Add("a", {Spec("p", TrialKind::kPretrain)}, true);
  ASSERT_EQ(Lease(), "p");
  scheduler_.Complete(1, TrialOutcome::kDiverged, "", 10);
  EXPECT_EQ(sweep.state, SweepState::kRunning);  // waits for its confirmation trials
  EXPECT_THAT(scheduler_.ReadyToExtend(), ElementsAre("a"));
  auto added = scheduler_.Extend(
      sweep, {Spec("p", TrialKind::kPretrain), Spec("c", TrialKind::kTransfer, "p")}, false, 11);
  ASSERT_TRUE(added.ok()) << added.status();
  ASSERT_EQ(added->size(), 1u);  // p is known
  EXPECT_EQ((*added)[0]->id, "c");
  EXPECT_EQ(StateOf(sweep, "c"), TrialState::kBlocked);
  EXPECT_EQ(sweep.trials[1].blocked_by, "p");
  EXPECT_EQ(sweep.state, SweepState::kDone);
  EXPECT_THAT(scheduler_.ReadyToExtend(), IsEmpty());
  EXPECT_EQ(scheduler_.Extend(sweep, {}, false, 12).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(SchedulerTest, APlanWithARepeatedIdOrALaterSourceIsRefusedNamingTheTrial) {
  Scheduler::Sweep sweep;
  auto repeated = Scheduler::AppendTrials(
      sweep, {Spec("p", TrialKind::kPretrain), Spec("p", TrialKind::kScratch)}, false);
  EXPECT_EQ(repeated.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(repeated.status().message(), HasSubstr("plan.trials[1]: trial p is also"));
  Scheduler::Sweep other;
  auto later = Scheduler::AppendTrials(other, {Spec("t", TrialKind::kTransfer, "p")}, false);
  EXPECT_THAT(later.status().message(), HasSubstr("source_trial p is not an earlier trial"));
  Scheduler::Sweep empty;
  EXPECT_THAT(
      Scheduler::AppendTrials(empty, {Spec("", TrialKind::kScratch)}, false).status().message(),
      HasSubstr("plan.trials[0].id: empty"));
}

}  // namespace
}  // namespace seedproof
