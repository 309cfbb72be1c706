"""Statistics of few seeds: means with their spread, rankings, Kendall's tau,
and the prediction interval a new run should fall in. SciPy does the
distributions."""

import math
import warnings

import numpy as np
import scipy.stats

HIGHER_IS_BETTER = {"fid": False, "kid": False, "inception_score": True, "precision": True,
                    "recall": True, "density": True, "coverage": True}


def mean_std(values):
    """Mean and sample standard deviation (ddof 1) of the finite values (nan
    where there are none; the std is nan for fewer than two)."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return float(np.mean(values)), std


def kendall_tau(a, b):
    """Kendall's tau-b between two equally long score lists (ties allowed; nan
    where either list is constant)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SciPy warns on constant input, returns nan
        return float(scipy.stats.kendalltau(a, b).statistic)


def ranks(values, higher_is_better):
    """1 = best; ties share the best rank of their group."""
    values = np.asarray(values, np.float64) * (-1.0 if higher_is_better else 1.0)
    return [1 + int(np.sum(values < v)) for v in values]


def prediction_interval(values, level=0.95):
    """(low, high): where one new run of the same cell falls with probability
    `level`, assuming normal seed noise: mean ± t((1 + level) / 2, n - 1) · std ·
    sqrt(1 + 1/n) over the n published runs (nan for n < 2)."""
    mean, std = mean_std(values)
    n = sum(1 for v in values if math.isfinite(v))
    if n < 2:
        return float("nan"), float("nan")
    half = float(scipy.stats.t.ppf((1 + level) / 2, n - 1)) * std * math.sqrt(1 + 1 / n)
    return mean - half, mean + half


def welch_difference(a, b, level=0.95):
    """Difference of means mean(a) - mean(b) of two independent samples with
    unequal variances (Welch): (difference, (low, high) confidence interval at
    `level` with the Welch-Satterthwaite degrees of freedom, two-sided p of
    Welch's t-test). nan where either sample has fewer than two finite values."""
    a = np.asarray([v for v in a if math.isfinite(v)], np.float64)
    b = np.asarray([v for v in b if math.isfinite(v)], np.float64)
    nan = float("nan")
    if len(a) < 2 or len(b) < 2:
        return nan, (nan, nan), nan
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    difference = float(a.mean() - b.mean())
    if va + vb == 0:
        return difference, (difference, difference), (1.0 if difference == 0 else 0.0)
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = float(scipy.stats.t.ppf((1 + level) / 2, dof)) * math.sqrt(va + vb)
    p = float(scipy.stats.ttest_ind(a, b, equal_var=False).pvalue)
    return difference, (difference - half, difference + half), p


def expected_best(values, k, higher_is_better=False):
    """(mean, std) of the best of k draws with replacement from `values`
    (Dodge et al., "Show Your Work", EMNLP 2019): with the n values sorted
    worst to best, the i-th is the best of k draws with probability
    (i/n)^k - ((i-1)/n)^k. Exact for the empirical distribution; an infinite
    value (a run that diverged unscored) makes the mean infinite wherever it
    can be the best."""
    ordered = np.sort(np.asarray(values, np.float64))
    if not higher_is_better:
        ordered = ordered[::-1]  # worst (largest) first
    n = len(ordered)
    if n == 0 or k < 1:
        return float("nan"), float("nan")
    cumulative = (np.arange(n + 1) / n) ** k
    chance = cumulative[1:] - cumulative[:-1]
    used = chance > 0
    if not np.all(np.isfinite(ordered[used])):
        return float("inf"), float("nan")
    mean = float(np.sum(chance[used] * ordered[used]))
    second = float(np.sum(chance[used] * ordered[used] ** 2))
    return mean, math.sqrt(max(0.0, second - mean ** 2))
