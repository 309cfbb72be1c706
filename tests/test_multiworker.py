"""MultiWorkerMirroredStrategy: two worker processes on loopback train as one
process does on the same global batches.

The workers find each other through TF_CONFIG on free local ports; every
process runs under a timeout. In float64 the weights agree to round-off: all
but the parameters whose true gradient is exactly zero (the discriminator's
last biases under KL-GAN's shift-invariant loss and WGAN's linear critic)
agree to 1e-10 relative; those get AdamW steps from round-off noise (its
update divides by the gradient's own scale) and agree to 1e-8.
"""

import csv
import json
import os
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
import warm_scripts
from test_training import ROOT, TINY, TRAIN, run_script

pytestmark = pytest.mark.slow


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_workers(args, workers=2, timeout=300, sigterm=None):
    """Runs train.py on `workers` local workers; returns their CompletedProcess-like
    (returncode, stdout, stderr) triples, chief (index 0) first. `sigterm`:
    (worker index, metrics.csv path, step) sends SIGTERM to that worker once
    the chief has logged that step."""
    cluster = [f"127.0.0.1:{p}" for p in free_ports(workers)]
    procs = []
    for index in range(workers):
        tf_config = {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps(tf_config))
        procs.append(warm_scripts.popen([sys.executable, TRAIN, "--strategy=multiworker",
                                         *args], ROOT, env))
    if sigterm:
        index, metrics, step = sigterm
        deadline = time.time() + timeout
        while procs[0].poll() is None and time.time() < deadline and not (
                metrics.exists() and f"\n{step}," in metrics.read_text()):
            time.sleep(0.02)
        procs[index].terminate()
    results = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
        results.append((proc.returncode, out, err))
    return results


def weights(checkpoint):
    reader = tf.train.load_checkpoint(checkpoint)
    return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
            if "_optimizer/_trainable_variables/" in n}


def assert_same_weights(a, b):
    assert a.keys() == b.keys() and len(a) > 10
    relative = {n: np.max(np.abs(a[n] - b[n])) / max(np.max(np.abs(a[n])), 1e-3) for n in a}
    assert max(relative.values()) < 1e-8, max(relative.items(), key=lambda kv: kv[1])
    close = sum(r < 1e-10 for r in relative.values())
    assert close >= len(relative) - 2, sorted(relative.items(), key=lambda kv: -kv[1])[:4]


COMMON = ["--precision=float64", "--batch_size=16", "--checkpoint_every=2", "--log_every=1",
          *TINY]


def check_two_workers_equal_one_process(tmp_path, method, steps=4):
    """Trains `steps` steps in one process and on two workers; returns the workers' run."""
    args = [*method, f"--steps={steps}", *COMMON]
    single = run_script(TRAIN, *args, f"--logdir={tmp_path / 'single'}")
    assert single.returncode == 0, single.stderr[-3000:]
    results = run_workers([*args, f"--logdir={tmp_path / 'multi'}"])
    for code, out, err in results:
        assert code == 0, err[-3000:]
        assert f"done: {steps} steps" in out
    run = tmp_path / "multi"
    assert json.load(open(run / "run.json"))["replicas"] == 2
    for name in ("config.json", "metrics.csv", f"checkpoints/ckpt-{steps}.index", "train"):
        assert (run / name).exists(), name  # the chief's run directory is complete
    assert_same_weights(weights(str(tmp_path / "single" / "checkpoints" / f"ckpt-{steps}")),
                        weights(str(run / "checkpoints" / f"ckpt-{steps}")))
    scratch = [p for p in os.listdir(os.environ.get("TMPDIR", "/tmp"))
               if p.startswith("tfklgan-worker-")]
    assert not scratch  # the other worker left nothing behind
    return run


def test_two_workers_equal_one_process_alternating_with_labels_critic_batches_and_ema(tmp_path):
    """An alternating method on (images, labels) batches (which once failed in
    Keras' symbolic build under MWMS), grouped for n_critic = 2, with EMA.
    The gradient penalty's equality under a strategy is tested with
    MirroredStrategy (tests/test_distribute.py), which shares this code path."""
    check_two_workers_equal_one_process(tmp_path, [
        "--method=cgan", "--network=cgan28", "--image_size=28", "--latent_distribution=uniform",
        "--ema_decay=0.9", "--n_critic=2"])


def test_two_workers_equal_one_process_and_sigterm_to_one_then_resume_is_uninterrupted(
        tmp_path):
    """SIGTERM to the non-chief worker in training: TensorFlow's handler makes
    both save at one step and stop (exit 143); both started with --resume
    end with the uninterrupted run's weights, every step logged once."""
    method = ["--method=klgan", "--minibatch_discrimination"]
    whole = check_two_workers_equal_one_process(tmp_path, method, steps=12)
    logdir = tmp_path / "resumed"
    args = [*method, *COMMON, "--steps=12", f"--logdir={logdir}"]
    stopped = run_workers(args, sigterm=(1, logdir / "metrics.csv", 3))
    steps = set()
    for code, _, err in stopped:
        assert code == 143, err[-3000:]
        found = re.search(r"stopped by SIGTERM after step (\d+): ", err)
        assert found, err[-3000:]
        steps.add(int(found.group(1)))
    assert len(steps) == 1 and 3 < (step := steps.pop()) < 12  # both at the same step
    assert f"checkpoint {logdir / 'checkpoints' / f'ckpt-{step}'} saved" in stopped[0][2]
    assert "the chief saved the checkpoint" in stopped[1][2]
    with open(logdir / "metrics.csv", newline="") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == list(range(1, step + 1))
    again = run_workers([*args, "--resume"])
    assert all(code == 0 for code, _, _ in again), again[0][2][-3000:]
    a = weights(str(whole / "checkpoints" / "ckpt-12"))
    b = weights(str(logdir / "checkpoints" / "ckpt-12"))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    with open(logdir / "metrics.csv", newline="") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == list(range(1, 13))
