"""The runner: trains every (cell, seed) run of a table under
`results/<table>/runs/`, scores its final generator and writes the table.
A run with a `result.json` is finished and not rerun; an interrupted one is
resumed from its checkpoint."""

import dataclasses
import json
import os
import signal
import sys
import time
from typing import Optional, Sequence

from tfklgan import data as data_lib
from tfklgan import fingerprint, metrics
from tfklgan.cli import config_from_flagfile
from tfklgan.evaluation import RealStatistics, evaluate_generator, feature_network_of, gan_generator
from tfklgan.reproduce.protocols import PROTOCOLS, cap_onednn_isa
from tfklgan.reproduce.report import write_table
from tfklgan.reproduce.tables import TABLES
from tfklgan.training import RunInUseError, load_run, train


class RunPreempted(Exception):
    """A stop signal ended a run before its last step; its checkpoint is saved
    and the same command resumes it."""

    def __init__(self, logdir, step, signum):
        self.logdir, self.step, self.signum = logdir, step, signum
        super().__init__(f"stopped by {signal.Signals(signum).name} after step {step} of "
                         f"{logdir} (checkpoint saved); run the same command again to "
                         "continue")


@dataclasses.dataclass
class ReproduceOptions:
    """protocol: a name in PROTOCOLS (e.g. "cpu"): fixed data, width, batch,
    length and evaluation for the table. Without one, the cells run their own
    flagfiles; `scale` then shrinks steps and evaluation samples (1.0 = paper;
    scaled runs use float32, as bfloat16 is slow on CPUs) and the other fields,
    when set, override every cell's flags. rescore: re-evaluate finished runs'
    final generators instead of skipping them. report_only: write the table of
    the finished runs, training nothing (a table in progress). progress: a
    line per run on stderr."""
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
    progress: bool = False  # print a line per run to stderr (run i of N, time left)

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
            precision="float32", adam_epsilon=protocol.adam_epsilon,
            eval_samples=protocol.eval_samples,
            eval_split=protocol.real_split, eval_real_samples=protocol.real_samples,
            eval_feature_network=protocol.feature_network,
            inception_path=options.inception_path, classifier_path=options.classifier_path,
            **common).replace(**dict(cell.overrides))
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
    config = config.replace(**dict(cell.overrides))
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


def write_json(path, value):
    """Writes `value` to `path` whole or not at all (a temporary file, then a rename)."""
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
        write_json(result_path, result)
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
    if trained.preempted:  # not finished: no result.json, so a rerun resumes it
        raise RunPreempted(out_dir, trained.step, trained.preempted)
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
              "machine": fingerprint.current()}
    write_json(result_path, result)
    return result



def run_dir(out_dir, cell, seed):
    """results/<table>/runs/<method>-<column>-seed<k>."""
    return os.path.join(out_dir, "runs", f"{cell.method}-{cell.column.replace(' ', '_')}-seed{seed}")


def planned_runs(table_name, options):
    """[(cell, seed)] that `options` chooses of the table, checked."""
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
    seeds = list(options.seeds or (protocol.seeds if protocol else table.seeds))
    return [(cell, seed) for cell in table.cells if cell.method in methods for seed in seeds]


def reproduce(table_name, options):
    """Runs the table (or the chosen subset) and writes its outputs; returns
    (output directory, per-run results)."""
    runs = planned_runs(table_name, options)
    if options.protocol:
        cap_onednn_isa(PROTOCOLS[options.protocol][table_name].onednn_max_isa)
    out_dir = os.path.join(options.results_dir, table_name)
    finished = [os.path.isfile(os.path.join(run_dir(out_dir, cell, seed), "result.json"))
                for cell, seed in runs]
    results, trained, in_use = [], 0, []
    started = time.time()
    for index, (cell, seed) in enumerate(runs):
        if options.report_only and not finished[index]:
            continue
        if not finished[index] and options.progress:
            print(progress_line(index, len(runs), cell, seed, time.time() - started, trained,
                                finished.count(False) - trained - len(in_use)),
                  file=sys.stderr, flush=True)
        try:
            results.append(run_cell(cell, seed, options, run_dir(out_dir, cell, seed),
                                    table_name))
        except RunInUseError as error:
            # another command of this table trains it: leave it to that one
            print(f"skipped: {error}", file=sys.stderr, flush=True)
            in_use.append(index)
            continue
        trained += not finished[index]
    if results:
        write_table(TABLES[table_name], results, out_dir, options.protocol)
    if in_use:
        print(f"{len(in_use)} of the {len(runs)} runs were being trained by another "
              f"process, so {out_dir}/table.md leaves them out; once they finish, the "
              "same command with --report_only writes the whole table", file=sys.stderr)
    return out_dir, results


def progress_line(index, total, cell, seed, elapsed, trained, to_train):
    """"run 3 of 10: klgan, with MBD, seed 1 (12m elapsed, about 28m left)":
    run `index` (from 0) of `total`, after `trained` runs trained in `elapsed`
    seconds by this command, with `to_train` runs (this one too) still to
    train. The time left is the mean of the runs trained so far times the runs
    left; runs finished before the command started take no time and count in
    neither."""
    left = (f", about {elapsed / trained * to_train / 60:.0f}m left" if trained else "")
    return (f"run {index + 1} of {total}: {cell.method}, {cell.column}, seed {seed} "
            f"({elapsed / 60:.0f}m elapsed{left})")
