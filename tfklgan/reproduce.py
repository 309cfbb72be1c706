"""One command per paper table: run every cell, score it, write the table.

`TABLES` holds each table's cells (a flagfile per method and column), seeds
and the paper's numbers. `reproduce(table, options)` trains every
(cell, seed) run under `results/<table>/runs/`, evaluates the final
generator, and writes `table.md` (paper beside ours, the feature network
named), `table.csv` (every run), an FID-versus-step plot per method and a
sample grid per cell. A run with a `result.json` is finished and not rerun;
an interrupted one is resumed from its checkpoint.
"""

import csv
import dataclasses
import json
import math
import os
import shutil
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from absl import flags

from tfklgan import data as data_lib
from tfklgan.cli import config_from_flags, define_train_flags
from tfklgan.evaluation import RealStatistics, evaluate_generator, gan_generator
from tfklgan.feature_networks import load_feature_network
from tfklgan.training import eval_config_of, load_run, train


@dataclasses.dataclass(frozen=True)
class Cell:
    method: str          # row
    column: str          # e.g. "without MBD"
    flagfile: str
    paper: Dict[str, Tuple[float, float]]  # metric -> (mean, std or nan)


@dataclasses.dataclass(frozen=True)
class Table:
    title: str
    columns: Tuple[str, ...]
    metrics: Tuple[str, ...]
    seeds: Tuple[int, ...]
    cells: Tuple[Cell, ...]
    note: str


def _table1():
    paper = {  # mean FID +- std over 5 runs, REFERENCE §1
        "klgan": ((237.4, 102.8), (20.2, 2.0)), "lsgan": ((340.6, 37.8), (187.6, 47.5)),
        "hinge": ((341.7, 45.6), (151.9, 20.0)), "wgan_gp": ((351.3, 21.6), (273.6, 71.8)),
        "r1gan": ((51.5, 5.4), (92.1, 41.9))}
    cells = []
    for method, (without, with_) in paper.items():
        cells.append(Cell(method, "without MBD", f"configs/table1/{method}.flags",
                          {"fid": without}))
        cells.append(Cell(method, "with MBD", f"configs/table1/{method}_mbd.flags",
                          {"fid": with_}))
    return Table("KL-GAN paper, Table I: FID on CelebA 32x32 after 300 epochs",
                 ("without MBD", "with MBD"), ("fid",), (1, 2, 3, 4, 5), tuple(cells),
                 "Paper FIDs use torchvision's Inception v3: compare rankings and "
                 "ratios, not values.")


def _mnist():
    nan = float("nan")
    paper = {"dcgan": (1.484, 203.75), "wgan": (1.593, 179.76), "wgan_gp": (1.867, 171.68)}
    cells = tuple(Cell(m, "MNIST", f"configs/mnist/{m}.flags",
                       {"inception_score": (v[0], nan), "fid": (v[1], nan)})
                  for m, v in paper.items())
    return Table("MNIST study: Inception score and FID", ("MNIST",),
                 ("inception_score", "fid"), (1,), cells,
                 "The study does not say which feature network it used.")


def _celeba64():
    nan = float("nan")
    paper = {"dcgan": (1.93, 27.72), "sn1_dcgan": (1.84, 24.61),
             "sn2_dcgan": (1.80, 24.54), "sn3_dcgan": (1.80, 23.39)}
    cells = tuple(Cell(m, "CelebA 64", f"configs/celeba64/{m}.flags",
                       {"inception_score": (v[0], nan), "fid": (v[1], nan)})
                  for m, v in paper.items())
    return Table("Reduced-CelebA study: DCGAN and SN(k)-DCGAN, 64x64, 3 runs",
                 ("CelebA 64",), ("inception_score", "fid"), (1, 2, 3), cells,
                 "Mean of 3 runs in the study.")


TABLES = {"klgan_table1": _table1(), "mnist_table": _mnist(),
          "celeba64_sn_table": _celeba64()}


@dataclasses.dataclass
class ReproduceOptions:
    """scale shrinks steps, evaluation samples and training images (1.0 = paper);
    scaled runs use float32 (bfloat16 is slow on CPUs). Other fields, when
    set, override every cell's flags."""
    scale: float = 1.0
    seeds: Optional[Sequence[int]] = None
    methods: Optional[Sequence[str]] = None
    dataset: Optional[str] = None
    image_size: Optional[int] = None
    width: Optional[int] = None
    batch_size: Optional[int] = None
    eval_points: int = 4
    min_eval_samples: int = 100
    feature_network: str = "inception"
    inception_path: Optional[str] = None
    classifier_path: Optional[str] = None
    cache_dir: Optional[str] = None
    results_dir: str = "results"
    root: str = "."


def cell_config(cell, seed, options, out_dir):
    """The TrainConfig of one run: the cell's flagfile, scaled and overridden."""
    values = flags.FlagValues()
    define_train_flags(values)
    here = os.getcwd()
    os.chdir(options.root)  # flagfiles include each other relative to the root
    try:
        values(["reproduce", f"--flagfile={cell.flagfile}"])
    finally:
        os.chdir(here)
    config = config_from_flags(values)
    overrides = {k: getattr(options, k) for k in ("dataset", "image_size", "width",
                                                  "batch_size", "cache_dir")
                 if getattr(options, k)}
    if options.dataset:  # the cell's data settings belong to its own dataset
        overrides.update(channels=0, attributes=(), max_examples=None, resize="authors")
    config = dataclasses.replace(config, **overrides)
    scale = options.scale
    updates = dict(seed=seed, logdir=out_dir, verbose=0, export_dir=None,
                   eval_feature_network=options.feature_network,
                   inception_path=options.inception_path,
                   classifier_path=options.classifier_path,
                   eval_samples=max(options.min_eval_samples, int(config.eval_samples * scale)))
    if scale != 1.0:
        if config.max_examples:
            updates["max_examples"] = max(config.batch_size * config.n_critic,
                                          int(config.max_examples * scale))
        updates["precision"] = "float32"
    return dataclasses.replace(config, **updates)


def run_cell(cell, seed, options, out_dir):
    """Trains (or resumes) and scores one run; returns its result dict."""
    result_path = os.path.join(out_dir, "result.json")
    if os.path.isfile(result_path):
        with open(result_path) as handle:
            return json.load(handle)
    config = cell_config(cell, seed, options, out_dir)
    config.validate()
    # Steps: the paper's length times the scale, at least one per evaluation.
    train_data = data_lib.load_split(config.data_config())
    per_epoch = data_lib.batches_per_epoch(train_data, config.batch_size) // config.n_critic
    paper_steps = config.steps or config.epochs * per_epoch
    steps = max(options.eval_points, int(round(paper_steps * options.scale)))
    eval_every = max(1, steps // options.eval_points)
    config = dataclasses.replace(
        config, steps=steps, eval_every=eval_every,
        checkpoint_every=eval_every, sample_every=eval_every,
        log_every=max(1, min(config.log_every, eval_every)),
        resume=os.path.isfile(os.path.join(out_dir, "config.json")))
    trained = train(config)
    gan, _, _ = load_run(out_dir)
    eval_config = eval_config_of(config)
    feature_network = load_feature_network(eval_config.feature_network,
                                           eval_config.inception_path,
                                           eval_config.classifier_path)
    real = RealStatistics(config.data_config(), eval_config, feature_network)
    generate, weights = gan_generator(gan, eval_config)
    scores = evaluate_generator(generate, weights, real, feature_network, eval_config)
    result = {"method": cell.method, "column": cell.column, "seed": seed, "steps": steps,
              "fid": scores["fid"], "inception_score": scores["inception_score"],
              "kid": scores["kid"], "protocol": scores["protocol"],
              "sample_grid": trained.sample_grid, "logdir": out_dir}
    with open(result_path + ".tmp", "w") as handle:
        json.dump(result, handle, indent=2)
    os.replace(result_path + ".tmp", result_path)
    return result


def _mean_std(values):
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _fmt(mean, std):
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:.2f}" if not math.isfinite(std) else f"{mean:.2f} ± {std:.2f}"


def describe(options):
    """How our runs differ from the paper protocol, for the table header."""
    changes = [f"scale {options.scale:g} (steps, evaluation samples, dataset)"
               if options.scale != 1.0 else "the paper's length"]
    for name in ("dataset", "image_size", "width", "batch_size"):
        if getattr(options, name):
            changes.append(f"{name} = {getattr(options, name)}")
    return ", ".join(changes)


def write_table(table, results, out_dir, feature_identity, settings):
    """table.md, table.csv, plots and grids from the run results."""
    methods = list(dict.fromkeys(r["method"] for r in results))
    steps = sorted({r["steps"] for r in results})
    lines = [f"# {table.title}", "",
             f"Ours: feature network `{feature_identity}`; {settings}; "
             f"{'/'.join(map(str, steps))} generator steps. {table.note}", ""]
    header = ["method"]
    for column in table.columns:
        for metric in table.metrics:
            header += [f"paper {metric} ({column})", f"ours {metric} ({column})"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    summary = []
    for method in methods:
        row = [method]
        for column in table.columns:
            cell = next((c for c in table.cells if c.method == method and c.column == column),
                        None)
            runs = [r for r in results if r["method"] == method and r["column"] == column]
            for metric in table.metrics:
                paper = cell.paper.get(metric, (float("nan"),) * 2) if cell else (float("nan"),) * 2
                ours = _mean_std([r[metric] for r in runs])
                row += [_fmt(*paper), _fmt(*ours) + (f" (n={len(runs)})" if runs else "")]
                summary.append((method, column, metric, paper, ours, len(runs)))
        lines.append("| " + " | ".join(row) + " |")
    with open(os.path.join(out_dir, "table.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    with open(os.path.join(out_dir, "table.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method", "column", "seed", "steps", "fid", "inception_score", "kid",
                         "feature_network"])
        for r in results:
            writer.writerow([r["method"], r["column"], r["seed"], r["steps"], r["fid"],
                             r["inception_score"], r["kid"],
                             r["protocol"]["feature_network_identity"]])
    _plots(results, out_dir)
    _grids(results, out_dir)
    return summary


def _plots(results, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(os.path.join(out_dir, "plots"), exist_ok=True)
    for method in dict.fromkeys(r["method"] for r in results):
        fig, axis = plt.subplots(figsize=(6, 4))
        for r in (r for r in results if r["method"] == method):
            path = os.path.join(r["logdir"], "eval.csv")
            if not os.path.isfile(path):
                continue
            with open(path, newline="") as handle:
                rows = list(csv.DictReader(handle))
            axis.plot([int(x["step"]) for x in rows], [float(x["fid"]) for x in rows],
                      marker="o", label=f"{r['column']}, seed {r['seed']}")
        axis.set_xlabel("generator step")
        axis.set_ylabel("FID")
        axis.set_title(method)
        axis.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "plots", f"fid_{method}.png"))
        plt.close(fig)


def _grids(results, out_dir):
    os.makedirs(os.path.join(out_dir, "grids"), exist_ok=True)
    for r in results:
        if r["sample_grid"] and os.path.isfile(r["sample_grid"]):
            name = f"{r['method']}_{r['column'].replace(' ', '_')}_seed{r['seed']}.png"
            shutil.copyfile(r["sample_grid"], os.path.join(out_dir, "grids", name))


def reproduce(table_name, options):
    """Runs the table (or the chosen subset) and writes its outputs; returns
    (output directory, per-run results)."""
    if table_name not in TABLES:
        raise ValueError(f"unknown table {table_name!r}; choose one of {sorted(TABLES)}")
    table = TABLES[table_name]
    methods = options.methods or list(dict.fromkeys(c.method for c in table.cells))
    unknown = set(methods) - {c.method for c in table.cells}
    if unknown:
        raise ValueError(f"methods {sorted(unknown)} are not in {table_name}; choose from "
                         f"{sorted({c.method for c in table.cells})}")
    seeds = list(options.seeds or table.seeds)
    out_dir = os.path.join(options.results_dir, table_name)
    os.makedirs(out_dir, exist_ok=True)
    results = []
    for cell in (c for c in table.cells if c.method in methods):
        for seed in seeds:
            run_dir = os.path.join(out_dir, "runs",
                                   f"{cell.method}-{cell.column.replace(' ', '_')}-seed{seed}")
            results.append(run_cell(cell, seed, options, run_dir))
    identity = results[0]["protocol"]["feature_network_identity"] if results else "none"
    write_table(table, results, out_dir, identity, describe(options))
    return out_dir, results
