// From a sweep's trial results to a verdict per arm: each arm against its
// baseline (or another arm), paired by seed, with the statistics behind the call.
// The rules are documented in docs/REPORTS.md; this is their one implementation.
//
//   StudyResults study = ...;              // spec + results (cli/report_command.cc)
//   auto analysis = AnalyzeStudy(study, {});
//   for (const ArmAnalysis& arm : analysis->arms) ... arm.verdict ...
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/group_sequential.h"
#include "coordinator/statistics.h"
#include "experiments/sweep.h"
#include "experiments/trial_result.h"

namespace seedproof {

enum class Verdict { kRobustGain, kRobustLoss, kSeedDependent, kNoEffect, kTooFewSeeds };
// "robust_gain", "robust_loss", "seed_dependent", "no_effect", "too_few_seeds".
const char* VerdictName(Verdict verdict);

struct AnalysisOptions {
  double level = 0.95;  // of every interval; alpha = 1 - level for the tests
  Correction correction = Correction::kHolm;
  int resamples = 10000;  // bootstrap resamples
  uint64_t bootstrap_seed = 0x5eed5eedULL;
  int min_seeds = 5;                 // fewer paired seeds: too_few_seeds
  SequentialTestOptions sequential;  // sequential seeds' test (group_sequential.h)
  // Arm-against-arm comparisons asked for ("arm", "other arm"); {"*", "*"}: every pair.
  std::vector<std::pair<std::string, std::string>> comparisons;
};

// One paired comparison: `name` against `against` ("baseline" or an arm) on the
// seeds where both completed. Scores and gains are test accuracies (fractions:
// 0.01 is one percentage point).
struct ArmAnalysis {
  std::string name;    // the arm
  std::string target;  // the target task
  std::string against = "baseline";
  Verdict verdict = Verdict::kTooFewSeeds;
  std::string reason;  // the rule that decided, in words

  std::vector<int> seeds;                             // paired seed indices, ascending
  std::vector<double> scores, against_scores, gains;  // parallel to seeds
  int n_seeds = 0;
  // 0: the seeds are independent; else how many source models they share (fewer
  // than the seeds): the units the interval resamples and the tests count.
  int source_models = 0;
  // Where the spread of the gains comes from, when the design allows it (at least
  // 2 source models with at least 2 seeds each): the variance of one seed's gain
  // split into the source model's part and the seed's own streams' part (init,
  // order, subset), one-way random-effects estimates; sds in accuracy.
  bool variance_split = false;
  double source_sd = 0, seed_sd = 0;
  double source_share = 0;   // source_sd^2 / (source_sd^2 + seed_sd^2)
  Interval source_share_ci;  // two-stage bootstrap (BootstrapBetweenShare)
  // Crossed streams (seeds: {crossed: ...}), every seed of the grid paired: the
  // variance of one seed's gain split into weight initialisation, data order and
  // the rest (their interaction, the subset, a per-seed source model), two-way
  // random-effects estimates with pigeonhole-bootstrap intervals; sds in accuracy.
  bool crossed_split = false;
  double init_sd = 0, order_sd = 0, rest_sd = 0;
  double init_share = 0, order_share = 0;
  Interval init_share_ci, order_share_ci;
  int diverged = 0;  // seeds on which this arm diverged and `against` did not (not paired)

  double mean = 0, against_mean = 0;   // mean score of each side over the paired seeds
  double mean_gain = 0, iqm_gain = 0;  // of the per-seed gains
  Interval gain_ci;                    // percentile bootstrap of mean_gain
  double p_improvement = 0.5;          // P(arm > against), Mann–Whitney U / n^2
  Interval p_improvement_ci;
  SignedRankResult wilcoxon;
  double wilcoxon_p_adjusted = 1;  // corrected across the family (AnalysisOptions::correction)
  double sign_p = 1;
  int wins = 0, ties = 0, losses = 0;

  // Sequential seeds: the look (1-based, of `looks`) this analysis stands at, 0
  // in a fixed design. An open arm gets seeds at the next look; a stopped one
  // says why in `stopped` (decided, too small an effect to chase, the maximum).
  int look = 0, looks = 0;
  bool open = false;
  std::string stopped;

  // What one seed would have claimed.
  double best_seed_gain = 0;
  int best_seed = -1;
  double share_seeds_gain = 0;  // seeds on which the arm beat `against`
  double large_step = 0;        // a gain larger than this looks real from one seed:
                                // 2 x the target's test-set noise floor
  int large_gains = 0, large_losses = 0;
};

struct TargetSummary {
  std::string name;
  double baseline_mean = 0;  // mean test accuracy of the baseline
  int64_t test_examples = 0;
  double noise_floor = 0;  // sqrt(p (1 - p) / n): one standard error of a test accuracy
};

// Mean and spread of a validation-accuracy curve across seeds, per epoch.
struct LearningCurve {
  std::string name, target;             // an arm, or "baseline"
  std::vector<double> mean, low, high;  // low/high: the 25th and 75th percentiles
  int seeds = 0;
};

// Confirmation: an arm re-run on fresh seeds, judged on those seeds alone.
struct Confirmation {
  ArmAnalysis analysis;     // on the confirmation seeds; family = the confirmed arms
  bool replicated = false;  // analysis.verdict == robust_gain
};

// What the verdicts cover: the sources of luck the seeds varied, and what they are
// conditional on (a stream the spec fixed, a subset it chose, one source model).
struct Coverage {
  std::vector<std::string> varied;       // "weight initialisation", "data order", ...
  std::vector<std::string> conditional;  // each with what it says nothing about
  int source_models = 1;                 // distinct source models behind the seeds
  bool imported = false;                 // the source model is an imported file
};
Coverage CoverageOf(const SweepSpec& spec);

struct StudyAnalysis {
  std::string sweep, sweep_id;
  std::string metric = "test_accuracy";
  AnalysisOptions options;
  int exploration_seeds = 0;      // seeds 0..n-1 explore; later ones confirm
  ConfirmationSpec confirmation;  // from the spec
  int trials_total = 0, trials_finished = 0;
  bool complete = false;  // every trial of the sweep has finished
  std::vector<TargetSummary> targets;
  std::vector<ArmAnalysis> arms;         // against the baseline, in spec order per target
  std::vector<ArmAnalysis> comparisons;  // arm against arm, as asked for
  std::vector<std::optional<Confirmation>> confirmations;  // parallel to arms
  // Luck alone: the expected best of arms.size() one-seed comparisons if every arm
  // were the baseline itself on another seed (Dodge's expected maximum over the
  // differences between the baseline's seeds, every ordered pair of them).
  double expected_best_under_luck = 0;
  std::vector<LearningCurve> curves;  // baseline first, then arms
  Coverage coverage;
  // Sequential seeds: the seed counts of the looks, how many were reached, and
  // the target trials (scratch and transfer) run against the fixed design's.
  std::vector<int> looks;
  int looks_reached = 0;
  int target_trials_run = 0, target_trials_fixed_design = 0;
};

// What a report reads: the sweep's spec and its trial results so far.
struct StudyResults {
  std::string sweep, sweep_id;
  SweepSpec spec;
  int trials_total = 0;              // in the sweep now (confirmation trials join later)
  bool finished = false;             // the sweep is done or cancelled
  std::vector<TrialResult> results;  // pretrain results are ignored
  // Sequential seeds: how many seeds the study has started (1 + the largest seed
  // index of its target trials); -1: as the results show it.
  int seeds_started = -1;
};

// The spec's level and correction, the defaults for everything else.
AnalysisOptions OptionsFromSpec(const AnalysisSpec& spec);

// The exploration seeds against the baseline, the requested arm comparisons, and
// the confirmation seeds of the arms that have them. INVALID_ARGUMENT naming the
// arm when a requested comparison names an arm the study does not have.
absl::StatusOr<StudyAnalysis> AnalyzeStudy(const StudyResults& study,
                                           const AnalysisOptions& options);

// The building blocks, for the simulation tests: one paired comparison (without
// the correction), and the correction with the verdicts over a family. With
// quantum > 0 (1 / test examples) each gain is rounded to a multiple of it, so
// equal count differences are equal doubles and tie in the rank tests.
// clusters (parallel to seeds; empty: none): the source model each seed reused.
// With fewer source models than seeds, the interval resamples source models and
// then seeds within them (BootstrapPairedClustered), the signed-rank and sign
// tests count the source models' mean gains, and source_models is set.
ArmAnalysis ComparePaired(std::string name, std::string against, std::vector<int> seeds,
                          std::vector<double> scores, std::vector<double> against_scores,
                          double large_step, const AnalysisOptions& options, double quantum = 0,
                          const std::vector<int>& clusters = {});
void DecideFamily(std::vector<ArmAnalysis>& family, const AnalysisOptions& options);

// Sequential seeds (docs/REPORTS.md): replays the looks of a family of `arms`
// arms. At look k (looks[k] seeds) every open arm is compared on the seeds below
// it (compare(arm, seeds)), its repeated p-value (RepeatedSignedRankP) is
// corrected with the other arms' (stopped ones keep theirs) and the verdict rules
// applied; an arm stops when it is robust, when its interval lies within
// +-large_step, or at the last look. Returns each arm as it stood when it stopped
// or at the last look reached (`reached` looks of looks.size()).
std::vector<ArmAnalysis> RunSequentialLooks(
    int arms, const std::vector<int>& looks, int reached,
    const std::function<ArmAnalysis(int arm, int seeds)>& compare, const AnalysisOptions& options);

// The arm with the largest single-seed gain over the baseline: what a one-seed
// study would have reported. nullptr when no arm has a paired seed.
const ArmAnalysis* BestSingleSeed(const StudyAnalysis& analysis);

// The arms the coordinator re-runs on confirmation seeds, by the spec's rule:
// every robust gain, or the arm with the largest mean gain (per target). As
// (target, arm) pairs in the order of StudyAnalysis::arms; empty without a
// confirmation in the spec.
std::vector<std::pair<std::string, std::string>> ArmsToConfirm(const StudyAnalysis& analysis);

}  // namespace seedproof
