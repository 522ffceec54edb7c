#include "coordinator/analysis.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace seedproof {

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kRobustGain:
      return "robust_gain";
    case Verdict::kRobustLoss:
      return "robust_loss";
    case Verdict::kSeedDependent:
      return "seed_dependent";
    case Verdict::kNoEffect:
      return "no_effect";
    case Verdict::kTooFewSeeds:
      return "too_few_seeds";
  }
  return "unknown";
}

AnalysisOptions OptionsFromSpec(const AnalysisSpec& spec) {
  AnalysisOptions options;
  options.level = spec.level;
  options.correction = spec.correction;
  return options;
}

ArmAnalysis ComparePaired(std::string name, std::string against, std::vector<int> seeds,
                          std::vector<double> scores, std::vector<double> against_scores,
                          double large_step, const AnalysisOptions& options, double quantum,
                          const std::vector<int>& clusters) {
  ArmAnalysis a;
  a.name = std::move(name);
  a.against = std::move(against);
  a.seeds = std::move(seeds);
  a.scores = std::move(scores);
  a.against_scores = std::move(against_scores);
  a.n_seeds = static_cast<int>(a.seeds.size());
  a.large_step = large_step;
  for (int i = 0; i < a.n_seeds; ++i) {
    double gain = a.scores[i] - a.against_scores[i];
    if (quantum > 0) gain = std::round(gain / quantum) * quantum;
    a.gains.push_back(gain);
    a.wins += gain > 0;
    a.ties += gain == 0;
    a.losses += gain < 0;
    a.large_gains += gain > large_step;
    a.large_losses += gain < -large_step;
    if (a.best_seed < 0 || gain > a.best_seed_gain) {
      a.best_seed_gain = gain;
      a.best_seed = a.seeds[i];
    }
  }
  if (a.n_seeds == 0) return a;
  a.mean = Mean(a.scores);
  a.against_mean = Mean(a.against_scores);
  a.mean_gain = Mean(a.gains);
  a.iqm_gain = InterquartileMean(a.gains);
  const BootstrapOptions resampling = {
      .resamples = options.resamples, .level = options.level, .seed = options.bootstrap_seed};
  // Seeds that share a source model are one independent unit: the interval
  // resamples source models, then seeds within them, and the tests count the
  // source models' mean gains.
  std::map<int, std::vector<double>> gains_of;
  for (size_t i = 0; i < clusters.size() && i < a.gains.size(); ++i) {
    gains_of[clusters[i]].push_back(a.gains[i]);
  }
  const bool clustered =
      clusters.size() == a.gains.size() && static_cast<int>(gains_of.size()) < a.n_seeds;
  const PairedBootstrap bootstrap =
      clustered ? BootstrapPairedClustered(a.scores, a.against_scores, clusters, resampling)
                : BootstrapPaired(a.scores, a.against_scores, resampling);
  a.gain_ci = bootstrap.mean_difference;
  a.p_improvement = ProbabilityOfImprovement(a.scores, a.against_scores);
  a.p_improvement_ci = bootstrap.probability_of_improvement;
  if (clustered) {
    a.source_models = static_cast<int>(gains_of.size());
    std::vector<double> means;
    int wins = 0, losses = 0;
    for (const auto& [source, gains] : gains_of) {
      double mean = Mean(gains);
      if (quantum > 0) mean = std::round(mean / quantum * gains.size()) / gains.size() * quantum;
      means.push_back(mean);
      wins += mean > 0;
      losses += mean < 0;
    }
    a.wilcoxon = WilcoxonSignedRank(means);
    a.sign_p = SignTestP(wins, losses);
    const bool nested =
        gains_of.size() >= 2 && std::all_of(gains_of.begin(), gains_of.end(),
                                            [](const auto& g) { return g.second.size() >= 2; });
    if (nested) {
      const VarianceComponents v = OneWayVarianceComponents(a.gains, clusters);
      a.variance_split = true;
      a.source_sd = std::sqrt(v.between);
      a.seed_sd = std::sqrt(v.within);
      a.source_share = v.between_share();
      a.source_share_ci = BootstrapBetweenShare(a.gains, clusters, resampling);
    }
  } else {
    a.wilcoxon = WilcoxonSignedRank(a.gains);
    a.sign_p = SignTestP(a.wins, a.losses);
  }
  a.wilcoxon_p_adjusted = a.wilcoxon.p_value;
  a.share_seeds_gain = static_cast<double>(a.wins) / a.n_seeds;
  return a;
}

namespace {

std::string Points(double fraction) { return absl::StrFormat("%+.2f points", 100 * fraction); }

// The smallest p-value the signed-rank test can give on n seeds (every seed
// agreeing), after the correction over a family of m comparisons.
double SmallestAttainableP(int n, int m, Correction correction) {
  const double p = std::min(1.0, 2 * std::pow(0.5, n));
  return correction == Correction::kHolm ? std::min(1.0, m * p) : p;
}

// The rules of docs/REPORTS.md, in order; the first that holds decides.
void Decide(ArmAnalysis& a, int family_size, const AnalysisOptions& options) {
  const double alpha = 1 - options.level;
  if (a.n_seeds < options.min_seeds) {
    a.verdict = Verdict::kTooFewSeeds;
    a.reason = absl::StrCat(a.n_seeds, " paired seeds; at least ", options.min_seeds,
                            " are needed to call anything");
    return;
  }
  // The test counts independent units: seeds, or the source models they share.
  const int units = a.source_models > 0 ? a.source_models : a.n_seeds;
  const char* unit = a.source_models > 0 ? "source models" : "seeds";
  if (const double floor = SmallestAttainableP(units, family_size, options.correction);
      floor >= alpha) {
    int needed = units;
    while (SmallestAttainableP(needed, family_size, options.correction) >= alpha) ++needed;
    a.verdict = Verdict::kTooFewSeeds;
    a.reason = absl::StrFormat(
        "on %d %s%s the signed-rank test cannot go below p = %.3g (%s over %d "
        "comparisons) even if every one agrees; %d %s are needed",
        units, a.source_models > 0 ? "" : "paired ", unit, floor,
        CorrectionName(options.correction), family_size, needed, unit);
    if (a.source_models > 0) {
      absl::StrAppend(&a.reason, " (the ", a.n_seeds, " seeds share ", a.source_models,
                      " source models: seeds of one source model are not independent)");
    }
    return;
  }
  const bool significant = a.wilcoxon_p_adjusted < alpha;
  const std::string test =
      a.looks > 0 ? absl::StrFormat(
                        "sequential signed-rank p = %.3g (repeated p-value at look %d of %d, "
                        "%s-corrected)",
                        a.wilcoxon_p_adjusted, a.look, a.looks, CorrectionName(options.correction))
                  : absl::StrFormat("Wilcoxon p = %.3g (%s-corrected%s)", a.wilcoxon_p_adjusted,
                                    CorrectionName(options.correction),
                                    a.source_models > 0
                                        ? absl::StrFormat(", on the mean gains of %d source models",
                                                          a.source_models)
                                        : "");
  const std::string interval = absl::StrFormat("%.0f%% interval [%s, %s]", 100 * options.level,
                                               Points(a.gain_ci.low), Points(a.gain_ci.high));
  if (significant && a.gain_ci.low > 0 && a.diverged == 0) {
    a.verdict = Verdict::kRobustGain;
    a.reason =
        absl::StrCat(test, " < ", absl::StrFormat("%g", alpha), " and ", interval, " above zero");
  } else if (significant && a.gain_ci.high < 0) {
    a.verdict = Verdict::kRobustLoss;
    a.reason =
        absl::StrCat(test, " < ", absl::StrFormat("%g", alpha), " and ", interval, " below zero");
  } else if (a.large_gains > 0 && a.large_losses > 0) {
    a.verdict = Verdict::kSeedDependent;
    a.reason =
        absl::StrCat("gains beyond ", Points(a.large_step), " on ", a.large_gains,
                     " seeds, losses beyond ", Points(-a.large_step), " on ", a.large_losses);
  } else if (a.gain_ci.low <= 0 && a.gain_ci.high >= 0 && a.best_seed_gain > a.large_step) {
    a.verdict = Verdict::kSeedDependent;
    a.reason = absl::StrCat(interval, " straddles zero while seed ", a.best_seed, " alone shows ",
                            Points(a.best_seed_gain));
  } else if (a.diverged > 0 && a.mean_gain > 0) {
    a.verdict = Verdict::kSeedDependent;
    a.reason = absl::StrCat("gains where it trained, but diverged on ", a.diverged, " seeds");
  } else {
    a.verdict = Verdict::kNoEffect;
    a.reason = absl::StrCat(significant ? "" : "not significant: ", test, "; ", interval);
  }
}

}  // namespace

void DecideFamily(std::vector<ArmAnalysis>& family, const AnalysisOptions& options) {
  // Only comparisons that can be called anything are in the family.
  std::vector<double> p;
  std::vector<ArmAnalysis*> members;
  for (ArmAnalysis& a : family) {
    if (a.n_seeds < options.min_seeds) continue;
    p.push_back(a.wilcoxon.p_value);
    members.push_back(&a);
  }
  const std::vector<double> adjusted = AdjustPValues(p, options.correction);
  for (size_t i = 0; i < members.size(); ++i) members[i]->wilcoxon_p_adjusted = adjusted[i];
  for (ArmAnalysis& a : family) Decide(a, static_cast<int>(members.size()), options);
}

std::vector<ArmAnalysis> RunSequentialLooks(
    int arms, const std::vector<int>& looks, int reached,
    const std::function<ArmAnalysis(int arm, int seeds)>& compare, const AnalysisOptions& options) {
  std::vector<ArmAnalysis> family(static_cast<size_t>(arms));
  std::vector<double> p(static_cast<size_t>(arms), 1.0);  // repeated p-values, frozen at a stop
  std::vector<bool> open(static_cast<size_t>(arms), true);
  const int last = static_cast<int>(looks.size()) - 1;
  for (int k = 0; k < std::min(reached, last + 1); ++k) {
    for (int i = 0; i < arms; ++i) {
      if (!open[i]) continue;
      ArmAnalysis a = compare(i, looks[k]);
      // How many of its paired seeds each look so far saw.
      std::vector<int> seen;
      for (int j = 0; j <= k; ++j) {
        seen.push_back(static_cast<int>(std::lower_bound(a.seeds.begin(), a.seeds.end(), looks[j]) -
                                        a.seeds.begin()));
      }
      p[i] = a.gains.empty() ? 1.0
                             : RepeatedSignedRankP(a.gains, seen, looks.back(), options.sequential);
      a.look = k + 1;
      a.looks = last + 1;
      family[i] = std::move(a);
    }
    // The correction over every arm that can be called anything; stopped arms
    // keep the p-value they stopped with.
    std::vector<double> members_p;
    std::vector<int> members;
    for (int i = 0; i < arms; ++i) {
      if (family[i].n_seeds < options.min_seeds) continue;
      members_p.push_back(p[i]);
      members.push_back(i);
    }
    const std::vector<double> adjusted = AdjustPValues(members_p, options.correction);
    std::vector<double> adjusted_of(static_cast<size_t>(arms), 1.0);
    for (size_t m = 0; m < members.size(); ++m) adjusted_of[members[m]] = adjusted[m];
    for (int i = 0; i < arms; ++i) {
      if (!open[i]) continue;
      ArmAnalysis& a = family[i];
      a.wilcoxon_p_adjusted = adjusted_of[i];
      Decide(a, static_cast<int>(members.size()), options);
      const bool robust = a.verdict == Verdict::kRobustGain || a.verdict == Verdict::kRobustLoss;
      const bool small = a.n_seeds >= options.min_seeds && a.gain_ci.low > -a.large_step &&
                         a.gain_ci.high < a.large_step;
      if (robust) {
        a.stopped = absl::StrCat("decided at look ", k + 1, " (", looks[k], " seeds)");
      } else if (small) {
        a.stopped = absl::StrCat("stopped at look ", k + 1, " (", looks[k],
                                 " seeds): the interval lies within ", Points(a.large_step),
                                 " either way, too small an effect to chase");
      } else if (k == last) {
        a.stopped = absl::StrCat("ran to the maximum, ", looks[k], " seeds");
      }
      open[i] = a.stopped.empty();
      a.open = open[i];
    }
  }
  return family;
}

namespace {

// One side of a comparison: its results by seed index.
using BySeed = std::map<int, const TrialResult*>;

// An accuracy on n test items is a count / n: rounded to it (and gains to
// multiples of 1 / n, ComparePaired), equal counts are equal doubles.
double Score(const TrialResult& r) {
  if (r.test_examples <= 0) return r.test_accuracy;
  const double n = static_cast<double>(r.test_examples);
  return std::round(r.test_accuracy * n) / n;
}

// `side` against `other` on the seeds in [first, last) where both completed.
// shared_sources > 0: seed i reuses source model i mod shared_sources, fewer
// source models than seeds (ComparePaired's clusters).
ArmAnalysis Pair(const std::string& name, const std::string& against, const std::string& target,
                 const BySeed& side, const BySeed& other, int first, int last, double large_step,
                 const AnalysisOptions& options, int shared_sources) {
  std::vector<int> seeds;
  std::vector<double> scores, against_scores;
  int diverged = 0;
  int64_t test_examples = 0;
  for (const auto& [seed, result] : side) {
    if (seed < first || seed >= last) continue;
    auto it = other.find(seed);
    if (it == other.end() || it->second->outcome != TrialOutcome::kCompleted) continue;
    if (result->outcome == TrialOutcome::kDiverged) ++diverged;
    if (result->outcome != TrialOutcome::kCompleted) continue;
    seeds.push_back(seed);
    test_examples = result->test_examples;
    scores.push_back(Score(*result));
    against_scores.push_back(Score(*it->second));
  }
  std::vector<int> clusters;
  if (shared_sources > 0) {
    for (int seed : seeds) clusters.push_back(seed % shared_sources);
  }
  ArmAnalysis a = ComparePaired(
      name, against, std::move(seeds), std::move(scores), std::move(against_scores), large_step,
      options, test_examples > 0 ? 1.0 / static_cast<double>(test_examples) : 0, clusters);
  a.target = target;
  a.diverged = diverged;
  return a;
}

// Crossed streams: with every seed of the grid paired, the gains' variance split
// into init (rows), order (columns) and the rest.
void SplitCrossed(ArmAnalysis& a, const SeedPolicy& seeds, const BootstrapOptions& resampling) {
  if (a.n_seeds != seeds.count) return;  // a seed missing: no grid
  const int rows = seeds.crossed_init, columns = seeds.crossed_order;
  const CrossedComponents v = TwoWayVarianceComponents(a.gains, rows, columns);
  a.crossed_split = true;
  a.init_sd = std::sqrt(v.row);
  a.order_sd = std::sqrt(v.column);
  a.rest_sd = std::sqrt(v.rest);
  a.init_share = v.row_share();
  a.order_share = v.column_share();
  const CrossedShareIntervals ci = BootstrapCrossedShares(a.gains, rows, columns, resampling);
  a.init_share_ci = ci.row;
  a.order_share_ci = ci.column;
}

LearningCurve CurveOf(const std::string& name, const std::string& target, const BySeed& side,
                      int last_seed) {
  LearningCurve curve;
  curve.name = name;
  curve.target = target;
  std::vector<std::vector<double>> by_epoch;
  for (const auto& [seed, result] : side) {
    if (seed >= last_seed || result->outcome != TrialOutcome::kCompleted) continue;
    ++curve.seeds;
    if (by_epoch.size() < result->epochs.size()) by_epoch.resize(result->epochs.size());
    for (size_t e = 0; e < result->epochs.size(); ++e) {
      by_epoch[e].push_back(result->epochs[e].val_accuracy);
    }
  }
  for (std::vector<double>& values : by_epoch) {
    std::sort(values.begin(), values.end());
    curve.mean.push_back(Mean(values));
    curve.low.push_back(QuantileOfSorted(values, 0.25));
    curve.high.push_back(QuantileOfSorted(values, 0.75));
  }
  return curve;
}

}  // namespace

Coverage CoverageOf(const SweepSpec& spec) {
  Coverage c;
  const SeedPolicy& seeds = spec.seeds;
  auto stream = [&](const std::optional<uint64_t>& fixed, const std::string& what,
                    const std::string& about) {
    if (fixed) {
      c.conditional.push_back(absl::StrCat(what, " held fixed (stream ", *fixed,
                                           "): says nothing about other ", about));
    } else {
      c.varied.push_back(what);
    }
  };
  if (seeds.crossed()) {
    c.varied.push_back(absl::StrCat("weight initialisation (", seeds.crossed_init,
                                    " streams, crossed with the data orders)"));
    c.varied.push_back(absl::StrCat("data order (", seeds.crossed_order, " streams)"));
  } else {
    stream(seeds.fixed_init, "weight initialisation", "initialisations");
    stream(seeds.fixed_order, "data order", "orders of the training data");
  }
  // A subset is drawn only for a target that takes a random train_size sample.
  std::vector<std::string> first, drawn;
  for (const TaskSpec& t : spec.targets) {
    if (t.train_size <= 0) continue;
    (t.subset == TaskSpec::Subset::kRandom ? drawn : first)
        .push_back(absl::StrCat(t.train_size, " of target ", t.name));
  }
  if (!drawn.empty()) {
    stream(seeds.fixed_subset, "training subset", "samples of the same size");
  }
  if (!first.empty()) {
    c.conditional.push_back(absl::StrCat("the first training examples (subset: first; ",
                                         absl::StrJoin(first, ", "),
                                         "): says nothing about other samples of the same size"));
  }
  if (spec.imported) {
    c.imported = true;
    c.conditional.push_back(absl::StrCat(
        "one source model, imported from ", spec.imported->path, " (sha256 ",
        spec.imported->sha256.substr(0, 12),
        "): says nothing about other source models, nor about this architecture trained again"));
    return c;
  }
  c.source_models = std::max(1, seeds.source_seeds);
  if (c.source_models == 1) {
    c.conditional.push_back(
        "one source model (source seed 0), reused by every seed: says nothing about other "
        "source models");
  } else if (c.source_models >= seeds.count) {
    c.varied.push_back("source model (a fresh one per seed)");
  } else {
    c.varied.push_back(absl::StrCat("source model (", c.source_models,
                                    " of them; seed i reuses model i mod ", c.source_models, ")"));
    c.conditional.push_back(absl::StrCat(
        "those ", c.source_models,
        " source models: seeds that share one are not independent, "
        "so the intervals resample source models, then seeds within them, and the tests "
        "count the source models' mean gains"));
  }
  return c;
}

absl::StatusOr<StudyAnalysis> AnalyzeStudy(const StudyResults& study,
                                           const AnalysisOptions& options) {
  const SweepSpec& spec = study.spec;
  StudyAnalysis out;
  out.sweep = study.sweep;
  out.sweep_id = study.sweep_id;
  out.options = options;
  out.exploration_seeds = spec.seeds.count;
  out.confirmation = spec.analysis.confirmation;
  out.trials_total = study.trials_total;
  out.complete = study.finished;
  out.coverage = CoverageOf(spec);
  // Fewer source models than seeds: seeds that share one are clustered.
  const int shared_sources =
      !spec.imported && spec.seeds.source_seeds > 1 && spec.seeds.source_seeds < spec.seeds.count
          ? spec.seeds.source_seeds
          : 0;

  // results[target][arm][seed]; the baseline is the arm "baseline".
  std::map<std::string, std::map<std::string, BySeed>> results;
  for (const TrialResult& r : study.results) {
    ++out.trials_finished;
    if (r.kind == TrialKind::kPretrain || r.outcome == TrialOutcome::kBlocked) continue;
    results[r.target][r.arm][r.seed_index] = &r;
  }
  std::vector<std::string> arm_names;
  for (const ArmSpec& arm : spec.arms) arm_names.push_back(arm.name);
  for (const auto& [a, b] : options.comparisons) {
    for (const std::string& name : {a, b}) {
      if (name != "*" && std::find(arm_names.begin(), arm_names.end(), name) == arm_names.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("compare: the study has no arm '", name, "'"));
      }
    }
  }

  if (spec.seeds.sequential() && !options.comparisons.empty()) {
    return absl::InvalidArgumentError(
        "compare: with sequential seeds each arm stops at its own look, and a test of two "
        "arms on the seeds both ran is not controlled for that stopping; compare arms in a "
        "fixed design (seeds: N)");
  }

  // "*" stands for every arm; a pair is compared once, in the order asked.
  std::vector<std::pair<std::string, std::string>> comparison_pairs;
  for (const auto& [a, b] : options.comparisons) {
    for (const std::string& first : arm_names) {
      for (const std::string& second : arm_names) {
        if ((a != "*" && a != first) || (b != "*" && b != second) || first == second) continue;
        const bool seen =
            std::any_of(comparison_pairs.begin(), comparison_pairs.end(), [&](const auto& p) {
              return (p.first == first && p.second == second) ||
                     (p.first == second && p.second == first);
            });
        if (!seen) comparison_pairs.emplace_back(first, second);
      }
    }
  }

  const int explore = spec.seeds.count;
  const int confirm_end = explore + spec.analysis.confirmation.seeds;
  std::vector<double> null_gains;  // baseline seed j - baseline seed i, i != j
  std::vector<ArmAnalysis> confirmations;
  std::vector<size_t> confirmation_arm;                                // index into out.arms
  std::vector<std::function<ArmAnalysis(int seeds)>> sequential_arms;  // in out.arms' order
  for (const TaskSpec& task : spec.targets) {
    auto& by_arm = results[task.name];
    const BySeed& baseline = by_arm["baseline"];
    TargetSummary summary{.name = task.name};
    std::vector<double> baseline_scores;
    for (const auto& [seed, r] : baseline) {
      if (seed >= explore || r->outcome != TrialOutcome::kCompleted) continue;
      baseline_scores.push_back(Score(*r));
      summary.test_examples = r->test_examples;
    }
    summary.baseline_mean = Mean(baseline_scores);
    for (size_t i = 0; i < baseline_scores.size(); ++i) {
      for (size_t j = 0; j < baseline_scores.size(); ++j) {
        if (i != j) null_gains.push_back(baseline_scores[j] - baseline_scores[i]);
      }
    }
    if (summary.test_examples > 0) {
      const double p = summary.baseline_mean;
      summary.noise_floor = std::sqrt(p * (1 - p) / static_cast<double>(summary.test_examples));
    }
    const double large_step = 2 * summary.noise_floor;
    out.targets.push_back(summary);
    out.curves.push_back(CurveOf("baseline", task.name, baseline, explore));

    for (const std::string& name : arm_names) {
      const BySeed& side = by_arm[name];
      if (spec.seeds.sequential()) {
        sequential_arms.push_back([&options, side = &side, base = &baseline, name,
                                   target = task.name, large_step](int seeds) {
          return Pair(name, "baseline", target, *side, *base, 0, seeds, large_step, options, 0);
        });
        out.curves.push_back(CurveOf(name, task.name, side, explore));
        continue;
      }
      out.arms.push_back(Pair(name, "baseline", task.name, side, baseline, 0, explore, large_step,
                              options, shared_sources));
      out.curves.push_back(CurveOf(name, task.name, side, explore));
      if (spec.analysis.confirmation.seeds > 0 &&
          std::any_of(side.begin(), side.end(),
                      [&](const auto& s) { return s.first >= explore; })) {
        confirmations.push_back(Pair(name, "baseline", task.name, side, baseline, explore,
                                     confirm_end, large_step, options, shared_sources));
        confirmation_arm.push_back(out.arms.size() - 1);
      }
    }
    for (const auto& [first, second] : comparison_pairs) {
      out.comparisons.push_back(Pair(first, second, task.name, by_arm[first], by_arm[second], 0,
                                     explore, large_step, options, shared_sources));
    }
  }
  if (spec.seeds.crossed()) {
    const BootstrapOptions resampling = {
        .resamples = options.resamples, .level = options.level, .seed = options.bootstrap_seed};
    for (ArmAnalysis& a : out.arms) SplitCrossed(a, spec.seeds, resampling);
  }
  if (spec.seeds.sequential()) {
    out.looks = SeedLooks(spec.seeds);
    int started = study.seeds_started;
    if (started < 0) {
      for (const TrialResult& r : study.results) {
        if (r.kind != TrialKind::kPretrain) started = std::max(started, r.seed_index + 1);
      }
    }
    // Look k is reached once a seed beyond look k - 1 has started.
    out.looks_reached = 1;
    while (out.looks_reached < static_cast<int>(out.looks.size()) &&
           started > out.looks[out.looks_reached - 1]) {
      ++out.looks_reached;
    }
    out.arms = RunSequentialLooks(
        static_cast<int>(sequential_arms.size()), out.looks, out.looks_reached,
        [&](int arm, int seeds) { return sequential_arms[arm](seeds); }, options);
    // Each target's baseline runs as far as its furthest arm.
    std::map<std::string, int> furthest;
    for (const ArmAnalysis& a : out.arms) {
      const int seeds = out.looks[a.look > 0 ? a.look - 1 : 0];
      out.target_trials_run += seeds;
      furthest[a.target] = std::max(furthest[a.target], seeds);
    }
    for (const auto& [target, seeds] : furthest) out.target_trials_run += seeds;
    out.target_trials_fixed_design =
        static_cast<int>((arm_names.size() + 1) * spec.targets.size()) * spec.seeds.count;
  } else {
    DecideFamily(out.arms, options);
  }
  DecideFamily(out.comparisons, options);
  DecideFamily(confirmations, options);
  out.confirmations.resize(out.arms.size());
  for (size_t i = 0; i < confirmations.size(); ++i) {
    const bool replicated = confirmations[i].verdict == Verdict::kRobustGain;
    out.confirmations[confirmation_arm[i]] = Confirmation{std::move(confirmations[i]), replicated};
  }
  out.expected_best_under_luck = ExpectedMaxOfN(null_gains, static_cast<int>(out.arms.size()));
  return out;
}

const ArmAnalysis* BestSingleSeed(const StudyAnalysis& analysis) {
  const ArmAnalysis* best = nullptr;
  for (const ArmAnalysis& a : analysis.arms) {
    if (a.n_seeds > 0 && (best == nullptr || a.best_seed_gain > best->best_seed_gain)) best = &a;
  }
  return best;
}

std::vector<std::pair<std::string, std::string>> ArmsToConfirm(const StudyAnalysis& analysis) {
  std::vector<std::pair<std::string, std::string>> chosen;
  if (analysis.confirmation.seeds == 0) return chosen;
  if (analysis.confirmation.arms == ConfirmationSpec::Arms::kRobust) {
    for (const ArmAnalysis& a : analysis.arms) {
      if (a.verdict == Verdict::kRobustGain) chosen.emplace_back(a.target, a.name);
    }
    return chosen;
  }
  std::map<std::string, const ArmAnalysis*> best;  // by target
  for (const ArmAnalysis& a : analysis.arms) {
    if (a.n_seeds == 0) continue;
    const ArmAnalysis*& b = best[a.target];
    if (b == nullptr || a.mean_gain > b->mean_gain) b = &a;
  }
  for (const ArmAnalysis& a : analysis.arms) {
    if (best[a.target] == &a) chosen.emplace_back(a.target, a.name);
  }
  return chosen;
}

}  // namespace seedproof
