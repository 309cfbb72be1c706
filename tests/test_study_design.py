"""Studies declared before they run: plans, blocks by machine, paired
contrasts with Holm's correction, run records with their commit."""

import dataclasses
import gc
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.stats
from test_reproduce import record
from test_training import ROOT

from tfklgan.reproduce import analysis, design, records
from tfklgan.reproduce.design import AFTER, BEFORE, Plan, PlanError, difference
from tfklgan.reproduce.tables import TABLES, Cell, Table

MACHINE_A = {"cpu": "A", "vendor": "AuthenticAMD", "cpu_family": "26", "cpu_model": "2",
             "isa": ["avx2"], "cores": 2, "onednn": "1", "onednn_max_cpu_isa": "AVX2",
             "intra_op_threads": 1, "tensorflow": "2.21.0", "machine": "x86_64"}
MACHINE_B = {**MACHINE_A, "cpu_family": "25", "cpu_model": "17"}
CELLS = (("m", "a"), ("m", "b"))


def study_table(plan):
    return Table("t", ("a", "b"), ("fid",), tuple(Cell(m, c, "x.flags", {}) for m, c in CELLS),
                 "", plan)


def plan_of(seeds=(1, 2, 3), written=BEFORE, extra=()):
    return Plan(seeds=seeds, written=written, decision="Holm p < alpha in the sign predicted",
                contrasts=(difference("a against b", CELLS[0], CELLS[1], expect=-1),) + extra)


def runs(values, machine=MACHINE_A):
    """Records of cells a and b: values is {seed: (fid of a, fid of b)}."""
    return [record(m, c, seed, fids[i], machine)
            for seed, fids in values.items() for i, (m, c) in enumerate(CELLS)]


def test_holm_adjusted_p_values_equal_statsmodels_and_the_hand_computed_ones(monkeypatch):
    from statsmodels.stats.multitest import multipletests
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4 x 0.005, 3 x 0.01, 2 x 0.03, max(1 x 0.04, 0.06)
    adjusted, rejected = analysis.holm(p, 0.05)
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-15)
    assert rejected == [True, False, False, True]
    assert adjusted == pytest.approx(list(multipletests(p, 0.05, method="holm")[1]))
    # statsmodels collects garbage on each Holm call: seconds in this process
    monkeypatch.setattr(gc, "collect", lambda *args: 0)
    rng = np.random.default_rng(1)
    for _ in range(300):
        p = list(rng.uniform(0, 0.2, rng.integers(1, 15)) ** rng.uniform(0.5, 3))
        reference_rejected, reference, _, _ = multipletests(p, 0.05, method="holm")
        adjusted, rejected = analysis.holm(p, 0.05)
        assert adjusted == pytest.approx(list(reference), rel=1e-12)
        assert rejected == list(reference_rejected)
    assert analysis.holm([], 0.05) == ([], [])


def test_an_interval_at_its_holm_level_excludes_0_exactly_when_holm_rejects():
    rng = np.random.default_rng(0)
    for _ in range(200):
        blocks = rng.integers(3, 7)
        samples = [rng.normal(rng.normal(0, 2), 1, blocks) for _ in range(rng.integers(1, 6))]
        raw = [scipy.stats.ttest_1samp(s, 0).pvalue for s in samples]
        _, rejected = analysis.holm(raw, 0.05)
        for s, level, reject in zip(samples, analysis.holm_levels(raw, 0.05), rejected,
                                    strict=True):
            _, (low, high), _ = analysis.paired(s, level)
            assert (not low <= 0 <= high) == reject


def test_contrasts_are_paired_within_blocks():
    a, b = (150.0, 115.0, 141.0), (100.0, 139.0, 124.0)
    study = analysis.analyse(study_table(plan_of()), plan_of(), None,
                             runs({s: (a[s - 1], b[s - 1]) for s in (1, 2, 3)}))
    [result] = study.confirmatory
    assert result.values == pytest.approx([50.0, -24.0, 17.0])
    assert result.p == pytest.approx(scipy.stats.ttest_rel(a, b).pvalue)
    assert result.level == pytest.approx(0.95)  # one contrast: Holm is the test itself
    assert study.status == "complete" and result.verdict == "inconclusive"
    far = runs({1: (50.0, 100.0), 2: (51.0, 101.5), 3: (49.0, 99.8)})
    [result] = analysis.analyse(study_table(plan_of()), plan_of(), None, far).confirmatory
    assert result.verdict == "held" and result.interval[1] < 0  # predicted negative
    [result] = analysis.analyse(study_table(plan_of()), plan_of(), None,
                                runs({1: (150.0, 100.0), 2: (151.0, 101.5),
                                      3: (149.0, 99.8)})).confirmatory
    assert result.verdict == "reversed"


def test_an_incomplete_study_gives_no_verdict():
    study = analysis.analyse(study_table(plan_of()), plan_of(), None,
                             runs({1: (50.0, 100.0), 2: (51.0, 101.5)}))
    assert study.status == "incomplete"
    assert study.confirmatory[0].verdict == "no verdict (incomplete: 2 of 3 blocks)"
    text = "\n".join(_report(study))
    assert "incomplete: 2 of 3 declared blocks; no verdict until all are in" in text
    # no interim test to stop on: the blocks' values and their mean only
    row = next(line for line in text.splitlines() if line.startswith("| a against b"))
    assert "withheld | withheld | withheld" in row and "-50.0" in row


def test_seeds_beyond_n_and_a_plan_written_after_the_runs_are_exploratory():
    values = {s: (50.0 + s, 100.0 + s * s) for s in (1, 2, 3, 4)}
    study = analysis.analyse(study_table(plan_of()), plan_of(), None, runs(values))
    assert [b.seed for b in study.analysed] == [1, 2, 3] and [b.seed for b in study.extra] == [4]
    assert len(study.confirmatory[0].values) == 3  # the declared n, not the four there are
    after = plan_of(written=AFTER)
    study = analysis.analyse(study_table(after), after, None, runs(values))
    assert study.status == "exploratory" and study.confirmatory[0].verdict == "exploratory"
    assert "written after the runs" in "\n".join(_report(study))


def test_a_contrast_added_after_the_runs_is_labelled_exploratory(tmp_path):
    design.write(str(tmp_path), plan_of(), "cpu", "0" * 40, False)
    added = plan_of(extra=(difference("b against a", CELLS[1], CELLS[0]),))
    plan, declared = design.check("t", study_table(added), str(tmp_path), "cpu")
    assert [c.label for c in plan.contrasts] == ["a against b"]
    assert [c.label for c in plan.exploratory] == ["b against a"]
    assert declared["commit"] == "0" * 40
    study = analysis.analyse(study_table(added), plan, declared,
                             runs({s: (50.0 + s, 100.0 + s * s) for s in (1, 2, 3)}))
    assert study.exploratory[0].verdict == "exploratory"
    assert study.confirmatory[0].verdict in ("held", "inconclusive", "reversed")
    text = "\n".join(_report(study))
    assert "## Exploratory (chosen after the runs)" in text
    assert f"declared before the runs on {declared['date']} at commit {'0' * 40}" in text
    # a changed design is refused, not analysed as if declared
    with pytest.raises(PlanError, match=r"changed since it was declared .*\(seeds\)"):
        design.check("t", study_table(plan_of(seeds=(1, 2, 3, 4))), str(tmp_path), "cpu")
    with pytest.raises(PlanError, match="declares no plan"):
        design.check("t", study_table(None), str(tmp_path / "other"), "cpu")


def test_a_cell_on_another_fingerprint_starts_a_new_block():
    mixed = runs({1: (50.0, 100.0), 2: (51.0, 101.5), 3: (49.0, 99.8)})
    mixed[-1] = mixed[-1].replace(machine=MACHINE_B)  # seed 3's cell b on another CPU
    blocks = analysis.blocks_of(mixed, CELLS)
    assert [(b.label, len(b.runs)) for b in blocks] == [("seed 1", 2), ("seed 2", 2),
                                                        ("seed 3", 1), ("seed 3 (b)", 1)]
    study = analysis.analyse(study_table(plan_of()), plan_of(), None, mixed)
    assert study.status == "incomplete" and len(study.analysed) == 2
    # a field neither record holds (older records) does not split a block; one that
    # only one of them holds does
    older = {k: v for k, v in MACHINE_A.items() if k != "onednn_max_cpu_isa"}
    assert analysis.same_machine(older, dict(older))
    assert not analysis.same_machine(older, MACHINE_A)
    text = "\n".join(_report(study))
    assert "seed 3 (b) holds m, b" in text and "family 25 model 17" in text


def test_the_runner_refuses_a_block_begun_on_another_machine_and_a_spare_stands_in(
        tmp_path, monkeypatch, capsys):
    from tfklgan import fingerprint
    from tfklgan.reproduce import ReproduceOptions, reproduce, runner
    options = ReproduceOptions(root=ROOT, protocol="cpu", results_dir=str(tmp_path),
                               progress=False)
    from tfklgan.reproduce import tables
    table = dataclasses.replace(TABLES["mbd_factorial"], plan=dataclasses.replace(
        TABLES["mbd_factorial"].plan, purpose=design.EXPLORATORY))
    monkeypatch.setitem(tables.TABLES, "mbd_factorial", table)
    out_dir = os.path.join(tmp_path, "mbd_factorial")
    os.makedirs(os.path.join(out_dir, "blocks"))
    records.write_json(os.path.join(out_dir, "blocks", "seed101.json"),
                       {"seed": 101, "fingerprint": MACHINE_B, "commit": None, "dirty": None})
    monkeypatch.setattr(fingerprint, "current", lambda: dict(MACHINE_A))
    trained = []

    def run_cell(cell, seed, options, path, table_name):
        trained.append((cell.column, seed))
        return record(cell.method, cell.column, seed, 1.0)

    monkeypatch.setattr(runner, "run_cell", run_cell)
    monkeypatch.setattr(runner, "finished_runs", lambda *args: [])
    reproduce("mbd_factorial", options)
    seeds = [seed for _, seed in trained]
    assert 101 not in seeds and sorted(set(seeds)) == [102, 103, 104, 105, 106, 107]
    assert trained[:4] == [(c.column, 102) for c in table.cells]  # a block's cells together
    assert "the block of seed 101 began on A (AuthenticAMD family 25 model 17)" in \
        capsys.readouterr().err
    with open(os.path.join(out_dir, "blocks", "seed102.json")) as handle:
        assert json.load(handle)["fingerprint"] == MACHINE_A
    stored, declared = design.read(out_dir)
    assert stored == table.plan and declared["protocol"] == "cpu"


def test_a_table_without_a_plan_does_not_train(tmp_path, monkeypatch):
    from tfklgan.reproduce import ReproduceOptions, reproduce, tables
    monkeypatch.setitem(tables.TABLES, "mbd_factorial",
                        dataclasses.replace(TABLES["mbd_factorial"], plan=None))
    with pytest.raises(PlanError, match="mbd_factorial declares no plan"):
        reproduce("mbd_factorial", ReproduceOptions(root=ROOT, protocol="cpu",
                                                    results_dir=str(tmp_path)))
    assert not os.listdir(tmp_path)


def test_the_mbd_factorial_is_the_full_2x2_of_the_layer_and_the_halving():
    from tfklgan.reproduce import ReproduceOptions, cell_config
    options = ReproduceOptions(root=ROOT, protocol="cpu")
    table = TABLES["mbd_factorial"]
    configs = {c.column: cell_config(c, 101, options, "runs/x", "mbd_factorial")
               for c in table.cells}
    factors = {(config.network.minibatch_discrimination, config.optimizer.d_lr)
               for config in configs.values()}
    assert factors == {(False, 8e-5), (True, 8e-5), (False, 4e-5), (True, 4e-5)}
    for config in configs.values():
        assert (config.run.batch_size, config.run.steps, config.network.width) == \
            (64, 10_000, 16)
        # the cells differ in the two factors only
        assert config.replace(minibatch_discrimination=False, d_lr=8e-5) == \
            configs["without MBD, D lr 8e-5"]
    # the paper's two cells are the MBD study's batch-64 cells, setting for setting
    study = {c.column: c for c in TABLES["mbd_study"].cells}
    for ours, theirs in (("without MBD, D lr 8e-5", "batch 64, without MBD"),
                         ("with MBD, D lr 4e-5", "batch 64, with MBD")):
        assert configs[ours] == cell_config(study[theirs], 101, options, "runs/x", "mbd_study")
    plan = table.plan
    assert plan.written == BEFORE and plan.n == 6 and plan.correction == "holm"
    assert not set(plan.seeds + plan.spare_seeds) & set(TABLES["mbd_study"].plan.seeds)
    # the interaction: MBD's effect at D lr 4e-5 minus its effect at 8e-5
    [interaction] = [c for c in plan.contrasts if c.label.startswith("interaction")]
    cell = {c.column: (c.method, c.column) for c in table.cells}
    assert dict(interaction.weights) == {cell["with MBD, D lr 4e-5"]: 1.0,
                                         cell["without MBD, D lr 4e-5"]: -1.0,
                                         cell["with MBD, D lr 8e-5"]: -1.0,
                                         cell["without MBD, D lr 8e-5"]: 1.0}
    assert all(sum(w for _, w in c.weights) == 0 for c in plan.contrasts)


def test_every_published_study_carries_its_plan():
    published = os.path.join(ROOT, "docs", "results")
    for name in TABLES:
        folder = os.path.join(published, name)
        if os.path.isdir(os.path.join(folder, "runs")):
            plan, declared = design.read(folder)
            assert plan is not None, name
            assert design.changes(plan, TABLES[name].plan) == [], name


def test_the_commit_is_read_from_the_checkout_and_none_outside_one(tmp_path):
    commit, dirty = records.source_commit(ROOT)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    assert commit == head and dirty in (True, False)
    assert records.source_commit(str(tmp_path)) == (None, None)


def test_the_stop_watch_leaves_out_the_time_the_process_stood_stopped(tmp_path):
    """A child times 3 s of sleep with a SIGSTOP of 3 s in the middle: its
    running time stays near 3 s, the stop is counted apart."""
    import signal
    import time
    script = tmp_path / "watch.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {ROOT!r})
        from tfklgan.reproduce.records import StopWatch
        with StopWatch(tick=0.1, stall=1.0) as watch:
            print("started", flush=True)
            for _ in range(30):
                time.sleep(0.1)
        print(round(watch.running_seconds, 2), round(watch.stopped_seconds, 2))
    """))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "started"
    time.sleep(1.0)
    child.send_signal(signal.SIGSTOP)
    time.sleep(3.0)
    child.send_signal(signal.SIGCONT)
    running, stopped = map(float, child.communicate(timeout=60)[0].split())
    assert 2.5 < stopped < 3.5 and 2.9 < running < 4.0


def test_the_stop_watch_counts_a_thread_holding_the_interpreter_lock_as_running():
    """A C call that holds the interpreter lock for over a second starves the
    watch's thread as a stop would; the process ran, so nothing is counted
    stopped (it once counted the whole call)."""
    import time

    from tfklgan.reproduce.records import StopWatch
    n = 1_000_000
    while True:  # a sum over a range runs in C without letting the lock go
        started = time.thread_time()  # CPU time: the same on a busy machine
        sum(range(n))
        if time.thread_time() - started >= 1.0:
            break
        n *= 2
    started = time.monotonic()
    with StopWatch(tick=0.05, stall=0.3) as watch:
        sum(range(n))
    elapsed = time.monotonic() - started
    assert elapsed >= 0.9 and watch.stopped_seconds == 0.0
    assert watch.running_seconds == pytest.approx(elapsed, abs=0.1)


def test_a_run_record_round_trips_and_a_foreign_file_is_named(tmp_path):
    original = record("m", "a", 1, 12.5, MACHINE_A, recall=0.5).replace(commit="f" * 40,
                                                                       dirty=False)
    records.save(original, str(tmp_path))
    assert records.load(str(tmp_path)) == original
    (tmp_path / "result.json").write_text(json.dumps({"mu": [0.0]}))
    with pytest.raises(ValueError, match="result.json is not a run record of this package"):
        records.load(str(tmp_path))
    (tmp_path / "result.json").write_text("{")
    with pytest.raises(ValueError, match="result.json is damaged"):
        records.load(str(tmp_path))
    assert math.isnan(original.score("kid"))


def _report(study):
    from tfklgan.reproduce.report import study_lines
    return study_lines(study)


def test_the_diffaugment_study_differs_in_the_augmentation_alone():
    from tfklgan.reproduce import ReproduceOptions, cell_config
    options = ReproduceOptions(root=ROOT, protocol="cpu")
    table = TABLES["diffaugment_study"]
    plain, augmented = (cell_config(c, 301, options, "runs/x", "diffaugment_study").validate()
                        for c in table.cells)
    assert (plain.objective.augment, augmented.objective.augment) == ("none", "diffaugment")
    assert augmented.replace(augment="none") == plain
    assert plain.data.max_examples == 500
    assert (plain.evaluation.real_split, plain.evaluation.real_samples) == ("validation", 500)
    assert plain.network.minibatch_discrimination and plain.run.steps == 4000
    assert table.plan.written == BEFORE and [c.expect for c in table.plan.contrasts] == [-1, 1]


# ------------------------------------------------- studies that decide

def test_power_and_blocks_needed_equal_statsmodels():
    from statsmodels.stats.power import TTestPower

    from tfklgan.reproduce import power
    reference = TTestPower()
    for effect, sd, alpha in ((19.0, 38.0, 0.05 / 4), (42.4, 35.0, 0.05 / 13), (10.0, 4.0, 0.05),
                              (-5.0, 9.0, 0.01)):
        d = abs(effect) / sd
        for n in (2, 3, 6, 12, 30):
            expected = reference.power(effect_size=d, nobs=n, alpha=alpha)
            if math.isnan(expected):  # statsmodels' noncentral t gives nan as power -> 1
                assert power.paired_t_power(effect, sd, n, alpha) > 1 - 1e-9
                continue
            assert power.paired_t_power(effect, sd, n, alpha) == pytest.approx(
                expected, rel=1e-6, abs=1e-9)
        needed = power.blocks_for_power(effect, sd, alpha, 0.8)
        assert needed == math.ceil(reference.solve_power(effect_size=d, alpha=alpha,
                                                         power=0.8))
        assert power.paired_t_power(effect, sd, needed, alpha) >= 0.8
        assert power.paired_t_power(effect, sd, needed - 1, alpha) < 0.8
    # far in the tails SciPy's noncentral t gives nan (Table I long's KL-GAN with MBD
    # against R1-GAN: -66.2, sd 12.5, 3 blocks at 0.05/13); the integral takes over
    rng = np.random.default_rng(0)
    z, v = rng.standard_normal(400_000), rng.chisquare(2, 400_000)
    t = (z + 66.2 / 12.5 * math.sqrt(3)) / np.sqrt(v / 2)
    simulated = np.mean(np.abs(t) > scipy.stats.t.ppf(1 - 0.05 / 26, 2))
    assert power.paired_t_power(-66.2, 12.5, 3, 0.05 / 13) == pytest.approx(simulated, abs=0.005)
    assert power.blocks_for_power(-66.2, 12.5, 0.05 / 13, 0.8) == 4


def test_the_sign_flip_test_is_exact_and_refused_where_it_cannot_reach_alpha():
    from tfklgan.reproduce import power
    values = [3.0, -1.0, 2.0, 5.0]
    means = [abs(np.mean(np.array(values) * s)) for s in
             __import__("itertools").product((1, -1), repeat=4)]
    assert power.sign_flip_p(values) == np.mean(np.array(means) >= abs(np.mean(values)))
    assert power.sign_flip_p([1.0, 2.0, 3.0]) == 0.25  # the smallest p over 3 blocks
    plan = dataclasses.replace(plan_of(), test="sign_flip", purpose=design.EXPLORATORY)
    [problem] = plan.problems()
    assert problem == ("the sign_flip test over 3 blocks cannot give a p below 0.25, so never "
                       "below Holm's first level 0.05: it needs 6 blocks")
    with pytest.raises(PlanError, match="it needs 6 blocks"):
        design.check("t", study_table(plan), "/nonexistent", "cpu")
    assert dataclasses.replace(plan, seeds=tuple(range(1, 7))).problems() == []
    # and the analysis uses it where declared
    six = dataclasses.replace(plan, seeds=tuple(range(1, 7)))
    study = analysis.analyse(study_table(six), six, None,
                             runs({s: (50.0 + s, 100.0) for s in range(1, 7)}))
    assert study.confirmatory[0].p == 1 / 32 and study.confirmatory[0].verdict == "held"


def sized(effect=-20.0, sd=10.0, margin=None, seeds=(1, 2, 3), purpose=design.CONFIRMATORY):
    contrast = difference("a against b", CELLS[0], CELLS[1], expect=-1, effect=effect, sd=sd,
                          sd_source="a pilot", margin=margin)
    return Plan(seeds=seeds, contrasts=(contrast,), decision=design.RULE, purpose=purpose)


def test_an_underpowered_confirmatory_plan_is_refused_naming_the_blocks_it_needs():
    from tfklgan.reproduce import power
    needed = power.blocks_for_power(20.0, 10.0, 0.05, 0.8)
    assert needed == 5
    [problem] = sized().problems()
    assert problem.startswith("contrast 'a against b': 3 blocks give power 0.")
    assert "it needs 5 blocks, or declare the plan exploratory" in problem
    with pytest.raises(PlanError, match="it needs 5 blocks"):
        design.check("t", study_table(sized()), "/nonexistent", "cpu")
    assert sized(seeds=(1, 2, 3, 4, 5)).problems() == []
    assert sized(purpose=design.EXPLORATORY).problems() == []
    # a confirmatory plan with nothing sized, and an unsized new declaration
    unsized = dataclasses.replace(plan_of(), purpose=design.CONFIRMATORY)
    assert "sizes at least one contrast" in unsized.problems()[0]
    with pytest.raises(PlanError, match="it is not sized: declare it confirmatory"):
        design.check("t", study_table(plan_of()), "/nonexistent", "cpu")
    # the report states the sizing
    text = "\n".join(report_plan(sized(seeds=(1, 2, 3, 4, 5))))
    assert ("Sized: a against b: smallest effect of interest -20, sd 10 (a pilot); power 0.91 "
            "at n = 5 (it needs 5)") in text


def report_plan(plan):
    from tfklgan.reproduce import report
    return report.plan_lines(plan, None)


def test_a_duplicate_contrast_is_refused_and_an_old_plans_duplicate_counted_once():
    twice = plan_of(extra=(difference("b against a", CELLS[1], CELLS[0]),))
    [problem] = dataclasses.replace(twice, purpose=design.EXPLORATORY).problems()
    assert problem == ("contrast 'b against a' tests the same difference as 'a against b'; "
                       "declare it once")
    # a stored plan that has one is analysed with Holm over the distinct tests
    other = difference("a against b, recall", CELLS[0], CELLS[1], "recall")
    plan = plan_of(extra=(difference("b against a", CELLS[1], CELLS[0]), other))
    records_ = [r.replace(scores={**r.scores, "recall": r.scores["fid"] / 100})
                for r in runs({1: (50.0, 100.0), 2: (51.0, 101.5), 3: (49.0, 99.8)})]
    study = analysis.analyse(study_table(plan), plan, None, records_)
    first, repeat, recall = study.confirmatory
    assert repeat.duplicate_of == "a against b" and repeat.adjusted_p == first.adjusted_p
    raw = [first.p, recall.p]
    assert first.adjusted_p == pytest.approx(analysis.holm(raw, 0.05)[0][0])  # m = 2, not 3
    assert "(the same test as 'a against b': counted once)" in "\n".join(_report(study))
    # the published Table I long: 14 declared, 13 tested
    assert "13 distinct declared contrasts (1 of the 14 declared repeat" in open(
        os.path.join(ROOT, "docs", "results", "klgan_table1_long", "table.md")).read()


def test_held_reversed_equivalent_and_inconclusive_verdicts():
    close = runs({1: (100.5, 100.0), 2: (99.0, 100.0), 3: (100.2, 100.0), 4: (99.9, 100.0),
                  5: (100.1, 100.0)})
    seeds = (1, 2, 3, 4, 5)
    # a small effect inside a margin of 5: equivalent; without a margin: inconclusive
    [r] = analysis.analyse(study_table(sized(margin=5.0, seeds=seeds)),
                           sized(margin=5.0, seeds=seeds), None, close).confirmatory
    assert r.verdict == "equivalent" and -5 < r.interval[0] and r.interval[1] < 5
    [r] = analysis.analyse(study_table(sized(seeds=seeds)), sized(seeds=seeds), None,
                           close).confirmatory
    assert r.verdict == "inconclusive"
    # a margin the interval crosses: inconclusive
    [r] = analysis.analyse(study_table(sized(margin=0.5, seeds=seeds)),
                           sized(margin=0.5, seeds=seeds), None, close).confirmatory
    assert r.verdict == "inconclusive"
    far = runs({s: (150.0 + s % 2, 100.0) for s in seeds})
    [r] = analysis.analyse(study_table(sized(seeds=seeds)), sized(seeds=seeds), None,
                           far).confirmatory
    assert r.verdict == "reversed"
    low = runs({s: (50.0 + s % 2, 100.0) for s in seeds})
    [r] = analysis.analyse(study_table(sized(seeds=seeds)), sized(seeds=seeds), None,
                           low).confirmatory
    assert r.verdict == "held"
    assert set(analysis.VERDICTS) == {"held", "reversed", "equivalent", "inconclusive"}


def test_a_changed_resolved_setting_is_refused_naming_it(tmp_path, monkeypatch):
    from tfklgan.reproduce import ReproduceOptions, reproduce, runner, tables
    from tfklgan.reproduce.freeze import FrozenSettingError
    table = dataclasses.replace(TABLES["mbd_factorial"], plan=dataclasses.replace(
        TABLES["mbd_factorial"].plan, purpose=design.EXPLORATORY))
    monkeypatch.setitem(tables.TABLES, "mbd_factorial", table)
    trained = []

    def run_cell(cell, seed, options, path, table_name):
        trained.append((cell.column, seed))
        os.makedirs(path, exist_ok=True)
        result = dataclasses.replace(record(cell.method, cell.column, seed, 1.0),
                                     protocol={"values": "uint8"})
        records.save(result, path)
        return result

    monkeypatch.setattr(runner, "run_cell", run_cell)
    options = ReproduceOptions(root=ROOT, protocol="cpu", results_dir=str(tmp_path),
                               progress=False, seeds=[101], report_only=False)
    monkeypatch.setattr(runner, "write_table", lambda *args: None)
    reproduce("mbd_factorial", options)
    _, declared = design.read(str(tmp_path / "mbd_factorial"))
    frozen = declared["resolved"]["klgan, with MBD, D lr 4e-5"]
    assert frozen["d_lr"] == 4e-5 and frozen["steps"] == 10_000 and "seed" not in frozen
    assert frozen["feature_network"].startswith("classifier:sha256=")
    # a cell whose flagfile or overrides changed after the declaration
    changed = tuple(dataclasses.replace(c, overrides=tuple(
        (k, 2e-5 if k == "d_lr" and v == 4e-5 else v) for k, v in c.overrides))
        for c in table.cells)
    monkeypatch.setitem(tables.TABLES, "mbd_factorial", dataclasses.replace(table,
                                                                            cells=changed))
    with pytest.raises(FrozenSettingError, match=r"klgan, with MBD, D lr 4e-5 would not train "
                                                 r"as declared .*\(d_lr: declared 4e-05, now "
                                                 r"2e-05\)"):
        reproduce("mbd_factorial", dataclasses.replace(options, seeds=[102]))
    assert len(trained) == 5  # the first block, and the next block's unchanged first cell


def test_the_ranking_is_an_exact_test_and_a_coarse_bootstrap_gives_no_interval():
    cells = tuple(Cell("m", c, "x.flags", {"fid": (p, 1.0)})
                  for c, p in (("a", 10.0), ("b", 20.0), ("c", 30.0), ("d", 40.0)))
    table = Table("t", ("a", "b", "c", "d"), ("fid",), cells, "",
                  Plan(seeds=(1, 2, 3), contrasts=(), decision="", ranking="fid"))
    values = {1: (11, 19, 33, 41), 2: (12, 22, 29, 45), 3: (9, 25, 31, 39)}
    records_ = [record("m", c.column, s, float(v[i]), MACHINE_A) for s, v in values.items()
                for i, c in enumerate(cells)]
    ranking = analysis.analyse(table, table.plan, None, records_).ranking
    assert ranking.tau == 1.0
    assert ranking.p == pytest.approx(1 / 24)  # one of the 4! orders, one-sided
    assert ranking.verdict == "held"
    assert ranking.distinct < analysis.MIN_DISTINCT_BOOTSTRAP
    from tfklgan.reproduce import report
    text = report.ranking_text(ranking, table.plan)
    assert "takes only" in text and "gives no interval" in text and "95% bootstrap" not in text


def test_the_small_data_study_is_sized_and_its_cells_differ_in_the_augmentation_alone():
    from tfklgan.reproduce import ReproduceOptions, cell_config, power
    table = TABLES["small_data_study"]
    plan = table.plan
    assert plan.purpose == design.CONFIRMATORY and plan.problems() == []
    assert plan.n == 19 == power.blocks_for_power(60.0, 73.1, 0.05 / 3, 0.8)
    assert not set(plan.seeds + plan.spare_seeds) & set(
        TABLES["diffaugment_study"].plan.seeds + TABLES["diffaugment_study"].plan.spare_seeds)
    options = ReproduceOptions(root=ROOT, protocol="cpu")
    none, diffaugment, adaptive = (
        cell_config(c, 501, options, "runs/x", "small_data_study").validate().flat()
        for c in table.cells)
    assert (none["max_examples"], none["eval_split"], none["eval_real_samples"]) == \
        (500, "validation", 500)
    assert {k for k in none if none[k] != diffaugment[k]} == {"augment"}
    assert {k for k in none if none[k] != adaptive[k]} == {"augment", "ada_speed_images"}
    assert adaptive["ada_pipeline"] == "bgc" and none["method"] == "r1gan"
