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

from tfklgan.reproduce.records import write_json

BEFORE, AFTER = "before the runs", "after the runs"


@dataclasses.dataclass(frozen=True)
class Contrast:
    """sum over cells of weight x the cell's score, estimated in each block from
    that block's runs (so a difference of two cells is paired within blocks).
    weights: (((method, column), weight), ...). expect: the sign the paper's
    claim predicts (-1: the contrast is negative, e.g. a lower FID), or None
    where the plan predicts no direction."""
    label: str
    weights: Tuple[Tuple[Tuple[str, str], float], ...]
    metric: str = "fid"
    expect: Optional[int] = None

    @property
    def cells(self):
        return tuple(cell for cell, _ in self.weights)

    def text(self):
        """"(klgan, with MBD) - (klgan, without MBD)", or the weighted sum."""
        terms = []
        for index, ((method, column), weight) in enumerate(self.weights):
            size = "" if abs(weight) == 1 else f"{abs(weight):g} x "
            sign = ("-" if weight < 0 else "") if index == 0 else ("- " if weight < 0 else "+ ")
            terms.append(f"{sign}{size}({method}, {column})")
        return " ".join(terms)


def difference(label, first, second, metric="fid", expect=None):
    """The paired difference first - second of two cells ((method, column) each)."""
    return Contrast(label, ((first, 1.0), (second, -1.0)), metric, expect)


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

    @property
    def n(self):
        return len(self.seeds)

    def to_json(self):
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_json(cls, value):
        def contrast(c):
            return Contrast(c["label"], tuple((tuple(cell), float(w)) for cell, w in c["weights"]),
                            c["metric"], c["expect"])
        return cls(seeds=tuple(value["seeds"]),
                   contrasts=tuple(contrast(c) for c in value["contrasts"]),
                   decision=value["decision"], written=value["written"],
                   spare_seeds=tuple(value["spare_seeds"]), correction=value["correction"],
                   alpha=value["alpha"], ranking=value["ranking"],
                   bar=tuple(tuple(b) for b in value["bar"]),
                   exploratory=tuple(contrast(c) for c in value["exploratory"]),
                   note=value.get("note", ""))


# What of a plan may not change once its study has runs (contrasts may be
# added: they are analysed as exploratory).
FIXED = ("seeds", "spare_seeds", "correction", "alpha", "decision", "ranking", "bar", "written")


def changes(declared, current):
    """The fields of FIXED in which `current` differs from `declared`, and the
    declared contrasts `current` dropped or changed."""
    fields = [f for f in FIXED if getattr(declared, f) != getattr(current, f)]
    kept = {c.label: c for c in current.contrasts}
    fields += [f"contrast {c.label!r}" for c in declared.contrasts if kept.get(c.label) != c]
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


def write(table_dir, plan, protocol, commit, dirty, today=None):
    """Stores `plan` in `table_dir` with when and at which commit it was declared."""
    os.makedirs(table_dir, exist_ok=True)
    declared = {"date": (today or datetime.date.today()).isoformat(), "commit": commit,
                "dirty": dirty, "protocol": protocol}
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
