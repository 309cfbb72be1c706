"""Repeat a published table here and say how the rerun compares.

Per run, against the published run of the same cell and seed:
- on the same kernel fingerprint (tfklgan.fingerprint): "bit-equal" when every
  score and every logged row (wall-clock columns aside) is identical, else
  "differs", which on one fingerprint is a fault;
- on another fingerprint the rerun is another sample of the cell: "inside"
  when each of the table's metrics falls in the published cell's 95%
  prediction interval for one new run, mean ± t(0.975, n-1) · std ·
  sqrt(1 + 1/n) over its n published seeds, else "outside". (A run that is
  bit-equal even so is said to be.)
The table's verdict: consistent when no run differs on its own fingerprint
and every other run is bit-equal or inside.
"""

import csv
import dataclasses
import json
import math
import os

from tfklgan import fingerprint
from tfklgan.evaluation.scores import SCORES
from tfklgan.reproduce import records
from tfklgan.reproduce.records import run_dir
from tfklgan.reproduce.report import fmt
from tfklgan.reproduce.runner import finished_runs, planned_runs, reproduce, study_values
from tfklgan.reproduce.stats import mean_std, prediction_interval
from tfklgan.reproduce.tables import TABLES

# Columns that hold wall-clock times: they never repeat.
WALL_CLOCK = {"time", "images_per_sec", "seconds"}
INTERVAL_SCORES = tuple(k for k in SCORES if k != "kid_std")


def _rows(path):
    if not os.path.isfile(path):
        return None
    with open(path, newline="") as handle:
        return [{k: v for k, v in row.items() if k not in WALL_CLOCK}
                for row in csv.DictReader(handle)]


def bit_difference(ours, published, our_dir, published_dir):
    """None when the two runs are identical in every score and logged row
    (wall-clock columns aside), else the first difference in words."""
    for key in SCORES:
        if key in published.scores and ours.scores.get(key) != published.scores[key]:
            return f"{key} {ours.scores.get(key)!r} vs {published.scores[key]!r}"
    for name in ("metrics.csv", "eval.csv"):
        mine, theirs = _rows(os.path.join(our_dir, name)), _rows(os.path.join(published_dir, name))
        if theirs is None:
            continue
        if mine is None:
            return f"{name} missing"
        for row, (a, b) in enumerate(zip(mine, theirs, strict=False)):
            if a != b:
                column = next(k for k in b if a.get(k) != b[k])
                return f"{name} row {row + 1} {column}: {a.get(column)} vs {b[column]}"
        if len(mine) != len(theirs):
            return f"{name}: {len(mine)} rows vs {len(theirs)}"
    return None


def compare_run(ours, published, cell_runs, table_metrics, our_dir, published_dir):
    """The verdict of one rerun against its published run and the published
    runs of its cell (all seeds)."""
    same, differences = fingerprint.compare(ours.fingerprint(), published.fingerprint())
    difference = bit_difference(ours, published, our_dir, published_dir)
    intervals = {}
    for key in INTERVAL_SCORES:
        values = [r.scores[key] for r in cell_runs if key in r.scores]
        if key in ours.scores and len(values) >= 2:
            low, high = prediction_interval(values)
            value = ours.scores[key]
            intervals[key] = {"value": value, "low": low, "high": high,
                              "published": values, "inside": bool(low <= value <= high)}
    if same:
        verdict = "bit-equal" if difference is None else "differs"
    else:
        decided = [intervals[k]["inside"] for k in table_metrics if k in intervals]
        verdict = ("inside" if decided and all(decided) else "outside" if decided
                   else "no interval")
    return {"method": ours.method, "column": ours.column, "seed": ours.seed,
            "verdict": verdict, "same_fingerprint": same,
            "fingerprint_differences": differences, "bit_equal": difference is None,
            "first_difference": difference, "intervals": intervals,
            "ours": fingerprint.text(ours.fingerprint()),
            "published": fingerprint.text(published.fingerprint())}


def table_verdict(runs):
    """One sentence for the table."""
    differs = [r for r in runs if r["verdict"] == "differs"]
    outside = [r for r in runs if r["verdict"] in ("outside", "no interval", "no published run")]
    if differs:
        return (f"FAULT: {len(differs)} of {len(runs)} runs differ from their published runs "
                "on the same kernel fingerprint, where they must repeat bit for bit.")
    if outside:
        return (f"{len(outside)} of {len(runs)} runs fall outside their cells' 95% prediction "
                "intervals (or have none): not consistent with the published table. At 95%, "
                "about one run in twenty falls outside by chance.")
    equal = sum(r["verdict"] == "bit-equal" for r in runs)
    return (f"consistent with the published table: {equal} of {len(runs)} runs bit-equal on "
            f"their own fingerprint, {len(runs) - equal} inside their cells' 95% prediction "
            "intervals.")


def verify(table_name, options, published_dir):
    """Reruns (or reuses, as `reproduce` does) the chosen runs of the table in
    `options.results_dir` and compares each with `published_dir/<table>`.
    Writes verify.md and verify.json beside the table; returns the report."""
    planned = planned_runs(table_name, options)
    published_table = os.path.join(published_dir, table_name)
    if os.path.realpath(options.results_dir) == os.path.realpath(published_dir):
        raise ValueError(f"--results_dir and the published results are both {published_dir}: "
                         "a rerun would be compared with itself; pass another --results_dir")
    for cell, seed in planned:
        folder = run_dir(published_table, cell, seed)
        if not records.is_finished(folder):
            raise ValueError(f"no published run {records.result_path(folder)}; --verify "
                             f"compares with the runs in {published_table}: choose cells and "
                             "seeds it holds")
    published = finished_runs(TABLES[table_name], published_table)
    if options.eval_values is None:  # a rerun is scored as the published runs were
        options = dataclasses.replace(
            options, eval_values=study_values(TABLES[table_name], published_table))
    out_dir, results = reproduce(table_name, options)
    table_metrics = TABLES[table_name].metrics
    runs = []
    for ours in results:
        theirs = next(r for r in published if (r.cell_key, r.seed) == (ours.cell_key, ours.seed))
        cell_runs = [r for r in published if r.cell_key == ours.cell_key]
        runs.append(compare_run(ours, theirs, cell_runs, table_metrics,
                                run_dir(out_dir, ours, ours.seed),
                                run_dir(published_table, ours, ours.seed)))
    report = {"table": table_name, "published": published_table, "runs": runs,
              "verdict": table_verdict(runs)}
    with open(os.path.join(out_dir, "verify.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    with open(os.path.join(out_dir, "verify.md"), "w") as handle:
        handle.write(report_text(report, table_metrics))
    return report


def _interval_text(entry):
    low, high = entry["low"], entry["high"]
    published = "/".join(f"{v:.4g}" for v in entry["published"])
    mean, std = mean_std(entry["published"])
    return (f"{entry['value']:.4g} in [{low:.4g}, {high:.4g}] (published {published}: "
            f"{fmt(mean, std)})" if math.isfinite(low) else f"{entry['value']:.4g}")


def report_text(report, table_metrics):
    """verify.md: a line per run, the scores against their intervals, the verdict."""
    lines = [f"# Verification of {report['table']} against {report['published']}", "",
             "| run | verdict | " + " | ".join(table_metrics) + " | fingerprint |",
             "|---|---|" + "---|" * len(table_metrics) + "---|"]
    for r in report["runs"]:
        values = []
        for key in table_metrics:
            entry = r["intervals"].get(key)
            values.append(_interval_text(entry) if entry else "n/a")
        where = ("same as the published run's" if r["same_fingerprint"] else
                 "differs from the published run's in " +
                 ", ".join(d.split(":")[0] for d in r["fingerprint_differences"]))
        verdict = r["verdict"] + (" (bit-equal even so)" if r["bit_equal"] and
                                  r["verdict"] in ("inside", "outside") else "")
        if r["verdict"] == "differs":
            verdict += f" (first: {r['first_difference']})"
        lines.append(f"| {r['method']}, {r['column']}, seed {r['seed']} | {verdict} | "
                     + " | ".join(values) + f" | {where} |")
    lines += ["", "Every score against its cell's 95% prediction interval:", ""]
    for r in report["runs"]:
        inside = ", ".join(f"{k} {'inside' if e['inside'] else 'OUTSIDE'}"
                           for k, e in r["intervals"].items())
        lines.append(f"- {r['method']}, {r['column']}, seed {r['seed']}: {inside}. "
                     f"This machine: {r['ours']}. Published: {r['published']}.")
    lines += ["", f"Verdict: {report['verdict']}", ""]
    return "\n".join(lines)


# ------------------------------------------------------------- the 50-step check

def repetition_reference(current, published_fingerprint, published_row, repeats):
    """What a rerun of a published run's first steps must match, on the CPU
    whose fingerprint is `current`: ("bit-equal", row) where a recorded repeat
    (`repeats`: [{"fingerprint", "row"}]) or the published run itself has
    this fingerprint, else ("tolerance", the published row)."""
    for repeat in repeats:
        if fingerprint.compare(current, repeat["fingerprint"])[0]:
            return "bit-equal", repeat["row"]
    if fingerprint.compare(current, published_fingerprint)[0]:
        return "bit-equal", published_row
    return "tolerance", published_row


def relative_violations(ours, reference, tolerance):
    """["column: ours vs reference (relative difference)"] for every numeric
    column of a logged row that differs by more than `tolerance` relative to
    the reference (wall-clock columns aside)."""
    problems = []
    for column, value in reference.items():
        if column in WALL_CLOCK:
            continue
        if column not in ours:
            problems.append(f"{column}: missing")
            continue
        a, b = float(ours[column]), float(value)
        relative = abs(a - b) / max(abs(b), 1e-30)
        if not relative <= tolerance:
            problems.append(f"{column}: {a:.8g} vs {b:.8g} (relative {relative:.2e})")
    return problems
