"""Adam/AdamW against NumPy references of Keras' and PyTorch's update rules:
where eps is added is the one place the two differ."""

import numpy as np
import pytest
import tensorflow as tf

from tfklgan.optimizers import OptimizerConfig, build_optimizers

LR, BETA1, BETA2, EPS, DECAY = 8e-5, 0.9, 0.999, 1e-8, 0.01


def numpy_adamw(theta, grads, placement, decay=DECAY, eps=EPS):
    """theta after AdamW on `grads` (one array per step), float64; decoupled
    weight decay first, then Adam with eps added as `placement` adds it."""
    theta = theta.astype(np.float64)
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        theta = theta - LR * decay * theta
        m = BETA1 * m + (1 - BETA1) * g
        v = BETA2 * v + (1 - BETA2) * g * g
        c1, c2 = 1 - BETA1 ** t, 1 - BETA2 ** t
        if placement == "torch":  # PyTorch: m_hat / (sqrt(v_hat) + eps)
            theta = theta - LR / c1 * m / (np.sqrt(v) / np.sqrt(c2) + eps)
        else:  # Keras: lr sqrt(c2) / c1 * m / (sqrt(v) + eps)
            theta = theta - LR * np.sqrt(c2) / c1 * m / (np.sqrt(v) + eps)
    return theta


def run(optimizer, theta, grads):
    variable = tf.Variable(theta.astype(np.float32))
    for g in grads:
        optimizer.apply_gradients([(tf.constant(g, tf.float32), variable)])
    return variable.numpy()


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    theta = 0.01 * rng.normal(size=(200,))  # small weights: float32 rounds them finely
    # gradients from 1e-9 to 1: where eps matters and where it does not
    scale = np.logspace(-9, 0, 200)
    grads = [scale * rng.normal(size=(200,)) for _ in range(6)]
    return theta, grads


@pytest.mark.parametrize("placement", ["keras", "torch"])
def test_adamw_follows_its_placement_of_eps(problem, placement):
    theta, grads = problem
    config = OptimizerConfig(optimizer="adamw", adam_epsilon=placement, g_lr=LR, d_lr=LR)
    got = run(build_optimizers(config)[0], theta, grads)
    np.testing.assert_allclose(got, numpy_adamw(theta, grads, placement), rtol=0, atol=2e-8)
    other = "keras" if placement == "torch" else "torch"
    # the two rules differ by far more than float32 rounding where gradients are small
    assert np.abs(got - numpy_adamw(theta, grads, other)).max() > 1e-5


def test_adam_with_torch_eps_has_no_weight_decay(problem):
    theta, grads = problem
    config = OptimizerConfig(optimizer="adam", adam_epsilon="torch", g_lr=LR, d_lr=LR)
    # keras.optimizers.Adam's own eps default (1e-7) is kept
    expected = numpy_adamw(theta, grads, "torch", decay=0.0, eps=1e-7)
    np.testing.assert_allclose(run(build_optimizers(config)[1], theta, grads), expected,
                               rtol=0, atol=2e-8)


def test_an_unknown_placement_is_refused():
    with pytest.raises(ValueError, match="--adam_epsilon must be one of"):
        OptimizerConfig(adam_epsilon="pytorch")


def test_torch_eps_equals_pytorchs_adamw_where_installed(problem):
    torch = pytest.importorskip("torch", reason="PyTorch (pip install -e \".[reference]\")")
    theta, grads = problem
    param = torch.nn.Parameter(torch.tensor(theta, dtype=torch.float32))
    reference = torch.optim.AdamW([param], lr=LR)  # PyTorch's defaults
    for g in grads:
        param.grad = torch.tensor(g, dtype=torch.float32)
        reference.step()
    config = OptimizerConfig(optimizer="adamw", adam_epsilon="torch", g_lr=LR, d_lr=LR)
    np.testing.assert_allclose(run(build_optimizers(config)[0], theta, grads),
                               param.detach().numpy(), rtol=0, atol=2e-8)
