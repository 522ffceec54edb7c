// The statistics behind a verdict, on small samples of per-seed scores. Pure
// functions; every random draw comes from a seeded Rng, so the same inputs give
// the same numbers on every machine. Sources: ../docs/REPORTS.md.
//
//   std::vector<double> gains = ...;                   // arm - baseline, per seed
//   SignedRankResult w = WilcoxonSignedRank(gains);    // w.p_value, two-sided
//   PairedBootstrap b = BootstrapPaired(arm, base, {.resamples = 10000, .level = 0.95});
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "experiments/sweep.h"  // Correction

namespace seedproof {

double Mean(std::span<const double> x);
// The 25% trimmed mean: floor(n / 4) values cut from each end (scipy's
// trim_mean(x, 0.25), rliable's IQM). Robust to outlier seeds.
double InterquartileMean(std::span<const double> x);
// The q-quantile of sorted values, interpolating linearly between order
// statistics (numpy's default).
double QuantileOfSorted(std::span<const double> sorted, double q);

// Mann–Whitney U of a over b: pairs (i, j) with a[i] > b[j], ties counting 1/2.
double MannWhitneyU(std::span<const double> a, std::span<const double> b);
// P(a > b) = U / (|a| |b|) (rliable's probability of improvement); 0.5 when
// either sample is empty.
double ProbabilityOfImprovement(std::span<const double> a, std::span<const double> b);

struct SignedRankResult {
  int n = 0;           // non-zero differences (zeros are dropped, as Wilcoxon did)
  double w_plus = 0;   // sum of the ranks of the positive differences (ties: mean rank)
  double p_value = 1;  // two-sided
  bool exact = false;  // the exact permutation distribution, not the normal approximation
};
// Wilcoxon's signed-rank test of "the differences are symmetric about zero".
// Exact for n <= kExactSignedRankLimit: the distribution of W+ over all 2^n sign
// assignments of the observed ranks, so ties are handled exactly too (with no
// ties this is the classical table). Above it, the normal approximation with
// tie and continuity corrections.
inline constexpr int kExactSignedRankLimit = 200;
SignedRankResult WilcoxonSignedRank(std::span<const double> differences);

// Two-sided exact sign test: wins against losses under Binomial(wins + losses, 1/2).
double SignTestP(int wins, int losses);

// Adjusted p-values in the input order: Holm–Bonferroni (family-wise error),
// Benjamini–Hochberg (false discovery rate), or the p-values as they are.
std::vector<double> AdjustPValues(std::span<const double> p, Correction correction);

// Dodge et al. (2019): the expected maximum of n draws (with replacement) from
// the empirical distribution of values: sum_i v(i) [(i/N)^n - ((i-1)/N)^n] over
// the sorted values. 0 for no values.
double ExpectedMaxOfN(std::span<const double> values, int n);

struct BootstrapOptions {
  int resamples = 10000;
  double level = 0.95;  // two-sided interval: quantiles (1 - level) / 2 and (1 + level) / 2
  uint64_t seed = 0x5eed5eedULL;
};
struct Interval {
  double low = 0, high = 0;
};
struct PairedBootstrap {
  Interval mean_difference;             // mean of a[i] - b[i]
  Interval probability_of_improvement;  // P(a > b) of the resampled a and b
};
// Percentile bootstrap over seeds: each resample draws n seed indices with
// replacement and keeps the pairs together. a and b have equal sizes (>= 1).
PairedBootstrap BootstrapPaired(std::span<const double> a, std::span<const double> b,
                                const BootstrapOptions& options);
// The same when pairs come in clusters that are not independent (seeds that
// share a source model): each resample draws as many clusters as there are, with
// replacement, then within each drawn cluster as many of its pairs, with
// replacement (the two-stage bootstrap, Davison & Hinkley 1997, section 3.8), so
// one lucky cluster weighs as one draw. cluster[i] names pair i's cluster.
PairedBootstrap BootstrapPairedClustered(std::span<const double> a, std::span<const double> b,
                                         std::span<const int> cluster,
                                         const BootstrapOptions& options);

// Where the spread of values nested in groups comes from (gains of seeds that
// share a source model): the one-way random-effects ANOVA estimates (method of
// moments, unbalanced groups through n0; a negative between-group estimate is 0).
struct VarianceComponents {
  double between = 0;  // variance of the group effect (the source model)
  double within = 0;   // variance of a value around its group's effect (the seed)
  double between_share() const { return between + within > 0 ? between / (between + within) : 0.0; }
};
// group[i] names value i's group; needs at least 2 groups and a group with 2 values.
VarianceComponents OneWayVarianceComponents(std::span<const double> values,
                                            std::span<const int> group);
// The percentile interval of between_share() over two-stage resamples (groups with
// replacement, then values within each drawn group), as BootstrapPairedClustered.
Interval BootstrapBetweenShare(std::span<const double> values, std::span<const int> group,
                               const BootstrapOptions& options);

// Values in a crossed grid of `rows` x `columns` cells, one value per cell,
// row-major (value r * columns + c): seeds whose weight initialisation is stream
// r and data order stream c. The two-way random-effects estimates without
// replication (method of moments; a negative estimate is 0): the row effect's
// variance, the column effect's, and the rest (their interaction and anything
// else that varies per cell). Needs at least 2 rows and 2 columns.
struct CrossedComponents {
  double row = 0, column = 0, rest = 0;
  double total() const { return row + column + rest; }
  double row_share() const { return total() > 0 ? row / total() : 0.0; }
  double column_share() const { return total() > 0 ? column / total() : 0.0; }
};
CrossedComponents TwoWayVarianceComponents(std::span<const double> values, int rows, int columns);
// Percentile intervals of the row and column shares over resamples that draw rows
// and columns independently, with replacement (McCullagh's pigeonhole bootstrap
// for crossed designs, conservative for the variances).
struct CrossedShareIntervals {
  Interval row, column;
};
CrossedShareIntervals BootstrapCrossedShares(std::span<const double> values, int rows, int columns,
                                             const BootstrapOptions& options);

}  // namespace seedproof
