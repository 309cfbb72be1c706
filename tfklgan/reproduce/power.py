"""How many blocks a study needs, and what its tests can reach.

A contrast's per-block values are tested against 0 with the paired
(one-sample) t-test. Its power at n blocks, for a true mean `effect` and a
standard deviation `sd` of the per-block values, two-sided at level alpha:

    P(|T| > t_{1 - alpha/2, n-1}),  T ~ noncentral t(n - 1, effect / sd * sqrt(n))

A study's n is chosen before its runs as the smallest n whose power reaches
the declared target at the alpha of Holm's first step (alpha / m for m
contrasts: the strictest level any contrast faces). An exact sign-flip test
(the nonparametric choice) cannot give a p below 2 / 2^n over n blocks, so
with few blocks it cannot reject at any alpha below that.
"""

import itertools
import math

import numpy as np
import scipy.integrate
import scipy.stats

TESTS = ("t", "sign_flip")


def paired_t_power(effect, sd, n, alpha):
    """Power of the two-sided one-sample t-test of mean 0 at n blocks."""
    if n < 2:
        return 0.0
    df = n - 1
    noncentrality = abs(effect) / sd * math.sqrt(n)
    critical = scipy.stats.t.ppf(1 - alpha / 2, df)
    power = (scipy.stats.nct.sf(critical, df, noncentrality)
             + scipy.stats.nct.cdf(-critical, df, noncentrality))
    if not math.isfinite(power):  # SciPy's noncentral t fails far in its tails
        power = _power_by_integration(critical, df, noncentrality)
    return float(min(1.0, max(0.0, power)))


def _power_by_integration(critical, df, noncentrality):
    """P(|T| > critical) for T = (Z + noncentrality) / sqrt(V / df), Z normal
    and V chi-squared with df degrees of freedom: the normal tails integrated
    over V's density."""
    def tails(v):
        scale = critical * math.sqrt(v / df)
        return ((scipy.stats.norm.sf(scale - noncentrality)
                 + scipy.stats.norm.cdf(-scale - noncentrality))
                * scipy.stats.chi2.pdf(v, df))
    value, _ = scipy.integrate.quad(tails, 0, math.inf, limit=200)
    return value


def blocks_for_power(effect, sd, alpha, power, most=10_000):
    """The smallest n >= 2 whose paired_t_power reaches `power` (None above `most`)."""
    n = 2
    while paired_t_power(effect, sd, n, alpha) < power:
        n += 1
        if n > most:
            return None
    return n


def smallest_p(test, n):
    """The smallest two-sided p a test can give over n blocks: 0 for the
    t-test (n >= 2), 2 / 2^n for the exact sign-flip test."""
    if test == "t":
        return 0.0 if n >= 2 else 1.0
    if test == "sign_flip":
        return min(1.0, 2.0 / 2 ** n)
    raise ValueError(f"unknown test {test!r}; choose one of {TESTS}")


def blocks_to_reach(test, alpha):
    """The fewest blocks over which `test` can give a p below `alpha`."""
    n = 2
    while not smallest_p(test, n) < alpha:
        n += 1
    return n


def sign_flip_p(values):
    """The exact two-sided p of the sign-flip (permutation) test of mean 0:
    the share of the 2^n sign patterns whose |mean| is at least the observed
    one."""
    values = np.asarray(values, np.float64)
    observed = abs(values.mean())
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(values))))
    means = np.abs(signs @ values) / len(values)
    return float(np.mean(means >= observed - 1e-12 * max(1.0, observed)))
