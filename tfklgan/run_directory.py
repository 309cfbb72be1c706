"""The run directory: its settings files, its lock, its run record, and
loading a finished or running run for sampling, export and evaluation.

A run directory holds:
  config.json, run.json      the settings and what the data implied (classes),
                             the fingerprint it started on and every resume
  checkpoints/               the last `keep_checkpoints` checkpoints, and a
                             copy of config.json
  train/                     TensorBoard event files
  metrics.csv                the logged step metrics
  samples/step_<7-digit step>.png   fixed-noise sample grids
  eval.csv, best/            with --eval_every: the scores and the best-FID checkpoint
"""

import contextlib
import json
import os
import sys

import keras

from tfklgan import fingerprint
from tfklgan.checkpoints import CheckpointStore
from tfklgan.config import TrainConfig


class RunDirectoryError(ValueError):
    """The run directory conflicts with the request (would lose or mix runs)."""


class RunInUseError(RunDirectoryError):
    """Another process is training into the run directory (it holds its lock)."""


def settings_paths(logdir):
    """config.json of a run, and its copy beside the checkpoints (which keeps a
    run resumable when config.json is lost)."""
    return (os.path.join(logdir, "config.json"),
            os.path.join(logdir, "checkpoints", "config.json"))


def read_settings(logdir):
    """The run's TrainConfig from config.json, or from the copy beside the
    checkpoints when config.json is lost or damaged (said on stderr); None
    when neither exists. Both damaged: a RunDirectoryError naming both."""
    damaged = []
    for path in settings_paths(logdir):
        if not os.path.isfile(path):
            continue
        try:
            with open(path) as handle:
                config = TrainConfig.from_json(handle.read())
        except (ValueError, TypeError, OSError) as err:  # JSON, or settings it rejects
            damaged.append(f"{path} ({err})")
            continue
        for problem in damaged:
            print(f"warning: the run's settings {problem} cannot be read; using the copy "
                  f"{path}", file=sys.stderr)
        return config
    if damaged:
        raise RunDirectoryError(f"the settings of the run in {logdir!r} cannot be read: "
                                + "; ".join(damaged) + ". Restore config.json from a "
                                "backup, or start a new run in another --logdir")
    return None


def check_logdir(config):
    """Refuses a run directory that would mix or overwrite runs; returns the
    changeable settings a resume changes ({name: [old, new]})."""
    logdir = config.run.logdir
    has_checkpoints = os.path.isfile(os.path.join(logdir, "checkpoints", "checkpoint"))
    if config.run.resume:
        stored = read_settings(logdir)
        if stored is None:
            if has_checkpoints:  # a run from before the settings copy, config.json lost
                print(f"warning: {logdir!r} has checkpoints but no stored settings; "
                      "resuming with the settings given, which cannot be checked",
                      file=sys.stderr)
                return {}
            raise RunDirectoryError(f"--resume: no run in {logdir!r} (no config.json "
                                    "and no checkpoints); drop --resume to start one")
        diffs = config.differences(stored)
        if diffs:
            listed = ", ".join(f"{n}: {a!r} -> {b!r}" for n, a, b in diffs)
            raise RunDirectoryError(f"--resume: these settings differ from the run in "
                                    f"{logdir!r}: {listed}; use the run's settings "
                                    "or a new --logdir (a resume may change only "
                                    "learning rates, length, intervals, evaluation and "
                                    "outputs)")
        return config.changes(stored)
    if has_checkpoints or os.path.isfile(settings_paths(logdir)[0]):
        raise RunDirectoryError(f"{logdir!r} already holds a run; "
                                "pass --resume to continue it or choose a new --logdir "
                                "(nothing was overwritten)")
    return {}


def write_run_info(config, start, changes, info):
    """run.json: what the data implied, the kernel fingerprint the run started
    on (tfklgan.fingerprint), and every resume (its step, the settings it
    changed, its fingerprint)."""
    path = os.path.join(config.run.logdir, "run.json")
    resumes, first = [], {"fingerprint": fingerprint.current()}
    if config.run.resume and os.path.isfile(path):
        with open(path) as handle:
            previous = json.load(handle)
        resumes = previous.get("resumes", [])
        first = {"fingerprint": previous.get("fingerprint", "not recorded"),
                 **{k: previous[k] for k in ("init_from",) if k in previous}}
        resumes.append({"step": start, "changed": changes,
                        "fingerprint": fingerprint.current()})
    with open(path + ".tmp", "w") as handle:
        json.dump({**info, **first, "resumes": resumes}, handle, indent=2)
    os.replace(path + ".tmp", path)


LOCK_FILE = ".tfklgan.lock"


@contextlib.contextmanager
def run_lock(logdir):
    """Holds an exclusive lock on the run directory while a training writes to
    it, so two trainings started into one logdir at the same moment cannot
    both write: the second is refused (RunInUseError). The lock is the
    operating system's (flock), released when the process ends however it
    ends; where there is no flock (Windows), no lock is taken."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    os.makedirs(logdir, exist_ok=True)
    with open(os.path.join(logdir, LOCK_FILE), "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RunInUseError(f"another training ({holder}) is writing to {logdir!r}; "
                                    "wait for it to end or choose another --logdir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_run(logdir, checkpoint=None):
    """(gan, config, run info) of a run directory, restored from its newest
    (or the given) checkpoint. For sampling, export and evaluation."""
    config = read_settings(logdir)
    if config is None:
        raise RunDirectoryError(f"{logdir!r} is not a tfklgan run directory (no config.json)")
    with open(os.path.join(logdir, "run.json")) as handle:
        info = json.load(handle)
    if config.run.precision == "float64":  # the networks compute in float64 from here on
        keras.config.set_floatx("float64")
    from tfklgan.training import build_gan  # training imports this module
    gan = build_gan(config.replace(jit_compile=False), info["num_classes"])
    store = CheckpointStore(gan, os.path.join(logdir, "checkpoints"), config.run.keep_checkpoints)
    path = checkpoint or store.newest_readable()
    for skipped, why in store.skipped:
        print(f"warning: skipped damaged checkpoint {skipped} ({why})", file=sys.stderr)
    if path is None:
        raise RunDirectoryError(f"{logdir!r} has no checkpoint yet")
    store.checkpoint.restore(path).expect_partial()
    return gan, config, info
