// The HTML report: one self-contained page (inline CSS and SVG, no script, no
// network) with a forest plot of every arm's gain, learning curves per arm and
// the verdict table.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "coordinator/report.h"

namespace seedproof {
namespace {

std::string Escape(const std::string& text) {
  return absl::StrReplaceAll(
      text, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}, {"'", "&#39;"}});
}

const char* VerdictColour(Verdict v) {
  switch (v) {
    case Verdict::kRobustGain:
      return "#1a7f37";
    case Verdict::kRobustLoss:
      return "#cf222e";
    case Verdict::kSeedDependent:
      return "#bf8700";
    case Verdict::kNoEffect:
      return "#57606a";
    case Verdict::kTooFewSeeds:
      return "#8c959f";
  }
  return "#000";
}

// A linear map from [lo, hi] onto [from, to] pixels, with round tick values.
struct Scale {
  double lo, hi, from, to;
  double operator()(double v) const { return from + (v - lo) / (hi - lo) * (to - from); }
  std::vector<double> Ticks(int about) const {
    const double raw = (hi - lo) / about;
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    double step = magnitude;
    for (double m : {1.0, 2.0, 5.0, 10.0}) {
      if (m * magnitude >= raw) {
        step = m * magnitude;
        break;
      }
    }
    std::vector<double> ticks;
    for (double t = std::ceil(lo / step) * step; t <= hi + 1e-12; t += step) {
      ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
    }
    return ticks;
  }
};

// Widens [lo, hi] by 5% each side; a degenerate range becomes +-1 unit of `unit`.
Scale Padded(double lo, double hi, double from, double to, double unit) {
  if (!(hi > lo)) {
    lo -= unit;
    hi += unit;
  }
  const double pad = 0.05 * (hi - lo);
  return {lo - pad, hi + pad, from, to};
}

// The gain axis: linear within +-linear points of zero, where the close calls
// are, and logarithmic beyond it (each decade as wide as the linear part), so arms
// that lose or gain tens of points cannot squeeze the others into a sliver.
// With every gain inside +-3 x linear it is plain linear.
struct GainAxis {
  Scale scale;        // on the transformed values
  double linear = 0;  // points; 0: plain linear
  double T(double points) const {
    if (linear <= 0 || std::fabs(points) <= linear) return points;
    return std::copysign(linear * (1 + std::log10(std::fabs(points) / linear)), points);
  }
  double operator()(double points) const { return scale(T(points)); }
  // Round values, at least `gap` pixels apart, working out from zero.
  std::vector<double> Ticks(double gap) const {
    if (linear <= 0) return scale.Ticks(8);
    std::vector<double> candidates;
    for (double decade = 0.1; decade < 1e4; decade *= 10) {
      for (double m : {1.0, 2.0, 5.0}) candidates.push_back(m * decade);
    }
    std::vector<double> ticks = {0.0};
    for (double sign : {1.0, -1.0}) {
      double last = 0;
      for (double c : candidates) {
        const double v = sign * c;
        if (T(v) < scale.lo || T(v) > scale.hi) continue;
        if (std::fabs((*this)(v) - (*this)(last)) < gap) continue;
        ticks.push_back(v);
        last = v;
      }
    }
    std::sort(ticks.begin(), ticks.end());
    return ticks;
  }
};

// The linear part: the largest of 1 point and four times the targets' noise floor,
// rounded up to 1, 2 or 5 times a power of ten; 0 when every gain fits in three times it.
GainAxis MakeGainAxis(const StudyAnalysis& s, double lo, double hi, double from, double to) {
  double floor = 0;
  for (const TargetSummary& t : s.targets) floor = std::max(floor, 100 * t.noise_floor);
  const double want = std::max(1.0, 4 * floor);
  double linear = std::pow(10.0, std::floor(std::log10(want)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * linear >= want - 1e-9) {
      linear *= m;
      break;
    }
  }
  GainAxis axis;
  if (std::max(-lo, hi) > 3 * linear) axis.linear = linear;
  axis.scale = Padded(axis.T(lo), axis.T(hi), from, to, 1);
  return axis;
}

std::string ForestPlot(const StudyAnalysis& s) {
  constexpr double kLabel = 300, kWidth = 960, kRow = 26, kTop = 30;
  double lo = 0, hi = 0;
  for (const ArmAnalysis& a : s.arms) {
    if (a.n_seeds == 0) continue;
    lo = std::min({lo, a.gain_ci.low, *std::min_element(a.gains.begin(), a.gains.end())});
    hi = std::max({hi, a.gain_ci.high, *std::max_element(a.gains.begin(), a.gains.end())});
  }
  const GainAxis x = MakeGainAxis(s, 100 * lo, 100 * hi, kLabel + 10, kWidth - 20);
  const double height = kTop + kRow * static_cast<double>(s.arms.size()) + 50;
  std::string svg = absl::StrFormat(
      "<svg class=\"plot\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" "
      "role=\"img\" aria-label=\"gain of each arm over the baseline\">\n",
      kWidth, height, kWidth, height);
  const double bottom = height - 40;
  if (x.linear > 0) {
    // The linear part, shaded: outside it the axis is logarithmic.
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\" "
                          "class=\"linear\"/>\n",
                          x(-x.linear), kTop - 10, x(x.linear) - x(-x.linear), bottom - kTop + 10);
  }
  for (double t : x.Ticks(38)) {
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" y2=\"%.0f\" class=\"%s\"/>"
                          "<text x=\"%.1f\" y=\"%.0f\" class=\"tick\">%s</text>\n",
                          x(t), x(t), kTop - 10, bottom, t == 0 ? "zero" : "grid", x(t),
                          bottom + 16, FormatPoints(t / 100, t == std::round(t) ? 0 : 1));
  }
  absl::StrAppendFormat(
      &svg,
      "<text x=\"%.1f\" y=\"%.0f\" class=\"axis\">gain over the baseline, percentage points "
      "of test accuracy%s (per seed: dots; mean and %.0f%% interval: bar)</text>\n",
      (kLabel + kWidth) / 2, bottom + 30,
      x.linear > 0
          ? absl::StrFormat("; linear within &plusmn;%g (shaded), logarithmic beyond", x.linear)
          : "",
      100 * s.options.level);
  for (size_t i = 0; i < s.arms.size(); ++i) {
    const ArmAnalysis& a = s.arms[i];
    const double y = kTop + kRow * (static_cast<double>(i) + 0.5);
    const std::string label = ArmLabel(s, a);
    absl::StrAppendFormat(&svg, "<text x=\"%.0f\" y=\"%.1f\" class=\"label\">%s</text>\n", kLabel,
                          y + 4, Escape(label));
    if (a.n_seeds == 0) continue;
    const char* colour = VerdictColour(a.verdict);
    for (size_t k = 0; k < a.gains.size(); ++k) {
      const double jitter = (static_cast<double>(a.seeds[k] % 5) - 2) * 2.2;
      absl::StrAppendFormat(&svg,
                            "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.6\" class=\"seed\"><title>seed "
                            "%d: %s points</title></circle>\n",
                            x(100 * a.gains[k]), y + jitter, a.seeds[k], FormatPoints(a.gains[k]));
    }
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"4\" "
        "stroke-linecap=\"round\" opacity=\"0.8\"/>\n"
        "<rect x=\"%.1f\" y=\"%.1f\" width=\"8\" height=\"8\" fill=\"%s\" "
        "transform=\"rotate(45 %.1f %.1f)\"><title>%s: mean %s [%s, %s] points, "
        "%s</title></rect>\n",
        x(100 * a.gain_ci.low), x(100 * a.gain_ci.high), y, y, colour, x(100 * a.mean_gain) - 4,
        y - 4, colour, x(100 * a.mean_gain), y, Escape(label), FormatPoints(a.mean_gain),
        FormatPoints(a.gain_ci.low), FormatPoints(a.gain_ci.high), VerdictWords(a.verdict));
  }
  absl::StrAppend(&svg, "</svg>\n");
  return svg;
}

// Where the luck comes from: per arm, the source model's share of a seed's gain
// variance (filled) and the rest, the seed's own streams, with the share's interval.
std::string VarianceSplitPlot(const StudyAnalysis& s) {
  std::vector<const ArmAnalysis*> arms;
  for (const ArmAnalysis& a : s.arms) {
    if (a.variance_split) arms.push_back(&a);
  }
  std::string html;
  if (arms.empty()) {
    for (const std::string& line : VarianceSplitLines(s)) {
      absl::StrAppend(&html, "<p>", Escape(line), ".</p>\n");
    }
    return html;
  }
  constexpr double kLabel = 300, kWidth = 960, kRow = 26, kTop = 20;
  const Scale x{0, 100, kLabel + 10, kWidth - 20};
  const double height = kTop + kRow * static_cast<double>(arms.size()) + 40;
  absl::StrAppendFormat(
      &html,
      "<svg class=\"plot\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" "
      "role=\"img\" aria-label=\"share of each arm's gain variance from the source model\">\n",
      kWidth, height, kWidth, height);
  const double bottom = height - 30;
  for (double t : {0.0, 25.0, 50.0, 75.0, 100.0}) {
    absl::StrAppendFormat(&html,
                          "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" y2=\"%.0f\" class=\"grid\"/>"
                          "<text x=\"%.1f\" y=\"%.0f\" class=\"tick\">%.0f%%</text>\n",
                          x(t), x(t), kTop - 6, bottom, x(t), bottom + 16, t);
  }
  for (size_t i = 0; i < arms.size(); ++i) {
    const ArmAnalysis& a = *arms[i];
    const double y = kTop + kRow * static_cast<double>(i);
    absl::StrAppendFormat(
        &html,
        "<text x=\"%.0f\" y=\"%.1f\" class=\"label\">%s</text>\n"
        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"14\" class=\"seedpart\"/>\n"
        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"14\" class=\"sourcepart\">"
        "<title>%s: source model %.0f%% [%.0f%%, %.0f%%]</title></rect>\n"
        "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"share\"/>\n",
        kLabel, y + 11, Escape(ArmLabel(s, a)), x(0), y, x(100) - x(0), x(0), y,
        x(100 * a.source_share) - x(0), Escape(ArmLabel(s, a)), 100 * a.source_share,
        100 * a.source_share_ci.low, 100 * a.source_share_ci.high, x(100 * a.source_share_ci.low),
        x(100 * a.source_share_ci.high), y + 7, y + 7);
  }
  absl::StrAppendFormat(&html,
                        "<text x=\"%.1f\" y=\"%.0f\" class=\"axis\">share of a seed's gain "
                        "variance from its source model (dark; line: its interval); the rest is "
                        "the seed's own streams</text>\n</svg>\n",
                        (kLabel + kWidth) / 2, bottom + 28);
  for (const std::string& line : VarianceSplitLines(s)) {
    absl::StrAppend(&html, "<p class=\"split\">", Escape(line), ".</p>\n");
  }
  return html;
}

// One small chart: the arm's validation accuracy per epoch (mean, interquartile
// band) over the baseline's (dashed).
std::string CurveChart(const LearningCurve& curve, const LearningCurve* baseline, double lo,
                       double hi, const char* colour) {
  constexpr double kW = 300, kH = 170, kLeft = 42, kBottom = 24;
  size_t epochs = curve.mean.size();
  if (baseline != nullptr) epochs = std::max(epochs, baseline->mean.size());
  const Scale x{1, std::max<double>(2, static_cast<double>(epochs)), kLeft, kW - 8};
  const Scale y = Padded(100 * lo, 100 * hi, kH - kBottom, 8, 1);
  std::string svg = absl::StrFormat(
      "<svg class=\"curve\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\">\n", kW, kH,
      kW, kH);
  for (double t : y.Ticks(4)) {
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
                          "<text x=\"%.0f\" y=\"%.1f\" class=\"ytick\">%g%%</text>\n",
                          kLeft, kW - 8, y(t), y(t), kLeft - 4, y(t) + 3, t);
  }
  absl::StrAppendFormat(&svg, "<text x=\"%.0f\" y=\"%.0f\" class=\"tick\">epoch 1..%d</text>\n",
                        (kLeft + kW) / 2, kH - 6, static_cast<int>(epochs));
  auto polyline = [&](const std::vector<double>& values) {
    std::string points;
    for (size_t e = 0; e < values.size(); ++e) {
      absl::StrAppendFormat(&points, "%.1f,%.1f ", x(static_cast<double>(e + 1)),
                            y(100 * values[e]));
    }
    return points;
  };
  if (!curve.mean.empty()) {
    std::string band = polyline(curve.high);
    for (size_t e = curve.low.size(); e-- > 0;) {
      absl::StrAppendFormat(&band, "%.1f,%.1f ", x(static_cast<double>(e + 1)),
                            y(100 * curve.low[e]));
    }
    absl::StrAppendFormat(&svg, "<polygon points=\"%s\" fill=\"%s\" opacity=\"0.2\"/>\n", band,
                          colour);
  }
  if (baseline != nullptr && baseline != &curve && !baseline->mean.empty()) {
    absl::StrAppendFormat(&svg, "<polyline points=\"%s\" class=\"baseline\"/>\n",
                          polyline(baseline->mean));
  }
  absl::StrAppendFormat(&svg,
                        "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" "
                        "stroke-width=\"2\"/>\n</svg>\n",
                        polyline(curve.mean), colour);
  return svg;
}

std::string Curves(const StudyAnalysis& s) {
  double lo = 1, hi = 0;
  for (const LearningCurve& c : s.curves) {
    for (double v : c.low) lo = std::min(lo, v);
    for (double v : c.high) hi = std::max(hi, v);
  }
  std::string html = "<div class=\"curves\">\n";
  for (const LearningCurve& c : s.curves) {
    const LearningCurve* baseline = nullptr;
    for (const LearningCurve& b : s.curves) {
      if (b.name == "baseline" && b.target == c.target) baseline = &b;
    }
    Verdict verdict = Verdict::kNoEffect;
    for (const ArmAnalysis& a : s.arms) {
      if (a.name == c.name && a.target == c.target) verdict = a.verdict;
    }
    const bool is_baseline = c.name == "baseline";
    const std::string title = s.targets.size() > 1 ? absl::StrCat(c.target, ": ", c.name) : c.name;
    absl::StrAppend(
        &html, "<figure><figcaption>", Escape(title), " <small>(", c.seeds,
        " seeds)</small></figcaption>\n",
        CurveChart(c, baseline, lo, hi, is_baseline ? "#57606a" : VerdictColour(verdict)),
        "</figure>\n");
  }
  absl::StrAppend(&html, "</div>\n");
  return html;
}

std::string VerdictTable(const StudyAnalysis& s, const std::vector<ArmAnalysis>& arms,
                         bool comparisons) {
  std::string html = absl::StrCat(
      "<table>\n<thead><tr><th>arm</th>", comparisons ? "<th>against</th>" : "",
      "<th>verdict</th><th>mean gain [", absl::StrFormat("%.0f", 100 * s.options.level),
      "% CI], points</th><th>IQM gain</th><th>P(arm &gt; ", comparisons ? "other" : "baseline",
      ") [CI]</th><th>Wilcoxon p (", CorrectionName(s.options.correction),
      ")</th><th>sign p</th><th>wins/ties/losses</th><th>best seed</th><th>seeds gaining</th>"
      "</tr></thead>\n<tbody>\n");
  for (const ArmAnalysis& a : arms) {
    const std::string label = ArmLabel(s, a);
    absl::StrAppendFormat(
        &html,
        "<tr><td><code>%s</code></td>%s<td><span class=\"verdict\" style=\"background:%s\" "
        "title=\"%s\">%s</span></td><td>%s [%s, %s]</td><td>%s</td><td>%.2f [%.2f, %.2f]</td>"
        "<td>%.3g</td><td>%.3g</td><td>%d/%d/%d</td><td>%s</td><td>%.0f%%</td></tr>\n",
        Escape(label),
        comparisons ? absl::StrCat("<td><code>", Escape(a.against), "</code></td>") : "",
        VerdictColour(a.verdict), Escape(a.reason), VerdictWords(a.verdict),
        FormatPoints(a.mean_gain), FormatPoints(a.gain_ci.low), FormatPoints(a.gain_ci.high),
        FormatPoints(a.iqm_gain), a.p_improvement, a.p_improvement_ci.low, a.p_improvement_ci.high,
        a.wilcoxon_p_adjusted, a.sign_p, a.wins, a.ties, a.losses,
        a.best_seed >= 0
            ? absl::StrFormat("%s (seed %d)", FormatPoints(a.best_seed_gain), a.best_seed)
            : "-",
        100 * a.share_seeds_gain);
  }
  absl::StrAppend(&html, "</tbody>\n</table>\n");
  return html;
}

constexpr char kStyle[] = R"css(
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px 32px; color: #1f2328; max-width: 1200px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
.running { background: #fff8c5; border: 1px solid #d4a72c; padding: 6px 10px; border-radius: 6px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 4px 8px; border-bottom: 1px solid #d0d7de; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
.verdict { color: #fff; padding: 1px 7px; border-radius: 10px; font-size: 12px; }
.plot text, .curve text { font-size: 11px; fill: #57606a; }
.plot .label { text-anchor: end; fill: #1f2328; font-size: 12px; }
.plot .tick, .curve .tick { text-anchor: middle; } .plot .axis { text-anchor: middle; }
.curve .ytick { text-anchor: end; }
.grid { stroke: #eaeef2; } .zero { stroke: #57606a; stroke-dasharray: 4 3; }
.linear { fill: #f6f8fa; }
.sourcepart { fill: #8250df; } .seedpart { fill: #d8b9ff; }
.share { stroke: #24292f; stroke-width: 2; }
.seed { fill: #57606a; opacity: 0.45; }
.baseline { fill: none; stroke: #57606a; stroke-width: 1.5; stroke-dasharray: 5 3; }
.curves { display: flex; flex-wrap: wrap; gap: 8px; }
figure { margin: 0; border: 1px solid #d0d7de; border-radius: 6px; padding: 6px; }
figcaption { font-size: 12px; font-family: ui-monospace, monospace; }
)css";

}  // namespace

std::string ReportHtml(const StudyAnalysis& s) {
  std::string html = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>",
      Escape(s.sweep), ": seedproof report</title>\n<style>", kStyle,
      "</style>\n</head>\n<body>\n<h1>", Escape(s.sweep), ": which gains survive the seeds</h1>\n");
  absl::StrAppendFormat(
      &html,
      "<p>Sweep <code>%s</code>. Each arm against the baseline on the same seeds (paired); "
      "test accuracy; %.0f%% percentile-bootstrap intervals (%d resamples), Wilcoxon "
      "signed-rank tests with %s correction across %d arms.</p>\n",
      Escape(s.sweep_id), 100 * s.options.level, s.options.resamples,
      CorrectionName(s.options.correction), static_cast<int>(s.arms.size()));
  if (!s.complete) {
    absl::StrAppendFormat(&html,
                          "<p class=\"running\">Running: %d of %d trials finished. Verdicts are "
                          "on the seeds done so far.</p>\n",
                          s.trials_finished, s.trials_total);
  }
  for (const std::string& line : CoverageLines(s.coverage)) {
    absl::StrAppend(&html, "<p class=\"coverage\">", Escape(line), ".</p>\n");
  }
  if (const std::vector<std::string> sequential = SequentialLines(s); !sequential.empty()) {
    absl::StrAppend(&html, "<p class=\"sequential\">", Escape(sequential[0]), ".</p>\n<ul>\n");
    for (size_t i = 1; i < sequential.size(); ++i) {
      absl::StrAppend(&html, "<li>", Escape(sequential[i]), "</li>\n");
    }
    absl::StrAppend(&html, "</ul>\n");
  }
  for (const TargetSummary& t : s.targets) {
    absl::StrAppendFormat(&html,
                          "<p>Target <code>%s</code>: baseline %.2f%% on %d test examples; "
                          "test-set noise floor &plusmn;%.2f points (one standard error).</p>\n",
                          Escape(t.name), 100 * t.baseline_mean, t.test_examples,
                          100 * t.noise_floor);
  }
  absl::StrAppend(&html, "<h2>Gain over the baseline, per seed</h2>\n", ForestPlot(s));
  absl::StrAppend(&html, "<h2>Verdicts</h2>\n", VerdictTable(s, s.arms, false));
  absl::StrAppend(&html, "<h2>Where the luck comes from</h2>\n", VarianceSplitPlot(s));
  if (const ArmAnalysis* best = BestSingleSeed(s)) {
    absl::StrAppendFormat(
        &html,
        "<p><b>What one seed would have claimed:</b> %s points for <code>%s</code> (seed %d). "
        "Were each of the %d arms the baseline itself on another seed, the best one-seed "
        "comparison would be expected at %s points (Dodge's expected maximum): luck alone.</p>\n",
        FormatPoints(best->best_seed_gain), Escape(ArmLabel(s, *best)), best->best_seed,
        static_cast<int>(s.arms.size()), FormatPoints(s.expected_best_under_luck));
  }
  std::vector<ArmAnalysis> confirmed;
  for (size_t i = 0; i < s.arms.size(); ++i) {
    if (s.confirmations[i]) confirmed.push_back(s.confirmations[i]->analysis);
  }
  if (!confirmed.empty()) {
    absl::StrAppendFormat(&html,
                          "<h2>Confirmation on fresh seeds %d..%d</h2>\n<p>A gain replicated "
                          "when it is a robust gain on these seeds alone.</p>\n",
                          s.exploration_seeds, s.exploration_seeds + s.confirmation.seeds - 1);
    absl::StrAppend(&html, VerdictTable(s, confirmed, false));
  }
  if (!s.comparisons.empty()) {
    absl::StrAppend(&html, "<h2>Arm against arm</h2>\n", VerdictTable(s, s.comparisons, true));
  }
  absl::StrAppend(&html,
                  "<h2>Learning curves</h2>\n<p>Validation accuracy per epoch: mean over seeds "
                  "(line) and the 25th&ndash;75th percentile band; the baseline dashed.</p>\n",
                  Curves(s), "</body>\n</html>\n");
  return html;
}

}  // namespace seedproof
