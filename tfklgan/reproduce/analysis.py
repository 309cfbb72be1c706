"""A study's runs analysed by its plan: blocks by machine, contrasts paired
within blocks, Holm's correction across the declared contrasts, the ranking
against the paper with a bootstrap interval, the bar of the best cell.

A block is one seed's runs on one kernel fingerprint (tfklgan.fingerprint).
Where a seed's runs trained on two fingerprints, the later ones start a new
block ("seed 2 (b)"); the report says which. The declared analysis takes the
first n complete blocks in the plan's seed order (its seeds, then its spare
seeds); with fewer, the study is incomplete and gets no verdict. Complete
blocks beyond n, seeds outside the plan and contrasts added after the runs
are reported as exploratory.

Each contrast's values are one per block; the test is Student's t on them
(paired), the p-values are adjusted by Holm's method, and each
interval is at the level of the Holm step that decides its contrast, so it
excludes 0 exactly when Holm rejects (their joint coverage is not promised
to be 95%; Bonferroni's 1 - alpha/m intervals would be).
"""

import dataclasses
import math
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np
import scipy.stats

from tfklgan import fingerprint
from tfklgan.reproduce import power as power_lib
from tfklgan.reproduce.design import AFTER
from tfklgan.reproduce.stats import kendall_tau, mean_std


@dataclasses.dataclass
class Block:
    """One seed's runs on one kernel fingerprint. part: 0 for the seed's first
    fingerprint (in the table's cell order), 1, 2, ... for each other one."""
    seed: int
    part: int
    fingerprint: dict
    runs: Dict[Tuple[str, str], object]  # (method, column) -> RunRecord

    @property
    def label(self):
        return f"seed {self.seed}" + (f" ({'abcdefgh'[self.part]})" if self.part else "")

    def has(self, cells):
        return all(cell in self.runs for cell in cells)


def same_machine(a, b):
    """Whether two fingerprints are one block's: every field either record
    holds is the same (fields neither holds, as in records made before they
    were recorded, are passed over; a field one holds and the other lacks
    is a difference)."""
    neither = tuple(f"{field}:" for field in fingerprint.FIELDS if field not in a
                    and field not in b)
    _, differences = fingerprint.compare(a, b)
    return not [d for d in differences if not d.startswith(neither)]


def blocks_of(records, cell_order):
    """The runs grouped into blocks, seeds in the order they first appear,
    each seed's runs in `cell_order` ((method, column) keys)."""
    order = {cell: i for i, cell in enumerate(cell_order)}
    blocks: List[Block] = []
    for seed in dict.fromkeys(r.seed for r in records):
        runs = sorted((r for r in records if r.seed == seed),
                      key=lambda r: order.get(r.cell_key, len(order)))
        parts: List[Block] = []
        for run in runs:
            home = next((b for b in parts if same_machine(b.fingerprint, run.fingerprint())),
                        None)
            if home is None:
                home = Block(seed, len(parts), run.fingerprint(), {})
                parts.append(home)
            home.runs[run.cell_key] = run
        blocks += parts
    return blocks


def holm(pvalues, alpha):
    """(adjusted p-values, rejected) by Holm's step-down method.

    Of m p-values, the k-th smallest is adjusted to the largest (m - j + 1)
    p_(j) over j <= k, capped at 1; a contrast is rejected where its adjusted
    p is below alpha. Written here rather than called from statsmodels'
    `multipletests` (the tests' reference): that runs a full gc.collect() on
    every Holm call, which is slow in a process holding TensorFlow's objects.
    """
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(stepped, 1.0)
    return [float(a) for a in adjusted], [bool(a < alpha) for a in adjusted]


def holm_levels(pvalues, alpha):
    """Per p-value, the confidence level of the Holm step that decides it: the
    k-th smallest faces alpha / (m - k + 1) until the first that is not
    rejected; it and every later one keep that step's level. An interval at
    its level excludes 0 exactly when Holm rejects its contrast."""
    m = len(pvalues)
    levels = [float("nan")] * m
    stopped = None
    for k, index in enumerate(np.argsort(pvalues, kind="stable")):
        step = alpha / (m - k)
        if stopped is None and not pvalues[index] < step:
            stopped = step
        levels[index] = 1 - (stopped if stopped is not None else step)
    return levels


def paired(values, level):
    """(mean, (low, high), p) of per-block values: Student's t interval at
    `level` and the two-sided p of the t-test of mean 0 (nan for fewer than two
    blocks; for values without spread p is 0 or 1)."""
    values = np.asarray(values, np.float64)
    nan = float("nan")
    if len(values) < 2:
        return (float(values.mean()) if len(values) else nan), (nan, nan), nan
    mean, std = float(values.mean()), float(values.std(ddof=1))
    if std == 0:
        return mean, (mean, mean), (1.0 if mean == 0 else 0.0)
    half = float(scipy.stats.t.ppf((1 + level) / 2, len(values) - 1)) * std / math.sqrt(
        len(values))
    p = float(scipy.stats.ttest_1samp(values, 0.0).pvalue)
    return mean, (mean - half, mean + half), p


def contrast_values(contrast, blocks):
    """[(block, value)] for the blocks that hold every cell of the contrast."""
    return [(b, sum(w * b.runs[cell].score(contrast.metric) for cell, w in contrast.weights))
            for b in blocks if b.has(contrast.cells)]


@dataclasses.dataclass
class ContrastResult:
    contrast: object
    blocks: List[str]
    values: List[float]
    mean: float
    interval: Tuple[float, float]
    level: float
    p: float
    adjusted_p: float
    verdict: str
    duplicate_of: Optional[str] = None  # the label of the contrast it repeats


VERDICTS = ("held", "reversed", "equivalent", "inconclusive")

def verdict_of(contrast, rejected, mean, interval=None):
    """"held", "held (positive)" / "held (negative)" where no sign was
    predicted, "reversed", "equivalent" (not rejected, the interval inside
    the declared margin) or "inconclusive"."""
    if rejected:
        sign = 1 if mean > 0 else -1
        if contrast.expect is None:
            return f"held ({'positive' if sign > 0 else 'negative'})"
        return "held" if sign == contrast.expect else "reversed"
    margin = contrast.margin
    if margin and interval and -margin < interval[0] and interval[1] < margin:
        return "equivalent"
    return "inconclusive"


def _p_value(values, test):
    if test == "sign_flip" and len(values) >= 1:
        return power_lib.sign_flip_p(values)
    return paired(values, 0.95)[2]


def test_contrasts(contrasts, blocks, alpha, test="t"):
    """Each distinct contrast paired over `blocks` and Holm-corrected with the
    others (a contrast that repeats an earlier one's test, as an older plan
    may hold, is reported with that one's result and counted once). `test`:
    "t" or "sign_flip" for the p-values; the intervals are Student's t."""
    first = {}
    for i, c in enumerate(contrasts):
        first.setdefault(c.test_key(), i)
    distinct = sorted(set(first.values()))
    found = [contrast_values(c, blocks) for c in contrasts]
    raw = {i: _p_value([v for _, v in found[i]], test) if len(found[i]) > 1 else float("nan")
           for i in distinct}
    testable = [i for i in distinct if math.isfinite(raw[i])]
    adjusted, rejected = holm([raw[i] for i in testable], alpha)
    levels = holm_levels([raw[i] for i in testable], alpha)
    results = []
    for i, (contrast, pairs) in enumerate(zip(contrasts, found, strict=True)):
        values = [v for _, v in pairs]
        origin = first[contrast.test_key()]
        if origin != i:
            result = dataclasses.replace(results[origin], contrast=contrast,
                                         duplicate_of=contrasts[origin].label)
            result.values = [v for _, v in pairs]
            result.mean = float(np.mean(values))
            results.append(result)
        elif i in testable:
            k = testable.index(i)
            mean, interval, _ = paired(values, levels[k])
            verdict = verdict_of(contrast, rejected[k], mean, interval)
            results.append(ContrastResult(contrast, [b.label for b, _ in pairs], values, mean,
                                          interval, levels[k], raw[i], adjusted[k], verdict))
        else:
            mean = float(np.mean(values)) if values else float("nan")
            results.append(ContrastResult(contrast, [b.label for b, _ in pairs], values, mean,
                                          (float("nan"),) * 2, float("nan"), float("nan"),
                                          float("nan"), "too few blocks"))
    return results


@dataclasses.dataclass
class Ranking:
    """Kendall's tau between the paper's cell means and ours, the exact
    one-sided p of independence (scipy's exact Kendall test on the cell
    means), and the bootstrap over blocks: its interval and how many distinct
    values it took (with few blocks, few: then it is no interval)."""
    tau: float
    p: float
    interval: Tuple[float, float]
    distinct: int
    cells: int
    verdict: str


# a bootstrap that takes fewer distinct values than this gives no interval
MIN_DISTINCT_BOOTSTRAP = 20


def tau_interval(table, blocks, metric, alpha=0.05, level=0.95, resamples=10_000, seed=0):
    """The Ranking of the cells with a paper value over `blocks` (blocks
    drawn with replacement for the bootstrap)."""
    nan = float("nan")
    cells = [c for c in table.cells if math.isfinite(c.paper.get(metric, (math.nan,))[0])
             and all(b.has([(c.method, c.column)]) for b in blocks)]
    if len(cells) < 2 or len(blocks) < 2:
        return Ranking(nan, nan, (nan, nan), 0, len(cells), "too few blocks")
    paper = [c.paper[metric][0] for c in cells]
    scores = np.array([[b.runs[(c.method, c.column)].score(metric) for c in cells]
                       for b in blocks])
    means = scores.mean(axis=0)
    tau = kendall_tau(paper, means)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exact = scipy.stats.kendalltau(paper, means, alternative="greater",
                                       method="exact" if len(set(means)) == len(means)
                                       and len(set(paper)) == len(paper) else "auto")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(blocks), size=(resamples, len(blocks)))
    taus = np.array([kendall_tau(paper, scores[d].mean(axis=0)) for d in draws])
    taus = taus[np.isfinite(taus)]
    low, high = np.quantile(taus, [(1 - level) / 2, (1 + level) / 2])
    p = float(exact.pvalue)
    return Ranking(tau, p, (float(low), float(high)), len(np.unique(taus.round(12))),
                   len(cells), "held" if p < alpha else "inconclusive")


def interval_of_mean(values, level=0.95):
    """(mean, (low, high)): the t interval of a mean over blocks."""
    mean, std = mean_std(values)
    n = sum(1 for v in values if math.isfinite(v))
    if n < 2:
        return mean, (float("nan"),) * 2
    half = float(scipy.stats.t.ppf((1 + level) / 2, n - 1)) * std / math.sqrt(n)
    return mean, (mean - half, mean + half)


def bar_verdicts(table, blocks, bar, declared_cell=None):
    """(cell, picked, rows): the cell held against the bar, whether it was
    picked from these runs (the best mean of the bar's first metric, where the
    plan declares no cell: biased toward the bar), and per limit (metric, op,
    value, mean, interval, "held" | "reversed" | "inconclusive"): held where
    the whole 95% interval of the mean is inside the limit, reversed where it
    is wholly outside."""
    from tfklgan.reproduce.stats import HIGHER_IS_BETTER
    first = bar[0][0]
    cells = [(c.method, c.column) for c in table.cells if all(b.has([(c.method, c.column)])
                                                              for b in blocks)]
    if not cells or len(blocks) < 2:
        return None, False, []
    if declared_cell is not None:
        best, picked = tuple(declared_cell), False
    else:
        means = {cell: np.mean([b.runs[cell].score(first) for b in blocks]) for cell in cells}
        pick = max if HIGHER_IS_BETTER[first] else min
        best, picked = pick(cells, key=lambda cell: means[cell]), True
    rows = []
    for metric, op, limit in bar:
        mean, (low, high) = interval_of_mean([b.runs[best].score(metric) for b in blocks])
        inside = (high <= limit) if op == "<=" else (low >= limit)
        outside = (low > limit) if op == "<=" else (high < limit)
        rows.append((metric, op, limit, mean, (low, high),
                     "held" if inside else "reversed" if outside else "inconclusive"))
    return best, picked, rows


@dataclasses.dataclass
class Analysis:
    status: str            # "complete", "incomplete", "exploratory"
    plan: object
    declaration: dict
    blocks: List[Block]
    analysed: List[Block]  # the declared blocks, in plan order
    extra: List[Block]     # complete blocks beyond n and seeds outside the plan
    confirmatory: List[ContrastResult]
    exploratory: List[ContrastResult]
    ranking: tuple
    bar: tuple


def analyse(table, plan, declaration, records):
    """The study's analysis by `plan` (a design.Plan; `declaration` says when and
    where it was declared, None when it is not stored)."""
    cells = [(c.method, c.column) for c in table.cells]
    blocks = blocks_of(records, cells)
    order = list(plan.seeds) + list(plan.spare_seeds)
    complete = [b for b in blocks if b.has(cells)]
    in_plan = sorted((b for b in complete if b.seed in order),
                     key=lambda b: (order.index(b.seed), b.part))
    declared_blocks = in_plan[:plan.n]
    extra = in_plan[plan.n:] + [b for b in complete if b.seed not in order]
    if plan.written == AFTER:
        status = "exploratory"
    elif len(declared_blocks) < plan.n:
        status = "incomplete"
    else:
        status = "complete"
    # a plan written after the runs tests on every block that holds a contrast's
    # cells (parts of split seeds too): all of it is exploratory
    in_seeds = [b for b in blocks if b.seed in order]
    confirmatory = test_contrasts(plan.contrasts, in_seeds if status == "exploratory"
                                  else declared_blocks, plan.alpha, plan.test)
    if status != "complete":
        for result in confirmatory:
            result.verdict = ("exploratory" if status == "exploratory"
                              else f"no verdict (incomplete: {len(declared_blocks)} of "
                                   f"{plan.n} blocks)")
    exploratory = test_contrasts(plan.exploratory, blocks, plan.alpha)
    for result in exploratory:
        if result.verdict != "too few blocks":
            result.verdict = "exploratory"
    ranking = (tau_interval(table, declared_blocks, plan.ranking, plan.alpha) if plan.ranking
               else None)
    bar = (bar_verdicts(table, declared_blocks, plan.bar, plan.bar_cell) if plan.bar
           else None)
    return Analysis(status, plan, declaration, blocks, declared_blocks, extra, confirmatory,
                    exploratory, ranking, bar)
