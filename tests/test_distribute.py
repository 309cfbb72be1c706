"""MirroredStrategy over 2 logical CPUs must equal single-device training.

Same initial weights, same global batches, 3 steps of SGD: the final weights
agree to a relative 1e-5. The test runs in float64 (keras floatx): in float32
the minibatch-similarity features of a fresh network are nearly constant,
and their tiny variances amplify rounding differences between a batch of 8
and two of 4 beyond 1e-5, which would hide nothing but also prove nothing. An implementation that lets the optimizer sum the
replicas' gradients of a globally reduced loss doubles every update, and one
that computes KL statistics or minibatch similarities per replica uses other
statistics; both fail here.

SGD, not Adam: a few parameters have an exactly zero true gradient (the
feature bias under KL-GAN's shift-invariant loss, the logit bias under hinge
in its linear region), and Adam would turn float noise there into full steps.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfklgan import GAN, NetworkConfig, build_networks, build_objective

STEPS, BATCH, LR = 3, 8, 0.01


@pytest.fixture(autouse=True)
def _float64():
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx("float32")


def train(strategy, method, mbd, initial=None, ema_decay=0.0, augment_policy=None, ada=None,
          ada_validation=None):
    data = np.random.RandomState(0).uniform(-1, 1, (STEPS * BATCH, 32, 32, 3))
    dataset = tf.data.Dataset.from_tensor_slices(data).batch(BATCH, drop_remainder=True)
    with strategy.scope():
        objective = build_objective(method)
        networks = build_networks("klgan32", NetworkConfig(
            width=4, latent_dim=8, head=objective.head, minibatch_discrimination=mbd))
        gan = GAN(networks, objective, ema_decay=ema_decay, seed=7,
                  augment_policy=augment_policy, ada=ada, ada_validation=ada_validation)
        gan.compile(keras.optimizers.SGD(LR), keras.optimizers.SGD(LR))
        if initial is not None:
            gan.generator.set_weights(initial[0])
            gan.discriminator.set_weights(initial[1])
            if ema_decay:
                gan.ema_generator.set_weights(initial[0])
    start = (gan.generator.get_weights(), gan.discriminator.get_weights())
    history = gan.fit(dataset, epochs=1, verbose=0).history
    weights = gan.generator.get_weights() + gan.discriminator.get_weights()
    if ada is not None:
        weights.append(np.array([gan.ada_state.p.numpy()]))
    if ema_decay:
        weights += gan.ema_generator.get_weights()
    return start, weights, history


def max_relative_difference(a, b):
    """max |a - b| / max |a| over all weights (per tensor, then the maximum)."""
    return max(np.max(np.abs(x - y)) / max(np.max(np.abs(x)), 1e-3) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("method,mbd,ema", [
    ("klgan", False, 0.0), ("klgan", True, 0.9), ("wgan_gp", False, 0.0),
    ("wgan_gp", True, 0.0), ("r1gan", False, 0.0), ("hinge", True, 0.0)])
def test_mirrored_equals_single_device(mirrored_strategy, method, mbd, ema):
    start, single, single_hist = train(tf.distribute.get_strategy(), method, mbd,
                                       ema_decay=ema)
    _, mirrored, mirrored_hist = train(mirrored_strategy, method, mbd, initial=start,
                                       ema_decay=ema)
    moved = max_relative_difference(single, start[0] + start[1] + (start[0] if ema else []))
    assert moved > 1e-3, "training did not move the weights; the test would be vacuous"
    assert max_relative_difference(single, mirrored) < 1e-5
    for name in single_hist:
        np.testing.assert_allclose(mirrored_hist[name], single_hist[name], rtol=1e-4,
                                   atol=1e-5, err_msg=name)


@pytest.mark.parametrize("method,mbd", [("klgan", True), ("r1gan", False)])
def test_mirrored_equals_single_device_with_diffaugment(mirrored_strategy, method, mbd):
    """DiffAugment's draws are made for the global batch and sliced per
    replica, so each image gets the same transform on one device or two."""
    policy = ("color", "translation", "cutout")
    start, single, _ = train(tf.distribute.get_strategy(), method, mbd, augment_policy=policy)
    _, mirrored, _ = train(mirrored_strategy, method, mbd, initial=start, augment_policy=policy)
    _, plain, _ = train(tf.distribute.get_strategy(), method, mbd, initial=start)
    assert max_relative_difference(single, plain) > 1e-3  # the augmentation changed training
    assert max_relative_difference(single, mirrored) < 1e-5


@pytest.mark.parametrize("method", ["r1gan", "klgan"])
def test_mirrored_equals_single_device_with_ada(mirrored_strategy, method):
    """ADA's sums are taken over the global batch (KL-GAN's from the features
    every replica gathers, R1-GAN's summed over replicas) and its p is one
    value on every replica: p moves the same, and so does training."""
    from tfklgan.ada import AdaSettings
    ada = AdaSettings(target=-1.0, speed_images=16.0, interval=1)  # p moves every step
    start, single, _ = train(tf.distribute.get_strategy(), method, False, ada=ada)
    _, mirrored, _ = train(mirrored_strategy, method, False, initial=start, ada=ada)
    assert single[-1][0] > 0.0  # p moved
    assert max_relative_difference(single, mirrored) < 1e-5


def test_mirrored_equals_single_device_with_adas_validation_heuristic(mirrored_strategy):
    """r_v's held-out batch is the global batch's, sliced per replica, and its
    sums are taken over replicas: a critic's run with it is the same on one
    device and on two."""
    from tfklgan.ada import AdaSettings
    held_out = np.random.RandomState(1).randint(0, 256, (12, 32, 32, 3)).astype(np.uint8)
    ada = AdaSettings(target=0.01, speed_images=16.0, interval=1, heuristic="rv")
    start, single, _ = train(tf.distribute.get_strategy(), "wgan_gp", False, ada=ada,
                             ada_validation=held_out)
    _, mirrored, _ = train(mirrored_strategy, "wgan_gp", False, initial=start, ada=ada,
                           ada_validation=held_out)
    assert max_relative_difference(single, mirrored) < 1e-5


@pytest.mark.slow
def test_cpu_devices_mirrored_from_the_cli_equals_one_device(tmp_path):
    """--cpu_devices=2 --strategy=mirrored trains 2 replicas on the CPU; in
    float64 the weights equal one-device training on the same global batches
    (with tfklgan's own Adam update, PyTorch's placement of eps)."""
    from test_training import TINY, TRAIN, run_script
    common = ["--method=lsgan", "--precision=float64", "--steps=3", "--checkpoint_every=3",
              "--batch_size=8", "--minibatch_discrimination", "--adam_epsilon=torch", *TINY]
    runs = {}
    for name, extra in (("single", []), ("mirrored", ["--cpu_devices=2",
                                                       "--strategy=mirrored"])):
        proc = run_script(TRAIN, *common, *extra, f"--logdir={tmp_path / name}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = tf.train.load_checkpoint(str(tmp_path / name / "checkpoints" / "ckpt-3"))
        info = json.load(open(tmp_path / name / "run.json"))
        assert info["replicas"] == (2 if name == "mirrored" else 1)
    # the networks' weights, as the optimizers hold them
    names = [n for n in runs["single"].get_variable_to_shape_map()
             if "_optimizer/_trainable_variables/" in n]
    assert len(names) > 10
    for n in names:
        a, b = runs["single"].get_tensor(n), runs["mirrored"].get_tensor(n)
        assert a.dtype == np.float64, n
        scale = max(np.max(np.abs(a)), 1e-3)
        assert np.max(np.abs(a - b)) / scale < 1e-10, n
