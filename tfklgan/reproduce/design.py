"""A study's plan, declared before its runs: the blocks (one seed each, all of
its cells trained on one machine), the contrasts it will test, the
correction across them and what decides each verdict.

The runner writes the plan into the study's results (plan.json, with the
commit and date it was declared) before the first run, refuses to train a
table without one, and refuses to go on when the table's plan no longer
matches the one its runs were declared under, except for contrasts added
since: those are analysed as exploratory. A plan written after the runs
(`written=AFTER`) makes every result of its study exploratory.
"""

import dataclasses
import datetime
import json
import os
from typing import Optional, Tuple

from tfklgan.reproduce import freeze
from tfklgan.reproduce import power as power_lib
from tfklgan.reproduce.records import write_json

BEFORE, AFTER = "before the runs", "after the runs"


@dataclasses.dataclass(frozen=True)
class Contrast:
    """sum over cells of weight x the cell's score, estimated in each block from
    that block's runs (so a difference of two cells is paired within blocks).
    weights: (((method, column), weight), ...). expect: the sign the paper's
    claim predicts (-1: the contrast is negative, e.g. a lower FID), or None
    where the plan predicts no direction.

    Sizing (a confirmatory plan's primary contrasts): `effect`, the smallest
    effect worth detecting (in the metric's units), and `sd`, the standard
    deviation of the per-block values expected, from `sd_source` (a named
    pilot's paired differences, or a stated value). `margin`: where set, a
    contrast whose Holm-level interval lies inside (-margin, margin) is
    "equivalent" (two one-sided tests, Lakens 2017)."""
    label: str
    weights: Tuple[Tuple[Tuple[str, str], float], ...]
    metric: str = "fid"
    expect: Optional[int] = None
    effect: Optional[float] = None
    sd: Optional[float] = None
    sd_source: str = ""
    margin: Optional[float] = None

    @property
    def cells(self):
        return tuple(cell for cell, _ in self.weights)

    @property
    def sized(self):
        return self.effect is not None and self.sd is not None

    def test_key(self):
        """What the contrast tests, its label aside: the metric and the
        weights by cell, up to sign (a - b and b - a are one test)."""
        weights = sorted((tuple(cell), float(w)) for cell, w in self.weights)
        flipped = sorted((cell, -w) for cell, w in weights)
        return self.metric, tuple(min(weights, flipped))

    def text(self):
        """"(klgan, with MBD) - (klgan, without MBD)", or the weighted sum."""
        terms = []
        for index, ((method, column), weight) in enumerate(self.weights):
            size = "" if abs(weight) == 1 else f"{abs(weight):g} x "
            sign = ("-" if weight < 0 else "") if index == 0 else ("- " if weight < 0 else "+ ")
            terms.append(f"{sign}{size}({method}, {column})")
        return " ".join(terms)


def difference(label, first, second, metric="fid", expect=None, **sizing):
    """The paired difference first - second of two cells ((method, column)
    each); `sizing`: Contrast's effect, sd, sd_source and margin."""
    return Contrast(label, ((first, 1.0), (second, -1.0)), metric, expect, **sizing)


# What decides a verdict: every plan declared since plans were sized says this.
RULE = ("a declared contrast is held where Holm rejects it in the sign the claim predicts "
        "(where none is predicted: held, with the sign found), reversed where Holm rejects "
        "it in the other sign, equivalent where it is not rejected and its Holm-level "
        "interval lies inside its declared margin, else inconclusive; a bar is held where "
        "the 95% t interval of the cell's mean lies inside it, reversed where it lies "
        "outside, else inconclusive; the ranking is held where the exact test of Kendall's "
        "tau on the cell means rejects independence (one-sided, tau > 0) at alpha.")


# A plan's purpose. Confirmatory: its primary (sized) contrasts are powered
# by its n. Exploratory: declared, but not sized to decide. Unsized: declared
# before plans stated their power (its verdicts say so).
CONFIRMATORY, EXPLORATORY, UNSIZED = "confirmatory", "exploratory", "unsized"
PURPOSES = (CONFIRMATORY, EXPLORATORY, UNSIZED)


@dataclasses.dataclass(frozen=True)
class Plan:
    """A study's design.

    seeds: the blocks, one seed each; n = len(seeds) is fixed. spare_seeds:
      blocks that stand in, in order, for blocks abandoned because their
      machine changed before they were complete (never for a result).
    contrasts: the declared contrasts, corrected together by `correction`
      ("holm") at family-wise level `alpha`.
    decision: what decides each verdict, in words (shown with the report).
    ranking: a metric whose cell means are ranked against the paper's with
      Kendall's tau and a bootstrap interval over blocks, or None.
    bar: ((metric, "<=" or ">=", value), ...) the best cell (by the first
      metric) is held against, with the t interval of each mean.
    exploratory: contrasts chosen after the runs, reported apart.
    written: BEFORE or AFTER the runs.
    purpose: CONFIRMATORY (n must give `power` to every sized contrast at the
      alpha of Holm's first step), EXPLORATORY or UNSIZED (older plans).
    test: "t" (paired t) or "sign_flip" (exact; refused where n blocks cannot
      give a p below Holm's first level).
    bar_cell: the (method, column) held against the bar, declared; where
      None, the best cell is picked from the same runs (biased, and said so).
    """
    seeds: Tuple[int, ...]
    contrasts: Tuple[Contrast, ...]
    decision: str
    written: str = BEFORE
    spare_seeds: Tuple[int, ...] = ()
    correction: str = "holm"
    alpha: float = 0.05
    ranking: Optional[str] = None
    bar: Tuple[Tuple[str, str, float], ...] = ()
    exploratory: Tuple[Contrast, ...] = ()
    note: str = ""
    purpose: str = UNSIZED
    power: float = 0.8
    test: str = "t"
    bar_cell: Optional[Tuple[str, str]] = None

    @property
    def n(self):
        return len(self.seeds)

    @property
    def first_alpha(self):
        """The level of Holm's first step: alpha / the distinct contrasts."""
        return self.alpha / max(1, len({c.test_key() for c in self.contrasts}))

    def sizing(self):
        """[(contrast, power at n, blocks needed)] of the sized contrasts."""
        return [(c, power_lib.paired_t_power(c.effect, c.sd, self.n, self.first_alpha),
                 power_lib.blocks_for_power(c.effect, c.sd, self.first_alpha, self.power))
                for c in self.contrasts if c.sized]

    def problems(self):
        """What a plan may not be declared with, one line each."""
        problems = []
        seen = {}
        for c in self.contrasts:
            if c.test_key() in seen:
                problems.append(f"contrast {c.label!r} tests the same difference as "
                                f"{seen[c.test_key()]!r}; declare it once")
            seen.setdefault(c.test_key(), c.label)
            if c.margin is not None and not c.margin > 0:
                problems.append(f"contrast {c.label!r}: an equivalence margin must be > 0")
            if c.sized and not (c.effect != 0 and c.sd > 0):
                problems.append(f"contrast {c.label!r}: a sized contrast needs effect != 0 "
                                "and sd > 0")
        if self.purpose not in PURPOSES:
            problems.append(f"purpose {self.purpose!r}: choose one of {PURPOSES}")
        if self.test not in power_lib.TESTS:
            problems.append(f"test {self.test!r}: choose one of {power_lib.TESTS}")
        elif not power_lib.smallest_p(self.test, self.n) < self.first_alpha:
            problems.append(
                f"the {self.test} test over {self.n} blocks cannot give a p below "
                f"{power_lib.smallest_p(self.test, self.n):.3g}, so never below Holm's first "
                f"level {self.first_alpha:.3g}: it needs "
                f"{power_lib.blocks_to_reach(self.test, self.first_alpha)} blocks")
        if self.purpose == CONFIRMATORY:
            if not any(c.sized for c in self.contrasts):
                problems.append("a confirmatory plan sizes at least one contrast (its effect "
                                "and sd); else declare it exploratory")
            for c, power, needed in self.sizing() if not problems else ():
                if power < self.power:
                    problems.append(
                        f"contrast {c.label!r}: {self.n} blocks give power {power:.2f} < "
                        f"{self.power:g} for an effect of {c.effect:g} at sd {c.sd:g} (alpha "
                        f"{self.first_alpha:.3g}); it needs {needed} blocks, or declare the "
                        "plan exploratory")
        return problems

    def to_json(self):
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_json(cls, value):
        def contrast(c):
            return Contrast(c["label"], tuple((tuple(cell), float(w)) for cell, w in c["weights"]),
                            c["metric"], c["expect"], c.get("effect"), c.get("sd"),
                            c.get("sd_source", ""), c.get("margin"))
        return cls(seeds=tuple(value["seeds"]),
                   contrasts=tuple(contrast(c) for c in value["contrasts"]),
                   decision=value["decision"], written=value["written"],
                   spare_seeds=tuple(value["spare_seeds"]), correction=value["correction"],
                   alpha=value["alpha"], ranking=value["ranking"],
                   bar=tuple(tuple(b) for b in value["bar"]),
                   exploratory=tuple(contrast(c) for c in value["exploratory"]),
                   note=value.get("note", ""), purpose=value.get("purpose", UNSIZED),
                   power=value.get("power", 0.8), test=value.get("test", "t"),
                   bar_cell=tuple(value["bar_cell"]) if value.get("bar_cell") else None)


# What of a plan may not change once its study has runs (contrasts may be
# added: they are analysed as exploratory).
FIXED = ("seeds", "spare_seeds", "correction", "alpha", "decision", "ranking", "bar", "written",
         "purpose", "power", "test", "bar_cell")


def changes(declared, current):
    """The fields of FIXED in which `current` differs from `declared`, and the
    declared contrasts `current` dropped or changed. A declared contrast that
    repeats another declared test (an older plan's duplicate) may be dropped:
    it was always that one test."""
    fields = [f for f in FIXED if getattr(declared, f) != getattr(current, f)]
    kept = {c.label: c for c in current.contrasts}
    firsts = {}
    for c in declared.contrasts:
        firsts.setdefault(c.test_key(), c.label)
    fields += [f"contrast {c.label!r}" for c in declared.contrasts
               if kept.get(c.label) != c and not (c.label not in kept
                                                  and firsts[c.test_key()] != c.label)]
    return fields


def analysed(declared, current):
    """The plan the report analyses: the declared plan, with contrasts of the
    current plan that the declared one lacks moved to its exploratory ones."""
    known = {c.label for c in declared.contrasts} | {c.label for c in declared.exploratory}
    added = tuple(c for c in current.contrasts + current.exploratory if c.label not in known)
    return dataclasses.replace(declared, exploratory=declared.exploratory + added)


PLAN_FILE = "plan.json"


def read(table_dir):
    """(plan, declaration) stored in `table_dir`, or (None, None)."""
    path = os.path.join(table_dir, PLAN_FILE)
    if not os.path.isfile(path):
        return None, None
    with open(path) as handle:
        value = json.load(handle)
    return Plan.from_json(value["plan"]), value["declared"]


def write(table_dir, plan, protocol, commit, dirty, today=None, resolved=None):
    """Stores `plan` in `table_dir` with when and at which commit it was
    declared, and `resolved` ({cell label: resolved settings}, freeze), the
    settings every run of each cell must train with, with their sha256."""
    os.makedirs(table_dir, exist_ok=True)
    declared = {"date": (today or datetime.date.today()).isoformat(), "commit": commit,
                "dirty": dirty, "protocol": protocol}
    if resolved is not None:
        declared["resolved"] = resolved
        declared["resolved_sha256"] = freeze.digest(resolved)
    write_json(os.path.join(table_dir, PLAN_FILE), {"plan": plan.to_json(),
                                                    "declared": declared})
    return declared


class PlanError(ValueError):
    """A study without a plan, or whose plan changed after its runs began."""


def check(table_name, table, table_dir, protocol):
    """The plan the study's runs follow: the stored one, or the table's
    (returned with declaration None: not stored yet). Raises PlanError when
    the table has no plan, or its plan changed in a fixed field."""
    if table.plan is None:
        raise PlanError(f"{table_name} declares no plan (tables.Table.plan): a study states "
                        "its blocks, contrasts, correction and verdict rules before it runs")
    stored, declared = read(table_dir)
    if stored is None:
        problems = table.plan.problems()
        if table.plan.written == BEFORE and table.plan.purpose == UNSIZED:
            problems.append("it is not sized: declare it confirmatory with sized contrasts, "
                            "or exploratory")
        if problems:
            raise PlanError(f"the plan of {table_name} cannot be declared: "
                            + "; ".join(problems))
        return table.plan, None
    if declared.get("protocol") != protocol:
        raise PlanError(f"{table_dir} holds a study declared under protocol "
                        f"{declared.get('protocol')!r}, not {protocol!r}; use another "
                        "--results_dir")
    changed = changes(stored, table.plan)
    if changed:
        raise PlanError(f"the plan of {table_name} changed since it was declared in "
                        f"{os.path.join(table_dir, PLAN_FILE)} at commit "
                        f"{declared.get('commit')} ({', '.join(changed)}): a changed design "
                        "is a new study (another --results_dir) or a second stage of its own")
    return analysed(stored, table.plan), declared
