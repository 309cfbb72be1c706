"""The fused CPU kernels: built here, bit for bit TensorFlow's ops, never exported."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfklgan import native
from tfklgan.config import TrainConfig
from tfklgan.export import export_generator, load_exported
from tfklgan.layers import Mish
from tfklgan.training import build_gan

SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 13.94, -13.94, -15.0, -16.6, 14.0, 88.8,
           -88.0, -104.0, 1e-30, -1e-30]


requires_kernels = pytest.mark.skipif(
    native.unavailable_reason() is not None,
    reason=f"fused kernels unavailable here: {native.unavailable_reason()}")


def kernels():
    """The library: where nothing rules it out (x86-64 Linux, a compiler), it must build."""
    library = native.library()
    assert library is not None, "the kernels should build on this machine"
    return library


def mish_and_gradient(x, dy, fused):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = native.mish(x) if fused else keras.activations.mish(x)
    return y, tape.gradient(y, x, output_gradients=dy)


@requires_kernels
@pytest.mark.parametrize("shape, scale", [((64, 16, 16, 32), 3.0), ((4, 8, 8, 64), 30.0),
                                          ((7, 13), 20.0), ((5,), 1.0), ((0, 3), 1.0)])
def test_fused_mish_equals_tensorflows_ops_bit_for_bit(shape, scale):
    kernels()
    rng = np.random.default_rng(0)
    values = (rng.normal(size=shape) * scale).astype("float32")
    flat = values.reshape(-1)
    flat[:len(SPECIAL)] = SPECIAL[:flat.size]
    x = tf.constant(values)
    dy = tf.constant(rng.normal(size=shape).astype("float32"))
    for graph_function in (False, True):
        run = tf.function(mish_and_gradient) if graph_function else mish_and_gradient
        fused, ops = run(x, dy, True), run(x, dy, False)
        for a, b in zip(fused, ops, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())  # NaN where NaN, else every bit


def traced_op_types(function, *args):
    return {op.type for op in function.get_concrete_function(*args).graph.get_operations()}


@requires_kernels
def test_mish_layer_traces_the_kernel_and_graph_ops_only_the_tensorflow_ops():
    kernels()
    layer = Mish()
    x = tf.zeros([2, 3])
    assert "TfklganMish" in traced_op_types(tf.function(layer), x)
    with native.graph_ops_only():
        types = traced_op_types(tf.function(layer), x)
    assert "Softplus" in types and "TfklganMish" not in types
    assert "TfklganMish" not in traced_op_types(tf.function(native.mish),
                                                tf.zeros([2, 3], tf.bfloat16))


@requires_kernels
def test_a_training_step_is_the_same_with_and_without_the_kernels():
    kernels()
    config = TrainConfig.from_flat(method="klgan", dataset="mnist_sample", width=4,
                                   latent_dim=8, batch_size=8, minibatch_discrimination=True)
    real = tf.random.stateless_uniform([8, 32, 32, 1], [1, 2], -1.0, 1.0)
    weights = []
    for fused in (True, False):
        keras.utils.set_random_seed(3)
        gan = build_gan(config)
        gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
        step = tf.function(gan.train_step)
        if not fused:
            with native.graph_ops_only():
                step.get_concrete_function(real)
        assert ("TfklganMishGrad" in traced_op_types(step, real)) == fused
        for _ in range(2):
            step(real)
        weights.append([w.numpy() for w in gan.generator.weights + gan.discriminator.weights])
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


@requires_kernels
def test_exported_generators_hold_no_fused_ops(tmp_path):
    kernels()
    config = TrainConfig.from_flat(method="klgan", dataset="mnist_sample", width=4,
                                   latent_dim=8, ema_decay=0.0)
    gan = build_gan(config)
    export_generator(gan, str(tmp_path / "export"))
    model, _ = load_exported(str(tmp_path / "export"))
    graph = model.signatures["generate"].graph.as_graph_def()
    types = {node.op for node in graph.node}
    types |= {node.op for function in graph.library.function for node in function.node_def}
    assert "Softplus" in types and not {"TfklganMish", "TfklganMishGrad"} & types
    latents = tf.random.stateless_normal([3, 8], [0, 1])
    np.testing.assert_allclose(model.signatures["generate"](latents=latents)["images"],
                               gan.generator(latents), atol=1e-5)


@requires_kernels
def test_second_derivatives_through_the_kernel_are_mishs():
    kernels()
    x = tf.constant(np.linspace(-6.0, 6.0, 41, dtype="float32"))
    dy = tf.constant(np.linspace(0.5, 1.5, 41, dtype="float32"))

    def second(function):
        with tf.GradientTape(persistent=True) as outer:
            outer.watch([x, dy])
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = function(x)
            dx = inner.gradient(y, x, output_gradients=dy)
            loss = tf.reduce_sum(tf.square(dx))
        return [g.numpy() for g in outer.gradient(loss, [x, dy])]

    for fused, ops in zip(second(native.mish), second(keras.activations.mish), strict=True):
        np.testing.assert_allclose(fused, ops, rtol=1e-5, atol=1e-6)


def test_the_off_switch_is_obeyed(monkeypatch):
    monkeypatch.setenv("TFKLGAN_NATIVE", "0")
    assert native.unavailable_reason() == "turned off by TFKLGAN_NATIVE"


def test_build_library_refuses_in_one_line_where_the_kernels_cannot_run(monkeypatch):
    monkeypatch.setenv("TFKLGAN_NATIVE", "0")
    with pytest.raises(RuntimeError, match="^the fused CPU kernels cannot be built here: "
                                           "turned off by TFKLGAN_NATIVE$"):
        native.build_library()


@requires_kernels
def test_build_library_returns_the_cached_library():
    path = native.build_library()
    assert os.path.dirname(path) == native.cache_dir() and os.path.isfile(path)
    modified = os.path.getmtime(path)
    assert native.build_library() == path and os.path.getmtime(path) == modified


@requires_kernels
def test_a_failed_build_falls_back_to_tensorflows_ops_in_one_line(tmp_path):
    kernels()
    failing = tmp_path / "cxx"
    failing.write_text("#!/bin/sh\necho 'cxx: error: no such file' >&2\nexit 1\n")
    failing.chmod(0o755)
    code = ("import tfklgan, tensorflow as tf, numpy as np\n"
            "from tfklgan import native\n"
            "assert native.library() is None\n"
            "x = tf.constant([-20.0, 0.5, 3.0])\n"
            "np.testing.assert_array_equal(native.mish(x), x * tf.tanh(tf.math.softplus(x)))\n"
            "print('fell back')\n")
    env = dict(os.environ, CXX=str(failing), TFKLGAN_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "fell back" in proc.stdout
    messages = [line for line in proc.stderr.splitlines() if line.startswith("tfklgan:")]
    assert messages == ["tfklgan: fused CPU kernels unavailable, using TensorFlow's ops "
                        "(same results): cxx failed: cxx: error: no such file"]
    assert not os.listdir(tmp_path / "cache")  # no partial library left behind
