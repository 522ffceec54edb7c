#include "coordinator/statistics.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "backends/random.h"

namespace seedproof {

double Mean(std::span<const double> x) {
  if (x.empty()) return 0;
  return std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(x.size());
}

double InterquartileMean(std::span<const double> x) {
  std::vector<double> sorted(x.begin(), x.end());
  std::sort(sorted.begin(), sorted.end());
  const size_t cut = sorted.size() / 4;
  return Mean(std::span<const double>(sorted).subspan(cut, sorted.size() - 2 * cut));
}

double QuantileOfSorted(std::span<const double> sorted, double q) {
  if (sorted.empty()) return 0;
  const double position = q * static_cast<double>(sorted.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(position));
  if (below + 1 >= sorted.size()) return sorted.back();
  const double fraction = position - static_cast<double>(below);
  return sorted[below] + fraction * (sorted[below + 1] - sorted[below]);
}

namespace {

// 1 when x > y, 1/2 when equal: one pair's share of U.
double Beats(double x, double y) { return x > y ? 1.0 : (x == y ? 0.5 : 0.0); }

}  // namespace

double MannWhitneyU(std::span<const double> a, std::span<const double> b) {
  double u = 0;
  for (double x : a) {
    for (double y : b) u += Beats(x, y);
  }
  return u;
}

double ProbabilityOfImprovement(std::span<const double> a, std::span<const double> b) {
  if (a.empty() || b.empty()) return 0.5;
  return MannWhitneyU(a, b) / (static_cast<double>(a.size()) * static_cast<double>(b.size()));
}

SignedRankResult WilcoxonSignedRank(std::span<const double> differences) {
  std::vector<double> nonzero;
  for (double d : differences) {
    if (d != 0) nonzero.push_back(d);
  }
  SignedRankResult result;
  const int n = static_cast<int>(nonzero.size());
  result.n = n;
  if (n == 0) return result;
  std::sort(nonzero.begin(), nonzero.end(),
            [](double x, double y) { return std::fabs(x) < std::fabs(y); });
  // Doubled mid-ranks are integers: a tie group at 1-based positions k..m gets k + m.
  std::vector<int> doubled_rank(n);
  double tie_term = 0;  // sum of t^3 - t over tie groups, for the normal approximation
  for (int k = 0; k < n;) {
    int m = k;
    while (m + 1 < n && std::fabs(nonzero[m + 1]) == std::fabs(nonzero[k])) ++m;
    for (int i = k; i <= m; ++i) doubled_rank[i] = (k + 1) + (m + 1);
    const double t = m - k + 1;
    tie_term += t * t * t - t;
    k = m + 1;
  }
  int doubled_w_plus = 0;
  for (int i = 0; i < n; ++i) {
    if (nonzero[i] > 0) doubled_w_plus += doubled_rank[i];
  }
  result.w_plus = doubled_w_plus / 2.0;

  if (n <= kExactSignedRankLimit) {
    // P(doubled W+ = s) when each rank's sign is a fair coin.
    const int total = std::accumulate(doubled_rank.begin(), doubled_rank.end(), 0);
    std::vector<double> probability(total + 1, 0.0);
    probability[0] = 1.0;
    int reach = 0;
    for (int r : doubled_rank) {
      reach += r;
      for (int s = reach; s >= 0; --s) {
        probability[s] = 0.5 * probability[s] + (s >= r ? 0.5 * probability[s - r] : 0.0);
      }
    }
    double at_most = 0, at_least = 0;
    for (int s = 0; s <= total; ++s) {
      if (s <= doubled_w_plus) at_most += probability[s];
      if (s >= doubled_w_plus) at_least += probability[s];
    }
    result.p_value = std::min(1.0, 2.0 * std::min(at_most, at_least));
    result.exact = true;
    return result;
  }
  const double nn = n;
  const double mean = nn * (nn + 1) / 4;
  const double variance = nn * (nn + 1) * (2 * nn + 1) / 24 - tie_term / 48;
  const double distance = std::max(0.0, std::fabs(result.w_plus - mean) - 0.5);
  result.p_value =
      variance > 0 ? std::min(1.0, std::erfc(distance / std::sqrt(2 * variance))) : 1.0;
  return result;
}

double SignTestP(int wins, int losses) {
  const int n = wins + losses;
  if (n == 0) return 1.0;
  const int k = std::min(wins, losses);
  double tail = 0;
  for (int i = 0; i <= k; ++i) {
    tail += std::exp(std::lgamma(n + 1.0) - std::lgamma(i + 1.0) - std::lgamma(n - i + 1.0) -
                     n * std::log(2.0));
  }
  return std::min(1.0, 2.0 * tail);
}

std::vector<double> AdjustPValues(std::span<const double> p, Correction correction) {
  const size_t m = p.size();
  std::vector<double> adjusted(p.begin(), p.end());
  if (correction == Correction::kNone || m == 0) return adjusted;
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return p[x] < p[y]; });
  if (correction == Correction::kHolm) {
    double running = 0;  // adjusted values never decrease along the sorted order
    for (size_t k = 0; k < m; ++k) {
      running = std::max(running, std::min(1.0, static_cast<double>(m - k) * p[order[k]]));
      adjusted[order[k]] = running;
    }
  } else {
    double running = 1;  // adjusted values never increase from the largest down
    for (size_t k = m; k-- > 0;) {
      running = std::min(running, std::min(1.0, static_cast<double>(m) /
                                                    static_cast<double>(k + 1) * p[order[k]]));
      adjusted[order[k]] = running;
    }
  }
  return adjusted;
}

double ExpectedMaxOfN(std::span<const double> values, int n) {
  if (values.empty() || n < 1) return 0;
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  const double size = static_cast<double>(sorted.size());
  double expected = 0;
  for (size_t i = 1; i <= sorted.size(); ++i) {
    expected += sorted[i - 1] * (std::pow(static_cast<double>(i) / size, n) -
                                 std::pow(static_cast<double>(i - 1) / size, n));
  }
  return expected;
}

namespace {

// The two-sided percentile interval of resampled statistics (sorts them).
Interval PercentileInterval(std::vector<double>& resampled, double level) {
  std::sort(resampled.begin(), resampled.end());
  return {QuantileOfSorted(resampled, (1 - level) / 2),
          QuantileOfSorted(resampled, (1 + level) / 2)};
}

// The indices of the first n values, grouped by group[i], groups in id order.
std::vector<std::vector<size_t>> GroupIndices(std::span<const int> group, size_t n) {
  std::map<int, std::vector<size_t>> members_of;
  for (size_t i = 0; i < n; ++i) members_of[group[i]].push_back(i);
  std::vector<std::vector<size_t>> groups;
  for (auto& [id, members] : members_of) groups.push_back(std::move(members));
  return groups;
}

// The percentile bootstrap of both statistics, each resample's weights (how often
// each pair is drawn) given by draw(rng, count).
template <typename Draw>
PairedBootstrap BootstrapWithCounts(std::span<const double> a, std::span<const double> b,
                                    const BootstrapOptions& options, const Draw& draw) {
  const size_t n = std::min(a.size(), b.size());
  PairedBootstrap result;
  if (n == 0) return result;
  // U of a resample = sum_i w_i (weight of b below a_i + 1/2 weight of b equal to
  // a_i), w the resample's counts. With b sorted once, the b's below and equal to
  // each a_i are fixed ranges [0, below[i]) and [below[i], upto[i]): a resample
  // costs one prefix sum of b's weights, O(n).
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return b[x] < b[y]; });
  std::vector<double> sorted_b(n);
  for (size_t k = 0; k < n; ++k) sorted_b[k] = b[order[k]];
  std::vector<size_t> below(n), upto(n);
  for (size_t i = 0; i < n; ++i) {
    below[i] = static_cast<size_t>(std::lower_bound(sorted_b.begin(), sorted_b.end(), a[i]) -
                                   sorted_b.begin());
    upto[i] = static_cast<size_t>(std::upper_bound(sorted_b.begin(), sorted_b.end(), a[i]) -
                                  sorted_b.begin());
  }
  Rng rng(options.seed);
  const int resamples = std::max(1, options.resamples);
  std::vector<double> means(resamples), improvements(resamples);
  std::vector<int> count(n);
  std::vector<double> prefix(n + 1);  // weight of the first k sorted b's
  for (int r = 0; r < resamples; ++r) {
    std::fill(count.begin(), count.end(), 0);
    draw(rng, count);
    for (size_t k = 0; k < n; ++k) prefix[k + 1] = prefix[k] + count[order[k]];
    const double size = prefix[n];
    double difference = 0, u = 0;
    for (size_t i = 0; i < n; ++i) {
      if (count[i] == 0) continue;
      difference += count[i] * (a[i] - b[i]);
      u += count[i] * (prefix[below[i]] + 0.5 * (prefix[upto[i]] - prefix[below[i]]));
    }
    means[r] = difference / size;
    improvements[r] = u / (size * size);
  }
  result.mean_difference = PercentileInterval(means, options.level);
  result.probability_of_improvement = PercentileInterval(improvements, options.level);
  return result;
}

}  // namespace

PairedBootstrap BootstrapPaired(std::span<const double> a, std::span<const double> b,
                                const BootstrapOptions& options) {
  const size_t n = std::min(a.size(), b.size());
  return BootstrapWithCounts(a, b, options, [n](Rng& rng, std::vector<int>& count) {
    for (size_t k = 0; k < n; ++k) ++count[rng.Below(n)];
  });
}

PairedBootstrap BootstrapPairedClustered(std::span<const double> a, std::span<const double> b,
                                         std::span<const int> cluster,
                                         const BootstrapOptions& options) {
  const size_t n = std::min({a.size(), b.size(), cluster.size()});
  const std::vector<std::vector<size_t>> clusters = GroupIndices(cluster, n);
  return BootstrapWithCounts(
      a.first(n), b.first(n), options, [&clusters](Rng& rng, std::vector<int>& count) {
        for (size_t c = 0; c < clusters.size(); ++c) {
          const std::vector<size_t>& drawn = clusters[rng.Below(clusters.size())];
          for (size_t k = 0; k < drawn.size(); ++k) {
            ++count[drawn[rng.Below(drawn.size())]];
          }
        }
      });
}

VarianceComponents OneWayVarianceComponents(std::span<const double> values,
                                            std::span<const int> group) {
  std::map<int, std::vector<double>> groups;
  for (size_t i = 0; i < values.size() && i < group.size(); ++i)
    groups[group[i]].push_back(values[i]);
  VarianceComponents v;
  const double k = static_cast<double>(groups.size());
  double n = 0, sum = 0, squares_of_sizes = 0;
  for (const auto& [g, members] : groups) {
    n += static_cast<double>(members.size());
    squares_of_sizes += static_cast<double>(members.size() * members.size());
    for (double x : members) sum += x;
  }
  if (k < 2 || n <= k) return v;
  const double grand = sum / n;
  double between_ss = 0, within_ss = 0;
  for (const auto& [g, members] : groups) {
    const double mean = Mean(members);
    between_ss += static_cast<double>(members.size()) * (mean - grand) * (mean - grand);
    for (double x : members) within_ss += (x - mean) * (x - mean);
  }
  const double msb = between_ss / (k - 1), msw = within_ss / (n - k);
  const double n0 = (n - squares_of_sizes / n) / (k - 1);
  v.within = msw;
  v.between = std::max(0.0, (msb - msw) / n0);
  return v;
}

Interval BootstrapBetweenShare(std::span<const double> values, std::span<const int> group,
                               const BootstrapOptions& options) {
  const std::vector<std::vector<size_t>> groups =
      GroupIndices(group, std::min(values.size(), group.size()));
  Rng rng(options.seed);
  const int resamples = std::max(1, options.resamples);
  std::vector<double> shares(resamples), drawn;
  std::vector<int> drawn_group;
  for (int r = 0; r < resamples; ++r) {
    drawn.clear();
    drawn_group.clear();
    for (size_t c = 0; c < groups.size(); ++c) {
      const std::vector<size_t>& members = groups[rng.Below(groups.size())];
      for (size_t k = 0; k < members.size(); ++k) {
        drawn.push_back(values[members[rng.Below(members.size())]]);
        drawn_group.push_back(static_cast<int>(c));
      }
    }
    shares[r] = OneWayVarianceComponents(drawn, drawn_group).between_share();
  }
  return PercentileInterval(shares, options.level);
}

CrossedComponents TwoWayVarianceComponents(std::span<const double> values, int rows, int columns) {
  CrossedComponents v;
  if (rows < 2 || columns < 2 || values.size() != static_cast<size_t>(rows) * columns) return v;
  const auto at = [&](int r, int c) { return values[static_cast<size_t>(r) * columns + c]; };
  std::vector<double> row_mean(rows, 0.0), column_mean(columns, 0.0);
  double grand = 0;
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < columns; ++c) {
      row_mean[r] += at(r, c) / columns;
      column_mean[c] += at(r, c) / rows;
      grand += at(r, c) / (static_cast<double>(rows) * columns);
    }
  }
  double row_ss = 0, column_ss = 0, rest_ss = 0;
  for (int r = 0; r < rows; ++r) row_ss += columns * (row_mean[r] - grand) * (row_mean[r] - grand);
  for (int c = 0; c < columns; ++c) {
    column_ss += rows * (column_mean[c] - grand) * (column_mean[c] - grand);
  }
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < columns; ++c) {
      const double e = at(r, c) - row_mean[r] - column_mean[c] + grand;
      rest_ss += e * e;
    }
  }
  const double ms_row = row_ss / (rows - 1), ms_column = column_ss / (columns - 1);
  const double ms_rest = rest_ss / ((rows - 1) * (columns - 1));
  v.rest = ms_rest;
  v.row = std::max(0.0, (ms_row - ms_rest) / columns);
  v.column = std::max(0.0, (ms_column - ms_rest) / rows);
  return v;
}

CrossedShareIntervals BootstrapCrossedShares(std::span<const double> values, int rows, int columns,
                                             const BootstrapOptions& options) {
  Rng rng(options.seed);
  const int resamples = std::max(1, options.resamples);
  std::vector<double> row_shares(resamples), column_shares(resamples);
  std::vector<double> drawn(values.size());
  std::vector<int> row_of(rows), column_of(columns);
  for (int k = 0; k < resamples; ++k) {
    for (int& r : row_of) r = static_cast<int>(rng.Below(rows));
    for (int& c : column_of) c = static_cast<int>(rng.Below(columns));
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < columns; ++c) {
        drawn[static_cast<size_t>(r) * columns + c] =
            values[static_cast<size_t>(row_of[r]) * columns + column_of[c]];
      }
    }
    const CrossedComponents v = TwoWayVarianceComponents(drawn, rows, columns);
    row_shares[k] = v.row_share();
    column_shares[k] = v.column_share();
  }
  return {PercentileInterval(row_shares, options.level),
          PercentileInterval(column_shares, options.level)};
}

}  // namespace seedproof
