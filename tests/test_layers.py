import keras
import numpy as np
import pytest
import tensorflow as tf

from tfklgan.layers import (
    LatentReparameterization,
    MinibatchDiscrimination,
    SpaceToDepthConv2D,
    instance_normalization,
)


def np_minibatch(x, t, mean):
    a, b, c = t.shape
    m = (x @ t.reshape(a, b * c)).reshape(-1, b, c)
    l1 = np.abs(m[:, None] - m[None, :]).sum(-1)  # [n, n, B]
    o = np.exp(-l1).sum(1) - 1.0
    if mean:
        o /= x.shape[0] - 1
    return np.concatenate([x, o], axis=1)


@pytest.mark.parametrize("mean", [True, False])
def test_minibatch_discrimination_matches_numpy(mean):
    rng = np.random.RandomState(0)
    x = rng.normal(size=(6, 5)).astype(np.float32)
    layer = MinibatchDiscrimination(num_kernels=4, kernel_dim=3, mean=mean)
    out = layer(x).numpy()
    t = layer.kernel.numpy().reshape(5, 4, 3)
    np.testing.assert_allclose(out, np_minibatch(x, t, mean), rtol=1e-5, atol=1e-6)
    assert out.shape == (6, 9)


def test_minibatch_discrimination_identical_samples():
    x = np.tile(np.random.RandomState(1).normal(size=(1, 8)), (5, 1)).astype(np.float32)
    out = MinibatchDiscrimination(8, 2, mean=False)(x).numpy()
    # every other sample is at distance 0: exp(0) = 1, four of them
    np.testing.assert_allclose(out[:, 8:], 4.0, rtol=1e-6)
    out_mean = MinibatchDiscrimination(8, 2, mean=True)(x).numpy()
    np.testing.assert_allclose(out_mean[:, 8:], 1.0, rtol=1e-6)


def test_minibatch_discrimination_config_roundtrip():
    layer = MinibatchDiscrimination(3, 2, mean=False)
    clone = MinibatchDiscrimination.from_config(layer.get_config())
    assert (clone.num_kernels, clone.kernel_dim, clone.mean) == (3, 2, False)
    with pytest.raises(ValueError, match="num_kernels"):
        MinibatchDiscrimination(0)


def assert_same_as_conv2d(fast, conv, x):
    """fast and conv (given conv's weights) agree in outputs and all gradients."""
    conv.build(x.shape)
    fast.build(x.shape)
    fast.set_weights(conv.get_weights())
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y_fast, y_conv = fast(x), conv(x)
        # a non-linear loss so that every output position gets its own weight
        loss_fast = tf.reduce_sum(tf.sin(y_fast))
        loss_conv = tf.reduce_sum(tf.sin(y_conv))
    assert y_fast.shape == y_conv.shape
    np.testing.assert_allclose(y_fast, y_conv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tape.gradient(loss_fast, x), tape.gradient(loss_conv, x),
                               rtol=1e-4, atol=1e-5)
    for g_fast, g_conv in zip(tape.gradient(loss_fast, fast.trainable_weights),
                              tape.gradient(loss_conv, conv.trainable_weights), strict=True):
        np.testing.assert_allclose(g_fast, g_conv, rtol=1e-4, atol=1e-5)


def test_space_to_depth_conv_equals_conv2d():
    x = tf.constant(np.random.RandomState(2).normal(size=(3, 4, 6, 5)), tf.float32)
    assert_same_as_conv2d(SpaceToDepthConv2D(7),
                          keras.layers.Conv2D(7, 2, strides=2, padding="valid"), x)


def test_space_to_depth_conv_config_roundtrip():
    layer = SpaceToDepthConv2D(6, use_bias=False, name="s2d")
    clone = SpaceToDepthConv2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_space_to_depth_conv_rejects_odd_sizes():
    with pytest.raises(ValueError, match="even height and width"):
        SpaceToDepthConv2D(3).build((None, 5, 4, 2))


def test_latent_reparameterization():
    layer = LatentReparameterization()
    eps = np.random.RandomState(3).normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_allclose(layer(eps), eps)  # starts as the identity
    layer.mu.assign([1.0, 2.0, 3.0])
    layer.log_sigma.assign(np.log([2.0, 0.5, 1.0]))
    np.testing.assert_allclose(layer(eps), [1.0, 2.0, 3.0] + eps * [2.0, 0.5, 1.0],
                               rtol=1e-6)


def test_instance_normalization_per_sample_per_channel():
    x = np.random.RandomState(4).normal(3.0, 2.0, size=(2, 5, 5, 3)).astype(np.float32)
    y = instance_normalization(3)(x).numpy()
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(1, 2)), 1.0, rtol=1e-3)
