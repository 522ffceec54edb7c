// Sequential seeds: the group-sequential signed-rank test (group_sequential.h)
// and the looks of a family (RunSequentialLooks), with the simulation bars of
// docs/REPORTS.md: with no effect at most 5% of studies call any arm robust, a
// planted gain of one standard deviation is found in at least 80%, and a mix of
// arms costs on average at most 60% of the trials of the fixed design with the
// maximum seeds.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "backends/random.h"
#include "coordinator/analysis.h"
#include "coordinator/group_sequential.h"
#include "coordinator/statistics.h"

namespace seedproof {
namespace {

std::vector<double> NormalGains(Rng& rng, int n, double shift) {
  std::vector<double> g(n);
  for (double& x : g) x = rng.Normal() + shift;
  return g;
}

// With one look at the planned size the test is the signed-rank test, its
// p-value the Monte Carlo estimate of Wilcoxon's exact one.
TEST(GroupSequential, OneLookIsTheSignedRankTest) {
  Rng rng(3);
  const SequentialTestOptions options = {.draws = 20000};
  for (double shift : {0.0, 0.3, 0.8}) {
    const std::vector<double> g = NormalGains(rng, 15, shift);
    const double exact = WilcoxonSignedRank(g).p_value;
    const double p = RepeatedSignedRankP(g, std::vector<int>{15}, 15, options);
    const double sd = std::sqrt(exact * (1 - exact) / options.draws);
    EXPECT_NEAR(p, exact, 4 * sd + 2.0 / options.draws) << "shift " << shift;
  }
}

// A look's p-value is a function of the gains it saw: the seeds a later look
// adds never change it, and the repeated p-value never grows from look to look.
TEST(GroupSequential, LaterSeedsNeverChangeAnEarlierLook) {
  Rng rng(4);
  const std::vector<double> g = NormalGains(rng, 30, 0.4);
  const std::vector<int> looks = {10, 15, 20, 25, 30};
  double previous = 1;
  for (size_t k = 1; k <= looks.size(); ++k) {
    const std::vector<int> seen(looks.begin(), looks.begin() + k);
    const std::vector<double> prefix(g.begin(), g.begin() + seen.back());
    const double p = RepeatedSignedRankP(prefix, seen, 30, {});
    std::vector<double> changed = g;
    for (size_t i = seen.back(); i < changed.size(); ++i) changed[i] = -changed[i] * 3;
    EXPECT_EQ(
        p, RepeatedSignedRankP(std::vector<double>(changed.begin(), changed.begin() + seen.back()),
                               seen, 30, {}));
    EXPECT_LE(p, previous);
    previous = p;
  }
}

// Ties and zeros: zero gains are no evidence, tied magnitudes share a rank; a
// look with nothing but zeros rejects at no level.
TEST(GroupSequential, ZerosAreNoEvidence) {
  const std::vector<double> zeros(12, 0.0);
  EXPECT_EQ(RepeatedSignedRankP(zeros, std::vector<int>{6, 12}, 12, {}), 1.0);
  std::vector<double> g(12, 0.01);
  g[0] = g[1] = 0;
  EXPECT_LT(RepeatedSignedRankP(g, std::vector<int>{12}, 12, {}), 0.01);
}

// Under the null hypothesis, over many data sets, the test at level alpha
// rejects in at most alpha of them (plus Monte Carlo error), whatever the look.
TEST(GroupSequential, ItsLevelHoldsUnderRepeatedLooks) {
  Rng rng(5);
  const std::vector<int> looks = {10, 15, 20, 25, 30};
  constexpr int kRuns = 2000;
  int rejected = 0;
  for (int run = 0; run < kRuns; ++run) {
    const std::vector<double> g = NormalGains(rng, 30, 0.0);
    rejected += RepeatedSignedRankP(g, looks, 30, {}) <= 0.05;
  }
  std::printf("null, 5 looks: rejected at 0.05 in %d of %d\n", rejected, kRuns);
  EXPECT_LE(rejected, kRuns * 5 / 100 + 3 * std::sqrt(kRuns * 0.05 * 0.95));
}

// A simulated sequential study: arms gain planted[a] standard deviations of the
// within-seed difference, scores as in statistics_test.cc's studies (a shared
// seed effect plus unit noise; large_step 1). Returns the family as it ended.
struct SimulatedStudy {
  std::vector<ArmAnalysis> arms;
  int trials = 0;  // scratch and transfer trials run
};
SimulatedStudy SimulateSequential(Rng& rng, const std::vector<double>& planted,
                                  const std::vector<int>& looks) {
  const int max = looks.back();
  const int arms = static_cast<int>(planted.size());
  std::vector<double> seed_effect(max), baseline(max);
  for (int s = 0; s < max; ++s) {
    seed_effect[s] = 2 * rng.Normal();
    baseline[s] = seed_effect[s] + rng.Normal();
  }
  std::vector<std::vector<double>> scores(arms, std::vector<double>(max));
  for (int a = 0; a < arms; ++a) {
    for (int s = 0; s < max; ++s) {
      scores[a][s] = seed_effect[s] + rng.Normal() + planted[a] * std::sqrt(2.0);
    }
  }
  AnalysisOptions options;
  options.resamples = 1000;
  SimulatedStudy study;
  study.arms = RunSequentialLooks(
      arms, looks, static_cast<int>(looks.size()),
      [&](int a, int n) {
        std::vector<int> seeds(n);
        for (int s = 0; s < n; ++s) seeds[s] = s;
        return ComparePaired(
            "arm", "baseline", seeds, std::vector<double>(scores[a].begin(), scores[a].begin() + n),
            std::vector<double>(baseline.begin(), baseline.begin() + n), 1.0, options);
      },
      options);
  int furthest = 0;
  for (const ArmAnalysis& a : study.arms) {
    EXPECT_FALSE(a.open);
    study.trials += a.n_seeds;
    furthest = std::max(furthest, a.n_seeds);
  }
  study.trials += furthest;  // the baseline
  return study;
}

const std::vector<int> kLooks = {10, 15, 20, 25, 30, 35, 40};
constexpr int kStudies = 500;  // each bar holds with a wide margin (docs/REPORTS.md)

bool Robust(const ArmAnalysis& a) {
  return a.verdict == Verdict::kRobustGain || a.verdict == Verdict::kRobustLoss;
}

TEST(SequentialSimulation, NoEffectIsCalledRobustInAtMostFivePercentOfStudies) {
  Rng rng(2030);
  int studies_with_a_robust_call = 0;
  double trials = 0;
  for (int study = 0; study < kStudies; ++study) {
    const SimulatedStudy s = SimulateSequential(rng, std::vector<double>(10, 0.0), kLooks);
    bool robust = false;
    for (const ArmAnalysis& a : s.arms) robust |= Robust(a);
    studies_with_a_robust_call += robust;
    trials += s.trials;
  }
  std::printf(
      "no effect, 10 arms, seeds 10..40 by 5: %d of %d studies had a robust call; "
      "%.1f%% of the fixed 40-seed design's trials\n",
      studies_with_a_robust_call, kStudies, 100 * trials / (kStudies * 11.0 * 40));
  EXPECT_LE(studies_with_a_robust_call, kStudies * 5 / 100);
}

TEST(SequentialSimulation, APlantedGainOfOneStandardDeviationIsFoundInEightyPercent) {
  Rng rng(2031);
  int found = 0;
  double seeds_when_found = 0;
  for (int study = 0; study < kStudies; ++study) {
    std::vector<double> planted(10, 0.0);
    planted[0] = 1.0;
    const SimulatedStudy s = SimulateSequential(rng, planted, kLooks);
    if (s.arms[0].verdict == Verdict::kRobustGain) {
      ++found;
      seeds_when_found += s.arms[0].n_seeds;
    }
  }
  std::printf("planted gain found in %d of %d studies, after %.1f seeds on average\n", found,
              kStudies, found > 0 ? seeds_when_found / found : 0.0);
  EXPECT_GE(found, kStudies * 80 / 100);
}

// Arms that are decided early (gains and losses of one or two standard
// deviations), arms with no effect, and arms whose small effect keeps them open.
TEST(SequentialSimulation, AMixOfArmsCostsAtMostSixtyPercentOfTheFixedDesign) {
  Rng rng(2032);
  const std::vector<double> mix = {2.0, 2.0, 1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.4, 0.6};
  double trials = 0;
  int robust_right = 0;
  for (int study = 0; study < kStudies; ++study) {
    const SimulatedStudy s = SimulateSequential(rng, mix, kLooks);
    trials += s.trials;
    robust_right += s.arms[0].verdict == Verdict::kRobustGain;
  }
  const double share = trials / (kStudies * 11.0 * kLooks.back());
  std::printf(
      "mix of 10 arms: %.1f%% of the fixed 40-seed design's trials; the 2-SD arm "
      "found in %d of %d\n",
      100 * share, robust_right, kStudies);
  EXPECT_LE(share, 0.60);
}

}  // namespace
}  // namespace seedproof
