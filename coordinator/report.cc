#include "coordinator/report.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace seedproof {

std::optional<ReportFormat> ParseReportFormat(std::string_view name) {
  if (name == "table") return ReportFormat::kTable;
  if (name == "json") return ReportFormat::kJson;
  if (name == "md" || name == "markdown") return ReportFormat::kMarkdown;
  if (name == "html") return ReportFormat::kHtml;
  return std::nullopt;
}

const char* VerdictWords(Verdict verdict) {
  switch (verdict) {
    case Verdict::kRobustGain:
      return "robust gain";
    case Verdict::kRobustLoss:
      return "robust loss";
    case Verdict::kSeedDependent:
      return "seed-dependent";
    case Verdict::kNoEffect:
      return "no effect";
    case Verdict::kTooFewSeeds:
      return "too few seeds";
  }
  return "?";
}

std::string ArmLabel(const StudyAnalysis& analysis, const ArmAnalysis& arm) {
  return analysis.targets.size() > 1 ? absl::StrCat(arm.target, ": ", arm.name) : arm.name;
}

std::string FormatPoints(double fraction, int decimals) {
  return absl::StrFormat("%+.*f", decimals, 100 * fraction);
}

std::vector<std::string> VarianceSplitLines(const StudyAnalysis& s) {
  std::vector<std::string> lines;
  for (const ArmAnalysis& a : s.arms) {
    if (!a.variance_split) continue;
    lines.push_back(absl::StrFormat(
        "%s: source model %.0f%% [%.0f%%, %.0f%%] of a seed's gain variance (sd %.2f points), "
        "the seed's own streams %.0f%% (sd %.2f points); %d source models",
        ArmLabel(s, a), 100 * a.source_share, 100 * a.source_share_ci.low,
        100 * a.source_share_ci.high, 100 * a.source_sd, 100 * (1 - a.source_share),
        100 * a.seed_sd, a.source_models));
  }
  for (const ArmAnalysis& a : s.arms) {
    if (!a.crossed_split) continue;
    lines.push_back(absl::StrFormat(
        "%s: weight initialisation %.0f%% [%.0f%%, %.0f%%] of a seed's gain variance (sd %.2f "
        "points), data order %.0f%% [%.0f%%, %.0f%%] (sd %.2f points), the rest %.0f%% "
        "(their interaction and anything else a seed varies; sd %.2f points)",
        ArmLabel(s, a), 100 * a.init_share, 100 * a.init_share_ci.low, 100 * a.init_share_ci.high,
        100 * a.init_sd, 100 * a.order_share, 100 * a.order_share_ci.low,
        100 * a.order_share_ci.high, 100 * a.order_sd, 100 * (1 - a.init_share - a.order_share),
        100 * a.rest_sd));
  }
  if (lines.empty()) {
    lines.push_back(
        s.coverage.source_models > 1 && !s.coverage.imported
            ? "not separable in this design: each seed has a source model of its own, so the "
              "source model's luck and the seed's are one (give several seeds per source "
              "model, seeds: {count: n, source: k} with k <= n / 2)"
            : "not separable in this design: one source model (give several, seeds: {count: n, "
              "source: k} with 2 <= k <= n / 2)");
  }
  return lines;
}

// What the verdicts cover, in words: a line of what the seeds varied, and one of
// what the verdicts are conditional on.
std::vector<std::string> CoverageLines(const Coverage& c) {
  std::vector<std::string> lines;
  lines.push_back(absl::StrCat(
      "The verdicts cover luck in: ",
      c.varied.empty() ? "nothing (every stream is fixed)" : absl::StrJoin(c.varied, ", ")));
  if (!c.conditional.empty()) {
    lines.push_back(absl::StrCat("They are conditional on ", absl::StrJoin(c.conditional, "; ")));
  }
  return lines;
}

std::vector<std::string> SequentialLines(const StudyAnalysis& s) {
  std::vector<std::string> lines;
  if (s.looks.empty()) return lines;
  const int min = s.looks.front(), max = s.looks.back();
  const int step = s.looks.size() > 1 ? s.looks[1] - s.looks[0] : 0;
  lines.push_back(absl::StrFormat(
      "Sequential seeds: %d to %d, %d at a time; look %d of %d reached. Each arm stops when "
      "decided or when its interval lies within the large step either way; the test spends "
      "alpha as (seeds / %d)^%g across the looks, so the error control holds under the "
      "stopping. %d of the %d target trials the fixed %d-seed design would run (%.0f%%)",
      min, max, step, s.looks_reached, static_cast<int>(s.looks.size()), max,
      s.options.sequential.rho, s.target_trials_run, s.target_trials_fixed_design, max,
      s.target_trials_fixed_design > 0 ? 100.0 * s.target_trials_run / s.target_trials_fixed_design
                                       : 0.0));
  for (const ArmAnalysis& a : s.arms) {
    lines.push_back(absl::StrCat(ArmLabel(s, a), ": ",
                                 a.open ? absl::StrCat("open at look ", a.look, " (", a.n_seeds,
                                                       " paired seeds): more seeds next step")
                                        : a.stopped));
  }
  return lines;
}

namespace {

nlohmann::json ArmJson(const ArmAnalysis& a) {
  return {
      {"name", a.name},
      {"target", a.target},
      {"against", a.against},
      {"verdict", VerdictName(a.verdict)},
      {"reason", a.reason},
      {"n_seeds", a.n_seeds},
      {"source_models", a.source_models},
      {"variance_split", a.variance_split
                             ? nlohmann::json{{"source_sd", a.source_sd},
                                              {"seed_sd", a.seed_sd},
                                              {"source_share", a.source_share},
                                              {"source_share_low", a.source_share_ci.low},
                                              {"source_share_high", a.source_share_ci.high}}
                             : nlohmann::json(nullptr)},
      {"crossed_split", a.crossed_split
                            ? nlohmann::json{{"init_sd", a.init_sd},
                                             {"order_sd", a.order_sd},
                                             {"rest_sd", a.rest_sd},
                                             {"init_share", a.init_share},
                                             {"init_share_low", a.init_share_ci.low},
                                             {"init_share_high", a.init_share_ci.high},
                                             {"order_share", a.order_share},
                                             {"order_share_low", a.order_share_ci.low},
                                             {"order_share_high", a.order_share_ci.high}}
                            : nlohmann::json(nullptr)},
      {"diverged", a.diverged},
      {"mean", a.mean},
      {"against_mean", a.against_mean},
      {"mean_gain", a.mean_gain},
      {"iqm_gain", a.iqm_gain},
      {"ci_low", a.gain_ci.low},
      {"ci_high", a.gain_ci.high},
      {"p_improvement", a.p_improvement},
      {"p_improvement_low", a.p_improvement_ci.low},
      {"p_improvement_high", a.p_improvement_ci.high},
      {"wilcoxon_w_plus", a.wilcoxon.w_plus},
      {"wilcoxon_n", a.wilcoxon.n},
      {"wilcoxon_exact", a.wilcoxon.exact},
      {"wilcoxon_p", a.wilcoxon.p_value},
      {"wilcoxon_p_adjusted", a.wilcoxon_p_adjusted},
      {"sign_p", a.sign_p},
      {"wins", a.wins},
      {"ties", a.ties},
      {"losses", a.losses},
      {"best_seed_gain", a.best_seed_gain},
      {"best_seed", a.best_seed},
      {"share_seeds_gain", a.share_seeds_gain},
      {"large_step", a.large_step},
      {"large_gains", a.large_gains},
      {"large_losses", a.large_losses},
      {"seeds", a.seeds},
      {"scores", a.scores},
      {"against_scores", a.against_scores},
      {"gains", a.gains},
      {"look", a.look},
      {"open", a.open},
      {"stopped", a.stopped},
  };
}

// The lines above every table: what was compared and how.
std::vector<std::string> Preamble(const StudyAnalysis& s) {
  std::vector<std::string> lines;
  lines.push_back(absl::StrFormat(
      "%s (%s): test accuracy, each arm against the baseline, paired by seed; %.0f%% "
      "percentile-bootstrap intervals (%d resamples), %s signed-rank tests, %s correction "
      "across %d arms",
      s.sweep, s.sweep_id, 100 * s.options.level, s.options.resamples,
      s.looks.empty() ? "Wilcoxon" : "group-sequential", CorrectionName(s.options.correction),
      static_cast<int>(s.arms.size())));
  if (!s.complete) {
    lines.push_back(
        absl::StrFormat("RUNNING: %d of %d trials finished; verdicts are on the seeds done so far",
                        s.trials_finished, s.trials_total));
  }
  for (const std::string& line : CoverageLines(s.coverage)) lines.push_back(line);
  for (const std::string& line : SequentialLines(s)) lines.push_back(line);
  for (const TargetSummary& t : s.targets) {
    lines.push_back(absl::StrFormat(
        "target %s: baseline %.2f%% test accuracy on %d test examples; noise floor %.2f points "
        "(one standard error), so one seed's gain above %s looks real",
        t.name, 100 * t.baseline_mean, t.test_examples, 100 * t.noise_floor,
        FormatPoints(2 * t.noise_floor)));
  }
  return lines;
}

std::vector<std::string> OneSeedLines(const StudyAnalysis& s) {
  std::vector<std::string> lines;
  const ArmAnalysis* best = BestSingleSeed(s);
  if (best == nullptr) return lines;
  lines.push_back(absl::StrFormat(
      "What one seed would have claimed: %s points for %s (seed %d). Were each of the %d arms "
      "the baseline itself on another seed, the best one-seed comparison would be expected at "
      "%s points (Dodge's expected maximum): luck alone.",
      FormatPoints(best->best_seed_gain), ArmLabel(s, *best), best->best_seed,
      static_cast<int>(s.arms.size()), FormatPoints(s.expected_best_under_luck)));
  return lines;
}

std::string Colour(Verdict v) {
  switch (v) {
    case Verdict::kRobustGain:
      return "\033[1;32m";
    case Verdict::kRobustLoss:
      return "\033[1;31m";
    case Verdict::kSeedDependent:
      return "\033[1;33m";
    case Verdict::kNoEffect:
      return "\033[2m";
    case Verdict::kTooFewSeeds:
      return "\033[2m";
  }
  return "";
}

struct Row {
  std::vector<std::string> cells;
  Verdict verdict;
};

std::vector<std::string> RowCells(const StudyAnalysis& s, const ArmAnalysis& a) {
  const std::string best =
      a.best_seed >= 0
          ? absl::StrFormat("%s (seed %d)", FormatPoints(a.best_seed_gain), a.best_seed)
          : "-";
  return {ArmLabel(s, a),
          VerdictWords(a.verdict),
          absl::StrFormat("%s [%s, %s]", FormatPoints(a.mean_gain), FormatPoints(a.gain_ci.low),
                          FormatPoints(a.gain_ci.high)),
          absl::StrFormat("%.2f [%.2f, %.2f]", a.p_improvement, a.p_improvement_ci.low,
                          a.p_improvement_ci.high),
          absl::StrFormat("%.2g", a.wilcoxon_p_adjusted),
          absl::StrFormat("%d/%d/%d", a.wins, a.ties, a.losses),
          best,
          absl::StrFormat("%.0f%%", 100 * a.share_seeds_gain)};
}

const std::vector<std::string> kHeader = {"arm",   "verdict", "gain, points [CI]", "P(>base) [CI]",
                                          "p adj", "W/T/L",   "best seed",         "seeds gaining"};

std::string Table(const std::vector<std::string>& header, const std::vector<Row>& rows,
                  bool color) {
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const Row& r : rows) {
    for (size_t c = 0; c < r.cells.size(); ++c) width[c] = std::max(width[c], r.cells[c].size());
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells, const Row* row) {
    std::string text;
    for (size_t c = 0; c < cells.size(); ++c) {
      std::string cell = absl::StrFormat("%-*s", static_cast<int>(width[c]), cells[c]);
      if (row != nullptr && c == 1 && color)
        cell = absl::StrCat(Colour(row->verdict), cell, "\033[0m");
      absl::StrAppend(&text, c == 0 ? "" : "  ", cell);
    }
    text.erase(text.find_last_not_of(' ') + 1);
    absl::StrAppend(&out, text, "\n");
  };
  line(header, nullptr);
  for (const Row& r : rows) line(r.cells, &r);
  return out;
}

std::string RenderTable(const StudyAnalysis& s, const ReportOptions& options) {
  std::string out = absl::StrCat(absl::StrJoin(Preamble(s), "\n"), "\n\n");
  std::vector<Row> rows;
  for (const ArmAnalysis& a : s.arms) rows.push_back({RowCells(s, a), a.verdict});
  absl::StrAppend(&out, Table(kHeader, rows, options.color));
  for (const ArmAnalysis& a : s.arms) {
    if (a.diverged > 0) {
      absl::StrAppend(&out, ArmLabel(s, a), ": diverged on ", a.diverged,
                      " seeds (left out of the pairs)\n");
    }
  }
  absl::StrAppend(&out, "\n", absl::StrJoin(OneSeedLines(s), "\n"), "\n");
  absl::StrAppend(&out, "\nWhere the luck comes from (the spread of the per-seed gains):\n");
  for (const std::string& line : VarianceSplitLines(s)) absl::StrAppend(&out, "  ", line, "\n");
  bool any_confirmation = false;
  for (size_t i = 0; i < s.arms.size(); ++i) {
    if (!s.confirmations[i]) continue;
    if (!any_confirmation) {
      absl::StrAppend(&out, "\nConfirmation on fresh seeds ", s.exploration_seeds, "..",
                      s.exploration_seeds + s.confirmation.seeds - 1, ":\n");
      any_confirmation = true;
    }
    const ArmAnalysis& c = s.confirmations[i]->analysis;
    absl::StrAppend(&out, "  ", ArmLabel(s, s.arms[i]), ": ",
                    s.confirmations[i]->replicated ? "replicated" : "did not replicate", " (",
                    absl::StrFormat("%s [%s, %s] points on %d seeds; %s)",
                                    FormatPoints(c.mean_gain), FormatPoints(c.gain_ci.low),
                                    FormatPoints(c.gain_ci.high), c.n_seeds, c.reason),
                    "\n");
  }
  if (!s.comparisons.empty()) {
    absl::StrAppend(&out, "\nArm against arm (", CorrectionName(s.options.correction),
                    " across these comparisons):\n");
    std::vector<Row> comparison_rows;
    for (const ArmAnalysis& a : s.comparisons) {
      std::vector<std::string> cells = RowCells(s, a);
      cells[0] = absl::StrCat(cells[0], " vs ", a.against);
      comparison_rows.push_back({cells, a.verdict});
    }
    std::vector<std::string> header = kHeader;
    header[0] = "arm vs arm";
    header[3] = "P(>other) [CI]";
    absl::StrAppend(&out, Table(header, comparison_rows, options.color));
  }
  return out;
}

std::string MarkdownTable(const StudyAnalysis& s, const std::vector<ArmAnalysis>& arms,
                          bool against_column) {
  std::vector<std::string> header = kHeader;
  if (against_column) header.insert(header.begin() + 1, "against");
  std::string out = absl::StrCat("| ", absl::StrJoin(header, " | "), " |\n|");
  for (size_t c = 0; c < header.size(); ++c) absl::StrAppend(&out, c < 2 ? "---|" : "---:|");
  absl::StrAppend(&out, "\n");
  for (const ArmAnalysis& a : arms) {
    std::vector<std::string> cells = RowCells(s, a);
    cells[0] = absl::StrCat("`", cells[0], "`");
    cells[1] = absl::StrCat("**", cells[1], "**");
    if (against_column) cells.insert(cells.begin() + 1, absl::StrCat("`", a.against, "`"));
    absl::StrAppend(&out, "| ", absl::StrJoin(cells, " | "), " |\n");
  }
  return out;
}

std::string RenderMarkdown(const StudyAnalysis& s) {
  std::vector<std::string> preamble = Preamble(s);
  std::string out = absl::StrCat("# ", s.sweep, ": which gains survive the seeds\n\n");
  for (const std::string& line : preamble) absl::StrAppend(&out, line, ".\n\n");
  absl::StrAppend(&out, MarkdownTable(s, s.arms, false), "\n");
  for (const std::string& line : OneSeedLines(s)) absl::StrAppend(&out, line, "\n\n");
  absl::StrAppend(&out, "## Where the luck comes from\n\n");
  for (const std::string& line : VarianceSplitLines(s)) absl::StrAppend(&out, "- ", line, "\n");
  absl::StrAppend(&out, "\n");
  for (size_t i = 0; i < s.arms.size(); ++i) {
    if (!s.confirmations[i]) continue;
    const ArmAnalysis& c = s.confirmations[i]->analysis;
    absl::StrAppend(&out, "- Confirmation of `", ArmLabel(s, s.arms[i]), "` on ", c.n_seeds,
                    " fresh seeds: **",
                    s.confirmations[i]->replicated ? "replicated" : "did not replicate", "** (",
                    FormatPoints(c.mean_gain), " points; ", c.reason, ")\n");
  }
  if (!s.comparisons.empty()) {
    absl::StrAppend(&out, "\n## Arm against arm\n\n", MarkdownTable(s, s.comparisons, true));
  }
  absl::StrAppend(&out,
                  "\nGains are percentage points of test accuracy (arm minus baseline on the same "
                  "seed). Verdict rules: docs/REPORTS.md.\n");
  return out;
}

}  // namespace

nlohmann::json ReportJson(const StudyAnalysis& s) {
  nlohmann::json arms = nlohmann::json::array();
  for (size_t i = 0; i < s.arms.size(); ++i) {
    nlohmann::json arm = ArmJson(s.arms[i]);
    arm["confirmation"] = nullptr;
    if (s.confirmations[i]) {
      arm["confirmation"] = ArmJson(s.confirmations[i]->analysis);
      arm["confirmation"]["replicated"] = s.confirmations[i]->replicated;
    }
    arms.push_back(std::move(arm));
  }
  nlohmann::json comparisons = nlohmann::json::array();
  for (const ArmAnalysis& a : s.comparisons) comparisons.push_back(ArmJson(a));
  nlohmann::json targets = nlohmann::json::array();
  for (const TargetSummary& t : s.targets) {
    targets.push_back({{"name", t.name},
                       {"baseline_mean", t.baseline_mean},
                       {"test_examples", t.test_examples},
                       {"noise_floor", t.noise_floor}});
  }
  nlohmann::json curves = nlohmann::json::array();
  for (const LearningCurve& c : s.curves) {
    curves.push_back({{"name", c.name},
                      {"target", c.target},
                      {"seeds", c.seeds},
                      {"val_accuracy_mean", c.mean},
                      {"val_accuracy_q25", c.low},
                      {"val_accuracy_q75", c.high}});
  }
  nlohmann::json one_seed = {{"expected_best_under_luck", s.expected_best_under_luck},
                             {"n_arms", s.arms.size()}};
  if (const ArmAnalysis* best = BestSingleSeed(s)) {
    one_seed["best_seed_gain"] = best->best_seed_gain;
    one_seed["arm"] = best->name;
    one_seed["target"] = best->target;
    one_seed["seed"] = best->best_seed;
  }
  return {{"schema", "seedproof-report/1"},
          {"sweep", {{"name", s.sweep}, {"id", s.sweep_id}}},
          {"metric", s.metric},
          {"complete", s.complete},
          {"trials_finished", s.trials_finished},
          {"trials_total", s.trials_total},
          {"level", s.options.level},
          {"correction", CorrectionName(s.options.correction)},
          {"resamples", s.options.resamples},
          {"bootstrap_seed", s.options.bootstrap_seed},
          {"min_seeds", s.options.min_seeds},
          {"exploration_seeds", s.exploration_seeds},
          {"confirmation_seeds", s.confirmation.seeds},
          {"targets", targets},
          {"arms", arms},
          {"comparisons", comparisons},
          {"one_seed", one_seed},
          {"curves", curves},
          {"coverage",
           {{"varied", s.coverage.varied},
            {"conditional", s.coverage.conditional},
            {"source_models", s.coverage.source_models},
            {"imported", s.coverage.imported}}},
          {"sequential",
           s.looks.empty()
               ? nlohmann::json(nullptr)
               : nlohmann::json{{"looks", s.looks},
                                {"looks_reached", s.looks_reached},
                                {"rho", s.options.sequential.rho},
                                {"draws", s.options.sequential.draws},
                                {"target_trials_run", s.target_trials_run},
                                {"target_trials_fixed_design", s.target_trials_fixed_design}}}};
}

std::string RenderReport(const StudyAnalysis& analysis, ReportFormat format,
                         const ReportOptions& options) {
  switch (format) {
    case ReportFormat::kTable:
      return RenderTable(analysis, options);
    case ReportFormat::kJson:
      return ReportJson(analysis).dump(2) + "\n";
    case ReportFormat::kMarkdown:
      return RenderMarkdown(analysis);
    case ReportFormat::kHtml:
      return ReportHtml(analysis);
  }
  return "";
}

}  // namespace seedproof
