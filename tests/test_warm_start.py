"""--init_from: a new run from another run's or an export's weights."""

import json
import os
import shutil

import numpy as np
import pytest
from test_training import ROOT, run_script, tiny_config

from tfklgan.export import export_generator
from tfklgan.run_directory import load_run
from tfklgan.training import train
from tfklgan.warm_start import InitFromError

TRAIN = os.path.join(ROOT, "scripts", "train.py")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A trained tiny KL-GAN run and an export of its generator."""
    folder = tmp_path_factory.mktemp("source")
    config = tiny_config(folder, steps=4)
    train(config)
    gan, _, _ = load_run(config.run.logdir)
    export_generator(gan, str(folder / "export"))
    return config.run.logdir, str(folder / "export")


def test_a_run_started_from_a_run_reproduces_its_samples_at_step_0(tmp_path, source):
    run, _ = source
    new = tiny_config(tmp_path, steps=2, checkpoint_every=1, init_from=run,
                      dataset="mnist_sample", max_examples=32, seed=9)
    # step 0: what the networks are before any update of the new run
    from tfklgan.training import build_gan
    from tfklgan.warm_start import initialise_from
    gan = build_gan(new)
    record = initialise_from(gan, run)
    trained, _, _ = load_run(run)
    latents = trained.sample_latents(8, seed=3)
    for use_ema in (True, False):
        np.testing.assert_array_equal(gan.generate(latents, use_ema=use_ema),
                                      trained.generate(latents, use_ema=use_ema))
    np.testing.assert_array_equal(gan.discriminator(trained.generate(latents)),
                                  trained.discriminator(trained.generate(latents)))
    assert record["kind"] == "run" and record["step"] == 4
    assert int(gan.g_optimizer.iterations.numpy()) == 0  # fresh optimizers
    # the whole run: trains from there, records the source, resumes as any run
    result = train(new)
    info = json.load(open(os.path.join(new.run.logdir, "run.json")))
    assert info["init_from"]["source"] == os.path.abspath(run)
    import tensorflow as tf
    assert info["init_from"]["checkpoint"] == tf.train.latest_checkpoint(
        os.path.join(run, "checkpoints"))
    assert result.step == 2
    resumed = train(new.replace(steps=3, resume=True))
    assert resumed.step == 3
    assert json.load(open(os.path.join(new.run.logdir, "run.json")))["init_from"] == \
        info["init_from"]


def test_a_run_started_from_an_export_takes_its_generator(tmp_path, source):
    run, export = source
    from tfklgan.training import build_gan
    from tfklgan.warm_start import initialise_from
    gan = build_gan(tiny_config(tmp_path, init_from=export))
    record = initialise_from(gan, export)
    trained, _, _ = load_run(run)
    latents = trained.sample_latents(8, seed=3)
    # the export holds the EMA generator: both of the new run's generators start from it
    np.testing.assert_array_equal(gan.generate(latents, use_ema=False),
                                  trained.generate(latents, use_ema=True))
    assert record["kind"] == "export" and record["networks"][0] == "generator"


def test_networks_of_another_shape_are_named_in_one_line(tmp_path, source):
    run, export = source
    for what in (run, export):
        proc = run_script(TRAIN, "--method=klgan", "--dataset=mnist_sample", "--width=8",
                          "--latent_dim=8", "--steps=2", "--max_examples=64",
                          "--minibatch_discrimination", "--ema_decay=0.5", "--verbose=0",
                          f"--logdir={tmp_path / 'wide'}", f"--init_from={what}")
        assert proc.returncode == 2, proc.stderr[-2000:]
        line = proc.stderr.strip().splitlines()[-1]
        assert f"--init_from={what}: the generator's layer '" in line, line
        assert "has weights of shape" in line and "start from" in line
        assert not os.path.exists(tmp_path / "wide" / "checkpoints")
    with pytest.raises(InitFromError, match="neither a run directory"):
        from tfklgan.training import build_gan
        from tfklgan.warm_start import initialise_from
        initialise_from(build_gan(tiny_config(tmp_path)), str(tmp_path))


def test_an_export_given_by_a_relative_path_starts_a_run(tmp_path, source, monkeypatch):
    _, export = source
    from tfklgan.training import build_gan
    from tfklgan.warm_start import initialise_from
    monkeypatch.chdir(os.path.dirname(export))
    record = initialise_from(build_gan(tiny_config(tmp_path)), os.path.basename(export))
    assert record["kind"] == "export"
    assert record["source"] == os.path.join(export, "1")


def test_an_export_without_weight_shapes_of_another_network_is_refused_in_one_line(
        tmp_path, source):
    _, export = source
    old = tmp_path / "old_export"
    shutil.copytree(os.path.join(export, "1"), old)
    info = json.load(open(old / "tfklgan.json"))
    del info["weight_shapes"]  # as exports were written before they recorded them
    json.dump(info, open(old / "tfklgan.json", "w"))
    from tfklgan.training import build_gan
    from tfklgan.warm_start import initialise_from
    with pytest.raises(InitFromError) as refused:
        initialise_from(build_gan(tiny_config(tmp_path, width=8)), str(old))
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"--init_from={old}: its generator")
    assert "export its run again" in message
    # the same export, of the same network, still starts a run
    assert initialise_from(build_gan(tiny_config(tmp_path)), str(old))["kind"] == "export"


def test_a_run_started_from_an_export_says_d_starts_fresh(tmp_path, source, capsys):
    from tfklgan.training import train
    run, export = source
    train(tiny_config(tmp_path / "from_export", init_from=export, steps=1))
    assert (f"note: --init_from={export} is a generator export without D, so D starts from "
            "fresh weights") in capsys.readouterr().err
    train(tiny_config(tmp_path / "from_run", init_from=run, steps=1))
    assert "D starts from fresh weights" not in capsys.readouterr().err


def test_an_export_with_its_discriminator_starts_d_where_training_left_it(tmp_path, source,
                                                                         capsys):
    from tfklgan.training import build_gan
    from tfklgan.warm_start import initialise_from
    run, _ = source
    trained, _, _ = load_run(run)
    with_d = export_generator(trained, str(tmp_path / "with_d"), discriminator=True)
    gan = build_gan(tiny_config(tmp_path / "new", init_from=with_d))
    record = initialise_from(gan, with_d)
    assert record["networks"] == ["generator", "discriminator", "ema_generator"]
    for ours, theirs in zip(gan.discriminator.get_weights(),
                            trained.discriminator.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    train(tiny_config(tmp_path / "trained", init_from=with_d, steps=1))
    assert "D starts from fresh weights" not in capsys.readouterr().err
    # a discriminator of another width is named, as the generator's is
    other = build_gan(tiny_config(tmp_path / "wide", init_from=with_d, width=8))
    with pytest.raises(InitFromError, match="the (generator|discriminator)'s layer"):
        initialise_from(other, with_d)
