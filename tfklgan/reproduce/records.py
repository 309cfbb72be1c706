"""A table's run records: where a run lives, what its result.json holds, and
the facts every new run records about how it was made (its commit, its
kernel fingerprint, its time apart from time its process stood stopped).

This module alone names run folders and reads and writes result.json; the
runner, the report, publish, verify and parity go through it.
"""

import dataclasses
import json
import os
import subprocess
import threading
import time
from typing import Dict, Optional

from tfklgan import fingerprint
from tfklgan.evaluation.scores import SCORES


def run_name(method, column, seed):
    """"klgan-with_MBD-seed3": a run's folder name (its column's spaces as
    underscores)."""
    return f"{method}-{column.replace(' ', '_')}-seed{seed}"


def run_prefix(method, column):
    """The part of `run_name` before the seed number."""
    return run_name(method, column, "")


def run_dir(table_dir, cell, seed):
    """<table_dir>/runs/<run_name>; `cell` is anything with a method and a
    column (a tables.Cell, a RunRecord)."""
    return os.path.join(table_dir, "runs", run_name(cell.method, cell.column, seed))


def write_json(path, value):
    """Writes `value` to `path` whole or not at all (a temporary file, then a rename)."""
    with open(path + ".tmp", "w") as handle:
        json.dump(value, handle, indent=2)
    os.replace(path + ".tmp", path)


@dataclasses.dataclass
class RunRecord:
    """One finished run of a table (result.json).

    scores: SCORES of its final generator (stored flat beside the
    other fields, as every published record has them). commit/dirty: the
    commit of the code that trained it and whether tracked files differed
    from it (None where not recorded: runs made before commits were, or code
    outside a git checkout). train_seconds: wall time of its training minus
    `stopped_seconds`, the time its process stood stopped (SIGSTOP, a
    suspended machine); a resumed run's times cover only the steps from
    `timed_from_step` on. machine: the kernel fingerprint it trained on.
    diverged: for a run whose loss turned NaN or inf, what stopped it; its
    `steps` and scores are then those of its last good checkpoint (recorded
    only where set, so older records keep their bytes).
    """
    method: str
    column: str
    seed: int
    steps: int
    scores: Dict[str, float]
    protocol: dict
    logdir: str
    settings: dict = dataclasses.field(default_factory=dict)
    machine: dict = dataclasses.field(default_factory=dict)
    train_seconds: Optional[float] = None
    timed_from_step: Optional[int] = None
    sample_grid: Optional[str] = None
    stopped_seconds: Optional[float] = None
    commit: Optional[str] = None
    dirty: Optional[bool] = None
    diverged: Optional[str] = None

    # what every record has had; the rest are None or empty in older ones
    FIELDS = ("method", "column", "seed", "steps", "protocol", "logdir")

    @property
    def cell_key(self):
        """(method, column): the cell the run belongs to."""
        return self.method, self.column

    def score(self, name):
        """The named score, nan where the run was not scored with it."""
        value = self.scores.get(name)
        return float(value) if isinstance(value, (int, float)) else float("nan")

    def fingerprint(self):
        """The kernel fingerprint, completed from the protocol for older records."""
        return fingerprint.complete(self.machine,
                                    self.protocol.get("versions", {}).get("tensorflow"))

    def to_json(self):
        value = {"method": self.method, "column": self.column, "seed": self.seed,
                 "steps": self.steps, **self.scores}
        for field in ("settings", "train_seconds", "stopped_seconds", "timed_from_step",
                      "protocol", "sample_grid", "logdir", "machine", "commit", "dirty"):
            value[field] = getattr(self, field)
        if self.diverged is not None:
            value["diverged"] = self.diverged
        return value

    @classmethod
    def from_json(cls, value, path="result.json"):
        missing = [field for field in cls.FIELDS if field not in value]
        if missing:
            raise ValueError(f"{path} is not a run record of this package (no "
                             f"{', '.join(missing)}); a finished run writes it last")
        scores = {k: value[k] for k in SCORES if k in value}
        known = {f.name for f in dataclasses.fields(cls)} - {"scores"}
        return cls(scores=scores, **{k: value[k] for k in known if k in value})

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def result_path(run_folder):
    return os.path.join(run_folder, "result.json")


def is_finished(run_folder):
    """A run is finished when its result.json exists (it is written last)."""
    return os.path.isfile(result_path(run_folder))


def load(run_folder):
    """The RunRecord of a finished run folder."""
    path = result_path(run_folder)
    with open(path) as handle:
        try:
            value = json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is damaged ({error}); remove it to score the run "
                             "again") from None
    return RunRecord.from_json(value, path)


def save(record, run_folder):
    write_json(result_path(run_folder), record.to_json())


def scores_differ(a, b):
    """The first score name whose value differs between two records, or None."""
    for name in SCORES:
        if a.scores.get(name) != b.scores.get(name):
            return name
    return None


def source_commit(path=None):
    """(commit, dirty) of the git checkout holding `path` (default: this
    package's code): the HEAD commit and whether a tracked file differs from
    it; (None, None) outside a checkout or without git."""
    path = path or os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True,
                                text=True, timeout=30)
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=path, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None, None
    if commit.returncode != 0 or status.returncode != 0:
        return None, None
    return commit.stdout.strip(), bool(status.stdout.strip())


class StopWatch:
    """Wall time of a block of code apart from the time its process stood
    stopped (SIGSTOP, a terminal's Ctrl-Z).

    A daemon thread wakes every `tick` seconds. A wake more than `stall`
    seconds after the previous one means the thread could not run: the
    process was stopped, or another thread held the interpreter lock (a long
    C call, TensorFlow tracing a function) on a busy machine. Linux tells the
    two apart: a stopped process's threads neither run nor wait to run, so
    the gap less one tick, less the longest time any thread ran or waited to
    run in it (/proc/self/task/*/schedstat), counts as stopped. Where that
    file is missing, the whole gap less one tick counts.

        with StopWatch() as watch:
            train(...)
        watch.running_seconds, watch.stopped_seconds
    """

    def __init__(self, tick=0.5, stall=5.0, clock=time.monotonic):
        self.tick, self.stall, self.clock = tick, stall, clock
        self.stopped_seconds = 0.0
        self.running_seconds = float("nan")
        self._done = threading.Event()

    def _watch(self):
        last, busy = self.clock(), _thread_busy_seconds()
        while not self._done.wait(self.tick):
            now, busy_now = self.clock(), _thread_busy_seconds()
            if now - last > self.stall:
                ran = max((t - busy.get(tid, 0.0) for tid, t in busy_now.items()), default=0.0)
                self.stopped_seconds += max(0.0, now - last - self.tick - ran)
            last, busy = now, busy_now

    def __enter__(self):
        self._started = self.clock()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        total = self.clock() - self._started
        self.running_seconds = max(0.0, total - self.stopped_seconds)
        return False


def _thread_busy_seconds():
    """{thread id: seconds it has run or waited on a run queue} for this
    process's threads ({} where Linux's schedstat is not available)."""
    busy = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return busy
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as handle:
                ran, waited = handle.read().split()[:2]
        except (OSError, ValueError):
            continue  # the thread ended, or no schedstat
        busy[tid] = (int(ran) + int(waited)) / 1e9
    return busy
