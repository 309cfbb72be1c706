"""The runner: trains every (cell, seed) run of a table under
`results/<table>/runs/`, scores its final generator and writes the table.
A run with a `result.json` is finished and not rerun; an interrupted one is
resumed from its checkpoint."""

import contextlib
import dataclasses
import datetime
import json
import os
import shutil
import signal
import sys
import time
from typing import Optional, Sequence

from tfklgan import data as data_lib
from tfklgan import fingerprint
from tfklgan.cli import config_from_flagfile
from tfklgan.evaluation.protocol import values_of
from tfklgan.evaluation.scores import SCORES
from tfklgan.evaluation.training import evaluation_setup, score_gan
from tfklgan.reproduce import design, freeze, records
from tfklgan.reproduce.protocols import PROTOCOLS, cap_onednn_isa
from tfklgan.reproduce.records import RunRecord, StopWatch, run_dir
from tfklgan.reproduce.report import write_table
from tfklgan.reproduce.tables import TABLES
from tfklgan.run_directory import RunInUseError, load_run
from tfklgan.training import TrainingDivergedError, TrainResult, train


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
    # what generated images are scored as (None: as the study's runs were; uint8 for new ones)
    eval_values: Optional[str] = None

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


def cell_config(cell, seed, options, out_dir, table_name=None):
    """The TrainConfig of one run: the cell's flagfile under the protocol, or
    scaled and overridden. Its length (steps) is set by `run_length`."""
    config = config_from_flagfile(cell.flagfile, options.root)
    common = dict(seed=seed, logdir=out_dir, verbose=0, export_dir=None,
                  eval_values=options.eval_values or "uint8",
                  cache_dir=options.cache_dir or config.data.cache_dir,
                  data_dir=options.data_dir or config.data.data_dir,
                  celeba_dir=options.celeba_dir or config.data.celeba_dir)
    if options.protocol:
        protocol = PROTOCOLS[options.protocol][table_name]
        config = config.with_dataset(protocol.dataset)
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
        config = config.with_dataset(options.dataset)
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


def score_run(out_dir, config):
    """Scores of the run's final generator (newest checkpoint)."""
    gan, _, _ = load_run(out_dir)
    feature_network, reference, eval_config = evaluation_setup(config)
    return score_gan(gan, reference, feature_network, eval_config)


def run_cell(cell, seed, options, out_dir, table_name=None, score_divergence=False):
    """Trains (or resumes) and scores one run; returns its RunRecord. A
    finished run is returned as recorded, or re-scored with `options.rescore`.
    A run whose loss turns NaN or inf raises TrainingDivergedError, or with
    `score_divergence` (a search's trial) is scored at its last good
    checkpoint and recorded as diverged."""
    config = cell_config(cell, seed, options, out_dir, table_name)
    config.validate()
    if records.is_finished(out_dir):
        result = records.load(out_dir)
        if not options.rescore:
            return result
        if not os.path.isfile(os.path.join(out_dir, "checkpoints", "checkpoint")):
            print(f"warning: {out_dir} keeps no checkpoint (a published run keeps only its "
                  "records); its scores stay as recorded", file=sys.stderr)
            return result
        scores = score_run(out_dir, config)
        result = result.replace(scores={k: scores[k] for k in SCORES},
                                protocol=scores["protocol"])
        records.save(result, out_dir)
        return result
    steps, points = run_length(config, options, table_name)
    eval_every = max(1, steps // points)
    config = config.replace(
        steps=steps, eval_every=eval_every,
        checkpoint_every=eval_every, sample_every=eval_every,
        log_every=max(1, min(config.run.log_every, eval_every)),
        resume=os.path.isfile(os.path.join(out_dir, "config.json")))
    commit, dirty = records.source_commit()
    diverged = None
    with StopWatch() as watch:
        try:
            trained = train(config)
        except TrainingDivergedError as error:
            if not (score_divergence and error.checkpoint):
                raise
            diverged = str(error)
            with open(os.path.join(out_dir, "run.json")) as handle:
                resumes = json.load(handle).get("resumes", [])
            trained = TrainResult(int(error.checkpoint.rsplit("-", 1)[1]), out_dir,
                                  error.checkpoint, None, None, {},
                                  start_step=resumes[-1]["step"] if resumes else 0)
    if trained.preempted:  # not finished: no result.json, so a rerun resumes it
        raise RunPreempted(out_dir, trained.step, trained.preempted)
    result = _record(cell, seed, config, out_dir, trained, watch,
                     steps=trained.step if diverged else steps, diverged=diverged)
    result = result.replace(commit=commit, dirty=dirty)
    records.save(result, out_dir)
    return result


def _record(cell, seed, config, out_dir, trained, watch, steps, diverged):
    """The RunRecord of a run just trained: its final generator's scores,
    its settings and the facts of how it was made."""
    scores = score_run(out_dir, config)
    with open(os.path.join(out_dir, "run.json")) as handle:
        train_images = json.load(handle)["train_examples"]
    return RunRecord(
        method=cell.method, column=cell.column, seed=seed, steps=steps,
        scores={k: scores[k] for k in SCORES},
        settings={"dataset": config.data.name, "train_images": train_images,
                  "image_size": config.data.image_size, "width": config.network.width,
                  "batch_size": config.run.batch_size, "n_critic": config.objective.n_critic,
                  "init": config.network.init, "precision": config.run.precision},
        # a resumed run's seconds cover only the steps after timed_from_step
        train_seconds=round(watch.running_seconds, 1),
        stopped_seconds=round(watch.stopped_seconds, 1), timed_from_step=trained.start_step,
        protocol=scores["protocol"], sample_grid=trained.sample_grid, logdir=out_dir,
        machine=fingerprint.current(), diverged=diverged)


def planned_runs(table_name, options, seeds=None):
    """[(cell, seed)] that `options` chooses of the table, checked, a seed's
    cells together (a block): `seeds`, else --seeds, else the plan's seeds."""
    if table_name not in TABLES:
        raise ValueError(f"unknown table {table_name!r}; choose one of {sorted(TABLES)}")
    options.validate(table_name)
    table = TABLES[table_name]
    methods = options.methods or list(dict.fromkeys(c.method for c in table.cells))
    unknown = set(methods) - {c.method for c in table.cells}
    if unknown:
        raise ValueError(f"methods {sorted(unknown)} are not in {table_name}; choose from "
                         f"{sorted({c.method for c in table.cells})}")
    if seeds is None:
        seeds = options.seeds or (table.plan.seeds if table.plan else ())
    return [(cell, seed) for seed in seeds for cell in table.cells if cell.method in methods]


class BlockMachineError(ValueError):
    """A block's runs began on another kernel fingerprint than this machine's."""


def claim_block(table_dir, seed, commit, dirty):
    """Records the machine of the block of `seed` at its first run (blocks/
    seed<k>.json), or checks that this machine is the one it began on; raises
    BlockMachineError when not: a block's runs all train on one fingerprint."""
    path = os.path.join(table_dir, "blocks", f"seed{seed}.json")
    current = fingerprint.current()
    if os.path.isfile(path):
        with open(path) as handle:
            began = json.load(handle)
        same, differences = fingerprint.compare(current, began["fingerprint"])
        if not same:
            raise BlockMachineError(
                f"the block of seed {seed} began on {fingerprint.text(began['fingerprint'])}; "
                f"this machine differs ({'; '.join(differences)}), so its runs cannot join "
                "it: finish it on that machine, or let the plan's next spare seed stand in")
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    records.write_json(path, {"seed": seed, "fingerprint": current, "commit": commit,
                              "dirty": dirty, "began": datetime.date.today().isoformat()})


def study_values(table, table_dir):
    """What a study scores generated images as: as its finished runs were
    (float32 for runs scored before the protocol recorded it), or uint8, the
    rule, for a study with none. A study whose runs disagree is refused."""
    found = {values_of(r.protocol) for r in finished_runs(table, table_dir)}
    if len(found) > 1:
        raise ValueError(f"the runs in {table_dir} were scored as {' and '.join(sorted(found))}; "
                         "rescore them with one (--rescore --eval_values=...) before adding runs")
    return found.pop() if found else "uint8"


def finished_runs(table, table_dir):
    """RunRecords of every finished run of the table's cells in `table_dir`
    (any seed), a seed's cells together in the table's order."""
    folder = os.path.join(table_dir, "runs")
    names = os.listdir(folder) if os.path.isdir(folder) else []
    found = []
    for cell in table.cells:
        prefix = records.run_prefix(cell.method, cell.column)
        for name in names:
            tail = name[len(prefix):]
            if name.startswith(prefix) and tail.isdigit() and records.is_finished(
                    os.path.join(folder, name)):
                found.append((int(tail), table.cells.index(cell), os.path.join(folder, name)))
    return [records.load(path) for _, _, path in sorted(found)]


def reproduce(table_name, options):
    """Runs the table (or the chosen subset) block by block under its plan and
    writes its outputs; returns (output directory, the chosen runs' records).

    The plan is stored in the results before the first run and obeyed after
    (design.check). A block that began on another machine is skipped, and
    without --seeds the plan's next spare seed stands in for it."""
    planned_runs(table_name, options)  # checks the table, methods and protocol
    table = TABLES[table_name]
    out_dir = os.path.join(options.results_dir, table_name)
    plan, declaration = design.check(table_name, table, out_dir, options.protocol)
    if options.protocol:
        cap_onednn_isa(PROTOCOLS[options.protocol][table_name].onednn_max_isa)
    if options.eval_values is None:
        options = dataclasses.replace(options, eval_values=study_values(table, out_dir))
    command = _Blocks(table_name, options, out_dir, plan, declaration)
    with _removed_if_nothing_trained(options.results_dir, out_dir):
        command.run(list(options.seeds or plan.seeds),
                    [] if options.seeds else list(plan.spare_seeds))
    everything = finished_runs(table, out_dir)
    if everything:
        write_table(table, everything, out_dir, options.protocol, plan, command.declaration)
    if command.in_use:
        print(f"{command.in_use} of the {command.progress.total} runs were being trained by "
              f"another process, so {out_dir}/table.md leaves them out; once they finish, "
              "the same command with --report_only writes the whole table", file=sys.stderr)
    return out_dir, command.results


@contextlib.contextmanager
def _removed_if_nothing_trained(results_dir, out_dir):
    """Removes what a command made before its first run (the results folder,
    the plan) when that run fails before writing anything (bad settings,
    data not found offline)."""
    made = next((path for path in (results_dir, out_dir) if not os.path.exists(path)), None)
    try:
        yield
    except ValueError:
        if made and not os.path.isdir(os.path.join(out_dir, "runs")):
            shutil.rmtree(made, ignore_errors=True)
        raise


class _Blocks:
    """One command's pass over a table's blocks: each block's runs in turn,
    the plan stored and each block's machine claimed before its first run."""

    def __init__(self, table_name, options, out_dir, plan, declaration):
        self.table_name, self.options, self.out_dir = table_name, options, out_dir
        self.plan, self.declaration = plan, declaration
        self.commit, self.dirty = records.source_commit()
        self.results, self.refused, self.in_use = [], set(), 0
        self.progress = Progress(options.progress)

    def _choose(self, seed):
        runs = planned_runs(self.table_name, self.options, [seed])
        self.progress.add(len(runs), sum(not records.is_finished(run_dir(self.out_dir, *run))
                                         for run in runs))
        return seed, runs

    def run(self, seeds, spares):
        blocks = [self._choose(seed) for seed in seeds]
        while blocks:
            seed, runs = blocks.pop(0)
            for cell, _ in runs:
                self.progress.position += 1
                try:
                    self._run(cell, seed)
                except BlockMachineError as error:
                    print(f"skipped: {error}", file=sys.stderr, flush=True)
                    self.refused.add(seed)
                    if spares:
                        blocks.append(self._choose(spares.pop(0)))
                except RunInUseError as error:
                    # another command of this table trains it: leave it to that one
                    print(f"skipped: {error}", file=sys.stderr, flush=True)
                    self.in_use += 1

    def _run(self, cell, seed):
        folder = run_dir(self.out_dir, cell, seed)
        finished = records.is_finished(folder)
        if not finished and (self.options.report_only or seed in self.refused):
            return
        if not finished:
            if self.declaration is None:
                self.declaration = design.write(self.out_dir, self.plan, self.options.protocol,
                                                self.commit, self.dirty,
                                                resolved=self._resolved_cells())
            self._check_frozen(cell, seed, folder)
            claim_block(self.out_dir, seed, self.commit, self.dirty)
            self.progress.starting(cell, seed)
        self.results.append(run_cell(cell, seed, self.options, folder, self.table_name))
        self.progress.trained += not finished

    def _resolved(self, cell, seed, folder):
        config = cell_config(cell, seed, self.options, folder, self.table_name)
        return freeze.resolved_settings(config.validate())

    def _resolved_cells(self):
        """{cell label: resolved settings} of every cell of the table (the
        plan's first seed stands for all: the seed is not part of them)."""
        table = TABLES[self.table_name]
        return {cell_label(cell): self._resolved(cell, self.plan.seeds[0], self.out_dir)
                for cell in table.cells}

    def _check_frozen(self, cell, seed, folder):
        """Refuses a run whose resolved settings differ from the declared ones
        (plans declared before settings were frozen have none to check)."""
        declared = (self.declaration or {}).get("resolved")
        if declared is None:
            return
        freeze.check(cell_label(cell), declared.get(cell_label(cell), {}),
                     self._resolved(cell, seed, folder),
                     os.path.join(self.out_dir, design.PLAN_FILE))


def cell_label(cell):
    """"klgan, with MBD": a cell's name in a plan's frozen settings."""
    return f"{cell.method}, {cell.column}"


class Progress:
    """The progress lines of one command: "run 3 of 10: klgan, with MBD, seed 1
    (12m elapsed, about 28m left)" for run 3 of the 10 chosen, the time left
    being the mean time of the runs this command trained times the runs still
    to train; runs finished before it started take no time and count in
    neither."""

    def __init__(self, show, clock=None):
        self.show, self.clock = show, clock or time.monotonic
        self.total = self.to_train = self.position = self.trained = 0
        self.started = self.clock()

    def add(self, runs, unfinished):
        """Counts `runs` more chosen runs, `unfinished` of them to train."""
        self.total += runs
        self.to_train += unfinished

    def starting(self, cell, seed):
        if self.show:
            print(self.line(cell, seed), file=sys.stderr, flush=True)

    def line(self, cell, seed):
        elapsed = self.clock() - self.started
        left = (f", about {elapsed / self.trained * (self.to_train - self.trained) / 60:.0f}m "
                "left" if self.trained else "")
        return (f"run {self.position} of {self.total}: {cell.method}, {cell.column}, seed "
                f"{seed} ({elapsed / 60:.0f}m elapsed{left})")
