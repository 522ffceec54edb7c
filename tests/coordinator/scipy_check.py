#!/usr/bin/python3
"""seedproof's statistics against scipy (Debian's python3-scipy), an independent
implementation. Usage: scipy_check.py PATH/TO/statistics_probe

Random cases go to the probe; every answer is compared with scipy's:
  - Wilcoxon signed-rank p-values: exact (no ties, no zeros; n = 5..40) and the
    normal approximation (n = 250, continuity correction);
  - Wilcoxon with ties and zeros: the exact conditional distribution, by
    enumerating all 2^n sign assignments of scipy's mid-ranks (n <= 14);
  - Mann-Whitney U (scipy's U1 of the first sample, ties counting 1/2);
  - the paired percentile bootstrap interval of the mean difference, within
    Monte-Carlo error (the two use different random draws);
  - the two-stage (clustered) bootstrap interval: source models drawn with
    replacement, then seeds within each drawn one, against a numpy implementation
    written here from its definition, within Monte-Carlo error;
  - the one-way random-effects variance components (the source model's and the
    seed's), against scipy.stats.f_oneway's mean squares and the textbook
    method-of-moments formulas with n0 for unbalanced groups;
  - the sign test against scipy's exact binomial test.
Exit 1 with every mismatch listed."""
import itertools, json, subprocess, sys

import numpy as np
from scipy import stats

rng = np.random.default_rng(20261123)
cases, expected = [], []


def add(case, check):
    cases.append(case)
    expected.append(check)


for n in [5, 6, 8, 10, 13, 20, 25, 40]:
    d = rng.normal(0.3, 1.0, n)
    ref = stats.wilcoxon(d, method="exact")
    add({"kind": "wilcoxon", "d": d.tolist()}, ("wilcoxon exact n=%d" % n, "p", ref.pvalue, 1e-9))

d = rng.normal(0.15, 1.0, 250)
ref = stats.wilcoxon(d, method="approx", correction=True)
add({"kind": "wilcoxon", "d": d.tolist()}, ("wilcoxon approx n=250", "p", ref.pvalue, 1e-6))

for n in [6, 9, 12, 14]:
    # Accuracy-like differences: multiples of 1/2000 with ties and zeros.
    d = rng.integers(-4, 7, n) / 2000.0
    nz = d[d != 0]
    ranks = stats.rankdata(np.abs(nz))
    w = ranks[nz > 0].sum()
    sums = [sum(r for r, s in zip(ranks, signs) if s) for signs in
            itertools.product([0, 1], repeat=len(nz))]
    sums = np.array(sums)
    p = min(1.0, 2 * min(np.mean(sums <= w + 1e-9), np.mean(sums >= w - 1e-9)))
    add({"kind": "wilcoxon", "d": d.tolist()}, ("wilcoxon ties n=%d" % n, "p", p, 1e-9))

for n, m in [(5, 5), (20, 20), (7, 13)]:
    a = np.round(rng.normal(0.9, 0.02, n), 3)
    b = np.round(rng.normal(0.9, 0.02, m), 3)
    ref = stats.mannwhitneyu(a, b)
    add({"kind": "mannwhitney", "a": a.tolist(), "b": b.tolist()},
        ("mann-whitney %dx%d" % (n, m), "u", ref.statistic, 1e-9))

for n, level in [(10, 0.95), (20, 0.95), (20, 0.9), (40, 0.99)]:
    b = rng.normal(0.95, 0.01, n)
    a = b + rng.normal(0.004, 0.006, n)
    ref = stats.bootstrap((a, b), lambda x, y, axis: np.mean(x - y, axis=axis), paired=True,
                          vectorized=True, method="percentile", n_resamples=100000,
                          confidence_level=level, random_state=rng)
    se = np.std(a - b, ddof=1) / np.sqrt(n)
    # Two bootstraps with 10,000 and 100,000 resamples: their quantiles differ by
    # Monte-Carlo error, well under a fifth of a standard error.
    tol = 0.2 * se
    case = {"kind": "bootstrap", "a": a.tolist(), "b": b.tolist(), "level": level,
            "resamples": 10000}
    add(case, ("bootstrap n=%d level=%g" % (n, level), "low", ref.confidence_interval.low, tol))
    add(case, ("bootstrap n=%d level=%g" % (n, level), "high", ref.confidence_interval.high, tol))

def clustered_bootstrap(a, b, cluster, level, resamples):
    """Mean differences of two-stage resamples: K clusters with replacement, then
    within each drawn cluster as many of its pairs, with replacement."""
    d = np.asarray(a) - np.asarray(b)
    groups = [d[np.asarray(cluster) == c] for c in sorted(set(cluster))]
    means = np.empty(resamples)
    for r in range(resamples):
        drawn = [groups[k] for k in rng.integers(0, len(groups), len(groups))]
        values = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in drawn])
        means[r] = values.mean()
    tail = (1 - level) / 2
    return np.quantile(means, tail), np.quantile(means, 1 - tail), np.std(means)


for clusters, per, level in [(5, 4, 0.95), (10, 4, 0.95), (8, 2, 0.9), (4, 10, 0.95)]:
    # A source-model effect as large as the seeds' noise.
    cluster = [c for c in range(clusters) for _ in range(per)]
    effect = rng.normal(0.004, 0.006, clusters)
    b = rng.normal(0.95, 0.01, clusters * per)
    a = b + effect[cluster] + rng.normal(0, 0.006, clusters * per)
    low, high, sd = clustered_bootstrap(a, b, cluster, level, 20000)
    case = {"kind": "clustered_bootstrap", "a": a.tolist(), "b": b.tolist(), "cluster": cluster,
            "level": level, "resamples": 10000}
    name = "clustered bootstrap %dx%d" % (clusters, per)
    add(case, (name, "low", low, 0.2 * sd))
    add(case, (name, "high", high, 0.2 * sd))

for sizes in [(4, 4, 4, 4, 4), (2, 3, 2, 3), (5, 5, 4, 4, 5, 4, 5, 4, 5, 4)]:
    group = [g for g, n in enumerate(sizes) for _ in range(n)]
    effect = rng.normal(0, 1, len(sizes))
    values = effect[group] + rng.normal(0, 1, len(group))
    parts = [values[np.asarray(group) == g] for g in range(len(sizes))]
    f = stats.f_oneway(*parts).statistic
    n, k = len(values), len(sizes)
    msw = sum(((p - p.mean()) ** 2).sum() for p in parts) / (n - k)
    msb = f * msw  # F = MSB / MSW
    n0 = (n - sum(len(p) ** 2 for p in parts) / n) / (k - 1)
    case = {"kind": "variance", "values": values.tolist(), "group": group}
    name = "variance components %s" % "x".join(map(str, sizes[:3]))
    add(case, (name, "within", msw, 1e-9))
    add(case, (name, "between", max(0.0, (msb - msw) / n0), 1e-9))

for wins, losses in [(9, 1), (15, 5), (3, 3), (0, 12), (14, 6)]:
    ref = stats.binomtest(wins, wins + losses, 0.5).pvalue
    add({"kind": "sign", "wins": wins, "losses": losses},
        ("sign %d/%d" % (wins, losses), "p", ref, 1e-9))

probe = subprocess.run([sys.argv[1]], input=json.dumps(cases), capture_output=True, text=True,
                       check=True, timeout=120)
answers = json.loads(probe.stdout)
failures = 0
for (name, field, want, tol), answer in zip(expected, answers):
    got = answer[field]
    ok = abs(got - want) <= tol * (1 if field in ("low", "high") else max(1.0, abs(want)))
    print("%-6s %-28s %-5s seedproof %.10g  scipy %.10g" % ("ok" if ok else "DIFFER", name,
                                                          field, got, want))
    failures += not ok
if len(answers) != len(expected):
    print("probe answered %d of %d cases" % (len(answers), len(expected)))
    failures += 1
print("%d checks, %d mismatches" % (len(expected), failures))
sys.exit(1 if failures else 0)
