import numpy as np
import pytest
import tensorflow as tf

from tfklgan import penalties


def linear_critic(weights):
    w = tf.constant(weights, tf.float32)
    return lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3])


def _images(n=4, seed=0):
    return tf.constant(np.random.RandomState(seed).normal(size=(n, 2, 2, 3)), tf.float32)


def test_gradient_penalty_unit_norm_is_zero():
    w = np.random.RandomState(1).normal(size=(2, 2, 3))
    w /= np.linalg.norm(w)
    alpha = tf.random.uniform([4, 1, 1, 1])
    gp = penalties.gradient_penalty(linear_critic(w), _images(), _images(seed=2), alpha)
    assert float(gp) == pytest.approx(0.0, abs=1e-6)


def test_gradient_penalty_norm_two_is_one():
    w = np.random.RandomState(1).normal(size=(2, 2, 3))
    w *= 2.0 / np.linalg.norm(w)
    alpha = tf.random.uniform([4, 1, 1, 1])
    gp = penalties.gradient_penalty(linear_critic(w), _images(), _images(seed=2), alpha)
    assert float(gp) == pytest.approx(1.0, rel=1e-5)


def test_gradient_penalty_per_pixel_norm():
    # weight 1 on one channel of every pixel: per-pixel norm 1, per-sample norm 2
    w = np.zeros((2, 2, 3))
    w[..., 0] = 1.0
    alpha = tf.ones([4, 1, 1, 1]) * 0.3
    x, y = _images(), _images(seed=3)
    assert float(penalties.gradient_penalty(linear_critic(w), x, y, alpha,
                                            norm="per_pixel")) == pytest.approx(0.0, abs=1e-6)
    assert float(penalties.gradient_penalty(linear_critic(w), x, y, alpha)) == pytest.approx(1.0)


def test_gradient_penalty_evaluated_at_interpolates():
    # D(x) = sum(x^2) / 2 has gradient x: GP uses x_hat = a x + (1 - a) y
    critic = lambda x: 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])
    x, y = _images(), _images(seed=5)
    alpha = tf.constant([0.0, 0.25, 0.5, 1.0])[:, None, None, None]
    x_hat = (alpha * x + (1 - alpha) * y).numpy()
    expected = np.mean((np.sqrt((x_hat ** 2).sum(axis=(1, 2, 3))) - 1) ** 2)
    np.testing.assert_allclose(float(penalties.gradient_penalty(critic, x, y, alpha)),
                               expected, rtol=1e-5)


def test_unknown_gp_norm():
    with pytest.raises(ValueError, match="norm must be one of"):
        penalties.gradient_penalty(linear_critic(np.ones((2, 2, 3))), _images(), _images(),
                                   tf.ones([4, 1, 1, 1]), norm="channel")


def test_r1_penalty_linear_critic():
    w = np.full((2, 2, 3), 0.5)
    assert float(penalties.r1_penalty(linear_critic(w), _images())) == pytest.approx(12 * 0.25)


def test_clip_value():
    np.testing.assert_allclose(penalties.clip_value(tf.constant([-1.0, 0.005, 2.0]), 0.01),
                               [-0.01, 0.005, 0.01])
