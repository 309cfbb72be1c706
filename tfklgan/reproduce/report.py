"""A table's outputs from its runs' results: table.md (the paper beside ours,
rankings, Kendall's tau, separation, fidelity and diversity, the runs per
kernel fingerprint), table.csv, FID-versus-step plots, sample grids and
TensorBoard HParams summaries (hparams/)."""

import collections
import csv
import json
import math
import os
import shutil

from tfklgan import fingerprint
from tfklgan.evaluation.protocol import values_of
from tfklgan.evaluation.scores import SCORES
from tfklgan.reproduce import analysis as analysis_lib
from tfklgan.reproduce.design import AFTER, RULE, UNSIZED
from tfklgan.reproduce.records import run_name
from tfklgan.reproduce.stats import (
    HIGHER_IS_BETTER,
    kendall_tau,
    mean_std,
    ranks,
    welch_difference,
)


def fmt(mean, std):
    """"12.34 ± 5.67", "12.34" without a spread, "n/a" without a value."""
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:.2f}" if not math.isfinite(std) else f"{mean:.2f} ± {std:.2f}"


def _machines_line(results):
    """How many runs trained on each kernel fingerprint."""
    counts = collections.Counter(fingerprint.text(r.fingerprint()) for r in results)
    parts = [f"{name}: {count}" for name, count in sorted(counts.items())]
    return ("Runs by kernel fingerprint (a run repeats bit for bit only on its own "
            "fingerprint; elsewhere a rerun is another sample of the cell, see "
            "`reproduce.py --verify`): " + "; ".join(parts) + ".")


def _settings_text(results):
    """What was run, read from the runs themselves (not from the options)."""
    def values(get):
        found = {str(get(r)) for r in results}
        return "/".join(sorted(found, key=lambda v: (not v.isdigit(), int(v) if v.isdigit()
                                                     else 0, v)))
    settings = [r.settings for r in results]
    real = [r.protocol["real"] for r in results]
    keys = ("dataset", "train_images", "image_size", "width", "batch_size", "init")
    parts = [f"{key.replace('_', ' ')} "
             f"{values(lambda r, k=key: r.settings.get(k, '?'))}"
             for key in keys if any(key in x for x in settings)]
    text = ", ".join(parts + [f"{values(lambda r: r.steps)} generator steps",
                              f"seeds {values(lambda r: r.seed)}"])
    scored_as = ""
    if any("values" in r.protocol for r in results):  # recorded since uint8 became the rule
        scored_as = f", generated images scored as {values(lambda r: values_of(r.protocol))}"
    return (f"{text}. Scores: `{results[0].protocol['feature_network_identity']}`, "
            f"{values(lambda r: r.protocol['generated_count'])} generated images against "
            f"{'/'.join(sorted({str(x['count']) for x in real}))} real images of the "
            f"{'/'.join(sorted({x['split'] for x in real}))} split{scored_as}.")


def write_table(table, results, out_dir, protocol_name, plan, declaration, shared=()):
    """table.md, table.csv, plots and grids from the run records (RunRecord),
    analysed by `plan` (declared as `declaration` says; None: not stored);
    `shared`: runs of other studies that trained one of its cells
    (publish.shared_cells). Returns the (method, column, metric, paper, ours,
    n) summary rows."""
    title = f"{table.title} ({f'{protocol_name} protocol' if protocol_name else 'ad hoc'})"
    lines = [f"# {title}", "", f"Ours: {_settings_text(results)} {table.note}", ""]
    table_lines, summary = main_table_lines(table, results)
    lines += table_lines
    lines += _ranking_lines(table, summary)
    study = analysis_lib.analyse(table, plan, declaration, results)
    lines += study_lines(study)
    lines += shared_cell_lines(table, results, shared, study)
    lines += limitation_lines(table, results)
    lines += _fidelity_diversity_lines(table, results)
    lines += ["", _machines_line(results)]
    with open(os.path.join(out_dir, "table.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    with open(os.path.join(out_dir, "table.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method", "column", "seed", "steps", *SCORES, "train_images",
                         "width", "batch_size", "generated", "real", "feature_network",
                         "fingerprint", "resumed_at_step"])
        for r in results:
            settings = r.settings
            writer.writerow([r.method, r.column, r.seed, r.steps,
                             *[r.scores.get(k, "") for k in SCORES],
                             settings.get("train_images", ""), settings.get("width", ""),
                             settings.get("batch_size", ""), r.protocol["generated_count"],
                             r.protocol["real"]["count"],
                             r.protocol["feature_network_identity"],
                             fingerprint.text(r.fingerprint()), r.timed_from_step or ""])
    _plots(results, out_dir, table.curves_by)
    _grids(results, out_dir)
    write_hparams(results, os.path.join(out_dir, "hparams"))
    return summary


def main_table_lines(table, results):
    """The paper's numbers beside ours (mean ± std over seeds) as markdown
    lines, a row per method and a column pair per cell column, or with
    `table.rows_by == "cell"` a row per cell; and the (method, column, metric,
    paper, ours, n) summary rows."""
    methods = list(dict.fromkeys(r.method for r in results))
    nan_pair = (float("nan"),) * 2

    def entries(method, column):
        cell = next((c for c in table.cells if c.method == method and c.column == column), None)
        runs = [r for r in results if r.cell_key == (method, column)]
        for metric in table.metrics:
            paper = cell.paper.get(metric, nan_pair) if cell else nan_pair
            ours = mean_std([r.score(metric) for r in runs])
            yield ([fmt(*paper), fmt(*ours) + (f" (n={len(runs)})" if runs else "")],
                   (method, column, metric, paper, ours, len(runs)))

    summary, rows = [], []
    if table.rows_by == "cell":
        header = ["cell", *[f"{who} {metric}" for metric in table.metrics
                            for who in ("paper", "ours")]]
        for cell in table.cells:
            if cell.method in methods:
                parts = list(entries(cell.method, cell.column))
                rows.append([f"{cell.method}, {cell.column}", *[x for p in parts for x in p[0]]])
                summary += [p[1] for p in parts]
    else:
        header = ["method", *[f"{who} {metric} ({column})" for column in table.columns
                              for metric in table.metrics for who in ("paper", "ours")]]
        for method in methods:
            parts = [p for column in table.columns for p in entries(method, column)]
            rows.append([method, *[x for p in parts for x in p[0]]])
            summary += [p[1] for p in parts]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows], summary


HPARAM_SETTINGS = ("dataset", "image_size", "width", "batch_size", "n_critic", "init",
                   "precision")


HPARAMS_RECORD = "summary.json"


def write_hparams(results, directory, extra=None):
    """TensorBoard HParams summaries, one folder per run: the cell, seed,
    steps and settings (and `extra`, {run name: {hparam: value}}) as hparams,
    the final scores as metrics, so that `tensorboard --logdir <table>/hparams`
    compares every run of the table.

    A run's folder keeps what it summarised in summary.json and is rewritten
    only when that changes: event files are named by the time and process
    that wrote them, so rewriting every folder would change every file of a
    published table each time it is published again."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp
    wanted = {}
    for r in results:
        hparams = {"method": r.method, "column": r.column, "seed": r.seed, "steps": r.steps,
                   **{k: r.settings[k] for k in HPARAM_SETTINGS if k in r.settings},
                   **(extra or {}).get(run_name(r.method, r.column, r.seed), {})}
        finals = {key: r.score(key) for key in SCORES if math.isfinite(r.score(key))}
        wanted[run_name(r.method, r.column, r.seed)] = json.loads(json.dumps(
            {"hparams": hparams, "final": finals, "step": r.steps}))
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name not in wanted:
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
    for name, summary in wanted.items():
        folder = os.path.join(directory, name)
        if _read_summary(os.path.join(folder, HPARAMS_RECORD)) == summary:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        writer = tf.summary.create_file_writer(folder)
        with writer.as_default():
            hp.hparams(summary["hparams"], trial_id=name)
            for key, value in summary["final"].items():
                tf.summary.scalar(f"final/{key}", value, step=summary["step"])
        writer.close()
        with open(os.path.join(folder, HPARAMS_RECORD), "w") as handle:
            json.dump(summary, handle, indent=1, sort_keys=True)


def _read_summary(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def limitation_lines(table, results):
    """What the table cannot show (its declared limitations) and which runs
    were resumed mid-run (a resumed run on the same fingerprint ends as an
    uninterrupted one; on another it is a run of two machines)."""
    lines = []
    if table.limitations:
        lines += ["", "## Limitations", ""] + [f"- {text}" for text in table.limitations]
    resumed = [r for r in results if r.timed_from_step]
    if resumed:
        lines += ["", f"Resumed mid-run ({len(resumed)} of {len(results)} runs; each run's "
                      "run.json lists its resumes and their fingerprints): " + "; ".join(
                          f"{r.method}, {r.column}, seed {r.seed} at step {r.timed_from_step}"
                          for r in resumed) + "."]
    return lines


def shared_cell_lines(table, results, shared, study):
    """The cells that other published studies trained too (equal training
    settings): each study's mean, their Welch difference and the pooled
    estimate over every run; and the bar on runs not used to pick its cell."""
    if not shared:
        return []
    lines = ["", "## The same cell in other studies (exploratory)", "",
             "Runs of other studies with the same training settings (flagfile, protocol, "
             "overrides; seeds and scoring aside). Pooled: the mean and 95% t interval over "
             "every run of both, each run one seed.", "",
             "| cell | this study | other study (its cell) | difference (Welch p) | pooled |",
             "|---|---|---|---|---|"]
    metric = table.metrics[0]
    for cell, other, other_cell, runs in shared:
        here = [r.score(metric) for r in results if r.cell_key == cell]
        there = [r.score(metric) for r in runs]
        difference, _, p = welch_difference(here, there)
        mean, (low, high) = analysis_lib.interval_of_mean(here + there)
        lines.append(f"| {cell[0]}, {cell[1]} | {fmt(*mean_std(here))} (n={len(here)}) | "
                     f"{fmt(*mean_std(there))} (n={len(there)}; `{other}`: {other_cell[1]}, "
                     f"scored as {'/'.join(sorted({values_of(r.protocol) for r in runs}))}) "
                     f"| {difference:+.1f} (p {p:.2g}) | {mean:.1f} (95% {low:.1f} to "
                     f"{high:.1f}, n={len(here) + len(there)}) |")
    by_cell = {}
    for cell, _, _, runs in shared:
        by_cell.setdefault(cell, []).extend(r.score(metric) for r in runs)
    for cell, there in by_cell.items():
        if len({other for c, other, _, _ in shared if c == cell}) > 1:
            here = [r.score(metric) for r in results if r.cell_key == cell]
            mean, (low, high) = analysis_lib.interval_of_mean(here + there)
            lines.append(f"| {cell[0]}, {cell[1]} | {fmt(*mean_std(here))} (n={len(here)}) | "
                         f"every other study above: {fmt(*mean_std(there))} (n={len(there)}) "
                         f"| | {mean:.1f} (95% {low:.1f} to {high:.1f}, "
                         f"n={len(here) + len(there)}) |")
    if study.bar and study.bar[0] and study.bar[1]:
        best, _, rows = study.bar
        others = [(other, runs) for cell, other, _, runs in shared if cell == best]
        for other, runs in others:
            parts = []
            for metric_name, op, limit, *_ in rows:
                mean, (low, high) = analysis_lib.interval_of_mean(
                    [r.score(metric_name) for r in runs])
                inside = (high <= limit) if op == "<=" else (low >= limit)
                outside = (low > limit) if op == "<=" else (high < limit)
                verdict = "held" if inside else "reversed" if outside else "inconclusive"
                parts.append(f"{metric_name} {mean:.3g} (95% {low:.3g} to {high:.3g}) {op} "
                             f"{limit:g}: {verdict}")
            lines += ["", f"The bar on the runs of `{other}` ({len(runs)}), which did not pick "
                          f"the cell ({best[0]}, {best[1]}): " + "; ".join(parts) + "."]
    return lines


PRDC = ("precision", "recall", "density", "coverage")


def _fidelity_diversity_lines(table, results):
    """Precision, recall, density and coverage per cell (mean ± std over seeds),
    for the runs scored with them (`--rescore` adds them to older runs)."""
    scored = [r for r in results if all(k in r.scores for k in PRDC)]
    if not scored:
        return []
    lines = ["", "## Fidelity and diversity (ours; precision/recall k = 3, density/coverage "
             "k = 5)", "", "| cell | " + " | ".join(PRDC) + " |", "|---|" + "---|" * len(PRDC)]
    for cell in table.cells:
        runs = [r for r in scored if r.cell_key == (cell.method, cell.column)]
        if runs:
            lines.append(f"| {cell.method}, {cell.column} | " + " | ".join(
                fmt(*mean_std([r.score(k) for r in runs])) for k in PRDC) + " |")
    return lines


def _ranking_lines(table, summary):
    """The paper's ranking of the cells beside ours, Kendall's tau, and for FID
    whether the cells separate (best-to-worst gap > 3 x the best cell's seed std)."""
    lines = []
    for metric in table.metrics:
        rows = [(m, c, paper[0], ours) for m, c, name, paper, ours, n in summary
                if name == metric and n and math.isfinite(paper[0]) and math.isfinite(ours[0])]
        if len(rows) < 2:
            continue
        better = HIGHER_IS_BETTER[metric]
        paper_ranks = ranks([r[2] for r in rows], better)
        our_ranks = ranks([r[3][0] for r in rows], better)
        tau = kendall_tau([r[2] for r in rows], [r[3][0] for r in rows])
        lines += ["", f"## Ranking by {metric} ({'higher' if better else 'lower'} is better)",
                  "", "| cell | paper | paper rank | ours | our rank |", "|---|---|---|---|---|"]
        order = sorted(range(len(rows)), key=lambda i: paper_ranks[i])
        for i in order:
            method, column, paper_value, ours = rows[i]
            lines.append(f"| {method}, {column} | {paper_value:.2f} | {paper_ranks[i]} | "
                         f"{fmt(*ours)} | {our_ranks[i]} |")
        lines += ["", f"Kendall's tau between the paper's ranking and ours: {tau:.2f} "
                      f"({len(rows)} cells)."]
        if metric == "fid":
            best = min(rows, key=lambda r: r[3][0])
            worst = max(rows, key=lambda r: r[3][0])
            gap, std = worst[3][0] - best[3][0], best[3][1]
            against = (f" vs 3 x the best cell's seed std {3 * std:.2f}: the cells "
                       f"{'separate' if gap > 3 * std else 'do not separate'}"
                       if math.isfinite(std) else
                       "; the best cell has one seed, so no seed std to hold it against: "
                       "not assessed")
            lines.append(f"Separation: best cell {best[0]}, {best[1]} ({fmt(*best[3])}), "
                         f"worst {worst[0]}, {worst[1]} ({fmt(*worst[3])}); gap {gap:.2f}"
                         f"{against}.")
    return lines


# Decimals of a contrast's difference: FID and KID run in the tens, the
# fidelity/diversity scores in [0, 1] (density a little above).
CONTRAST_DECIMALS = {"inception_score": 2, "precision": 3, "recall": 3, "density": 3,
                     "coverage": 3}


def _number(value, metric):
    places = CONTRAST_DECIMALS.get(metric, 1)
    return f"{value:+.{places}f}" if math.isfinite(value) else "n/a"


def plan_lines(plan, declaration):
    """The plan as the report states it: when it was declared, its purpose
    and sizing, its blocks, contrasts, correction and the rules of its
    verdicts."""
    if plan.written == AFTER:
        when = ("written after the runs: every result below is exploratory, a "
                "hypothesis for a study declared before its runs")
    elif declaration:
        when = (f"declared before the runs on {declaration['date']} at commit "
                f"{declaration['commit'] or 'not recorded'}"
                f"{' (with uncommitted changes)' if declaration.get('dirty') else ''}")
    else:
        when = "declared before the runs (not yet stored with a run)"
    spares = (f"; spare seeds {', '.join(map(str, plan.spare_seeds))} stand in, in order, for "
              "blocks abandoned because their machine changed" if plan.spare_seeds else "")
    distinct = len({c.test_key() for c in plan.contrasts})
    repeats = (f" ({len(plan.contrasts) - distinct} of the {len(plan.contrasts)} declared "
               "repeat another's test and are counted once)" if distinct < len(plan.contrasts)
               else "")
    lines = ["", f"## Plan ({when})", "",
             f"- Blocks: n = {plan.n}, seeds {', '.join(map(str, plan.seeds))}{spares}. A "
             "block is one seed's runs of every cell on one kernel fingerprint.",
             f"- Correction: {plan.correction.capitalize()} across the {distinct} distinct "
             f"declared contrast{'' if distinct == 1 else 's'}{repeats}, family-wise alpha = {plan.alpha:g}; "
             f"{'paired t-test' if plan.test == 't' else 'exact sign-flip test'} per contrast."]
    lines += sizing_lines(plan)
    for c in plan.contrasts:
        expect = {None: "no direction predicted", -1: "predicted negative",
                  1: "predicted positive"}[c.expect]
        margin = f"; equivalence margin ±{c.margin:g}" if c.margin else ""
        lines.append(f"- Contrast: {c.label}: {c.text()} ({c.metric}; {expect}{margin}).")
    if plan.ranking:
        lines.append(f"- Ranking: Kendall's tau between the paper's {plan.ranking} and our cell "
                     "means over the cells with a paper value; exact one-sided test of "
                     "independence on the cell means (outside the Holm family).")
    if plan.bar:
        cell = (f"the declared cell ({plan.bar_cell[0]}, {plan.bar_cell[1]})" if plan.bar_cell
                else "the best cell, picked from the same runs")
        lines.append(f"- Bar of {cell}: " + ", ".join(f"{m} {op} {v:g}"
                                                     for m, op, v in plan.bar) + ".")
    lines.append(f"- Verdicts: {RULE}")
    if plan.decision != RULE:
        lines.append(f"- The plan's own words for its verdicts (recomputed here under the "
                     f"rule above): {plan.decision}")
    if plan.note:
        lines.append(f"- {plan.note}")
    return lines


def sizing_lines(plan):
    """The plan's purpose and, for a sized plan, each primary contrast's power."""
    if plan.purpose == UNSIZED:
        return ["- Sizing: none. Its n was not chosen by a power analysis (declared before "
                "plans stated their power), so an inconclusive verdict cannot tell an absent "
                "effect from one too small for its blocks to see."]
    lines = [f"- Purpose: {plan.purpose}; target power {plan.power:g} at Holm's first level "
             f"{plan.first_alpha:.3g}."]
    for c, power, needed in plan.sizing():
        lines.append(f"- Sized: {c.label}: smallest effect of interest {c.effect:g}, sd "
                     f"{c.sd:g} ({c.sd_source or 'source not stated'}); power {power:.2f} at "
                     f"n = {plan.n} (it needs {needed}).")
    return lines


def block_lines(study):
    lines = ["", "## Blocks", "", "| block | kernel fingerprint | runs | in the analysis |",
             "|---|---|---|---|"]
    analysed = {id(b) for b in study.analysed}
    extra = {id(b) for b in study.extra}
    for block in study.blocks:
        role = ("declared" if id(block) in analysed else "exploratory (beyond n or outside "
                "the plan)" if id(block) in extra else "incomplete")
        lines.append(f"| {block.label} | {fingerprint.text(block.fingerprint)} | "
                     f"{len(block.runs)} | {role} |")
    split = sorted({b.seed for b in study.blocks if b.part})
    if split:
        lines += ["", "Seeds whose runs trained on more than one kernel fingerprint, each "
                  "fingerprint a block of its own: " + "; ".join(
                      f"seed {seed}: " + ", ".join(
                          f"{b.label} holds {'; '.join(f'{m}, {c}' for m, c in b.runs)}"
                          for b in study.blocks if b.seed == seed) for seed in split) + "."]
    return lines


def contrast_table(results, withhold=False):
    """The contrasts' rows; `withhold`: an incomplete study shows its blocks'
    values and their mean, not a test (no p-value to stop on)."""
    lines = ["| contrast | blocks | per block | mean | interval (level) | p | Holm p | "
             "verdict |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        metric = r.contrast.metric
        per_block = ", ".join(_number(v, metric) for v in r.values) or "none"
        interval = (f"{_number(r.interval[0], metric)} to {_number(r.interval[1], metric)} "
                    f"({100 * r.level:.2f}%)" if math.isfinite(r.interval[0]) else "n/a")
        p = f"{r.p:.2g}" if math.isfinite(r.p) else "n/a"
        adjusted = f"{r.adjusted_p:.2g}" if math.isfinite(r.adjusted_p) else "n/a"
        if withhold:
            interval = p = adjusted = "withheld"
        label = r.contrast.label + (f" (the same test as {r.duplicate_of!r}: counted once)"
                                    if r.duplicate_of else "")
        lines.append(f"| {label} ({metric}) | {len(r.values)} | {per_block} | "
                     f"{_number(r.mean, metric)} | {interval} | {p} | {adjusted} | "
                     f"{r.verdict} |")
    return lines


def ranking_text(ranking, plan):
    """Kendall's tau, its exact test and what the bootstrap over blocks gives."""
    if not math.isfinite(ranking.tau):
        return f"Kendall's tau of the paper's {plan.ranking} ranking and ours: n/a (too few " \
               "blocks or cells)."
    if ranking.distinct < analysis_lib.MIN_DISTINCT_BOOTSTRAP:
        spread = (f"the bootstrap over {plan.n} blocks takes only {ranking.distinct} distinct "
                  "values, so it gives no interval")
    else:
        spread = (f"95% bootstrap over blocks {ranking.interval[0]:.2f} to "
                  f"{ranking.interval[1]:.2f}")
    return (f"Kendall's tau of the paper's {plan.ranking} ranking and our cell means over "
            f"the analysed blocks: {ranking.tau:.2f} ({ranking.cells} cells); exact one-sided "
            f"p = {ranking.p:.2g}: {ranking.verdict}; {spread}.")


def study_lines(study):
    """The design sections of table.md: plan, blocks, the declared contrasts,
    the ranking's interval, the bar, and what is exploratory."""
    plan = study.plan
    status = {"complete": f"complete: {plan.n} of {plan.n} declared blocks",
              "incomplete": f"incomplete: {len(study.analysed)} of {plan.n} declared blocks; "
                            "no verdict until all are in",
              "exploratory": "exploratory: its plan was written after its runs"}[study.status]
    lines = plan_lines(plan, study.declaration) + block_lines(study)
    lines += ["", f"## Declared contrasts ({status})", "",
              "Each value is one block's contrast (its runs of the cells, paired); the "
              "interval is Student's t at the level of the Holm step that decides the "
              "contrast, so it excludes 0 exactly when Holm rejects.", ""]
    lines += contrast_table(study.confirmatory, withhold=study.status == "incomplete")
    if study.ranking:
        lines += ["", ranking_text(study.ranking, plan)]
    if study.bar and study.bar[0]:
        (method, column), picked, rows = study.bar
        how = (" (picked as the best from these same runs, so its mean is biased toward the "
               "bar: an exploratory reading)" if picked else " (declared before the runs)")
        lines += ["", f"Cell ({method}, {column}) against the bar{how}: " + "; ".join(
            f"{m} {mean:.3g} (95% {low:.3g} to {high:.3g}) {op} {v:g}: {verdict}"
            for m, op, v, mean, (low, high), verdict in rows) + "."]
    if study.exploratory:
        lines += ["", "## Exploratory (chosen after the runs)", "",
                  "Holm-corrected among themselves over every block that holds their cells; "
                  "hypotheses for a declared study, not findings.", ""]
        lines += contrast_table(study.exploratory)
    return lines

def _plots(results, out_dir, curves_by="step"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(os.path.join(out_dir, "plots"), exist_ok=True)
    columns = list(dict.fromkeys(r.column for r in results))
    styles = {c: ("-", "--", ":", "-.")[i % 4] for i, c in enumerate(columns)}
    colours = {c: plt.get_cmap("tab10")(i % 10) for i, c in enumerate(columns)}
    for method in dict.fromkeys(r.method for r in results):
        fig, axis = plt.subplots(figsize=(6, 4))
        labelled = set()
        for r in (r for r in results if r.method == method):
            path = os.path.join(r.logdir, "eval.csv")
            if not os.path.isfile(path):
                continue
            with open(path, newline="") as handle:
                rows = list(csv.DictReader(handle))
            per_step = (r.settings.get("batch_size", 1) * r.settings.get("n_critic", 1)
                        if curves_by == "images" else 1)
            axis.plot([int(x["step"]) * per_step for x in rows],
                      [float(x["fid"]) for x in rows], marker="o", color=colours[r.column],
                      linestyle=styles[r.column],
                      label=None if r.column in labelled else f"{r.column} (every seed)")
            labelled.add(r.column)
        axis.set_xlabel("training images seen" if curves_by == "images" else "generator step")
        axis.set_ylabel("FID")
        axis.set_title(method)
        axis.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "plots", f"fid_{method}.png"))
        plt.close(fig)


def grid_name(result):
    """The file name of a run's final sample grid in the table's grids/."""
    return f"{result.method}_{result.column.replace(' ', '_')}_seed{result.seed}.png"


def _grids(results, out_dir):
    os.makedirs(os.path.join(out_dir, "grids"), exist_ok=True)
    for r in results:
        destination = os.path.join(out_dir, "grids", grid_name(r))
        if (r.sample_grid and os.path.isfile(r.sample_grid)
                and os.path.abspath(r.sample_grid) != os.path.abspath(destination)):
            shutil.copyfile(r.sample_grid, destination)


