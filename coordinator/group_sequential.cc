#include "coordinator/group_sequential.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "backends/random.h"

namespace seedproof {
namespace {

// Doubled mid-ranks of |gains[0..n)| among the non-zero ones (zeros get 0: their
// sign is no evidence either way, as Wilcoxon drops them). Integers, so every
// statistic below is an exact integer in a double and ties compare equal.
std::vector<int> DoubledRanks(std::span<const double> gains, int n) {
  std::vector<int> order;
  for (int i = 0; i < n; ++i) {
    if (gains[i] != 0) order.push_back(i);
  }
  std::sort(order.begin(), order.end(),
            [&](int x, int y) { return std::fabs(gains[x]) < std::fabs(gains[y]); });
  std::vector<int> rank(n, 0);
  for (size_t k = 0; k < order.size();) {
    size_t m = k;
    while (m + 1 < order.size() && std::fabs(gains[order[m + 1]]) == std::fabs(gains[order[k]])) {
      ++m;
    }
    for (size_t i = k; i <= m; ++i) rank[order[i]] = static_cast<int>(k + 1 + m + 1);
    k = m + 1;
  }
  return rank;
}

// The sign-flip draws' statistics at each look, and the order to walk them in.
class Looks {
 public:
  Looks(std::span<const double> gains, std::span<const int> looks, int planned,
        const SequentialTestOptions& options)
      : draws_(std::max(1, options.draws)) {
    const int n = static_cast<int>(gains.size());
    // Whether seed i is positive in draw r: draw 0 is the observed signs; draw
    // r > 0 a fair coin per seed, bit i % 64 of the (i / 64)-th number of draw
    // r's own stream, so a look's draws do not depend on how many seeds later
    // looks add.
    const int words = (n + 63) / 64;
    std::vector<uint64_t> positive(static_cast<size_t>(draws_) * words, 0);
    for (int i = 0; i < n; ++i) positive[i / 64] |= uint64_t{gains[i] > 0} << (i % 64);
    for (int r = 1; r < draws_; ++r) {
      Rng rng(StreamSeed(options.seed, static_cast<uint64_t>(r)));
      for (int w = 0; w < words; ++w) positive[static_cast<size_t>(r) * words + w] = rng.NextU64();
    }
    for (int seen : looks) {
      const std::vector<int> rank = DoubledRanks(gains, seen);
      const int total = std::accumulate(rank.begin(), rank.end(), 0);
      std::vector<int> stat(draws_);
      int largest = 0;
      for (int r = 0; r < draws_; ++r) {
        // The signed sum is 2 * (the positive ranks) - (all ranks).
        const uint64_t* bits = &positive[static_cast<size_t>(r) * words];
        int plus = 0;
        for (int i = 0; i < seen; ++i)
          plus += static_cast<int>((bits[i / 64] >> (i % 64)) & 1) * rank[i];
        stat[r] = std::abs(2 * plus - total);
        largest = std::max(largest, stat[r]);
      }
      // The statistics are small integers: a counting sort, largest first, ties
      // in draw order.
      std::vector<int> start(largest + 2, 0);
      for (int v : stat) ++start[largest - v + 1];
      for (int v = 1; v <= largest + 1; ++v) start[v] += start[v - 1];
      std::vector<int> order(draws_);
      for (int r = 0; r < draws_; ++r) order[start[largest - stat[r]]++] = r;
      const double share = std::min(1.0, static_cast<double>(seen) / std::max(1, planned));
      spend_.push_back(std::pow(share, options.rho));
      stat_.push_back(std::move(stat));
      order_.push_back(std::move(order));
    }
  }

  // The levels at which some look's number of rejectable draws grows (and 1):
  // between two of them the test does not change. Ascending.
  std::vector<double> Levels() const {
    std::vector<double> levels = {1.0};
    for (double spend : spend_) {
      // Each look's levels ascend already: merge them in.
      const size_t before = levels.size();
      for (int c = 1; c <= static_cast<int>(std::floor(spend * draws_ + 1e-9)); ++c) {
        levels.push_back(c / (spend * draws_));
      }
      std::inplace_merge(levels.begin(), levels.begin() + static_cast<long>(before), levels.end());
    }
    levels.erase(std::unique(levels.begin(), levels.end()), levels.end());
    return levels;
  }

  int size() const { return static_cast<int>(stat_.size()); }

  // The first look at which the test at level `alpha` rejects for the observed
  // signs (draw 0); size() if none does. At each look the draws not rejected
  // before with the largest statistics are rejected, whole tie groups only, as
  // many as keep the rejected draws in all at most alpha * t^rho of them.
  int FirstRejection(double alpha) const {
    std::vector<char> rejected(draws_, 0);
    int rejected_count = 0;
    for (int j = 0; j < size(); ++j) {
      const int allowed = static_cast<int>(std::floor(alpha * spend_[j] * draws_ + 1e-9));
      int budget = allowed - rejected_count;
      if (budget <= 0) continue;
      const std::vector<int>& stat = stat_[j];
      const std::vector<int>& order = order_[j];
      size_t k = 0;
      while (k < order.size()) {
        // The next tie group among the draws still in play.
        size_t end = k;
        int group = 0;
        while (end < order.size() && stat[order[end]] == stat[order[k]]) {
          group += !rejected[order[end]];
          ++end;
        }
        if (group > budget) break;
        for (size_t i = k; i < end; ++i) {
          if (!rejected[order[i]]) {
            rejected[order[i]] = 1;
            ++rejected_count;
            --budget;
          }
        }
        k = end;
      }
      if (rejected[0]) return j;
    }
    return size();
  }

 private:
  int draws_;
  std::vector<double> spend_;            // t^rho per look
  std::vector<std::vector<int>> stat_;   // per look, per draw: |sum of signed doubled ranks|
  std::vector<std::vector<int>> order_;  // per look: draws by statistic, largest first
};

}  // namespace

double RepeatedSignedRankP(std::span<const double> gains, std::span<const int> looks, int planned,
                           const SequentialTestOptions& options) {
  const Looks design(gains, looks, planned, options);
  const int last = design.size() - 1;
  if (last < 0 || design.FirstRejection(1.0) > last) return 1.0;
  // The smallest level at which the first rejection reaches the last look, by
  // bisection over the levels where the test changes: the rejection regions grow
  // with the level.
  const std::vector<double> levels = design.Levels();
  size_t low = 0, high = levels.size() - 1;  // the test at levels[high] rejects
  while (low < high) {
    const size_t mid = (low + high) / 2;
    if (design.FirstRejection(levels[mid]) <= last) {
      high = mid;
    } else {
      low = mid + 1;
    }
  }
  return levels[high];
}

}  // namespace seedproof
