"""Training from the command line and the library: outputs, resume, export, bad input."""

import csv
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
import warm_scripts
from absl import flags

from tfklgan.cli import config_from_flags, define_train_flags
from tfklgan.config import ConfigError, TrainConfig
from tfklgan.run_directory import RunDirectoryError, load_run
from tfklgan.training import TrainingDivergedError, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "scripts", "train.py")
TINY = ["--width=4", "--latent_dim=8", "--batch_size=16", "--max_examples=64",
        "--verbose=0"]


def run_script(script, *args, cwd=ROOT, script_log_defaults=False):
    """Runs a script, forked from a warm interpreter (tests/warm_scripts.py); with
    `script_log_defaults`, cold and under its own logging defaults (no
    TF_CPP_MIN_LOG_LEVEL from the environment), as a user runs it."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if script_log_defaults:  # and cold: what a user sees includes TensorFlow's start
        env.pop("TF_CPP_MIN_LOG_LEVEL")
        return subprocess.run([sys.executable, script, *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=600)
    return warm_scripts.run([sys.executable, script, *args], cwd, env)


def tiny_config(tmp_path, **kw):
    values = dict(method="klgan", dataset="mnist_sample", width=4, latent_dim=8,
                  batch_size=16, max_examples=64, steps=6, checkpoint_every=2,
                  sample_every=3, log_every=1, logdir=str(tmp_path / "run"), verbose=0,
                  minibatch_discrimination=True, ema_decay=0.5)
    values.update(kw)
    return TrainConfig.from_flat(**values)


def event_tags(logdir):
    tags = set()
    for path in glob.glob(os.path.join(logdir, "train", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


@pytest.mark.slow
def test_train_script_end_to_end(tmp_path):
    logdir, export = tmp_path / "run", tmp_path / "export"
    proc = run_script(TRAIN, "--method=klgan", "--minibatch_discrimination", "--epochs=2",
                      f"--logdir={logdir}", f"--export_dir={export}", "--log_every=1",
                      "--sample_every=2", "--ema_decay=0.9", *TINY, script_log_defaults=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "done: 8 steps" in proc.stdout  # 64 images / 16 = 4 steps per epoch
    for noise in ("oneDNN custom operations", "absl::InitializeLog", "cuda drivers", "cuInit",
                  "Sharding callback", "retracing", "`shuffle=True` was passed",
                  "remapper failed"):
        assert noise not in proc.stderr + proc.stdout, noise
    assert os.path.isfile(logdir / "checkpoints" / "ckpt-8.index")
    assert {"train/skl", "train/kl_real_gen", "train/g_grad_norm",
            "learning_rate/lr_generator", "throughput/images_per_sec",
            "samples/fixed_noise"} <= event_tags(str(logdir))
    pngs = sorted(os.listdir(logdir / "samples"))
    assert "step_0000008.png" in pngs and len(pngs) >= 4
    header = open(logdir / "metrics.csv").readline().strip().split(",")
    assert {"step", "skl", "lr_generator", "images_per_sec"} <= set(header)

    # A fresh process loads the SavedModel; its images equal the in-memory EMA generator's.
    latents = np.random.RandomState(0).normal(size=(5, 8)).astype(np.float32)
    np.save(tmp_path / "z.npy", latents)
    loader = tmp_path / "load.py"
    loader.write_text(
        "import sys, numpy as np, tensorflow as tf\n"
        "m = tf.saved_model.load(sys.argv[1])\n"
        "out = m.signatures['serving_default'](latents=tf.constant(np.load(sys.argv[2])))\n"
        "np.save(sys.argv[3], out['images'].numpy())\n"
        "assert out['images_uint8'].dtype == tf.uint8\n"
        "s = m.signatures['sample'](num=tf.constant(3), seed=tf.constant(7, tf.int64))\n"
        "assert s['images'].shape == (3, 32, 32, 1)\n")
    proc = run_script(str(loader), str(export / "1"), str(tmp_path / "z.npy"),
                      str(tmp_path / "out.npy"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    gan, _, _ = load_run(str(logdir))
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), gan.generate(latents).numpy(),
                               atol=1e-5)


@pytest.mark.slow
def test_sample_and_export_scripts(tmp_path):
    logdir = tmp_path / "run"
    train(tiny_config(tmp_path, method="cgan", network="cgan28", image_size=28, steps=2,
                      minibatch_discrimination=False, ema_decay=0.0,
                      latent_distribution="uniform"))
    export = tmp_path / "export"
    proc = run_script(os.path.join(ROOT, "scripts", "export.py"), f"--logdir={logdir}",
                      f"--export_dir={export}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for source in (f"--logdir={logdir}", f"--saved_model={export}"):
        out = tmp_path / ("from_" + source.split("=")[0].strip("-"))
        proc = run_script(os.path.join(ROOT, "scripts", "sample.py"), source,
                          f"--out_dir={out}", "--num=16", "--rows=2", "--steps=16")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert sorted(os.listdir(out)) == ["classes.png", "grid.png", "interpolation.png"]
    from PIL import Image
    strip = Image.open(tmp_path / "from_logdir" / "interpolation.png")
    assert strip.size == (16 * 30 + 2, 2 * 30 + 2)  # 16 frames x 2 rows of 28 px + padding
    classes = Image.open(tmp_path / "from_saved_model" / "classes.png")
    assert classes.size[1] == 10 * 30 + 2  # one row per digit


def test_resume_continues_exactly(tmp_path):
    """6 steps at once == 3 steps, then --resume to 6 (crossing an epoch end:
    64 images / 16 = 4 steps per epoch, so the break is mid-epoch)."""
    whole = train(tiny_config(tmp_path / "a"))
    gan_whole, _, _ = load_run(whole.logdir)
    first = train(tiny_config(tmp_path / "b", steps=3))
    assert first.step == 3
    resumed = train(tiny_config(tmp_path / "b", steps=6, resume=True))
    assert resumed.step == 6
    gan_resumed, _, _ = load_run(resumed.logdir)
    for a, b in zip(gan_whole.weights, gan_resumed.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    steps = [int(line.split(",")[0]) for line in
             open(os.path.join(resumed.logdir, "metrics.csv")).read().splitlines()[1:]]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_mixed_bfloat16_run_computes_in_bfloat16_with_float32_weights(tmp_path):
    import keras
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            gan = self.model
            seen.append({"weights": {v.dtype for v in gan.weights},
                         "compute": {layer.compute_dtype for layer in gan.generator.layers
                                     if layer.weights},
                         "logs": dict(logs)})

    result = train(tiny_config(tmp_path, precision="mixed_bfloat16", steps=3),
                   extra_callbacks=[Probe()])
    assert result.step == 3 and len(seen) == 3
    assert all(s["weights"] == {"float32"} and s["compute"] == {"bfloat16"} for s in seen)
    # KL-GAN's loss (the symmetric KL) and its terms, finite on every step (that they
    # are float32 under this policy: tests/test_gan.py)
    statistics = [s["logs"][key] for s in seen for key in ("skl", "kl_real_gen", "kl_gen_real")]
    assert len(statistics) == 9 and all(np.isfinite(statistics))
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the run


@pytest.mark.slow
def test_alternating_method_resumes_exactly(tmp_path):
    cfg = dict(method="wgan_gp", n_critic=2, minibatch_discrimination=False, ema_decay=0.0)
    whole = train(tiny_config(tmp_path / "a", steps=4, **cfg))
    train(tiny_config(tmp_path / "b", steps=1, **cfg))
    resumed = train(tiny_config(tmp_path / "b", steps=4, resume=True, **cfg))
    a, b = load_run(whole.logdir)[0], load_run(resumed.logdir)[0]
    assert int(b.d_optimizer.iterations.numpy()) == 8
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_existing_run_is_never_overwritten(tmp_path):
    cfg = tiny_config(tmp_path, steps=2)
    train(cfg)
    before = sorted(os.listdir(os.path.join(cfg.run.logdir, "checkpoints")))
    with pytest.raises(RunDirectoryError, match="--resume.*new --logdir"):
        train(cfg)
    with pytest.raises(RunDirectoryError, match="width: 4 -> 8"):
        train(cfg.replace(width=8, resume=True))
    assert sorted(os.listdir(os.path.join(cfg.run.logdir, "checkpoints"))) == before


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    # An enormous learning rate: step 1 is finite, its update is not usable.
    cfg = tiny_config(tmp_path, g_lr=1e30, d_lr=1e30, checkpoint_every=1, steps=20,
                      minibatch_discrimination=False)
    with pytest.raises(TrainingDivergedError, match="last good checkpoint.*kept") as err:
        train(cfg)
    assert "step" in str(err.value)
    store_dir = os.path.join(cfg.run.logdir, "checkpoints")
    latest = tf.train.latest_checkpoint(store_dir)
    assert latest is not None
    gan, _, _ = load_run(cfg.run.logdir)
    assert all(np.all(np.isfinite(w.numpy())) for w in gan.weights)
    assert int(gan.g_optimizer.iterations.numpy()) < 20


@pytest.mark.slow
def test_cli_bad_input_messages_and_exit_codes(tmp_path):
    cases = [
        (["--method=vae"], "--method='vae' is unknown"),
        ([f"--dataset=images:{tmp_path / 'missing'}"], "does not exist"),
        (["--method=cgan", "--network=cgan28", "--image_size=28",
          f"--dataset=npz:{tmp_path / 'unlabelled.npz'}"], "has no labels"),
        (["--dataset=celeba", f"--data_dir={tmp_path}", "--nodownload"],
         "--celeba_dir"),
    ]
    np.savez(tmp_path / "unlabelled.npz", x=np.zeros((64, 28, 28), np.uint8))
    for args, message in cases:
        proc = run_script(TRAIN, *args, "--steps=1", f"--logdir={tmp_path / 'r'}", *TINY)
        assert proc.returncode == 2, (args, proc.stderr[-2000:])
        assert message in proc.stderr, (args, proc.stderr[-2000:])
    proc = run_script(TRAIN, "--g_lr=1e30", "--d_lr=1e30", "--checkpoint_every=1",
                      "--steps=20", f"--logdir={tmp_path / 'nan'}", *TINY)
    assert proc.returncode == 1 and "became" in proc.stderr and "kept" in proc.stderr


def test_folder_of_mixed_images_trains(tmp_path):
    from PIL import Image
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.RandomState(0)
    for i in range(40):
        size = (20 + i % 3 * 10, 30)
        mode = ("RGB", "L", "RGBA")[i % 3]
        array = rng.randint(0, 256, (size[1], size[0], len(mode)) if mode != "L"
                            else (size[1], size[0])).astype(np.uint8)
        Image.fromarray(array, mode).save(folder / f"{i}.png")
    result = train(tiny_config(tmp_path, dataset=f"images:{folder}", steps=2,
                               max_examples=None, cache_dir=str(tmp_path / "cache")))
    assert result.step == 2


def test_every_flagfile_is_valid(monkeypatch):
    monkeypatch.chdir(ROOT)
    files = sorted(glob.glob("configs/**/*.flags", recursive=True))
    assert len(files) >= 25
    for path in files:
        if path.endswith("common.flags"):
            continue
        values = flags.FlagValues()
        define_train_flags(values)
        values(["train.py", f"--flagfile={path}"])
        config = config_from_flags(values).validate()
        header = open(path).readline()
        assert header.startswith("#"), path
        assert config.run.logdir.startswith("runs/"), path


def test_batch_must_divide_over_replicas(tmp_path, mirrored_strategy):
    with pytest.raises(ConfigError, match="does not divide over 2 replicas"):
        train(tiny_config(tmp_path, batch_size=15, strategy="mirrored"))


@pytest.mark.slow
def test_every_logged_row_is_full_and_grids_follow_sample_every(tmp_path):
    # 64 images / 16 = 4 steps per epoch: logging every epoch's last step used to
    # leave every row after the first empty, and a grid was written at every
    # epoch end whatever --sample_every said.
    result = train(tiny_config(tmp_path, steps=12, log_every=4, sample_every=8,
                               checkpoint_every=4))
    with open(os.path.join(result.logdir, "metrics.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [4, 8, 12]
    for row in rows:
        assert all(value != "" for value in row.values()), row
    assert sorted(os.listdir(os.path.join(result.logdir, "samples"))) == [
        "step_0000008.png", "step_0000012.png"]  # every 8 steps, and the final step
    steps = []
    for path in glob.glob(os.path.join(result.logdir, "train", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            steps += [event.step for v in event.summary.value if v.tag == "samples/fixed_noise"]
    assert sorted(steps) == [8, 12]


@pytest.mark.slow
def test_diverged_run_resumes_with_lower_learning_rates(tmp_path):
    cfg = tiny_config(tmp_path, g_lr=1e-4, d_lr=1e-4, checkpoint_every=2, steps=2,
                      log_every=1, minibatch_discrimination=False)
    train(cfg)
    # an enormous learning rate from step 2 on: the loss turns non-finite within
    # two steps, and the checkpoint of step 2 is the last good one
    with pytest.raises(TrainingDivergedError, match="ckpt-2, is kept; resume from it"):
        train(cfg.replace(resume=True, steps=8, g_lr=1e30, d_lr=1e30))
    resumed = cfg.replace(resume=True, steps=8, g_lr=1e-4, d_lr=5e-5)
    result = train(resumed)  # the old code kept the checkpoint's 1e30 and diverged again
    assert result.step == 8
    with open(os.path.join(cfg.run.logdir, "metrics.csv"), newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if int(r["step"]) > 2]
    assert [int(r["step"]) for r in rows] == [3, 4, 5, 6, 7, 8]
    assert all(float(r["lr_generator"]) == pytest.approx(1e-4) for r in rows)
    assert all(float(r["lr_discriminator"]) == pytest.approx(5e-5) for r in rows)
    info = json.load(open(os.path.join(cfg.run.logdir, "run.json")))
    assert [{k: r[k] for k in ("step", "changed")} for r in info["resumes"]] == [
        {"step": 2, "changed": {"g_lr": [1e-4, 1e30], "d_lr": [1e-4, 1e30], "steps": [2, 8]}},
        {"step": 2, "changed": {"g_lr": [1e30, 1e-4], "d_lr": [1e30, 5e-5]}}]
    # every segment records the kernel fingerprint it trained on
    from tfklgan import fingerprint
    assert all(r["fingerprint"] == info["fingerprint"] for r in info["resumes"])
    assert set(fingerprint.FIELDS) <= set(info["fingerprint"])
    stored = TrainConfig.from_json(open(os.path.join(cfg.run.logdir, "config.json")).read())
    # config.json states what is in use
    assert (stored.optimizer.g_lr, stored.optimizer.d_lr) == (1e-4, 5e-5)
    gan, _, _ = load_run(cfg.run.logdir)
    assert all(np.all(np.isfinite(w.numpy())) for w in gan.weights)


def test_resume_refuses_settings_that_must_match(tmp_path):
    cfg = tiny_config(tmp_path, steps=2)
    train(cfg)
    for change in (dict(kl_stats="reference_code"), dict(beta1=0.5), dict(init="torch")):
        with pytest.raises(RunDirectoryError, match="settings differ") as err:
            train(cfg.replace(resume=True, steps=4, **change))
        assert next(iter(change)) in str(err.value)
    assert train(cfg.replace(resume=True, steps=4, log_every=2)).step == 4
    info = json.load(open(os.path.join(cfg.run.logdir, "run.json")))
    assert [{k: r[k] for k in ("step", "changed")} for r in info["resumes"]] == [
        {"step": 2, "changed": {"steps": [2, 4], "log_every": [1, 2]}}]


def _damage(checkpoint_prefix, how):
    data = glob.glob(checkpoint_prefix + ".data-*")[0]
    if how == "truncated data":
        with open(data, "r+b") as handle:
            handle.truncate(os.path.getsize(data) // 2)
    elif how == "garbage in data":
        with open(data, "r+b") as handle:
            handle.seek(min(64, os.path.getsize(data) // 4))
            handle.write(np.random.RandomState(0).bytes(4096))
    else:  # a random index
        with open(checkpoint_prefix + ".index", "wb") as handle:
            handle.write(np.random.RandomState(1).bytes(2000))


@pytest.mark.slow
def test_damaged_newest_checkpoint_walks_back_to_a_good_one(tmp_path, capfd):
    whole = train(tiny_config(tmp_path / "whole", steps=8, checkpoint_every=2))
    expected = [w.numpy() for w in load_run(whole.logdir)[0].weights]
    base = train(tiny_config(tmp_path / "base", steps=6, checkpoint_every=2))
    for i, how in enumerate(("truncated data", "garbage in data", "random index")):
        logdir = tmp_path / f"damaged{i}"
        shutil.copytree(base.logdir, logdir)
        _damage(str(logdir / "checkpoints" / "ckpt-6"), how)
        os.makedirs(logdir / "checkpoints" / "ckpt-6_temp")  # a killed write's leftovers
        capfd.readouterr()
        resumed = train(tiny_config(tmp_path, logdir=str(logdir), steps=8, checkpoint_every=2,
                                    resume=True))
        err = capfd.readouterr().err
        assert "skipped damaged checkpoint" in err and "ckpt-6" in err, how
        assert "resuming from step 4" in err, how
        assert not os.path.exists(logdir / "checkpoints" / "ckpt-6_temp")
        assert resumed.step == 8
        for a, b in zip(expected, load_run(str(logdir))[0].weights, strict=True):
            np.testing.assert_array_equal(a, b.numpy(), err_msg=how)


@pytest.mark.slow
def test_all_checkpoints_damaged_is_a_one_line_error(tmp_path):
    logdir = tmp_path / "run"
    base = train(tiny_config(tmp_path, steps=4, checkpoint_every=2))
    for prefix in glob.glob(os.path.join(base.logdir, "checkpoints", "ckpt-*.index")):
        _damage(prefix[:-len(".index")], "random index")
    proc = run_script(TRAIN, "--steps=6", "--checkpoint_every=2", "--resume",
                      f"--logdir={logdir}", "--minibatch_discrimination", "--ema_decay=0.5",
                      "--sample_every=3", "--log_every=1", *TINY)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no checkpoint in" in errors[0] and "new --logdir" in errors[0]


def test_lost_config_json_resumes_from_the_copy_beside_the_checkpoints(tmp_path):
    first = train(tiny_config(tmp_path, steps=2))
    os.remove(os.path.join(first.logdir, "config.json"))
    with pytest.raises(RunDirectoryError, match="already holds a run"):
        train(tiny_config(tmp_path, steps=4))  # never overwritten
    with pytest.raises(RunDirectoryError, match="settings differ"):
        train(tiny_config(tmp_path, steps=4, resume=True, width=8))  # still checked
    assert train(tiny_config(tmp_path, steps=4, resume=True)).step == 4
    assert os.path.isfile(os.path.join(first.logdir, "config.json"))


def test_damaged_config_json_falls_back_to_the_copy_or_names_both(tmp_path, capsys):
    """A damaged config.json once gave a bare JSON message that named neither
    the file nor the copy beside the checkpoints."""
    first = train(tiny_config(tmp_path, steps=2))
    config_json = os.path.join(first.logdir, "config.json")
    with open(config_json, "w") as handle:
        handle.write('{"data": {"name": "mnist_sample",')  # cut off mid-write
    capsys.readouterr()
    assert train(tiny_config(tmp_path, steps=4, resume=True)).step == 4
    err = capsys.readouterr().err
    assert f"warning: the run's settings {config_json} (" in err
    assert "cannot be read; using the copy" in err and "checkpoints/config.json" in err
    for path in (config_json, os.path.join(first.logdir, "checkpoints", "config.json")):
        with open(path, "w") as handle:
            handle.write("not json")
    with pytest.raises(RunDirectoryError, match=r"cannot be read: .*config.json \(.*; .*"
                                                r"checkpoints/config.json \(.*Restore"):
        train(tiny_config(tmp_path, steps=6, resume=True))


def test_conditional_export_sample_returns_the_classes_drawn(tmp_path):
    from tfklgan.export import export_generator, load_exported
    from tfklgan.training import build_gan
    cfg = tiny_config(tmp_path, method="cgan", network="cgan28", image_size=28,
                      latent_dim=100, minibatch_discrimination=False, ema_decay=0.0,
                      latent_distribution="uniform")
    gan = build_gan(cfg, num_classes=10)
    export_generator(gan, str(tmp_path / "export"), class_names=[str(i) for i in range(10)])
    model, info = load_exported(str(tmp_path / "export"))
    out = model.signatures["sample"](num=tf.constant(12), seed=tf.constant(3, tf.int64))
    np.testing.assert_array_equal(out["classes"].numpy(), np.arange(12) % 10)
    np.testing.assert_array_equal(out["labels"].numpy(), np.eye(10)[np.arange(12) % 10])
    again = model.signatures["generate"](latents=out["latents"], labels=out["labels"])
    np.testing.assert_allclose(again["images"].numpy(), out["images"].numpy(), atol=1e-6)
    assert info["num_classes"] == 10


def test_progress_bar_numbers_epochs_of_the_run_and_stops_where_training_did(tmp_path,
                                                                          capsys):
    train(tiny_config(tmp_path / "a", steps=8, verbose=1))  # 4 steps per epoch
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "Epoch 3/3" not in out
    with pytest.raises(TrainingDivergedError, match="at step 2"):
        train(tiny_config(tmp_path / "b", steps=8, verbose=1, g_lr=1e30, d_lr=1e30,
                          minibatch_discrimination=False))
    out = capsys.readouterr().out
    assert "2/2" in out and "4/4" not in out  # stopped at step 2, not shown as complete


@pytest.fixture
def fallen_through():
    """SIGTERM handled by a recorder for the test: the signals that reached it,
    i.e. that no handler of the training caught."""
    reached = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: reached.append(signum))
    yield reached
    signal.signal(signal.SIGTERM, previous)


def test_sigterm_between_two_fit_calls_stops_before_the_next_step(tmp_path, monkeypatch,
                                                                  fallen_through):
    # 4 steps per epoch, one `fit` per epoch: the handler once lived only inside
    # `fit`, so a signal while the next epoch's stream was built was not caught
    from tfklgan import training
    real_stream = training.data_lib.batch_stream

    def stream_then_signal(*args, start_batch=0, **kwargs):
        if start_batch == 4:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_stream(*args, start_batch=start_batch, **kwargs)

    monkeypatch.setattr(training.data_lib, "batch_stream", stream_then_signal)
    result = train(tiny_config(tmp_path, steps=8, checkpoint_every=100))
    assert fallen_through == []
    assert result.preempted == signal.SIGTERM and result.step == 4
    assert result.checkpoint.endswith("ckpt-4")
    with open(tmp_path / "run" / "metrics.csv", newline="") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == [1, 2, 3, 4]


def test_sigterm_after_the_last_step_lets_the_run_complete(tmp_path, monkeypatch, capsys,
                                                           fallen_through):
    from tfklgan import training
    real_export = training.export_generator

    def signal_then_export(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real_export(*args, **kwargs)

    monkeypatch.setattr(training, "export_generator", signal_then_export)
    result = train(tiny_config(tmp_path, steps=4, export_dir=str(tmp_path / "export")))
    assert fallen_through == []
    assert result.preempted is None and result.step == 4
    assert result.export_dir == str(tmp_path / "export" / "1")
    assert "SIGTERM came after the last step (4); the run is complete" in \
        capsys.readouterr().err


@pytest.mark.slow
def test_runs_killed_at_random_moments_end_as_an_uninterrupted_run(tmp_path):
    """SIGKILL at seeded random moments (during start-up, training or a
    checkpoint write), then --resume, until the run completes; and SIGTERM,
    which saves at the step it stopped."""
    settings = dict(steps=60, checkpoint_every=4, log_every=2, sample_every=10)
    common = [TRAIN, "--minibatch_discrimination", "--ema_decay=0.5",
              *[f"--{k}={v}" for k, v in settings.items()], *TINY]
    # the uninterrupted run in a fresh process too, as the killed ones: nothing
    # an earlier test left in this process can make the two differ
    whole = run_script(*common, f"--logdir={tmp_path / 'whole'}")
    assert whole.returncode == 0, whole.stderr[-3000:]
    expected = [w.numpy() for w in load_run(str(tmp_path / "whole"))[0].weights]
    logdir = tmp_path / "killed"
    args = [*common, f"--logdir={logdir}"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    rng = np.random.default_rng(0)
    kills = 0
    metrics = logdir / "metrics.csv"
    for _ in range(4):
        resume = ["--resume"] if (logdir / "config.json").exists() else []
        size = metrics.stat().st_size if metrics.exists() else 0
        proc = warm_scripts.popen([sys.executable, *args, *resume], ROOT, env, capture=False)
        # wait until this process trains (a new metrics row), then kill it soon after
        deadline = time.time() + 300
        while proc.poll() is None and time.time() < deadline and not (
                metrics.exists() and metrics.stat().st_size > size):
            time.sleep(0.05)
        time.sleep(float(rng.uniform(0.0, 1.0)))
        if proc.poll() is not None:
            break
        proc.kill()
        proc.wait()
        kills += 1
    proc = run_script(*args, *(["--resume"] if (logdir / "config.json").exists() else []))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert kills >= 1
    for a, b in zip(expected, load_run(str(logdir))[0].weights, strict=True):
        np.testing.assert_array_equal(a, b.numpy())
    with open(logdir / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == list(range(2, 61, 2))
    assert all(value not in ("", None) for row in rows for value in row.values())

    # SIGTERM at a seeded random moment of training: the step finishes, a checkpoint
    # and the pending metrics row are written, the exit code is 143; --resume ends
    # as the uninterrupted run, every step logged once
    logdir = tmp_path / "preempted"
    args = [*common, f"--logdir={logdir}"]
    metrics = logdir / "metrics.csv"
    proc = warm_scripts.popen([sys.executable, *args], ROOT, env)
    # at a seeded step well before the end: a signal after the last step lets
    # the run complete (tested above), which is not what this part tests
    signal_at = int(rng.integers(2, 16)) * 2
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline and not (
            metrics.exists() and f"\n{signal_at}," in metrics.read_text()):
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-3000:]
    stopped = re.search(r"stopped by SIGTERM after step (\d+): checkpoint (\S+) saved; "
                        r"continue with the same command and --resume", err)
    assert stopped, err[-3000:]
    step = int(stopped.group(1))
    assert 0 < step < 60 and stopped.group(2).endswith(f"ckpt-{step}")
    with open(metrics, newline="") as handle:
        assert int(list(csv.DictReader(handle))[-1]["step"]) == step  # the pending row
    proc = run_script(*args, "--resume")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for a, b in zip(expected, load_run(str(logdir))[0].weights, strict=True):
        np.testing.assert_array_equal(a, b.numpy())
    with open(metrics, newline="") as handle:
        steps = [int(r["step"]) for r in csv.DictReader(handle)]
    assert steps == sorted(set(steps)) and set(range(2, 61, 2)) <= set(steps) <= \
        set(range(2, 61, 2)) | {step}


def test_resuming_a_complete_run_says_so_and_writes_nothing(tmp_path, capsys):
    cfg = tiny_config(tmp_path, steps=2, export_dir=str(tmp_path / "export"))
    train(cfg)
    before = {p: os.path.getmtime(p) for p in glob.glob(str(tmp_path / "**"), recursive=True)
              if os.path.isfile(p)}
    capsys.readouterr()
    result = train(cfg.replace(resume=True))
    assert "is complete (step 2 of 2); nothing to train" in capsys.readouterr().out
    assert result.step == 2 and result.export_dir == str(tmp_path / "export" / "1")
    after = {p: os.path.getmtime(p) for p in glob.glob(str(tmp_path / "**"), recursive=True)
             if os.path.isfile(p)}
    assert after == before  # no new event file, no re-export, no rewritten settings


def test_no_sample_grid_of_non_finite_samples(tmp_path, capsys):
    # A step whose update turns the weights NaN still logs finite losses; its
    # grid used to be written as a blank image (NaN cast to uint8).
    from tfklgan.callbacks import NonFiniteGuard, SampleGrids
    from tfklgan.training import build_gan
    gan = build_gan(TrainConfig.from_flat(width=4, latent_dim=8, image_size=32))
    writer = tf.summary.create_file_writer(str(tmp_path / "train"))
    grids = SampleGrids(writer, str(tmp_path / "samples"), 1, NonFiniteGuard(), num_samples=4)
    grids.set_model(gan)
    grids.write()
    assert os.path.isfile(grids.last_path)
    weight = gan.generator.trainable_weights[0]
    weight.assign(np.full(weight.shape, np.nan, weight.dtype))
    gan.g_optimizer.iterations.assign_add(1)
    grids.write()
    assert len(os.listdir(tmp_path / "samples")) == 1
    assert "not finite" in capsys.readouterr().err


def test_bad_run_settings_are_refused_in_one_line_before_anything_is_written(tmp_path,
                                                                              monkeypatch):
    """A negative step count (once trained silently as if by epochs), a logdir
    or export dir that is a file (once a FileExistsError traceback), a
    malformed TF_CONFIG (once a bare JSON message that named no variable)."""
    from tfklgan.training import make_strategy
    with pytest.raises(ConfigError, match=r"--steps must be >= 0 \(0: train for --epochs\), "
                                          "got -5"):
        TrainConfig.from_flat(steps=-5)
    (tmp_path / "a_file").write_text("mine")
    with pytest.raises(ConfigError, match="--logdir=.*a_file is a file, not a folder"):
        TrainConfig.from_flat(steps=1, logdir=str(tmp_path / "a_file"))
    with pytest.raises(ConfigError, match="--export_dir=.*a_file is a file, not a folder"):
        TrainConfig.from_flat(steps=1, export_dir=str(tmp_path / "a_file"))
    assert (tmp_path / "a_file").read_text() == "mine"
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1" "x"]}}')
    with pytest.raises(ConfigError, match="the environment variable TF_CONFIG is not valid JSON "
                                          r"\(Expecting"):
        make_strategy("multiworker")


def test_exports_add_versions_and_never_delete_what_they_did_not_write(tmp_path, monkeypatch):
    """TF Serving's layout: each export is a new numbered version, staged under
    a hidden name and renamed into place. A user's files in the directory
    survive (an export once replaced the whole directory); a failed export
    leaves no version and no staging folder; one killed mid-write is cleaned
    up by the next export."""
    from tfklgan import export as export_lib
    from tfklgan.training import build_gan
    gan = build_gan(TrainConfig.from_flat(width=4, latent_dim=8, image_size=32,
                                          minibatch_discrimination=False))
    directory = tmp_path / "export"
    os.makedirs(directory / "notes")
    (directory / "README.txt").write_text("mine")
    (directory / "notes" / "keep.txt").write_text("also mine")
    killed = directory / f"{export_lib.STAGING_PREFIX}999999999"  # no such process
    os.makedirs(killed)
    assert export_lib.export_generator(gan, str(directory)) == str(directory / "1")
    assert export_lib.export_generator(gan, str(directory)) == str(directory / "2")
    assert (directory / "README.txt").read_text() == "mine"
    assert (directory / "notes" / "keep.txt").read_text() == "also mine"
    assert not killed.exists()
    assert export_lib.export_version(str(directory)) == str(directory / "2")
    _, info = export_lib.load_exported(str(directory))  # the newest version
    assert info["latent_dim"] == 8

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(tf.saved_model, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        export_lib.export_generator(gan, str(directory))
    assert sorted(os.listdir(directory)) == ["1", "2", "README.txt", "notes"]
    with pytest.raises(ValueError, match="is not a tfklgan generator export"):
        export_lib.load_exported(str(directory / "notes"))


def test_a_second_training_into_a_locked_logdir_is_refused(tmp_path):
    """Two trainings started into one logdir at the same moment: the one that
    holds the run directory's lock trains, the other refuses and writes nothing."""
    from tfklgan.run_directory import run_lock
    cfg = tiny_config(tmp_path, steps=2)
    with run_lock(cfg.run.logdir):  # as a training that started first holds it
        with pytest.raises(RunDirectoryError, match=r"another training \(pid \d+\) is writing "
                                                    "to"):
            train(cfg)
        assert sorted(os.listdir(cfg.run.logdir)) == [".tfklgan.lock"]
    assert train(cfg).step == 2  # released: the run trains


def test_a_checkpoint_that_cannot_be_written_keeps_the_earlier_ones(tmp_path, monkeypatch):
    """The disk fills during the checkpoint of step 4 (simulated: the write
    leaves its partial folder and fails with ENOSPC, as TensorFlow's does):
    the partial files are removed, checkpoint 2 is intact and restores, and
    the error is one sentence that says so."""
    from tfklgan.checkpoints import CheckpointWriteError
    write = tf.train.Checkpoint._write
    calls = []

    def full_disk(self, prefix, *args, **kwargs):
        calls.append(prefix)
        if len(calls) == 2:
            os.makedirs(prefix + "_temp", exist_ok=True)
            with open(os.path.join(prefix + "_temp", "part-00000-of-00001"), "w") as handle:
                handle.write("partial")
            raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")
        return write(self, prefix, *args, **kwargs)
    monkeypatch.setattr(tf.train.Checkpoint, "_write", full_disk)
    cfg = tiny_config(tmp_path, steps=6, checkpoint_every=2)
    with pytest.raises(CheckpointWriteError, match=r"checkpoint of step 4 could not be written "
                                                   r".*\(No space left on device\); its partial "
                                                   r"files were removed and the earlier "
                                                   r"checkpoints are intact \(newest: .*ckpt-2\)"):
        train(cfg)
    monkeypatch.setattr(tf.train.Checkpoint, "_write", write)
    checkpoints = os.listdir(os.path.join(cfg.run.logdir, "checkpoints"))
    assert not [name for name in checkpoints if "_temp" in name], checkpoints
    assert train(cfg.replace(resume=True)).start_step == 2  # resumes from the kept one
