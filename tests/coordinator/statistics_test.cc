// The statistics behind the verdicts: values from tables and hand computation,
// and simulated studies with no effect and with a planted one. scipy checks the
// same functions independently (scipy_check.py).
#include "coordinator/statistics.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/random.h"
#include "coordinator/analysis.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace seedproof {
namespace {

TEST(Statistics, InterquartileMeanCutsAQuarterFromEachEnd) {
  // n = 8: two values cut from each end.
  EXPECT_DOUBLE_EQ(InterquartileMean(std::vector<double>{100, 1, 2, 3, 4, 5, 6, -100}), 3.5);
  // n = 5: floor(5 / 4) = 1 from each end.
  EXPECT_DOUBLE_EQ(InterquartileMean(std::vector<double>{9, 1, 2, 3, -9}), 2.0);
}

TEST(Statistics, QuantileInterpolatesLikeNumpy) {
  const std::vector<double> v = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(QuantileOfSorted(v, 0.0), 1);
  EXPECT_DOUBLE_EQ(QuantileOfSorted(v, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(QuantileOfSorted(v, 0.25), 1.75);
  EXPECT_DOUBLE_EQ(QuantileOfSorted(v, 1.0), 4);
}

TEST(Statistics, MannWhitneyCountsTiesAsHalf) {
  const std::vector<double> a = {3, 2, 1}, b = {2, 0};
  // 3 beats both, 2 ties 2 and beats 0, 1 beats 0: 2 + 1.5 + 1.
  EXPECT_DOUBLE_EQ(MannWhitneyU(a, b), 4.5);
  EXPECT_DOUBLE_EQ(ProbabilityOfImprovement(a, b), 0.75);
}

TEST(Statistics, WilcoxonExactMatchesTheTable) {
  // All ten differences positive: W+ = 55, two-sided p = 2 / 2^10.
  std::vector<double> all_positive;
  for (int i = 1; i <= 10; ++i) all_positive.push_back(i * 0.1);
  const SignedRankResult r = WilcoxonSignedRank(all_positive);
  EXPECT_TRUE(r.exact);
  EXPECT_EQ(r.n, 10);
  EXPECT_DOUBLE_EQ(r.w_plus, 55);
  EXPECT_NEAR(r.p_value, 2.0 / 1024, 1e-15);
  // n = 6, W+ = 2 (ranks 1 and ... only rank 2 positive): P(W+ <= 2) = 3 / 64.
  const SignedRankResult s = WilcoxonSignedRank(std::vector<double>{-1, 2, -3, -4, -5, -6});
  EXPECT_DOUBLE_EQ(s.w_plus, 2);
  EXPECT_NEAR(s.p_value, 2 * 3.0 / 64, 1e-15);
}

TEST(Statistics, WilcoxonDropsZerosAndHandlesTiesExactly) {
  // Zeros are dropped; |d| = 1, 1, 2 have mid-ranks 1.5, 1.5, 3.
  const SignedRankResult r = WilcoxonSignedRank(std::vector<double>{0, 1, -1, 2, 0});
  EXPECT_EQ(r.n, 3);
  EXPECT_DOUBLE_EQ(r.w_plus, 4.5);
  // The 8 sign assignments give W+ in {0, 1.5, 1.5, 3, 3, 4.5, 4.5, 6}: P(W+ >= 4.5) = 3/8.
  EXPECT_NEAR(r.p_value, 0.75, 1e-15);
  EXPECT_DOUBLE_EQ(WilcoxonSignedRank(std::vector<double>{0, 0}).p_value, 1.0);
}

TEST(Statistics, WilcoxonNormalApproximationAboveTheExactLimit) {
  std::vector<double> d;
  Rng rng(3);
  for (int i = 0; i < kExactSignedRankLimit + 50; ++i) d.push_back(rng.Normal() + 0.3);
  const SignedRankResult r = WilcoxonSignedRank(d);
  EXPECT_FALSE(r.exact);
  EXPECT_GT(r.p_value, 0);
  EXPECT_LT(r.p_value, 0.01);
}

TEST(Statistics, SignTestIsTheTwoSidedBinomial) {
  EXPECT_NEAR(SignTestP(9, 1), 2 * 11.0 / 1024, 1e-12);
  EXPECT_DOUBLE_EQ(SignTestP(5, 5), 1.0);
  EXPECT_DOUBLE_EQ(SignTestP(0, 0), 1.0);
  EXPECT_NEAR(SignTestP(0, 20), 2.0 / (1 << 20), 1e-15);
}

TEST(Statistics, HolmAndBenjaminiHochbergByHand) {
  const std::vector<double> p = {0.01, 0.04, 0.03, 0.005};
  // Holm, sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.06 (monotone).
  const std::vector<double> holm = AdjustPValues(p, Correction::kHolm);
  EXPECT_NEAR(holm[3], 0.02, 1e-15);
  EXPECT_NEAR(holm[0], 0.03, 1e-15);
  EXPECT_NEAR(holm[2], 0.06, 1e-15);
  EXPECT_NEAR(holm[1], 0.06, 1e-15);
  // BH: p * 4 / rank = 0.02, 0.02, 0.04, 0.04, then the running minimum from the top.
  const std::vector<double> bh = AdjustPValues(p, Correction::kBenjaminiHochberg);
  EXPECT_NEAR(bh[3], 0.02, 1e-15);
  EXPECT_NEAR(bh[0], 0.02, 1e-15);
  EXPECT_NEAR(bh[2], 0.04, 1e-15);
  EXPECT_NEAR(bh[1], 0.04, 1e-15);
  EXPECT_EQ(AdjustPValues(p, Correction::kNone), p);
  EXPECT_DOUBLE_EQ(AdjustPValues(std::vector<double>{0.6, 0.7}, Correction::kHolm)[1], 1.0);
}

TEST(Statistics, DodgeExpectedMaximum) {
  const std::vector<double> v = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(ExpectedMaxOfN(v, 1), 2.5);  // the mean
  // n = 2: sum v(i) [(i/4)^2 - ((i-1)/4)^2] = (1*1 + 2*3 + 3*5 + 4*7) / 16.
  EXPECT_DOUBLE_EQ(ExpectedMaxOfN(v, 2), 50.0 / 16);
  EXPECT_NEAR(ExpectedMaxOfN(v, 1000), 4, 1e-9);
}

TEST(Statistics, BootstrapIsReproducibleAndCoversTheMean) {
  std::vector<double> a, b;
  Rng rng(11);
  for (int i = 0; i < 20; ++i) {
    b.push_back(rng.Normal());
    a.push_back(b.back() + 1 + 0.5 * rng.Normal());
  }
  const PairedBootstrap first = BootstrapPaired(a, b, {});
  const PairedBootstrap second = BootstrapPaired(a, b, {});
  EXPECT_EQ(first.mean_difference.low, second.mean_difference.low);
  EXPECT_EQ(first.probability_of_improvement.high, second.probability_of_improvement.high);
  std::vector<double> d;
  for (int i = 0; i < 20; ++i) d.push_back(a[i] - b[i]);
  EXPECT_LT(first.mean_difference.low, Mean(d));
  EXPECT_GT(first.mean_difference.high, Mean(d));
  // The standard error is about 0.5 / sqrt(20): a 95% interval about 0.45 wide.
  EXPECT_NEAR(first.mean_difference.high - first.mean_difference.low, 0.44, 0.15);
  const PairedBootstrap other = BootstrapPaired(a, b, {.seed = 99});
  EXPECT_NE(first.mean_difference.low, other.mean_difference.low);
}

TEST(Statistics, BootstrapProbabilityOfImprovementIsUOfEachResample) {
  // Ties inside a, inside b and across them.
  const std::vector<double> a = {0.90, 0.95, 0.95, 0.97, 0.91, 0.93, 0.93};
  const std::vector<double> b = {0.93, 0.90, 0.96, 0.95, 0.92, 0.93, 0.89};
  const BootstrapOptions options{.resamples = 500, .level = 0.9, .seed = 7};
  // The same resamples drawn here, U counted pair by pair.
  Rng rng(options.seed);
  std::vector<double> improvements;
  for (int r = 0; r < options.resamples; ++r) {
    std::vector<double> ra, rb;
    for (size_t k = 0; k < a.size(); ++k) {
      const size_t i = rng.Below(a.size());
      ra.push_back(a[i]);
      rb.push_back(b[i]);
    }
    improvements.push_back(ProbabilityOfImprovement(ra, rb));
  }
  std::sort(improvements.begin(), improvements.end());
  const PairedBootstrap bootstrap = BootstrapPaired(a, b, options);
  EXPECT_DOUBLE_EQ(bootstrap.probability_of_improvement.low, QuantileOfSorted(improvements, 0.05));
  EXPECT_DOUBLE_EQ(bootstrap.probability_of_improvement.high, QuantileOfSorted(improvements, 0.95));
}

// A study of `arms` arms on `seeds` paired seeds. Every score is a shared seed
// effect plus independent noise; arm 0 gets `planted` times the standard
// deviation of the within-seed difference (arm minus baseline on one seed).
std::vector<ArmAnalysis> SimulateStudy(Rng& rng, int arms, int seeds, double planted,
                                       const AnalysisOptions& options) {
  std::vector<double> seed_effect(seeds), baseline(seeds);
  for (int s = 0; s < seeds; ++s) {
    seed_effect[s] = 2 * rng.Normal();
    baseline[s] = seed_effect[s] + rng.Normal();
  }
  const double difference_sd = std::sqrt(2.0);  // two independent unit noises
  std::vector<ArmAnalysis> family;
  for (int a = 0; a < arms; ++a) {
    std::vector<int> seed_index(seeds);
    std::vector<double> scores(seeds);
    for (int s = 0; s < seeds; ++s) {
      seed_index[s] = s;
      scores[s] = seed_effect[s] + rng.Normal() + (a == 0 ? planted * difference_sd : 0.0);
    }
    family.push_back(ComparePaired("arm", "baseline", seed_index, scores, baseline, 1.0, options));
  }
  DecideFamily(family, options);
  return family;
}

// 1,000 studies of 10 arms, 20 seeds each. 1,000 resamples per interval keep the
// test fast; the verdict's test (Wilcoxon) does not resample.
constexpr int kStudies = 1000;
AnalysisOptions SimulationOptions() {
  AnalysisOptions options;
  options.resamples = 1000;
  return options;
}

TEST(StatisticsSimulation, NoEffectIsCalledRobustInAtMostFivePercentOfStudies) {
  Rng rng(2024);
  int studies_with_a_robust_call = 0;
  for (int study = 0; study < kStudies; ++study) {
    bool robust = false;
    for (const ArmAnalysis& a : SimulateStudy(rng, 10, 20, 0.0, SimulationOptions())) {
      robust |= a.verdict == Verdict::kRobustGain || a.verdict == Verdict::kRobustLoss;
    }
    studies_with_a_robust_call += robust;
  }
  std::printf("no effect: %d of %d studies had a robust call\n", studies_with_a_robust_call,
              kStudies);
  EXPECT_LE(studies_with_a_robust_call, kStudies * 5 / 100);
}

TEST(StatisticsSimulation, APlantedGainOfOneStandardDeviationIsFoundInEightyPercent) {
  Rng rng(2025);
  int found = 0, false_calls = 0;
  for (int study = 0; study < kStudies; ++study) {
    const std::vector<ArmAnalysis> family = SimulateStudy(rng, 10, 20, 1.0, SimulationOptions());
    found += family[0].verdict == Verdict::kRobustGain;
    for (size_t a = 1; a < family.size(); ++a) {
      false_calls +=
          family[a].verdict == Verdict::kRobustGain || family[a].verdict == Verdict::kRobustLoss;
    }
  }
  std::printf("planted gain found in %d of %d studies; %d false robust calls among %d null arms\n",
              found, kStudies, false_calls, 9 * kStudies);
  EXPECT_GE(found, kStudies * 80 / 100);
  EXPECT_LE(false_calls, 9 * kStudies * 5 / 100);
}

// A clustered study: `seeds` seeds over `sources` source models (seed s reuses
// source s mod sources), 10 arms, no effect. Each arm's gain on a seed is its
// source model's effect on that arm plus the seed's own noise, the two of equal
// variance (the between-source variance as large as the within-source one).
// Returns whether any arm was called robust, analysed with the clusters or, with
// `naive`, as if the seeds were independent.
bool ClusteredStudyCallsSomethingRobust(Rng& rng, int seeds, int sources, bool naive) {
  const AnalysisOptions options = SimulationOptions();
  std::vector<ArmAnalysis> family;
  for (int a = 0; a < 10; ++a) {
    std::vector<double> source_effect(sources);
    for (double& e : source_effect) e = rng.Normal();
    std::vector<int> seed_index(seeds), clusters(seeds);
    std::vector<double> scores(seeds), baseline(seeds);
    for (int s = 0; s < seeds; ++s) {
      seed_index[s] = s;
      clusters[s] = s % sources;
      baseline[s] = 2 * rng.Normal();
      scores[s] = baseline[s] + source_effect[clusters[s]] + rng.Normal();
    }
    family.push_back(ComparePaired("arm", "baseline", seed_index, scores, baseline, 1.0, options, 0,
                                   naive ? std::vector<int>{} : clusters));
  }
  DecideFamily(family, options);
  bool robust = false;
  for (const ArmAnalysis& a : family) {
    robust |= a.verdict == Verdict::kRobustGain || a.verdict == Verdict::kRobustLoss;
  }
  return robust;
}

// 40 seeds over 10 source models: with the clusters, at most 5% of no-effect
// studies call anything robust; as if the seeds were independent, one lucky
// source model carries verdicts in many more.
TEST(StatisticsSimulation, ClusteredNoEffectIsCalledRobustInAtMostFivePercentOfStudies) {
  int clustered = 0, naive = 0;
  Rng rng(2026), same(2026);
  for (int study = 0; study < kStudies; ++study) {
    clustered += ClusteredStudyCallsSomethingRobust(rng, 40, 10, false);
    naive += ClusteredStudyCallsSomethingRobust(same, 40, 10, true);
  }
  std::printf(
      "no effect, 40 seeds over 10 source models: %d of %d studies had a robust call "
      "(as if the seeds were independent: %d)\n",
      clustered, kStudies, naive);
  EXPECT_LE(clustered, kStudies * 5 / 100);
  EXPECT_GT(naive, kStudies * 20 / 100);
}

// The two-stage resampling, written out: the same draws from the same stream.
TEST(Statistics, ClusteredBootstrapResamplesSourceModelsThenSeedsWithinThem) {
  const std::vector<double> a = {0.91, 0.93, 0.90, 0.95, 0.97, 0.96, 0.92, 0.94, 0.90};
  const std::vector<double> b = {0.90, 0.90, 0.91, 0.92, 0.93, 0.93, 0.93, 0.92, 0.91};
  const std::vector<int> cluster = {0, 0, 0, 1, 1, 1, 2, 2, 2};
  const BootstrapOptions options = {.resamples = 2000, .level = 0.9, .seed = 11};
  Rng rng(options.seed);
  std::vector<double> means;
  const std::vector<std::vector<size_t>> members = {{0, 1, 2}, {3, 4, 5}, {6, 7, 8}};
  for (int r = 0; r < options.resamples; ++r) {
    double sum = 0;
    int count = 0;
    for (int c = 0; c < 3; ++c) {
      const std::vector<size_t>& drawn = members[rng.Below(3)];
      for (size_t k = 0; k < drawn.size(); ++k) {
        const size_t i = drawn[rng.Below(drawn.size())];
        sum += a[i] - b[i];
        ++count;
      }
    }
    means.push_back(sum / count);
  }
  std::sort(means.begin(), means.end());
  const PairedBootstrap clustered = BootstrapPairedClustered(a, b, cluster, options);
  EXPECT_NEAR(clustered.mean_difference.low, QuantileOfSorted(means, 0.05), 1e-12);
  EXPECT_NEAR(clustered.mean_difference.high, QuantileOfSorted(means, 0.95), 1e-12);
  // Wider than resampling the nine seeds as if independent.
  const PairedBootstrap naive = BootstrapPaired(a, b, options);
  EXPECT_GT(clustered.mean_difference.high - clustered.mean_difference.low,
            naive.mean_difference.high - naive.mean_difference.low);
}

// The one-way random-effects estimates, by hand: groups {1, 3}, {5, 7}, {2, 4}:
// group means 2, 6, 3, grand mean 11/3; MSW = (1+1+1+1+1+1) / 3 = 2; MSB = 2 *
// ((2-11/3)^2 + (6-11/3)^2 + (3-11/3)^2) / 2 = 26/3; n0 = 2; between = (26/3 - 2) / 2.
TEST(Statistics, OneWayVarianceComponentsByHand) {
  const std::vector<double> values = {1, 3, 5, 7, 2, 4};
  const std::vector<int> group = {0, 0, 1, 1, 2, 2};
  const VarianceComponents v = OneWayVarianceComponents(values, group);
  EXPECT_DOUBLE_EQ(v.within, 2.0);
  EXPECT_DOUBLE_EQ(v.between, (26.0 / 3 - 2) / 2);
  EXPECT_DOUBLE_EQ(v.between_share(), v.between / (v.between + 2.0));
  // No spread between the groups' means: nothing from the group.
  EXPECT_DOUBLE_EQ(
      OneWayVarianceComponents(std::vector<double>{1, 3, 1, 3}, std::vector<int>{0, 0, 1, 1})
          .between,
      0.0);
}

// With the between-source variance as large as the within-source one, the
// estimated share averages about one half over many studies (10 source models of
// 4 seeds each), and its interval covers the true half in most of them.
TEST(StatisticsSimulation, TheSourceModelsShareOfTheVarianceIsFoundWhereItIs) {
  Rng rng(77);
  double sum = 0;
  int covered = 0;
  constexpr int kRuns = 400;
  for (int run = 0; run < kRuns; ++run) {
    std::vector<double> gains;
    std::vector<int> group;
    for (int c = 0; c < 10; ++c) {
      const double effect = rng.Normal();
      for (int k = 0; k < 4; ++k) {
        gains.push_back(effect + rng.Normal());
        group.push_back(c);
      }
    }
    sum += OneWayVarianceComponents(gains, group).between_share();
    const Interval ci = BootstrapBetweenShare(gains, group, {.resamples = 500, .level = 0.95});
    covered += ci.low <= 0.5 && 0.5 <= ci.high;
  }
  std::printf("source share 0.5: mean estimate %.3f, interval covered it in %d of %d\n",
              sum / kRuns, covered, kRuns);
  EXPECT_NEAR(sum / kRuns, 0.5, 0.08);
  EXPECT_GE(covered, kRuns * 80 / 100);
}

// The two-way estimates by hand: rows {1, 3, 5}, {3, 5, 10}: row means 3, 6,
// column means 2, 4, 7.5, grand mean 4.5; row SS = 3 (1.5^2 + 1.5^2) = 13.5, column
// SS = 2 (2.5^2 + 0.5^2 + 3^2) = 31; residuals +-0.5 in the first two columns and
// -+1 in the last: rest SS = 3, MS_rest = 3 / 2. Row variance (13.5 - 1.5) / 3 =
// 4, column (15.5 - 1.5) / 2 = 7, rest 1.5.
TEST(Statistics, TwoWayCrossedVarianceComponentsByHand) {
  const std::vector<double> values = {1, 3, 5, 3, 5, 10};
  const CrossedComponents v = TwoWayVarianceComponents(values, 2, 3);
  EXPECT_DOUBLE_EQ(v.row, 4.0);
  EXPECT_DOUBLE_EQ(v.column, 7.0);
  EXPECT_DOUBLE_EQ(v.rest, 1.5);
  EXPECT_DOUBLE_EQ(v.row_share(), 4.0 / 12.5);
  // Not a grid: nothing.
  EXPECT_EQ(TwoWayVarianceComponents(values, 2, 2).total(), 0.0);
}

// Planted: init's variance 2, order's 1, the rest 1 (shares 0.5, 0.25) on 6 x 6
// grids. The estimates average near the truth, and the pigeonhole intervals
// cover it in most studies.
TEST(StatisticsSimulation, CrossedStreamsSharesAreFoundWhereTheyAre) {
  Rng rng(91);
  constexpr int kRuns = 300, kSide = 6;
  double init_sum = 0, order_sum = 0;
  int init_covered = 0, order_covered = 0;
  for (int run = 0; run < kRuns; ++run) {
    std::vector<double> row(kSide), column(kSide), values;
    for (double& r : row) r = std::sqrt(2.0) * rng.Normal();
    for (double& c : column) c = rng.Normal();
    for (int r = 0; r < kSide; ++r) {
      for (int c = 0; c < kSide; ++c) values.push_back(row[r] + column[c] + rng.Normal());
    }
    const CrossedComponents v = TwoWayVarianceComponents(values, kSide, kSide);
    init_sum += v.row_share();
    order_sum += v.column_share();
    const CrossedShareIntervals ci =
        BootstrapCrossedShares(values, kSide, kSide, {.resamples = 400, .level = 0.95});
    init_covered += ci.row.low <= 0.5 && 0.5 <= ci.row.high;
    order_covered += ci.column.low <= 0.25 && 0.25 <= ci.column.high;
  }
  std::printf(
      "crossed 6 x 6, shares 0.5 / 0.25: mean estimates %.3f / %.3f, covered %d / %d "
      "of %d\n",
      init_sum / kRuns, order_sum / kRuns, init_covered, order_covered, kRuns);
  EXPECT_NEAR(init_sum / kRuns, 0.5, 0.1);
  EXPECT_NEAR(order_sum / kRuns, 0.25, 0.1);
  EXPECT_GE(init_covered, kRuns * 80 / 100);
  EXPECT_GE(order_covered, kRuns * 80 / 100);
}

// Five source models cannot carry a verdict under the signed-rank test on their
// means (2 / 2^5 > 0.05), however many seeds share them.
TEST(Verdicts, FiveSourceModelsAreTooFewWhateverTheSeeds) {
  const AnalysisOptions options;
  std::vector<int> seeds, clusters;
  std::vector<double> arm, base;
  for (int s = 0; s < 40; ++s) {
    seeds.push_back(s);
    clusters.push_back(s % 5);
    base.push_back(0.9);
    arm.push_back(0.95);
  }
  std::vector<ArmAnalysis> family = {
      ComparePaired("a", "baseline", seeds, arm, base, 0.01, options, 0, clusters)};
  DecideFamily(family, options);
  EXPECT_EQ(family[0].source_models, 5);
  EXPECT_EQ(family[0].verdict, Verdict::kTooFewSeeds);
  EXPECT_THAT(family[0].reason, ::testing::HasSubstr("6 source models are needed"));
}

TEST(Verdicts, EqualCountDifferencesTieWhateverTheAccuraciesAre) {
  // Gains of k test examples out of 2,000, each from two accuracies rounded to
  // counts: (base + k) / 2000 - base / 2000 is not always k / 2000 in doubles.
  const std::vector<int> k = {3, -3, -1, 0, -3, 1, 3, -2, -1, -3};
  std::vector<int> seeds;
  std::vector<double> arm, base, exact;
  for (size_t i = 0; i < k.size(); ++i) {
    seeds.push_back(static_cast<int>(i));
    const int b = 1900 + 7 * static_cast<int>(i);
    base.push_back(b / 2000.0);
    arm.push_back((b + k[i]) / 2000.0);
    exact.push_back(k[i] / 2000.0);
  }
  const AnalysisOptions options;
  const ArmAnalysis a = ComparePaired("a", "baseline", seeds, arm, base, 0.01, options, 1 / 2000.0);
  const SignedRankResult reference = WilcoxonSignedRank(exact);
  EXPECT_DOUBLE_EQ(a.wilcoxon.w_plus, 16);  // mid-ranks: |1| 2, |2| 4, |3| 7
  EXPECT_DOUBLE_EQ(a.wilcoxon.w_plus, reference.w_plus);
  EXPECT_DOUBLE_EQ(a.wilcoxon.p_value, reference.p_value);
  EXPECT_EQ(a.ties, 1);
}

TEST(Verdicts, TooFewSeedsBelowFive) {
  const AnalysisOptions options;
  std::vector<ArmAnalysis> family = {
      ComparePaired("a", "baseline", {0, 1, 2, 3}, {1, 1, 1, 1}, {0, 0, 0, 0}, 0.1, options)};
  DecideFamily(family, options);
  EXPECT_EQ(family[0].verdict, Verdict::kTooFewSeeds);
}

TEST(Verdicts, GainsOnSomeSeedsAndLossesOnOthersAreSeedDependent) {
  const AnalysisOptions options;
  std::vector<int> seeds = {0, 1, 2, 3, 4, 5, 6, 7};
  std::vector<double> base(8, 0.9);
  std::vector<double> arm = {0.95, 0.85, 0.96, 0.84, 0.95, 0.86, 0.94, 0.85};
  std::vector<ArmAnalysis> family = {
      ComparePaired("a", "baseline", seeds, arm, base, 0.01, options)};
  DecideFamily(family, options);
  EXPECT_EQ(family[0].verdict, Verdict::kSeedDependent) << family[0].reason;
  EXPECT_EQ(family[0].large_gains, 4);
  EXPECT_EQ(family[0].large_losses, 4);
}

TEST(Verdicts, SmallWobbleInsideTheNoiseIsNoEffect) {
  const AnalysisOptions options;
  std::vector<int> seeds = {0, 1, 2, 3, 4, 5, 6, 7};
  std::vector<double> base(8, 0.9);
  std::vector<double> arm = {0.901, 0.899, 0.902, 0.9, 0.898, 0.901, 0.899, 0.9};
  std::vector<ArmAnalysis> family = {
      ComparePaired("a", "baseline", seeds, arm, base, 0.01, options)};
  DecideFamily(family, options);
  EXPECT_EQ(family[0].verdict, Verdict::kNoEffect) << family[0].reason;
}

TEST(Verdicts, ConsistentGainIsRobustUnlessTheArmDivergedOnSomeSeeds) {
  const AnalysisOptions options;
  std::vector<int> seeds;
  std::vector<double> base, arm;
  for (int s = 0; s < 10; ++s) {
    seeds.push_back(s);
    base.push_back(0.9 + 0.001 * s);
    arm.push_back(0.92 + 0.001 * s + 0.0001 * (s % 3));
  }
  std::vector<ArmAnalysis> family = {
      ComparePaired("a", "baseline", seeds, arm, base, 0.01, options)};
  DecideFamily(family, options);
  EXPECT_EQ(family[0].verdict, Verdict::kRobustGain) << family[0].reason;
  family[0].diverged = 2;
  DecideFamily(family, options);
  EXPECT_EQ(family[0].verdict, Verdict::kSeedDependent) << family[0].reason;
  // And the mirror image is a robust loss.
  std::vector<ArmAnalysis> loss = {ComparePaired("b", "baseline", seeds, base, arm, 0.01, options)};
  DecideFamily(loss, options);
  EXPECT_EQ(loss[0].verdict, Verdict::kRobustLoss) << loss[0].reason;
}

}  // namespace
}  // namespace seedproof
