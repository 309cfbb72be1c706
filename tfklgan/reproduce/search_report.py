"""A search's report, from its plan and its trials' run records alone (never
from the Optuna storage, so a published report recomputes from the files
beside it): the distribution of the selection metric per method (ECDF, as
Lucic et al. 2018 show it), the expected best score after k trials with its
spread (Dodge et al. 2019), the best trial per method, every trial, and the
plan. README.md leads with the pictures."""

import contextlib
import csv
import math
import os
import shutil

from tfklgan import fingerprint
from tfklgan.reproduce import records
from tfklgan.reproduce.publish import _publish_run
from tfklgan.reproduce.report import write_hparams
from tfklgan.reproduce.search_worker import (
    PLAN_FILE,
    TRIAL_MARKER,
    read_json,
    read_plan,
    study_dir,
    trial_folder,
)
from tfklgan.reproduce.stats import HIGHER_IS_BETTER, expected_best

DIVERGED_UNSCORED = "diverged.json"


class TrialResult:
    """A declared trial (its plan entry) and its run record, if finished;
    `unscored`: the reason a trial that diverged before its first checkpoint
    has no score."""

    def __init__(self, entry, record, unscored=None):
        self.entry, self.record, self.unscored = entry, record, unscored

    @property
    def done(self):
        return self.record is not None or self.unscored is not None

    def score(self, metric):
        if self.record is not None:
            return self.record.score(metric)
        return math.inf if self.unscored else math.nan


def trial_results(search, options, folder):
    """[TrialResult] of every declared trial of the plan stored in `folder`."""
    plan = read_plan(folder)
    if plan is None:
        raise ValueError(f"{folder} holds no {PLAN_FILE}: the search has not been declared "
                         "there (a worker declares it before its first trial)")
    by_key = {t.key: t for t in search.declared_trials()}
    found = []
    for entry in plan["trials"]:
        run = records.run_dir(folder, by_key[entry["key"]].cell(), entry["seed"])
        record = records.load(run) if records.is_finished(run) else None
        failed = read_json(os.path.join(run, DIVERGED_UNSCORED))
        found.append(TrialResult(entry, record, failed and failed["error"]))
    return plan, found


def _value_text(value):
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def setting_text(params):
    return ", ".join(f"{k} {_value_text(v)}" for k, v in params.items())


def _number(value, places=1):
    if math.isnan(value):
        return "n/a"
    return "inf" if math.isinf(value) else f"{value:.{places}f}"


def write_report(search, options, folder=None):
    """README.md, trials.csv, plots/ and hparams/ of the search in `folder`
    (default: its results folder); returns the folder."""
    folder = folder or study_dir(search, options)
    plan, results = trial_results(search, options, folder)
    metric = search.selection
    methods = [m.method for m in search.methods]
    by_method = {m: [r for r in results if r.entry["method"] == m] for m in methods}
    os.makedirs(os.path.join(folder, "plots"), exist_ok=True)
    _ecdf_plot(by_method, metric, os.path.join(folder, "plots", f"ecdf_{metric}.png"))
    ks = list(range(1, search.trials - max(len(m.fixed) for m in search.methods) + 1))
    _expected_best_plot(by_method, metric, ks,
                        os.path.join(folder, "plots", f"expected_best_{metric}.png"))
    done = sum(r.done for r in results)
    status = (f"All {done} declared trials finished." if done == len(results) else
              f"{done} of {len(results)} declared trials finished: the search is incomplete, "
              "so each method's best trial is the best so far, not its selection.")
    lines = [f"# {search.title}", "",
             f"![ECDF of {metric} per method](plots/ecdf_{metric}.png)",
             f"![expected best {metric} after k trials](plots/expected_best_{metric}.png)", "",
             status, "", search.note, ""]
    lines += _best_lines(by_method, metric, done == len(results))
    lines += _expected_best_lines(by_method, metric, ks)
    lines += _trial_lines(results, metric)
    lines += _plan_lines(search, plan)
    with open(os.path.join(folder, "README.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    _write_csv(results, os.path.join(folder, "trials.csv"))
    finished = [r for r in results if r.record is not None]
    write_hparams([r.record for r in finished], os.path.join(folder, "hparams"),
                  extra={records.run_name(r.record.method, r.record.column, r.record.seed):
                         {**r.entry["params"], "origin": r.entry["origin"]} for r in finished})
    return folder


def _random(trials):
    return [r for r in trials if r.entry["origin"] == "random"]


def _best_lines(by_method, metric, complete):
    better = HIGHER_IS_BETTER[metric]
    title = "Selected setting per method" if complete else "Best trial so far per method"
    lines = ["", f"## {title} (by {metric} on the held-out images)", "",
             f"| method | trials finished | best {metric} | trial | origin | setting | recall |",
             "|---|---|---|---|---|---|---|"]
    for method, trials in by_method.items():
        scored = [r for r in trials if r.done and not math.isnan(r.score(metric))]
        if not scored:
            lines.append(f"| {method} | 0 of {len(trials)} | n/a | | | | |")
            continue
        best = (max if better else min)(scored, key=lambda r: r.score(metric))
        lines.append(f"| {method} | {len(scored)} of {len(trials)} | "
                     f"{_number(best.score(metric))} | {best.entry['key']} | "
                     f"{best.entry['origin']} | {setting_text(best.entry['params'])} | "
                     f"{_number(best.score('recall'), 3)} |")
    return lines


def _expected_best_lines(by_method, metric, ks):
    shown = [k for k in ks if k in (1, 2, 4, 8) or k == ks[-1]]
    lines = ["", f"## Expected best {metric} after k random trials (Dodge et al. 2019)", "",
             "The mean and standard deviation of the best of k trials drawn with replacement "
             "from a method's finished random trials (the fixed trials apart): what tuning "
             "the method with k trials gives. A k larger than the trials finished repeats "
             "draws.", "",
             "| method | random trials finished | " + " | ".join(f"k = {k}" for k in shown)
             + " |", "|---|---|" + "---|" * len(shown)]
    for method, trials in by_method.items():
        values = [r.score(metric) for r in _random(trials) if r.done]
        cells = []
        for k in shown:
            mean, std = expected_best(values, k, HIGHER_IS_BETTER[metric])
            cells.append("n/a" if math.isnan(mean) else
                         f"{_number(mean)} ± {_number(std)}" if math.isfinite(std) else
                         _number(mean))
        lines.append(f"| {method} | {len(values)} | " + " | ".join(cells) + " |")
    return lines


def _trial_lines(results, metric):
    lines = ["", "## Every trial", "",
             f"| trial | origin | seed | setting | {metric} | recall | precision | steps | "
             "train s | kernel fingerprint |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        e = r.entry
        if r.record is None:
            state = "diverged before its first checkpoint" if r.unscored else "not finished"
            lines.append(f"| {e['key']} | {e['origin']} | {e['seed']} | "
                         f"{setting_text(e['params'])} | {state} | | | | | |")
            continue
        rec = r.record
        steps = f"{rec.steps} (diverged)" if rec.diverged else str(rec.steps)
        if rec.timed_from_step:
            steps += f", resumed at {rec.timed_from_step}"
        lines.append(f"| {e['key']} | {e['origin']} | {e['seed']} | "
                     f"{setting_text(e['params'])} | {_number(rec.score(metric))} | "
                     f"{_number(rec.score('recall'), 3)} | "
                     f"{_number(rec.score('precision'), 3)} | {steps} | "
                     f"{_number(rec.train_seconds or math.nan, 0)} | "
                     f"{fingerprint.text(rec.fingerprint())} |")
    return lines


def _plan_lines(search, plan):
    declared = plan["declared"]
    protocol = plan["protocol"]
    lines = ["", f"## Plan (declared on {declared['date']} at commit "
                 f"{declared['commit'] or 'not recorded'}"
                 f"{' with uncommitted changes' if declared.get('dirty') else ''}, before "
                 "its first trial)", "",
             f"- Budget: {search.trials} trials per method, each {protocol['steps']:,} "
             f"generator steps at width {protocol['width']} and batch "
             f"{protocol['batch_size']} on {protocol['dataset']}.",
             f"- Selection: {search.selection} of {protocol['eval_samples']:,} generated "
             f"images against {protocol['real_samples']} images of the "
             f"{protocol['real_split']} split (held out), by `{protocol['feature_network']}`.",
             f"- Sampler: {search.sampler}, every trial drawn at declaration from seed "
             f"{search.sampler_seed} (one generator per method); trial k trains with seed "
             f"{search.seed_base} + k.",
             "- Shared space: " + "; ".join(d.text() for d in search.shared) + "."]
    for space in search.methods:
        own = "; ".join(d.text() for d in space.dimensions) or "none"
        fixed = "; ".join(f"{origin}" for origin, _ in space.fixed)
        lines.append(f"- {space.method} (`{space.flagfile}`): own dimensions: {own}. "
                     f"Fixed first trials: {fixed}.")
    lines.append("- Frozen: every trial's resolved settings and their sha256 are in "
                 f"`{PLAN_FILE}`; a worker refuses a trial whose settings now differ.")
    return lines


def _write_csv(results, path):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", "method", "origin", "seed", "params", "fid", "recall",
                         "precision", "steps", "diverged", "train_seconds", "fingerprint"])
        for r in results:
            rec = r.record
            writer.writerow([r.entry["key"], r.entry["method"], r.entry["origin"],
                             r.entry["seed"], setting_text(r.entry["params"]),
                             *(r.score(m) if r.done else "" for m in
                               ("fid", "recall", "precision")),
                             rec.steps if rec else "", bool(r.unscored or (rec and rec.diverged)),
                             rec.train_seconds if rec else "",
                             fingerprint.text(rec.fingerprint()) if rec else ""])


@contextlib.contextmanager
def _figure(path, xlabel, ylabel, title):
    """An axis to draw on, labelled, with its legend, saved to `path` as PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axis = plt.subplots(figsize=(6, 4))
    yield axis
    if not axis.lines:
        axis.text(0.5, 0.5, "no trial to show yet", ha="center", transform=axis.transAxes)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    if axis.lines:
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _ecdf_plot(by_method, metric, path):
    with _figure(path, f"{metric} (held-out images, log scale)", "share of trials at or below",
                 "Every trial of the search") as axis:
        for method, trials in by_method.items():
            values = sorted(r.score(metric) for r in trials if r.done)
            finite = [v for v in values if math.isfinite(v)]
            if finite:  # from 0 at the best trial up by 1/n at each, a marker per trial
                shares = [(i + 1) / len(values) for i in range(len(finite))]
                axis.step([finite[0], *finite], [0.0, *shares], where="post", marker="o",
                          markersize=3, label=f"{method} ({len(values)} trials)")
        axis.set_xscale("log")
        axis.set_ylim(0, 1.05)


def _expected_best_plot(by_method, metric, ks, path):
    with _figure(path, "random trials k", f"expected best {metric} (± std)",
                 "What k trials of tuning give (Dodge et al. 2019)") as axis:
        for method, trials in by_method.items():
            values = [r.score(metric) for r in _random(trials) if r.done]
            rows = [expected_best(values, k, HIGHER_IS_BETTER[metric]) for k in ks]
            shown = [(k, m, s) for k, (m, s) in zip(ks, rows, strict=True)
                     if math.isfinite(m)]
            if not shown:
                continue
            x, mean, std = zip(*shown, strict=True)
            line, = axis.plot(x, mean, marker="o", markersize=3, label=method)
            axis.fill_between(x, [m - s for m, s in zip(mean, std, strict=True)],
                              [m + s for m, s in zip(mean, std, strict=True)],
                              color=line.get_color(), alpha=0.15)


def publish(search, options, published_dir):
    """Copies the finished trials' records (not their weights), the plan and
    the trial markers into `published_dir/<search>` and writes the report
    there; returns that folder."""
    source = study_dir(search, options)
    target = os.path.join(published_dir, search.name)
    if os.path.realpath(source) == os.path.realpath(target):
        raise ValueError(f"--results_dir is the published folder {published_dir}; publish "
                         "from the folder the trials trained in")
    plan = read_plan(source)
    if plan is None:
        raise ValueError(f"{source} holds no {PLAN_FILE}; nothing to publish")
    published = read_plan(target)
    if published is not None and published != plan:
        raise ValueError(f"{target} holds {search.name} as declared elsewhere (commit "
                         f"{published['declared']['commit']}); publish into another folder")
    os.makedirs(target, exist_ok=True)
    shutil.copyfile(os.path.join(source, PLAN_FILE), os.path.join(target, PLAN_FILE))
    by_key = {t.key: t for t in search.declared_trials()}
    for entry in plan["trials"]:
        trial = by_key[entry["key"]]
        run = trial_folder(search, options, trial)
        there = records.run_dir(target, trial.cell(), trial.seed)
        unscored = os.path.join(run, DIVERGED_UNSCORED)
        if records.is_finished(run):
            _publish_run(run, there, target, options.root)
        elif os.path.isfile(unscored):
            os.makedirs(there, exist_ok=True)
            shutil.copyfile(unscored, os.path.join(there, DIVERGED_UNSCORED))
        else:
            continue
        shutil.copyfile(os.path.join(run, TRIAL_MARKER), os.path.join(there, TRIAL_MARKER))
    write_report(search, options, target)
    return target
