// Sequential seeds (docs/REPORTS.md, "Sequential seeds"): a group-sequential
// two-sided signed-rank test that may look at the gains after every step of
// seeds and stop, with its error controlled under that optional stopping.
//
//   std::vector<int> looks = SeedLooks(spec.seeds);            // 10, 15, ..., 40
//   double p = RepeatedSignedRankP(gains, {10, 15}, 40, {});   // at the second look
//   // p < alpha / m: reject at look 2 (Holm across the m arms on such p-values)
//
// The test spends alpha as the seeds accrue: by a look that has seen a share t of
// the planned seeds, at most alpha * t^rho of the null's probability is in the
// rejection region (Kim & DeMets's power family; rho = 3 is close to O'Brien &
// Fleming's boundaries: little is spent early). Each look's boundary is found
// among sign-flip draws of the gains seen so far: under "the gains are
// symmetric about zero" the signs are fair coins independent of the magnitudes,
// so with the observed signs counted among the draws the test's level holds
// exactly (a Monte Carlo permutation test), whatever the sample size.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace seedproof {

struct SequentialTestOptions {
  double rho = 3;    // alpha spent by information share t: alpha * t^rho
  int draws = 4000;  // sign-flip draws, the observed signs the first of them
  uint64_t seed = 0x5eed5eedULL;
};

// gains: the paired gains in seed order, as many as the last look saw; looks: how
// many of them each look saw (ascending, the last == gains.size()); planned: how
// many the design's last look would see, so look j's information share is
// looks[j] / planned. Returns the repeated p-value at the last look: the smallest
// level at which the test rejects at that look or an earlier one (1 if none
// does). It depends on the gains up to the last look only, so the p-value of an
// earlier look is this function of the gains it saw, never changed by later ones.
double RepeatedSignedRankP(std::span<const double> gains, std::span<const int> looks, int planned,
                           const SequentialTestOptions& options);

}  // namespace seedproof
