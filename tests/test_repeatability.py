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
from tfklgan.reproduce.report import run_fingerprint
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
        published = run_fingerprint(json.load(handle))
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
