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
from tfklgan.reproduce.design import AFTER
from tfklgan.reproduce.records import run_name
from tfklgan.reproduce.stats import HIGHER_IS_BETTER, kendall_tau, mean_std, ranks


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


def write_table(table, results, out_dir, protocol_name, plan, declaration):
    """table.md, table.csv, plots and grids from the run records (RunRecord),
    analysed by `plan` (declared as `declaration` says; None: not stored);
    returns the (method, column, metric, paper, ours, n) summary rows."""
    title = f"{table.title} ({f'{protocol_name} protocol' if protocol_name else 'ad hoc'})"
    lines = [f"# {title}", "", f"Ours: {_settings_text(results)} {table.note}", ""]
    table_lines, summary = main_table_lines(table, results)
    lines += table_lines
    lines += _ranking_lines(table, summary)
    study = analysis_lib.analyse(table, plan, declaration, results)
    lines += study_lines(study)
    lines += _fidelity_diversity_lines(table, results)
    lines += ["", _machines_line(results)]
    with open(os.path.join(out_dir, "table.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    with open(os.path.join(out_dir, "table.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method", "column", "seed", "steps", *SCORES, "train_images",
                         "width", "batch_size", "generated", "real", "feature_network",
                         "fingerprint"])
        for r in results:
            settings = r.settings
            writer.writerow([r.method, r.column, r.seed, r.steps,
                             *[r.scores.get(k, "") for k in SCORES],
                             settings.get("train_images", ""), settings.get("width", ""),
                             settings.get("batch_size", ""), r.protocol["generated_count"],
                             r.protocol["real"]["count"],
                             r.protocol["feature_network_identity"],
                             fingerprint.text(r.fingerprint())])
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
    """The plan as the report states it: when it was declared, its blocks,
    contrasts, correction and what decides each verdict."""
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
    lines = ["", f"## Plan ({when})", "",
             f"- Blocks: n = {plan.n}, seeds {', '.join(map(str, plan.seeds))}{spares}. A "
             "block is one seed's runs of every cell on one kernel fingerprint.",
             f"- Correction: {plan.correction.capitalize()} across the {len(plan.contrasts)} "
             f"declared contrasts, family-wise alpha = {plan.alpha:g}."]
    for c in plan.contrasts:
        expect = {None: "no direction predicted", -1: "predicted negative",
                  1: "predicted positive"}[c.expect]
        lines.append(f"- Contrast: {c.label}: {c.text()} ({c.metric}; {expect}).")
    if plan.ranking:
        lines.append(f"- Ranking: Kendall's tau between the paper's {plan.ranking} and ours "
                     "over the cells with a paper value, 95% percentile bootstrap over "
                     "blocks (outside the Holm family).")
    if plan.bar:
        lines.append("- Bar of the best cell: " + ", ".join(f"{m} {op} {v:g}"
                                                           for m, op, v in plan.bar) + ".")
    lines.append(f"- Verdicts: {plan.decision}")
    if plan.note:
        lines.append(f"- {plan.note}")
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
        lines.append(f"| {r.contrast.label} ({metric}) | {len(r.values)} | {per_block} | "
                     f"{_number(r.mean, metric)} | {interval} | {p} | {adjusted} | "
                     f"{r.verdict} |")
    return lines


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
        tau, (low, high), count = study.ranking
        text = (f"{tau:.2f} (95% bootstrap over blocks {low:.2f} to {high:.2f}, {count} cells)"
                if math.isfinite(low) else "n/a (too few blocks or cells)")
        lines += ["", f"Kendall's tau of the paper's {plan.ranking} ranking and ours over the "
                      f"analysed blocks: {text}."]
    if study.bar and study.bar[0]:
        (method, column), rows = study.bar
        lines += ["", f"Best cell ({method}, {column}) against the bar: " + "; ".join(
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


