"""The table harness at a tiny scale on mnist_sample."""

import csv
import json
import math
import os
import signal

import numpy as np
import pytest
import tensorflow as tf
from test_training import ROOT

from tfklgan import fingerprint
from tfklgan.reproduce import (
    PROTOCOLS,
    TABLES,
    ReproduceOptions,
    RunPreempted,
    cap_onednn_isa,
    cell_config,
    kendall_tau,
    planned_runs,
    prediction_interval,
    publish,
    ranks,
    reproduce,
)
from tfklgan.reproduce import report as report_lib
from tfklgan.reproduce.records import RunRecord


def record(method, column, seed, fid, machine=None, **scores):
    """A finished run's record with the given scores (for report tests)."""
    return RunRecord(method=method, column=column, seed=seed, steps=10,
                     scores={"fid": fid, **scores}, settings={}, protocol={},
                     machine=machine or {"cpu": "test"}, train_seconds=1.0, timed_from_step=0,
                     logdir="runs/x")


def _files(directory):
    """{relative path: bytes} of every file under `directory`."""
    found = {}
    for folder, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, directory)] = handle.read()
    return found


def sigterm_in_first_training_segment(monkeypatch):
    """Sends this process SIGTERM as the first training segment's data stream
    is made; returns the list that records it."""
    from tfklgan import training
    real_stream = training.data_lib.batch_stream
    sent = []

    def stream_then_signal(*args, **kwargs):
        if "start_batch" in kwargs and not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)
        return real_stream(*args, **kwargs)

    monkeypatch.setattr(training.data_lib, "batch_stream", stream_then_signal)
    return sent


@pytest.mark.slow
def test_klgan_table1_tiny_proxy(tmp_path, monkeypatch):
    options = ReproduceOptions(
        scale=0.0001, seeds=[1, 2], methods=["klgan"], dataset="mnist_sample",
        width=4, batch_size=16, eval_points=2, min_eval_samples=64,
        feature_network="classifier", cache_dir=str(tmp_path / "cache"),
        results_dir=str(tmp_path / "results"), root=ROOT)
    # SIGTERM in the first run: it stops with its checkpoint and is not recorded
    # as finished (it once was, scored at the step it stopped and never rerun)
    sent = sigterm_in_first_training_segment(monkeypatch)
    previous = signal.signal(signal.SIGTERM, lambda *_: pytest.fail("SIGTERM not caught"))
    try:
        with pytest.raises(RunPreempted, match="stopped by SIGTERM after step 0 of .*run the "
                                               "same command again"):
            reproduce("klgan_table1", options)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert sent
    runs = os.path.join(tmp_path, "results", "klgan_table1", "runs")
    assert os.listdir(runs) == ["klgan-without_MBD-seed1"]
    assert not os.path.exists(os.path.join(runs, "klgan-without_MBD-seed1", "result.json"))
    out_dir, results = reproduce("klgan_table1", options)  # resumes it, then the others
    assert len(results) == 4  # with/without MBD x 2 seeds
    assert all(math.isfinite(r.scores["fid"]) for r in results)
    table = open(os.path.join(out_dir, "table.md")).read().splitlines()
    rows = [line for line in table if line.startswith("| klgan |")]
    assert len(rows) == 1
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 5  # method, paper/ours without MBD, paper/ours with MBD
        assert "(n=2)" in cells[2] and "(n=2)" in cells[4]
    assert any("20.20 ± 2.00" in line for line in table)
    text = "\n".join(table)
    assert "classifier:sha256=" in text  # the shipped MNIST classifier
    # the header states what ran: the whole 4,500-digit train split, width 4, batch 16
    assert "train images 4500" in text and "width 4" in text and "batch size 16" in text
    assert "64 generated images against 64 real images of the validation split" in text
    assert "Kendall's tau between the paper's ranking and ours" in text
    assert "| klgan, with MBD |" in text.split("## Fidelity and diversity")[1]
    # every run records the kernel fingerprint it trained on; the table counts runs per one
    machine = results[0].machine
    # and the commit of the code that trained it, and its time apart from stops
    assert len(results[0].commit) == 40 and results[0].dirty in (True, False)
    assert results[0].stopped_seconds == 0.0 and results[0].train_seconds > 0
    assert machine["cores"] == os.cpu_count() and machine["cpu"] and machine["tensorflow"]
    assert set(fingerprint.FIELDS) <= set(machine)
    assert f"{fingerprint.text(machine)}: 4." in text
    with open(os.path.join(results[0].logdir, "run.json")) as handle:
        assert json.load(handle)["fingerprint"] == machine
    with open(os.path.join(out_dir, "table.csv")) as handle:
        assert len(list(csv.DictReader(handle))) == 4
    assert os.listdir(os.path.join(out_dir, "plots")) == ["fid_klgan.png"]
    # TensorBoard's HParams dashboard: one run folder each, settings and final scores
    import glob
    hparams_runs = sorted(os.listdir(os.path.join(out_dir, "hparams")))
    assert hparams_runs == sorted(os.path.basename(r.logdir) for r in results)
    tags = {value.tag for path in glob.glob(os.path.join(out_dir, "hparams", hparams_runs[0],
                                                         "events.out.tfevents.*"))
            for event in tf.compat.v1.train.summary_iterator(path)
            for value in event.summary.value}
    assert "_hparams_/session_start_info" in tags and {"final/fid", "final/recall"} <= tags
    assert len(os.listdir(os.path.join(out_dir, "grids"))) == 4
    # finished cells are not rerun
    mtimes = {r.logdir: os.path.getmtime(os.path.join(r.logdir, "result.json"))
              for r in results}
    reproduce("klgan_table1", options)
    assert all(os.path.getmtime(os.path.join(d, "result.json")) == t for d, t in mtimes.items())
    # a run killed after training, before scoring, resumes at its last step; its
    # seconds say that they cover none of its training
    assert [r.timed_from_step for r in results] == [0] * 4
    os.remove(os.path.join(results[0].logdir, "result.json"))
    _, resumed = reproduce("klgan_table1", options)
    assert resumed[0].logdir == results[0].logdir
    assert resumed[0].timed_from_step == results[0].steps
    assert resumed[0].scores["fid"] == pytest.approx(results[0].scores["fid"], rel=1e-6)
    # --report_only writes the table of the finished runs and trains nothing
    _, reported = reproduce("klgan_table1", ReproduceOptions(**{**options.__dict__,
                                                                "report_only": True,
                                                                "seeds": [1, 2, 3]}))
    assert len(reported) == 4 and not any("seed3" in r.logdir for r in reported)
    # --rescore re-evaluates the final generators without training: same generator,
    # same protocol, so the same scores; and no new checkpoint
    checkpoints = {d: sorted(os.listdir(os.path.join(d, "checkpoints"))) for d in mtimes}
    _, rescored = reproduce("klgan_table1", ReproduceOptions(**{**options.__dict__,
                                                                "rescore": True}))
    for before, after in zip(results, rescored, strict=True):
        assert after.scores["fid"] == pytest.approx(before.scores["fid"], rel=1e-6)
        assert after.steps == before.steps
    assert all(os.path.getmtime(os.path.join(d, "result.json")) > t for d, t in mtimes.items())
    assert checkpoints == {d: sorted(os.listdir(os.path.join(d, "checkpoints")))
                           for d in mtimes}
    # a published run keeps only its records: --rescore leaves it as it is
    import shutil
    shutil.rmtree(os.path.join(results[0].logdir, "checkpoints"))
    _, again = reproduce("klgan_table1", ReproduceOptions(**{**options.__dict__,
                                                             "rescore": True}))
    assert again[0].scores["fid"] == rescored[0].scores["fid"]
    # --publish: the records (not the weights) into the repository's results with
    # paths relative to it, a seed at a time; the table is every published run's
    repository = tmp_path / "repository"
    published = repository / "docs" / "results"
    one_seed = ReproduceOptions(**{**options.__dict__, "rescore": False, "seeds": [1]})
    table_dir, new = publish("klgan_table1", one_seed, str(published), str(repository))
    assert len(new) == 2 and "(n=1)" in open(os.path.join(table_dir, "table.md")).read()
    _, new = publish("klgan_table1", options, str(published), str(repository))
    assert len(new) == 2 and all("seed2" in path for path in new)
    for path in new:
        assert sorted(os.listdir(path)) == ["config.json", "eval.csv", "metrics.csv",
                                            "result.json", "run.json"]
        with open(os.path.join(path, "result.json")) as handle:
            record = json.load(handle)
        name = os.path.basename(path)
        assert record["logdir"] == f"docs/results/klgan_table1/runs/{name}"
        assert record["sample_grid"].startswith("docs/results/klgan_table1/grids/")
        assert os.path.isfile(repository / record["sample_grid"])
    text = open(os.path.join(table_dir, "table.md")).read()
    assert "(n=2)" in text and str(tmp_path) not in text
    assert len(os.listdir(os.path.join(table_dir, "grids"))) == 4
    assert len(os.listdir(os.path.join(table_dir, "hparams"))) == 4
    # publishing again changes nothing, from any working directory: not a byte,
    # not a file name (TensorBoard's event files are named by time and process)
    monkeypatch.chdir(tmp_path)
    before = _files(table_dir)
    assert publish("klgan_table1", options, str(published), str(repository))[1] == []
    assert _files(table_dir) == before
    # a different run under a published name is refused, the published one kept
    source = os.path.join(results[1].logdir, "result.json")
    with open(source) as handle:
        changed = {**json.load(handle), "fid": 1.0}
    with open(source, "w") as handle:
        json.dump(changed, handle)
    target = os.path.join(table_dir, "runs", os.path.basename(results[1].logdir), "result.json")
    before = open(target).read()
    with pytest.raises(ValueError, match="already holds another run .fid .*move it away"):
        publish("klgan_table1", options, str(published), str(repository))
    assert open(target).read() == before
    with pytest.raises(ValueError, match="--results_dir is the published folder"):
        publish("klgan_table1", options, options.results_dir)


def test_every_table_cell_has_a_valid_flagfile():
    options = ReproduceOptions(root=ROOT)
    for table in TABLES.values():
        for cell in table.cells:
            config = cell_config(cell, table.plan.seeds[0], options, "runs/x").validate()
            assert config.objective.method in cell.flagfile or cell.method in cell.flagfile


def test_unknown_table_and_method():
    with pytest.raises(ValueError, match="unknown table"):
        reproduce("table9", ReproduceOptions(root=ROOT))
    with pytest.raises(ValueError, match="not in mnist_table"):
        reproduce("mnist_table", ReproduceOptions(root=ROOT, methods=["klgan"]))


def test_kendall_tau_matches_scipy():
    import scipy.stats
    rng = np.random.RandomState(0)
    for _ in range(20):
        a = rng.randint(0, 5, 8).astype(float)  # with ties
        b = rng.normal(size=8)
        expected = scipy.stats.kendalltau(a, b).statistic
        assert kendall_tau(a, b) == pytest.approx(expected, abs=1e-12)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    assert ranks([30.0, 10.0, 20.0, 10.0], higher_is_better=False) == [4, 1, 3, 1]
    assert ranks([1.5, 2.0], higher_is_better=True) == [2, 1]


def test_cpu_protocol_runs_the_authors_settings_on_the_digits():
    options = ReproduceOptions(root=ROOT, protocol="cpu")
    protocol = PROTOCOLS["cpu"]["klgan_table1"]
    table = TABLES["klgan_table1"]
    for cell in table.cells:
        config = cell_config(cell, 2, options, "runs/x", "klgan_table1").validate()
        assert (config.data.name, config.network.width, config.run.batch_size,
                config.run.steps) == ("mnist_sample", protocol.width, protocol.batch_size,
                                      protocol.steps)
        assert config.data.channel_count == 1 and config.data.image_size == 32
        assert config.run.seed == 2 and config.run.precision == "float32"
        assert config.network.init == "torch"  # the authors' PyTorch initialisation
        evaluation = config.evaluation
        assert evaluation.real_samples == 4500 and evaluation.real_split == "train"
        assert evaluation.num_samples >= 2000 and evaluation.feature_network == "classifier"
        if cell.method == "klgan":
            assert config.objective.kl_stats == "reference_code"
        else:  # G step, then a D step on the images it generated
            assert config.objective.generator_first and config.objective.reuse_generated
    celeba = cell_config(TABLES["celeba64_sn_table"].cells[1], 1, options, "runs/x",
                         "celeba64_sn_table").validate()
    assert celeba.data.image_size == 64 and celeba.network.spectral_norm_iterations == 1
    assert celeba.data.max_examples is None  # the whole digit set, not CelebA's subset size


def test_protocol_cannot_be_mixed_with_ad_hoc_overrides(tmp_path):
    with pytest.raises(ValueError, match="drop --width, --scale"):
        reproduce("klgan_table1", ReproduceOptions(root=ROOT, protocol="cpu", width=8,
                                                   scale=0.5, results_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="no protocol 'gpu'"):
        reproduce("klgan_table1", ReproduceOptions(root=ROOT, protocol="gpu",
                                                   results_dir=str(tmp_path)))
    assert not os.listdir(tmp_path)  # nothing left behind


def test_ranking_section_and_separation_verdict():
    table = TABLES["klgan_table1"]
    summary = [("klgan", "with MBD", "fid", (20.2, 2.0), (10.0, 1.0), 3),
               ("klgan", "without MBD", "fid", (237.4, 102.8), (30.0, 2.0), 3),
               ("hinge", "with MBD", "fid", (151.9, 20.0), (20.0, 5.0), 3)]
    text = "\n".join(report_lib._ranking_lines(table, summary))
    assert "| klgan, with MBD | 20.20 | 1 | 10.00 ± 1.00 | 1 |" in text
    assert "| klgan, without MBD | 237.40 | 3 | 30.00 ± 2.00 | 3 |" in text
    assert "Kendall's tau between the paper's ranking and ours: 1.00 (3 cells)" in text
    assert "gap 20.00 vs 3 x the best cell's seed std 3.00: the cells separate" in text
    one_seed = [(m, c, name, paper, (ours[0], float("nan")), 1)
                for m, c, name, paper, ours, _ in summary]
    text = "\n".join(report_lib._ranking_lines(table, one_seed))
    assert "gap 20.00; the best cell has one seed, so no seed std to hold it against: " \
        "not assessed." in text and "do not separate" not in text


@pytest.mark.slow
def test_offline_table_names_flags_it_accepts_and_leaves_nothing(tmp_path):
    from test_training import run_script
    proc = run_script(os.path.join(ROOT, "scripts", "reproduce.py"), "klgan_table1",
                      "--methods=klgan", "--seeds=1", f"--celeba_dir={tmp_path / 'none'}",
                      f"--data_dir={tmp_path / 'tfds'}", f"--results_dir={tmp_path / 'out'}")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "error:" in proc.stderr and "Unknown command line flag" not in proc.stderr
    assert not (tmp_path / "out").exists()  # no empty results/<table>/ left behind


def test_cpu_protocol_caps_onednn_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert cap_onednn_isa() == "AVX2" == os.environ["ONEDNN_MAX_CPU_ISA"]
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")  # the user's choice stands
    assert cap_onednn_isa() == "AVX512_CORE"


def test_prediction_interval_of_one_new_run():
    """mean ± t(0.975, n-1) · std · sqrt(1 + 1/n): for the published KL-GAN
    cell (FID 149.9/114.6/141.1) a new run's 95% interval is [43.9, 226.5]."""
    import scipy.stats
    values = [json.load(open(os.path.join(ROOT, "docs", "results", "klgan_table1", "runs",
                                          f"klgan-without_MBD-seed{seed}", "result.json")))["fid"]
              for seed in (1, 2, 3)]
    low, high = prediction_interval(values)
    mean, std = np.mean(values), np.std(values, ddof=1)
    half = scipy.stats.t.ppf(0.975, 2) * std * math.sqrt(1 + 1 / 3)
    assert (low, high) == pytest.approx((mean - half, mean + half), rel=1e-12)
    assert low < 130.91 < high and (round(low, 1), round(high, 1)) == (43.9, 226.5)
    assert all(math.isnan(v) for v in prediction_interval([150.0]))



def test_the_mbd_study_holds_images_seen_fixed_and_varies_only_its_factors():
    options = ReproduceOptions(root=ROOT, protocol="cpu")
    table = TABLES["mbd_study"]
    configs = {c.column: cell_config(c, 1, options, "runs/x", "mbd_study") for c in table.cells}
    assert len(configs) == 7 and len(set(run_dir_names(table))) == 7
    for column, config in configs.items():
        assert config.run.steps * config.run.batch_size == 640_000, column
        assert config.network.width == 16 and config.data.name == "mnist_sample"
        assert config.network.minibatch_discrimination == ("with MBD" in column)
    assert {c.run.batch_size for c in configs.values()} == {64, 256, 1024}
    assert configs["batch 64, with MBD"].optimizer.d_lr == 4e-5  # the paper cell's halving
    assert configs["batch 64, with MBD, D lr 8e-5"].optimizer.d_lr == 8e-5
    assert configs["batch 1024, without MBD"].run.steps == 625
    # the paper's MBD cell is two changes (the layer and D's halved learning
    # rate): one contrast each, the layer's between cells at one D learning rate
    [layer] = [c for c in table.plan.contrasts if "layer alone" in c.label]
    (_, with_), (_, without) = layer.cells
    assert configs[without].optimizer.d_lr == configs[with_].optimizer.d_lr == 8e-5
    assert configs[with_].network.minibatch_discrimination
    assert configs[with_].replace(minibatch_discrimination=False) == configs[without]
    assert PROTOCOLS["cpu"]["mbd_study"].eval_points == 10  # the FID curves


def test_the_sn32_table_runs_the_sn_cells_at_32x32_on_dcgan32_and_learns_long_enough():
    options = ReproduceOptions(root=ROOT, protocol="cpu")
    table = TABLES["sn32_table"]
    configs = {c.method: cell_config(c, 3, options, "runs/x", "sn32_table").validate()
               for c in table.cells}
    assert list(configs) == ["dcgan", "sn1_dcgan", "sn2_dcgan", "sn3_dcgan"]
    for k, config in enumerate(configs.values()):
        assert config.network_config().name == "dcgan32" and config.data.image_size == 32
        assert config.network.spectral_norm_iterations == k  # 0: BatchNorm in D
        assert (config.data.name, config.data.channel_count) == ("mnist_sample", 1)
        assert (config.network.width, config.run.batch_size, config.run.steps,
                config.run.seed) == (16, 64, 8000, 3)
    assert PROTOCOLS["cpu"]["sn32_table"].eval_points == 8  # FID every 1,000 steps
    assert len(set(run_dir_names(table))) == 4
    # the 64x64 table keeps its own networks
    assert cell_config(TABLES["celeba64_sn_table"].cells[0], 1, options, "runs/x",
                       "celeba64_sn_table").network_config().name == "dcgan64"


def test_the_long_table1_trains_every_cell_10000_steps_as_the_mbd_study_trains_klgan():
    """Its KL-GAN cells have the MBD study's batch-64 settings, but are runs of
    their own: its plan's seeds are new, so no run repeats the pilot's."""
    options = ReproduceOptions(root=ROOT, protocol="cpu")
    table = TABLES["klgan_table1_long"]
    assert [(c.method, c.column, c.flagfile) for c in table.cells] == \
        [(c.method, c.column, c.flagfile) for c in TABLES["klgan_table1"].cells]
    protocol = PROTOCOLS["cpu"]["klgan_table1_long"]
    assert (protocol.steps, protocol.eval_points) == (10_000, 10)
    assert table.plan.written == "before the runs" and table.plan.seeds == (201, 202, 203)
    assert not set(table.plan.seeds + table.plan.spare_seeds) & set(
        TABLES["mbd_study"].plan.seeds)
    # 13 distinct contrasts: its stored plan declared KL-GAN's MBD effect twice
    assert len(table.plan.contrasts) == 13 and table.plan.ranking == "fid"
    configs = {(c.method, c.column): cell_config(c, 2, options, "runs/x", "klgan_table1_long")
               for c in table.cells}
    for config in configs.values():
        assert (config.network.width, config.run.batch_size, config.run.steps) == \
            (16, 64, 10_000)
        assert (config.data.name, config.evaluation.feature_network) == \
            ("mnist_sample", "classifier")
    # its KL-GAN cells are the MBD study's batch-64 cells, setting for setting
    study = {c.column: c for c in TABLES["mbd_study"].cells}
    for column in ("without MBD", "with MBD"):
        theirs = cell_config(study[f"batch 64, {column}"], 2, options, "runs/x", "mbd_study")
        assert configs[("klgan", column)] == theirs
    assert PROTOCOLS["cpu"]["mbd_study"].eval_points == protocol.eval_points
    # the 2,000-step proxy keeps its length
    assert cell_config(TABLES["klgan_table1"].cells[0], 1, options, "runs/x",
                       "klgan_table1").run.steps == 2000


def run_dir_names(table):
    from tfklgan.reproduce.records import run_dir
    return [run_dir("out", cell, 1) for cell in table.cells]


def test_a_study_reports_a_row_per_cell_and_a_table_a_row_per_method():
    from tfklgan.reproduce.tables import Cell, Table
    cells = tuple(Cell(m, c, "x.flags", {"fid": (20.0, 2.0)} if c == "b" else {})
                  for m in ("m", "n") for c in ("a", "b"))
    results = [record(m, c, seed, v) for m in ("m", "n") for c in ("a", "b")
               for seed, v in enumerate((100.0, 110.0) if c == "a" else (50.0,))]
    by_method = Table("t", ("a", "b"), ("fid",), cells, "", None)
    lines, summary = report_lib.main_table_lines(by_method, results)
    assert lines[0] == "| method | paper fid (a) | ours fid (a) | paper fid (b) | ours fid (b) |"
    assert lines[2] == "| m | n/a | 105.00 ± 7.07 (n=2) | 20.00 ± 2.00 | 50.00 (n=1) |"
    assert len(lines) == 4 and len(summary) == 4
    study = Table("s", ("a", "b"), ("fid",), cells, "", None, rows_by="cell")
    lines, study_summary = report_lib.main_table_lines(study, results)
    assert lines[0] == "| cell | paper fid | ours fid |"
    assert lines[2:4] == ["| m, a | n/a | 105.00 ± 7.07 (n=2) |",
                          "| m, b | 20.00 ± 2.00 | 50.00 (n=1) |"]
    assert len(lines) == 6 and sorted(map(str, study_summary)) == sorted(map(str, summary))
    assert TABLES["mbd_study"].rows_by == "cell" and TABLES["klgan_table1"].rows_by == "method"


def test_the_bf16_study_runs_table1s_klgan_cells_in_both_precisions_uncapped(monkeypatch):
    options = ReproduceOptions(root=ROOT, protocol="cpu")
    table = TABLES["bf16_study"]
    configs = {c.column: cell_config(c, 1, options, "runs/x", "bf16_study") for c in table.cells}
    assert len(configs) == 4 and len(set(run_dir_names(table))) == 4
    table1 = {c.column: cell_config(c, 1, options, "runs/x", "klgan_table1")
              for c in TABLES["klgan_table1"].cells if c.method == "klgan"}
    for column, config in configs.items():
        mbd, precision = column.split(", ")
        assert config.run.precision == precision
        assert config.replace(precision="float32") == table1[mbd]  # only the precision differs
    assert PROTOCOLS["cpu"]["bf16_study"].onednn_max_isa is None
    assert PROTOCOLS["cpu"]["klgan_table1"].onednn_max_isa == "AVX2"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert cap_onednn_isa(None) == "" and "ONEDNN_MAX_CPU_ISA" not in os.environ
    assert [c.label for c in table.plan.contrasts] == [
        f"bf16 against float32, {mbd}, {metric}" for mbd in ("without MBD", "with MBD")
        for metric in ("fid", "recall")]


def test_progress_estimates_time_left_from_the_runs_this_command_trained(tmp_path, monkeypatch,
                                                                          capsys):
    from tfklgan.reproduce import runner
    options = ReproduceOptions(root=ROOT, protocol="cpu", seeds=[1], progress=True,
                               results_dir=str(tmp_path))
    runs = planned_runs("mbd_study", options)
    out_dir = os.path.join(tmp_path, "mbd_study")
    first = runner.run_dir(out_dir, *runs[0])
    os.makedirs(first)
    open(os.path.join(first, "result.json"), "w").write("{}")  # finished before the command
    clock = [1000.0]

    def fake_run_cell(cell, seed, options, path, table_name):
        if not os.path.isfile(os.path.join(path, "result.json")):
            clock[0] += 600.0  # every run trains for ten minutes
        return {}

    monkeypatch.setattr(runner.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(runner, "run_cell", fake_run_cell)
    monkeypatch.setattr(runner, "finished_runs", lambda *args: [])
    reproduce("mbd_study", options)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 6 and lines[0].startswith("run 2 of 7: klgan, batch 64, with MBD,")
    assert lines[0].endswith("seed 1 (0m elapsed)")  # nothing trained yet: no estimate
    # one run trained in 10 minutes, five left: 50 minutes (not 25: the finished run
    # took no time)
    assert lines[1].endswith("(10m elapsed, about 50m left)")
    assert lines[5].startswith("run 7 of 7:") and lines[5].endswith("(50m elapsed, about 10m left)")


def test_a_run_another_process_trains_is_skipped_and_the_table_goes_on(tmp_path, monkeypatch,
                                                                        capsys):
    """Two commands of one table (one per core, or per machine on a shared
    disk) share its runs: a run whose directory another training holds is left
    to it, not an error that stops the table."""
    from tfklgan import run_directory
    from tfklgan.reproduce import runner
    options = ReproduceOptions(root=ROOT, protocol="cpu", seeds=[1], methods=["klgan"],
                               progress=False, results_dir=str(tmp_path))
    out_dir = os.path.join(tmp_path, "klgan_table1")
    busy, free = (runner.run_dir(out_dir, cell, seed)
                  for cell, seed in planned_runs("klgan_table1", options))
    real_run_cell, attempted = runner.run_cell, []

    def run_cell(cell, seed, options, path, table_name):
        attempted.append(path)
        if path == busy:  # the real path: training into a locked directory
            return real_run_cell(cell, seed, options, path, table_name)
        return {"logdir": path}

    monkeypatch.setattr(runner, "run_cell", run_cell)
    monkeypatch.setattr(runner, "finished_runs", lambda *args: [])
    with run_directory.run_lock(busy):
        _, results = reproduce("klgan_table1", options)
    assert attempted == [busy, free] and results == [{"logdir": free}]
    err = capsys.readouterr().err
    assert f"skipped: another training (pid {os.getpid()}) is writing to {busy!r}" in err
    assert "1 of the 2 runs were being trained by another process" in err
    assert "--report_only writes the whole table" in err
    assert not os.path.exists(os.path.join(busy, "config.json"))  # nothing written into it


@pytest.mark.slow
def test_every_published_table_is_what_publish_writes_from_its_runs(tmp_path):
    """docs/results/<table>/table.md and table.csv are the report of the runs
    published beside them: --publish with nothing new rewrites them unchanged
    (a table edited by hand, or left behind by a change to the report, fails)."""
    import shutil
    published = os.path.join(ROOT, "docs", "results")
    tables = [t for t in TABLES if os.path.isdir(os.path.join(published, t, "runs"))]
    assert {"klgan_table1", "mbd_study", "bf16_study"} <= set(tables)
    for table in tables:  # all of them: a table shows the runs of its cells in the others
        shutil.copytree(os.path.join(published, table), tmp_path / "copy" / table)
    for table in tables:
        options = ReproduceOptions(root=ROOT, protocol="cpu", results_dir=str(tmp_path / "none"))
        _, new = publish(table, options, str(tmp_path / "copy"), ROOT)
        assert new == []
        for name in ("table.md", "table.csv"):
            with open(os.path.join(published, table, name)) as a, \
                    open(tmp_path / "copy" / table / name) as b:
                assert a.read() == b.read(), f"{table}/{name}"


@pytest.mark.slow
def test_publish_from_the_command_line_trains_and_scores_nothing(tmp_path):
    from test_training import run_script
    script = os.path.join(ROOT, "scripts", "reproduce.py")
    proc = run_script(script, "mbd_study", "--protocol=cpu", "--publish", "--verify",
                      f"--results_dir={tmp_path / 'none'}")
    assert proc.returncode == 2 and "--publish trains and scores nothing" in proc.stderr
    proc = run_script(script, "mbd_study", "--protocol=cpu", "--publish",
                      f"--results_dir={tmp_path / 'none'}",
                      f"--published_dir={tmp_path / 'published'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "published 0 new runs" in proc.stdout
    assert not (tmp_path / "published").exists()  # nothing to publish, nothing written


def test_a_study_keeps_scoring_as_its_runs_were_scored(tmp_path):
    """Runs scored before the protocol recorded `values` scored the generator's
    float output; a study that has them goes on scoring as float32, a new one
    scores uint8, and one whose runs disagree is refused."""
    import dataclasses

    from tfklgan.reproduce import records
    from tfklgan.reproduce.runner import study_values
    table = TABLES["mbd_factorial"]
    assert study_values(table, str(tmp_path)) == "uint8"
    cells = table.cells
    old = dataclasses.replace(record(cells[0].method, cells[0].column, 101, 90.0),
                              protocol={"generated_count": 10})
    os.makedirs(records.run_dir(str(tmp_path), old, 101))
    records.save(old, records.run_dir(str(tmp_path), old, 101))
    assert study_values(table, str(tmp_path)) == "float32"
    new = dataclasses.replace(record(cells[1].method, cells[1].column, 101, 80.0),
                              protocol={"values": "uint8"})
    os.makedirs(records.run_dir(str(tmp_path), new, 101))
    records.save(new, records.run_dir(str(tmp_path), new, 101))
    with pytest.raises(ValueError, match="scored as float32 and uint8; rescore them"):
        study_values(table, str(tmp_path))
