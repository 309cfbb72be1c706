"""The declared hyperparameter search: its trials, their freeze, Optuna's
storage with two workers and a killed one, the report's expected best."""

import dataclasses
import itertools
import json
import os
import signal
import sys
import time
import warnings

import numpy as np
import optuna
import pytest
import warm_scripts
from test_training import ROOT
from tiny_search import NAME, tiny_search

from tfklgan.config import FLAT_NAMES
from tfklgan.objectives import METHODS
from tfklgan.reproduce import search_worker
from tfklgan.reproduce.records import load
from tfklgan.reproduce.search import D_LR_RATIO, SEARCHES, Dimension, MethodSpace
from tfklgan.reproduce.search_worker import SearchError, SearchOptions, declare
from tfklgan.reproduce.stats import expected_best

TINY = os.path.join(ROOT, "tests", "tiny_search.py")


def test_table1_search_gives_every_loss_the_same_declared_trials():
    search = SEARCHES["table1_search"]
    assert search.problems(FLAT_NAMES, METHODS) == []
    trials = search.declared_trials()
    assert trials == search.declared_trials()  # drawn from the declared seed, not the clock
    methods = ("klgan", "lsgan", "hinge", "wgan_gp", "r1gan")
    assert [m.method for m in search.methods] == list(methods)
    for method in methods:
        mine = [t for t in trials if t.method == method]
        assert len(mine) == 16 >= search.trials
        assert [t.seed for t in mine] == [400 + k for k in range(16)]  # trial k: seed 400+k
        # first the KL-GAN paper's setting, then the method's own paper's
        assert mine[0].origin == "the KL-GAN paper's setting"
        assert mine[1].origin != "random" and {t.origin for t in mine[2:]} == {"random"}
        for trial in mine:
            for dim, (name, value) in zip(search.dimensions(method), trial.params,
                                          strict=True):
                assert name == dim.name and dim.contains(value)
    # the paper's settings as configs/table1 runs them
    assert trials[0].overrides() == {"g_lr": 8e-5, "d_lr": 4e-5, "beta1": 0.9, "beta2": 0.999,
                                     "minibatch_discrimination": True}
    wgan_gp = next(t for t in trials if t.key == "wgan_gp/01")
    assert wgan_gp.overrides() == {"g_lr": 1e-4, "d_lr": 1e-4, "beta1": 0.0, "beta2": 0.9,
                                   "minibatch_discrimination": False, "n_critic": 5,
                                   "gp_weight": 10.0}
    # random draws cover the space: every choice drawn, learning rates on a log scale
    g_lr = np.log10([dict(t.params)["g_lr"] for t in trials if t.origin == "random"])
    assert g_lr.min() < -4.2 and g_lr.max() > -3.3
    assert {dict(t.params)["beta1"] for t in trials} == {0.0, 0.5, 0.9}
    assert {dict(t.params)["n_critic"] for t in trials if t.method != "klgan"} == {1, 2, 5}


def test_a_bad_search_is_refused_with_one_line_per_fault():
    search = tiny_search()
    bad = dataclasses.replace(search, methods=(
        MethodSpace("nogan", "configs/table1/klgan.flags"),
        MethodSpace("hinge", "configs/table1/hinge.flags",
                    (Dimension("g_lr", "log_uniform", 0.0, 1e-3),
                     Dimension("critics", "choice", choices=(1, 2)),
                     Dimension("n_critic", "choice", choices=())),
                    (("paper", (("g_lr", 1.0),)),))), shared=())
    problems = bad.problems(FLAT_NAMES, METHODS)
    text = "\n".join(problems)
    assert "unknown method 'nogan'" in text
    assert "nogan has an empty space" in text
    assert "dimension 'g_lr' needs finite bounds 0 < low < high" in text
    assert "dimension 'critics' is not a training setting" in text
    assert "dimension 'n_critic' has no choices" in text
    assert "hinge's paper trial sets ['g_lr'], not the space's" in text
    unbounded = Dimension("g_lr", "log_uniform", 1e-5, float("inf"))
    assert unbounded.problems(FLAT_NAMES) != []
    outside = dataclasses.replace(search, methods=(MethodSpace(
        "klgan", "configs/table1/klgan.flags", (),
        (("paper", (("g_lr", 5.0), (D_LR_RATIO, 1.0), ("beta1", 0.9), ("beta2", 0.999),
                    ("minibatch_discrimination", True))),)),))
    assert outside.problems(FLAT_NAMES, METHODS) == [
        f"search {NAME}: klgan's paper trial has g_lr=5.0, outside g_lr log-uniform on "
        "[2e-05, 0.001]"]


def test_expected_best_of_k_trials_equals_enumerating_every_draw():
    rng = np.random.default_rng(0)
    for n in (1, 3, 5):
        values = list(rng.uniform(20, 300, n).round(1))
        values[0] = values[-1]  # a tie
        for k in (1, 2, 3, 4):
            for higher in (False, True):
                best = [(max if higher else min)(draw)
                        for draw in itertools.product(values, repeat=k)]
                mean, std = expected_best(values, k, higher)
                assert mean == pytest.approx(np.mean(best), rel=1e-12)
                assert std == pytest.approx(np.std(best), rel=1e-9, abs=1e-9)
    # a diverged, unscored trial (inf) is the best only when every draw is one
    assert expected_best([10.0, float("inf")], 1)[0] == float("inf")
    assert expected_best([10.0], 3) == (10.0, 0.0)


def options_in(tmp_path, **kw):
    return SearchOptions(results_dir=str(tmp_path / "results"), root=ROOT, progress=False,
                         **kw)


def test_the_declaration_freezes_every_trial_and_refuses_another(tmp_path):
    search = tiny_search()
    options = options_in(tmp_path)
    plan = declare(search, options)
    assert [t["key"] for t in plan["trials"]] == ["klgan/00", "klgan/01", "hinge/00",
                                                  "hinge/01"]
    settings = plan["trials"][0]["settings"]
    assert settings["g_lr"] == 8e-5 and settings["d_lr"] == 4e-5 and settings["steps"] == 40
    assert settings["eval_split"] == "validation" and settings["width"] == 4
    assert settings["feature_network"].startswith("classifier:sha256=")
    assert "seed" not in settings and "logdir" not in settings
    assert declare(search, options) == plan  # declared once; the queue is not filled twice
    storage = search_worker.open_storage(search_worker.storage_url(search, options), options)
    study = optuna.load_study(study_name=f"{NAME}.klgan", storage=storage)
    assert [t.user_attrs["key"] for t in study.get_trials()] == ["klgan/00", "klgan/01"]
    assert [t.state for t in study.get_trials()] == [optuna.trial.TrialState.WAITING] * 2
    # the same name with another budget: refused, naming what differs
    with pytest.raises(SearchError, match=r"it now differs in .*search\.trials"):
        declare(tiny_search(trials=3), options)
    # another results folder on the same storage: the storage refuses it
    other = dataclasses.replace(options, results_dir=str(tmp_path / "other"),
                                storage=search_worker.storage_url(search, options))
    with pytest.raises(SearchError, match=f"storage holds a study '{NAME}.klgan' declared "
                                          "with another space"):
        declare(tiny_search(trials=3), other)


def test_a_storage_that_cannot_be_opened_is_named_in_one_line(tmp_path):
    search = tiny_search()
    for url in (f"sqlite:///{tmp_path}/no/such/folder/x.db", "journal.log"):
        with pytest.raises(SearchError) as error:
            declare(search, options_in(tmp_path, storage=url))
        assert f"--storage={url}" in str(error.value) and "\n" not in str(error.value)


def test_a_trial_directory_of_another_search_is_refused(tmp_path):
    search = tiny_search()
    options = options_in(tmp_path)
    worker = search_worker.Worker(search, options)
    trial = worker.declared["klgan/00"]
    folder = search_worker.trial_folder(search, options, trial)
    os.makedirs(folder)
    with open(os.path.join(folder, "config.json"), "w") as handle:
        handle.write("{}")
    with pytest.raises(SearchError, match="holds a run that no search trial marked"):
        worker._claim(folder, "klgan/00")
    with open(os.path.join(folder, search_worker.TRIAL_MARKER), "w") as handle:
        json.dump({"search": "another", "key": "klgan/00", "settings_sha256": "x"}, handle)
    with pytest.raises(SearchError, match="holds a run of 'another' trial 'klgan/00'"):
        worker._claim(folder, "klgan/00")
    assert open(os.path.join(folder, "config.json")).read() == "{}"  # nothing lost
    # the refused trial failed in the storage; the next worker queues it again
    study = optuna.load_study(study_name=f"{NAME}.klgan", storage=worker.storage)
    with warnings.catch_warnings():  # Optuna: heartbeats are meant for study.optimize
        warnings.simplefilter("ignore", UserWarning)
        refused = study.ask()  # takes klgan/00 from the queue, as a worker would
    assert refused.user_attrs["key"] == "klgan/00"
    study.tell(refused, state=optuna.trial.TrialState.FAIL)
    declare(search, options, worker.storage)
    waiting = [t.user_attrs["key"] for t in study.get_trials()
               if t.state == optuna.trial.TrialState.WAITING]
    assert sorted(waiting) == ["klgan/00", "klgan/01"]


def _worker(results, *args, steps=40):
    """A search worker's process (forked warm, tests/warm_scripts.py)."""
    env = dict(os.environ, TINY_SEARCH_STEPS=str(steps), TF_CPP_MIN_LOG_LEVEL="2")
    return warm_scripts.popen([sys.executable, TINY, NAME, f"--results_dir={results}",
                               "--heartbeat_interval=1", "--grace_period=4", *args], ROOT, env)


@pytest.mark.slow
def test_two_workers_share_the_storage_and_a_killed_workers_trial_resumes(tmp_path):
    """Two workers on one SQLite storage; one is SIGKILLed after its trial's
    first checkpoint. Its trial is failed as stale once its heartbeat stops,
    queued again with its key, and resumed from the checkpoint in the same
    run directory: every declared trial ends complete exactly once."""
    results = tmp_path / "results"
    steps = 150
    search = tiny_search(steps=steps)
    first = _worker(results, "--methods=klgan", "--max_trials=1", steps=steps)
    killed_run = results / NAME / "runs" / "klgan-trial_00-seed50"
    deadline = time.time() + 240
    while not (killed_run / "checkpoints" / "checkpoint").exists():
        assert first.poll() is None, first.communicate()[1][-3000:]
        assert time.time() < deadline, "no checkpoint within 240 s"
        time.sleep(0.2)
    second = _worker(results, steps=steps)
    first.send_signal(signal.SIGKILL)
    first.wait()
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err[-3000:]
    time.sleep(4.5)  # past the grace period, in case the second ended before it
    third = _worker(results, steps=steps)
    out, err = third.communicate(timeout=600)
    assert third.returncode == 0, err[-3000:]

    options = SearchOptions(results_dir=str(results), root=ROOT)
    storage = search_worker.open_storage(search_worker.storage_url(search, options), options)
    state = optuna.trial.TrialState
    keys = []
    for method in ("klgan", "hinge"):
        trials = optuna.load_study(study_name=f"{NAME}.{method}", storage=storage).get_trials()
        keys += [t.user_attrs["key"] for t in trials if t.state == state.COMPLETE]
        failed = [t for t in trials if t.state == state.FAIL]
        if method == "klgan":
            assert [t.user_attrs["key"] for t in failed] == ["klgan/00"]  # the killed one
            retried = next(t for t in trials if t.system_attrs.get("failed_trial") is not None)
            assert retried.user_attrs["key"] == "klgan/00" and retried.state == state.COMPLETE
        else:
            assert failed == []
    assert sorted(keys) == ["hinge/00", "hinge/01", "klgan/00", "klgan/01"]
    resumed = load(str(killed_run))
    assert resumed.steps == steps and 0 < resumed.timed_from_step < steps
    with open(killed_run / "run.json") as handle:
        assert [r["step"] for r in json.load(handle)["resumes"]] == [resumed.timed_from_step]
    report = open(results / NAME / "README.md").read()
    assert "All 4 declared trials finished." in report
    assert f"{steps}, resumed at {resumed.timed_from_step}" in report
    # published, then continued elsewhere from the published records with a new storage:
    # the finished trials are taken as finished, none is trained again
    from tfklgan.reproduce import search_report
    published = tmp_path / "published"
    search_report.publish(search, SearchOptions(results_dir=str(results), root=ROOT),
                          str(published))
    import shutil
    continued = tmp_path / "continued"
    shutil.copytree(published / NAME, continued / NAME)
    before = {p: p.read_bytes() for p in (continued / NAME / "runs").glob("*/result.json")}
    assert len(before) == 4
    fourth = _worker(continued, steps=steps)
    out, err = fourth.communicate(timeout=600)
    assert fourth.returncode == 0, err[-3000:]
    assert {p: p.read_bytes() for p in before} == before
    assert not list((continued / NAME / "runs").glob("*/checkpoints"))  # nothing trained
    assert "All 4 declared trials finished." in open(continued / NAME / "README.md").read()


def test_the_published_search_is_what_its_report_writes_from_its_trials(tmp_path):
    """docs/results/table1_search's README.md and trials.csv are the report of
    the trials published beside them (no report edited by hand)."""
    import shutil

    from tfklgan.reproduce import search_report
    published = os.path.join(ROOT, "docs", "results", "table1_search")
    search = SEARCHES["table1_search"]
    copy = tmp_path / "table1_search"
    shutil.copytree(published, copy)
    search_report.write_report(search, SearchOptions(root=ROOT), str(copy))
    for name in ("README.md", "trials.csv"):
        with open(os.path.join(published, name)) as a, open(copy / name) as b:
            assert a.read() == b.read(), name
    plan = search_worker.read_plan(published)
    assert plan["declared"]["commit"] and not plan["declared"]["dirty"]
    finished = [t for t in plan["trials"] if os.path.isfile(os.path.join(
        published, "runs", f"{t['method']}-trial_{t['index']:02d}-seed{t['seed']}",
        "result.json"))]
    assert finished  # the search's first trials are published
    for trial in finished:
        record = load(os.path.join(published, "runs",
                                   f"{trial['method']}-trial_{trial['index']:02d}-seed"
                                   f"{trial['seed']}"))
        assert record.commit == plan["declared"]["commit"]  # trained at the declaring commit
