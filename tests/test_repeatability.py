"""Repeatability: a published proxy run repeats bit for bit on its own kernel
fingerprint, and within the measured tolerance on any other.

The record `docs/results/repeatability.json` holds the tolerance with the
measurements behind it, and the first logged row of the published run as
repeated on each fingerprint where it was run."""

import csv
import json
import os
import subprocess
import sys

import pytest
from test_training import ROOT

from tfklgan import fingerprint
from tfklgan.reproduce.records import RunRecord
from tfklgan.reproduce.verify import relative_violations, repetition_reference

RECORD = os.path.join(ROOT, "docs", "results", "repeatability.json")


def _record():
    with open(RECORD) as handle:
        return json.load(handle)


def _first_row(path):
    with open(path) as handle:
        return next(csv.DictReader(handle))


ZEN5 = {"cpu": "AMD EPYC", "cpu_family": "26", "cpu_model": "2", "cores": 2,
        "isa": ["avx", "avx2", "avx512f", "fma"], "onednn": "1", "onednn_max_cpu_isa": "AVX2"}
SAPPHIRE_RAPIDS = {"cpu": "Intel(R) Xeon(R) Platinum 8481C", "vendor": "GenuineIntel",
                   "cpu_family": "6", "cpu_model": "143", "cores": 2,
                   "caches": {"L1d": "48K", "L1i": "32K", "L2": "2048K", "L3": "107520K"},
                   "isa": ["amx_bf16", "avx", "avx2", "avx512f", "fma"], "onednn": "1",
                   "onednn_max_cpu_isa": "AVX2", "intra_op_threads": 0, "tensorflow": "2.21.0",
                   "machine": "x86_64"}


def test_the_published_run_test_takes_the_branch_of_the_fingerprint():
    """Faked fingerprints: bit for bit on the fingerprint that made the run (a
    record made before caches were recorded matches on the rest) or on one
    with a recorded repeat; the tolerance on every other CPU, TensorFlow,
    core count or oneDNN setting."""
    published = fingerprint.complete(ZEN5, "2.21.0")  # as the published record reads
    row, zen3_row = {"step": "50", "skl": "20.49"}, {"step": "50", "skl": "20.50"}
    zen5_now = {**published, "vendor": "AuthenticAMD", "machine": "x86_64",
                "caches": {"L1d": "48K", "L2": "1024K"}, "intra_op_threads": 0}
    zen3_now = {**zen5_now, "cpu_family": "25", "cpu_model": "1",
                "isa": ["avx", "avx2", "fma"], "caches": {"L1d": "32K", "L2": "512K"}}
    repeats = [{"fingerprint": zen3_now, "row": zen3_row}]
    assert repetition_reference(zen5_now, published, row, repeats) == ("bit-equal", row)
    assert repetition_reference(zen3_now, published, row, repeats) == ("bit-equal", zen3_row)
    assert repetition_reference(zen3_now, published, row, []) == ("tolerance", row)
    assert repetition_reference(SAPPHIRE_RAPIDS, published, row, repeats) == ("tolerance", row)
    # any one field changed from a fully recorded repeat: the tolerance
    recorded = [{"fingerprint": zen5_now, "row": zen3_row}]
    for change in ({"tensorflow": "2.22.0"}, {"cores": 4}, {"onednn": "0"},
                   {"onednn_max_cpu_isa": ""}, {"intra_op_threads": 1}, {"machine": "aarch64"},
                   {"caches": {"L1d": "32K", "L2": "2048K"}}, {"isa": ["avx", "avx2"]}):
        assert repetition_reference({**zen5_now, **change}, SAPPHIRE_RAPIDS, row,
                                    recorded) == ("tolerance", row), change
    assert repetition_reference(zen5_now, SAPPHIRE_RAPIDS, row, recorded) == \
        ("bit-equal", zen3_row)
    same, differences = fingerprint.compare(SAPPHIRE_RAPIDS, published)
    assert not same and any(d.startswith("vendor: GenuineIntel vs AuthenticAMD")
                            for d in differences)


def test_the_fingerprint_line_names_every_field_that_tables_group_runs_by():
    record = {"cpu": "AMD EPYC", "vendor": "AuthenticAMD", "cpu_family": "25",
              "cpu_model": "17", "cores": 2, "onednn": "1", "onednn_max_cpu_isa": "AVX2",
              "intra_op_threads": 0, "tensorflow": "2.21.0"}
    assert fingerprint.text(record) == ("AMD EPYC (AuthenticAMD family 25 model 17), 2 cores, "
                                        "oneDNN capped at AVX2, TF 2.21.0")
    # a run with one intra-op thread is another fingerprint, and its line says so
    one = {**record, "intra_op_threads": 1}
    assert not fingerprint.compare(record, one)[0]
    assert fingerprint.text(one) == ("AMD EPYC (AuthenticAMD family 25 model 17), 2 cores, "
                                     "oneDNN capped at AVX2, 1 intra-op thread, TF 2.21.0")
    assert ", 4 intra-op threads," in fingerprint.text({**record, "intra_op_threads": 4})


def test_relative_violations_name_each_column_beyond_the_tolerance():
    reference = {"step": "50", "skl": "20.0", "d_grad_norm": "50.0", "time": "1.0"}
    assert relative_violations({"step": "50", "skl": "20.5", "d_grad_norm": "51.0",
                                "time": "9"}, reference, 3e-2) == []
    problems = relative_violations({"step": "50", "skl": "21.0", "d_grad_norm": "50"},
                                   reference, 3e-2)
    assert problems == ["skl: 21 vs 20 (relative 5.00e-02)"]
    assert relative_violations({"skl": "nan", "d_grad_norm": "50", "step": "50"}, reference,
                               3e-2)[0].startswith("skl: nan")
    assert relative_violations({"skl": "20"}, reference, 3e-2) == ["step: missing",
                                                                    "d_grad_norm: missing"]


def test_the_tolerance_separates_kernel_noise_from_another_run():
    """The record's tolerance lies above every measured kernel-set deviation
    and below the deviation of another seed in every column."""
    record = _record()
    tolerance = record["relative_tolerance"]
    kernel_sets = record["tolerance_measurements"]["kernel_sets"]
    assert len(kernel_sets) >= 5
    assert all(max(k["relative"].values()) < tolerance for k in kernel_sets)
    other_seed = record["tolerance_measurements"]["another_seed"]["relative"]
    assert len(other_seed) == 5 and all(value > tolerance for value in other_seed.values())


@pytest.mark.slow
def test_a_published_proxy_run_repeats(tmp_path):
    """The first 50 steps of the published Table I proxy run (KL-GAN with MBD,
    seed 1), trained here under the CPU protocol: every logged metric to the
    last digit where this CPU's fingerprint has a recorded repeat (or made
    the run), within the measured tolerance elsewhere."""
    record = _record()
    published_dir = os.path.join(ROOT, record["run"])
    script = tmp_path / "repeat.py"
    script.write_text(
        "import sys\n"
        "import tfklgan\n"
        "from tfklgan.config import TrainConfig\n"
        "from tfklgan.reproduce import cap_onednn_isa\n"
        "cap_onednn_isa()\n"
        "config = TrainConfig.from_json(open(sys.argv[1]).read())\n"
        "tfklgan.train(config.replace(steps=int(sys.argv[3]), logdir=sys.argv[2]))\n")
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    proc = subprocess.run([sys.executable, str(script),
                           os.path.join(published_dir, "config.json"), str(tmp_path / "run"),
                           str(record["steps"])], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "run" / "run.json") as handle:
        here = json.load(handle)["fingerprint"]
    with open(os.path.join(published_dir, "result.json")) as handle:
        published = RunRecord.from_json(json.load(handle)).fingerprint()
    branch, reference = repetition_reference(
        here, published, _first_row(os.path.join(published_dir, "metrics.csv")),
        record["repeats"])
    ours = _first_row(tmp_path / "run" / "metrics.csv")
    assert ours["step"] == str(record["steps"]) and len(ours) > 5
    if branch == "bit-equal":
        wall_clock = ("time", "images_per_sec")
        assert {k: v for k, v in ours.items() if k not in wall_clock} == \
            {k: v for k, v in reference.items() if k not in wall_clock}
    else:
        assert relative_violations(ours, reference, record["relative_tolerance"]) == [], (
            f"on {fingerprint.text(here)}")


def test_verify_says_bit_equal_on_the_same_fingerprint_and_inside_elsewhere(tmp_path):
    """compare_run with faked fingerprints: the published KL-GAN cell (FID
    149.9/114.6/141.1). On the published run's fingerprint an identical rerun is
    "bit-equal" and any difference "differs" (a fault); on another fingerprint
    Intel's 130.91 is "inside" and 300 "outside"."""
    from tfklgan.reproduce.verify import compare_run, table_verdict
    published_dir, our_dir = tmp_path / "published", tmp_path / "ours"
    for folder in (published_dir, our_dir):
        os.makedirs(folder)
        (folder / "metrics.csv").write_text("step,time,skl\n50,1.0,20.49263427734375\n")
    cell = [RunRecord(method="klgan", column="without MBD", seed=s, steps=2000,
                      scores={"fid": f}, machine=ZEN5, logdir="runs/x",
                      protocol={"versions": {"tensorflow": "2.21.0"}})
            for s, f in ((1, 149.87865226336243), (2, 114.57), (3, 141.06))]
    published = cell[0]
    same = published.replace(machine={**ZEN5, "vendor": "AuthenticAMD", "machine": "x86_64",
                                      "caches": {"L2": "1024K"}, "tensorflow": "2.21.0"})

    def verdict(ours):
        return compare_run(ours, published, cell, ("fid",), str(our_dir), str(published_dir))
    assert verdict(same)["verdict"] == "bit-equal"
    assert verdict(same.replace(scores={"fid": 149.8786522633}))["verdict"] == "differs"
    (our_dir / "metrics.csv").write_text("step,time,skl\n50,2.0,20.49265625\n")
    moved = verdict(same)
    assert moved["verdict"] == "differs" and moved["first_difference"] == \
        "metrics.csv row 1 skl: 20.49265625 vs 20.49263427734375"
    intel = published.replace(scores={"fid": 130.91}, machine=SAPPHIRE_RAPIDS)
    inside = verdict(intel)
    assert inside["verdict"] == "inside" and not inside["same_fingerprint"]
    assert inside["intervals"]["fid"]["low"] == pytest.approx(43.87, abs=0.01)
    assert verdict(intel.replace(scores={"fid": 300.0}))["verdict"] == "outside"
    assert table_verdict([inside, {**inside, "verdict": "bit-equal"}]).startswith(
        "consistent with the published table: 1 of 2 runs bit-equal")
    assert table_verdict([inside]).startswith("consistent")
    assert table_verdict([moved]).startswith("FAULT")
    assert table_verdict([verdict(intel.replace(scores={"fid": 300.0}))]).startswith("1 of 1 runs fall "
                                                                          "outside")


def test_verify_scores_the_rerun_as_the_published_runs_were_scored(tmp_path, monkeypatch):
    """The published tables scored float output (no `values` in their records):
    a rerun scored as uint8 could never be bit-equal, so --verify scores it
    as they were."""
    import importlib

    from tfklgan.reproduce import ReproduceOptions
    verify_module = importlib.import_module("tfklgan.reproduce.verify")
    seen = []

    def fake_reproduce(table_name, options):
        seen.append(options.eval_values)
        raise RuntimeError("stop here")
    monkeypatch.setattr(verify_module, "reproduce", fake_reproduce)
    options = ReproduceOptions(root=ROOT, protocol="cpu", seeds=[1], methods=["klgan"],
                               progress=False, results_dir=str(tmp_path))
    with pytest.raises(RuntimeError, match="stop here"):
        verify_module.verify("klgan_table1", options, os.path.join(ROOT, "docs", "results"))
    assert seen == ["float32"]
