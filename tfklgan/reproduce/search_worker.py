"""A declared search run by Optuna: the declaration stored and queued once,
then any number of workers, on one machine or many, taking trials from one
storage until none is left.

Storage: an Optuna RDB storage, SQLite in the study's folder by default
(embedded: nothing to start), or any database URL Optuna accepts
(PostgreSQL, MySQL) for workers on several machines. The RDB storages keep
heartbeats: a worker that dies (SIGKILL, a lost machine) leaves its trial
RUNNING, its heartbeat stops, and once `grace_period` seconds have passed the
next worker to start a trial fails it and queues it again
(`RetryHeartbeatStaleTrialCallback`); the queued copy carries the trial's key,
so it trains in the same run directory and resumes from its checkpoints. A
stop signal (SIGTERM, SIGINT) ends the trial at its next step with a
checkpoint and queues it again at once. Optuna's journal storage keeps no
heartbeats, hence RDB.

Each trial is the declared setting of `search.Search.declared_trials()`,
queued with `enqueue_trial` in declaration order; the sampler only records
the space (a trial that Optuna did not take from the queue is pruned, never
trained). A worker takes the method with the fewest trials done or running
first, so every method advances alike, on whatever machines the search
meets.
"""

import contextlib
import dataclasses
import datetime
import json
import math
import os
import sys
import warnings
from typing import Optional, Sequence

import optuna

from tfklgan.config import FLAT_NAMES
from tfklgan.objectives import METHODS
from tfklgan.reproduce import freeze, records
from tfklgan.reproduce.protocols import PROTOCOLS, cap_onednn_isa
from tfklgan.reproduce.records import run_dir, write_json
from tfklgan.reproduce.runner import ReproduceOptions, RunPreempted, cell_config, run_cell
from tfklgan.reproduce.search import SEARCHES
from tfklgan.training import TrainingDivergedError

PLAN_FILE = "plan.json"
TRIAL_MARKER = "trial.json"


class SearchError(ValueError):
    """A search that cannot run as declared: bad declaration, storage, or a
    run directory that belongs to something else."""


@dataclasses.dataclass
class SearchOptions:
    """protocol: the protocol family (its entry for the search is used).
    storage: an Optuna storage URL (default: SQLite in the study's folder).
    methods: the methods this worker takes trials of (default: all).
    max_trials: trials this worker runs before it ends (default: until none is
    left). heartbeat_interval / grace_period: seconds between a running trial's
    heartbeats, and of silence after which its trial is taken for dead."""
    protocol: str = "cpu"
    results_dir: str = "results"
    storage: Optional[str] = None
    root: str = "."
    methods: Optional[Sequence[str]] = None
    max_trials: Optional[int] = None
    heartbeat_interval: int = 60
    grace_period: int = 600
    cache_dir: Optional[str] = None
    classifier_path: Optional[str] = None
    progress: bool = True


def search_named(name):
    if name not in SEARCHES:
        raise SearchError(f"unknown search {name!r}; choose one of {sorted(SEARCHES)}")
    return SEARCHES[name]


def study_dir(search, options):
    return os.path.join(options.results_dir, search.name)


def storage_url(search, options):
    """The storage URL: --storage, or SQLite in the study's folder (made here)."""
    if options.storage:
        return options.storage
    os.makedirs(study_dir(search, options), exist_ok=True)
    return "sqlite:///" + os.path.abspath(os.path.join(study_dir(search, options), "optuna.db"))


def open_storage(url, options):
    """An Optuna RDB storage with heartbeats and the retry of stale trials;
    SearchError naming the URL when it cannot be opened."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # heartbeats and their retry callback are marked experimental; they are the
    # documented way to recover a dead worker's trial
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if not url.split(":", 1)[0].split("+", 1)[0] in ("sqlite", "postgresql", "mysql",
                                                       "oracle", "mssql"):
        raise SearchError(f"--storage={url} is not a database URL Optuna's RDB storage takes "
                          "(sqlite:///path, postgresql://..., mysql://...); the search needs "
                          "its heartbeats")
    try:
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=options.heartbeat_interval,
            grace_period=options.grace_period,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback())
    except Exception as error:  # SQLAlchemy's errors differ by database and driver
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SearchError(f"the storage --storage={url} cannot be reached ({first}); check "
                          "the URL, the server and its credentials") from None


def reproduce_options(search, options):
    """The runner's options for the search's trials (its protocol entry)."""
    return ReproduceOptions(protocol=options.protocol, results_dir=options.results_dir,
                            root=options.root, cache_dir=options.cache_dir,
                            classifier_path=options.classifier_path, eval_values="uint8")


def trial_folder(search, options, trial):
    return run_dir(study_dir(search, options), trial.cell(), trial.seed)


def resolved_trials(search, options):
    """[(trial, resolved settings)] of every declared trial."""
    if options.protocol not in PROTOCOLS or search.name not in PROTOCOLS[options.protocol]:
        raise SearchError(f"no protocol {options.protocol!r} for {search.name}; choose one of "
                          f"{sorted(p for p in PROTOCOLS if search.name in PROTOCOLS[p])}")
    problems = search.problems(FLAT_NAMES, METHODS)
    if problems:
        raise SearchError("; ".join(problems))
    runner_options = reproduce_options(search, options)
    resolved = []
    for trial in search.declared_trials():
        config = cell_config(trial.cell(), trial.seed, runner_options, "", search.name)
        resolved.append((trial, freeze.resolved_settings(config.validate())))
    return resolved


def declaration(search, options):
    """What the plan freezes: the search as declared, its protocol and every
    trial with its resolved settings and their digest."""
    trials = []
    for trial, settings in resolved_trials(search, options):
        trials.append({**trial.to_json(), "settings": settings,
                       "settings_sha256": freeze.digest(settings)})
    protocol = dataclasses.asdict(PROTOCOLS[options.protocol][search.name])
    return {"search": search.to_json(), "protocol": protocol, "trials": trials}


def _differences(old, new, path=""):
    """Dotted paths at which two JSON values differ (at most a few)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new)):
            found += _differences(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        found = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            found += _differences(a, b, f"{path}[{i}]")
        return found
    return [] if old == new else [path or "(the whole declaration)"]


@contextlib.contextmanager
def _declaring(folder):
    """An exclusive lock on the study's folder while it is declared (two
    workers starting at once declare it once; POSIX, as the run lock)."""
    import fcntl  # POSIX only: the run directory's lock does without it elsewhere
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, ".declare.lock"), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_json(path):
    """The JSON value stored at `path`, or None where there is no file."""
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def read_plan(folder):
    """The stored plan of a search folder, or None."""
    return read_json(os.path.join(folder, PLAN_FILE))


def declare(search, options, storage=None):
    """Stores the plan (once) and queues every declared trial in the storage
    that is not queued, running or done. Refuses a folder or a storage study
    declared otherwise, naming what differs. Returns the stored plan."""
    folder = study_dir(search, options)
    current = declaration(search, options)
    storage = storage or open_storage(storage_url(search, options), options)
    with _declaring(folder):
        plan = read_plan(folder)
        if plan is None:
            commit, dirty = records.source_commit()
            plan = {**current, "declared": {"date": datetime.date.today().isoformat(),
                                            "commit": commit, "dirty": dirty}}
            write_json(os.path.join(folder, PLAN_FILE), plan)
        else:
            changed = _differences({k: plan[k] for k in current}, current)
            if changed:
                raise SearchError(f"{os.path.join(folder, PLAN_FILE)} holds {search.name} as "
                                  f"declared at commit {plan['declared']['commit']}; it now "
                                  f"differs in {', '.join(changed[:4])}: a changed search is a "
                                  "new study (another --results_dir)")
        digest = freeze.digest({k: plan[k] for k in current})
        for method in search.methods:
            study = optuna.create_study(study_name=optuna_name(search, method.method),
                                        storage=storage, direction="minimize",
                                        load_if_exists=True,
                                        sampler=optuna.samplers.RandomSampler(
                                            seed=search.sampler_seed))
            stored = study.user_attrs.get("declaration_sha256")
            if stored is None:
                study.set_user_attr("declaration_sha256", digest)
                study.set_user_attr("search", search.name)
            elif stored != digest:
                raise SearchError(f"the storage holds a study {study.study_name!r} declared "
                                  f"with another space or trial list (sha256 {stored[:12]}, "
                                  f"not {digest[:12]}): give another --storage or search")
            # queued, running or done; a trial that failed (a refusal, an error) is
            # queued again, so that it runs once its cause is removed
            state = optuna.trial.TrialState
            live = {t.user_attrs.get("key") for t in study.get_trials(deepcopy=False)
                    if t.state in (state.WAITING, state.RUNNING, state.COMPLETE)}
            for trial in plan["trials"]:
                if trial["method"] == method.method and trial["key"] not in live:
                    study.enqueue_trial(trial["params"], user_attrs={"key": trial["key"]})
    return plan


def optuna_name(search, method):
    return f"{search.name}.{method}"


def _distributions(search, method):
    found = {}
    for dim in search.dimensions(method):
        if dim.kind == "choice":
            found[dim.name] = optuna.distributions.CategoricalDistribution(dim.choices)
        else:
            found[dim.name] = optuna.distributions.FloatDistribution(dim.low, dim.high, log=True)
    return found


class Worker:
    """One worker's loop over the storage's queued trials."""

    def __init__(self, search, options):
        self.search, self.options = search, options
        self.storage = open_storage(storage_url(search, options), options)
        self.plan = declare(search, options, self.storage)
        self.trials = {t["key"]: t for t in self.plan["trials"]}
        self.declared = {t.key: t for t in search.declared_trials()}
        self.runner_options = reproduce_options(search, options)
        self.methods = list(options.methods or [m.method for m in search.methods])
        for method in self.methods:
            search.method(method)  # refuses a method not in the search
        self.ran = 0

    def studies(self):
        return {m: optuna.load_study(study_name=optuna_name(self.search, m),
                                     storage=self.storage)
                for m in self.methods}

    def next_method(self, studies):
        """The method with queued trials and the fewest trials done or running."""
        state = optuna.trial.TrialState
        best = None
        for method, study in studies.items():
            trials = study.get_trials(deepcopy=False)
            waiting = sum(t.state == state.WAITING for t in trials)
            taken = sum(t.state in (state.COMPLETE, state.RUNNING) and "key" in t.user_attrs
                        for t in trials)
            if waiting and (best is None or taken < best[1]):
                best = (method, taken)
        return best and best[0]

    def run(self):
        """Trials until none is queued (or max_trials); returns an exit code."""
        cap_onednn_isa(PROTOCOLS[self.options.protocol][self.search.name].onednn_max_isa)
        while self.options.max_trials is None or self.ran < self.options.max_trials:
            studies = self.studies()
            for study in studies.values():  # trials of dead workers back in the queue
                optuna.storages.fail_stale_trials(study)
            method = self.next_method(studies)
            if method is None:
                break
            study = studies[method]
            try:
                study.optimize(self.objective, n_trials=1, gc_after_trial=True)
            except RunPreempted as stopped:  # the trial is queued again: see objective
                print(stopped, file=sys.stderr, flush=True)
                return 128 + int(stopped.signum)
            self.ran += 1
            if self.options.progress:
                print(progress_text(self.search, self.options, self.studies()),
                      file=sys.stderr, flush=True)
        return 0

    def objective(self, trial):
        key = trial.user_attrs.get("key")
        if key not in self.trials:  # the queue was empty when Optuna asked: not declared
            trial.set_user_attr("undeclared", True)
            raise optuna.TrialPruned("not a declared trial of the search")
        declared = self.declared[key]
        for name, dist in _distributions(self.search, declared.method).items():
            if isinstance(dist, optuna.distributions.CategoricalDistribution):
                trial.suggest_categorical(name, dist.choices)
            else:
                trial.suggest_float(name, dist.low, dist.high, log=True)
        folder = trial_folder(self.search, self.options, declared)
        self._claim(folder, key)
        config = cell_config(declared.cell(), declared.seed, self.runner_options, folder,
                             self.search.name)
        freeze.check(f"trial {key}", self.trials[key]["settings"],
                     freeze.resolved_settings(config),
                     os.path.join(study_dir(self.search, self.options), PLAN_FILE))
        if self.options.progress:
            print(f"trial {key} ({declared.origin}, seed {declared.seed}): "
                  f"{_setting_text(declared)}", file=sys.stderr, flush=True)
        try:
            record = run_cell(declared.cell(), declared.seed, self.runner_options, folder,
                              self.search.name, score_divergence=True)
        except RunPreempted:
            # checkpointed and unlocked: queued again for any worker to resume
            trial.study.enqueue_trial(self.trials[key]["params"],
                                      user_attrs={"key": key, "requeued_after": trial.number})
            raise
        except TrainingDivergedError as error:  # before its first checkpoint: nothing to score
            trial.set_user_attr("diverged", str(error))
            write_json(os.path.join(folder, "diverged.json"), {"key": key, "error": str(error)})
            return math.inf
        for name in ("recall", "precision", "fid"):
            trial.set_user_attr(name, record.score(name))
        if record.diverged:
            trial.set_user_attr("diverged", record.diverged)
        trial.set_user_attr("train_seconds", record.train_seconds)
        return record.score(self.search.selection)

    def _claim(self, folder, key):
        """Marks the run directory as this trial's; refuses one left by
        another search or trial."""
        marker = os.path.join(folder, TRIAL_MARKER)
        mine = {"search": self.search.name, "key": key,
                "settings_sha256": self.trials[key]["settings_sha256"]}
        found = read_json(marker)
        if found is not None and found != mine:
            raise SearchError(f"{folder} holds a run of {found.get('search')!r} trial "
                              f"{found.get('key')!r}, not this search's {key}; move it away "
                              "(nothing was trained into it)")
        if found is None and os.path.exists(os.path.join(folder, "config.json")):
            raise SearchError(f"{folder} holds a run that no search trial marked as its own; "
                              "move it away (nothing was trained into it)")
        os.makedirs(folder, exist_ok=True)
        write_json(marker, mine)


def _setting_text(trial):
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in trial.overrides().items())


def _duration(minutes):
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def progress_text(search, options, studies):
    """Trials done, running and queued per method, the best so far, and the
    time left at the mean trial time of the finished ones over the workers
    running now."""
    state = optuna.trial.TrialState
    lines, seconds, left, running_total = [], [], 0, 0
    for method, study in studies.items():
        trials = [t for t in study.get_trials(deepcopy=False) if "key" in t.user_attrs]
        done = [t for t in trials if t.state == state.COMPLETE]
        running = sum(t.state == state.RUNNING for t in trials)
        waiting = sum(t.state == state.WAITING for t in trials)
        seconds += [t.user_attrs["train_seconds"] for t in done
                    if t.user_attrs.get("train_seconds")]
        left += waiting + running
        running_total += running
        finite = [t for t in done if math.isfinite(t.value)]
        best = min(finite, key=lambda t: t.value, default=None)
        best_text = (f"best {search.selection} {best.value:.1f} ({best.user_attrs['key']})"
                     if best else "no best yet")
        lines.append(f"  {method}: {len(done)} done, {running} running, {waiting} queued; "
                     f"{best_text}")
    workers = max(1, running_total)
    minutes = sum(seconds) / len(seconds) * left / workers / 60 if seconds else 0
    eta = (f"about {_duration(minutes)} left at {workers} worker{'s' if workers > 1 else ''}"
           if seconds and left else
           "time left unknown until a trial finishes" if left else "every trial done")
    return f"search {search.name}: {eta}\n" + "\n".join(lines)


__all__ = ["SearchError", "SearchOptions", "Worker", "declare", "open_storage",
           "progress_text", "search_named", "storage_url"]
