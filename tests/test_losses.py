import numpy as np
import pytest
import tensorflow as tf

from tfklgan import losses

REAL = np.array([2.0, -1.0, 0.5, 0.0], np.float32)
GEN = np.array([-3.0, 1.0, 0.2, -0.5], np.float32)


def softplus(x):
    return np.log1p(np.exp(x))


def np_skl(real, gen, eps=1e-10, reference_code=False):
    real, gen = real.astype(np.float64), gen.astype(np.float64)
    def moments(f):
        var = f.var(axis=0) + eps  # population variance
        return f.mean(axis=0), (var ** 2 if reference_code else var)
    (mp, vp), (mq, vq) = moments(real), moments(gen)
    kl = lambda m1, v1, m2, v2: 0.5 * np.sum(np.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1)
    return 0.5 * (np.log1p(kl(mp, vp, mq, vq)) + np.log1p(kl(mq, vq, mp, vp)))


def test_kl_of_identical_statistics_is_zero():
    f = np.random.RandomState(0).normal(size=(64, 8)).astype(np.float32)
    m = losses.gaussian_moments(f)
    skl, kl_pq, kl_qp = losses.symmetric_kl(m, m)
    assert float(skl) == pytest.approx(0.0, abs=1e-6)
    assert float(kl_pq) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("kl_stats", ["paper", "reference_code"])
def test_symmetric_kl_matches_numpy(kl_stats):
    rng = np.random.RandomState(1)
    real = rng.normal(0.5, 2.0, size=(128, 8)).astype(np.float32)
    gen = rng.normal(-0.3, 0.7, size=(128, 8)).astype(np.float32)
    skl, _, _ = losses.symmetric_kl(losses.gaussian_moments(real, kl_stats=kl_stats),
                                    losses.gaussian_moments(gen, kl_stats=kl_stats))
    expected = np_skl(real, gen, reference_code=kl_stats == "reference_code")
    np.testing.assert_allclose(float(skl), expected, rtol=1e-5)


def test_population_variance_and_eps():
    f = np.array([[1.0], [3.0]], np.float32)
    mean, var = losses.gaussian_moments(f, eps=0.5)
    np.testing.assert_allclose(mean, [2.0])
    np.testing.assert_allclose(var, [1.5])  # mean((f - 2)^2) = 1, + eps
    _, var_ref = losses.gaussian_moments(f, eps=0.5, kl_stats="reference_code")
    np.testing.assert_allclose(var_ref, [2.25])


def test_diagonal_gaussian_kl_closed_form():
    # KL(N(0, 1) || N(1, 4)) = 1/2 (log 4 + (1 + 1) / 4 - 1) per component
    kl = losses.diagonal_gaussian_kl(tf.zeros(2), tf.ones(2), tf.ones(2), 4 * tf.ones(2))
    np.testing.assert_allclose(float(kl), 2 * 0.5 * (np.log(4) + 0.5 - 1), rtol=1e-6)


def test_unknown_kl_stats():
    with pytest.raises(ValueError, match="kl_stats must be one of"):
        losses.gaussian_moments(np.zeros((2, 2), np.float32), kl_stats="torch")


def test_minimax_and_non_saturating():
    d = losses.minimax_discriminator_loss(REAL, GEN)
    np.testing.assert_allclose(float(d), np.mean(softplus(-REAL)) + np.mean(softplus(GEN)),
                               rtol=1e-6)
    # -E[log D(x)] - E[log(1 - D(G(z)))] with D = sigmoid
    sig = lambda x: 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(
        float(d), -np.mean(np.log(sig(REAL))) - np.mean(np.log(1 - sig(GEN))), rtol=1e-5)
    np.testing.assert_allclose(float(losses.minimax_generator_loss(GEN)),
                               np.mean(np.log(1 - sig(GEN))), rtol=1e-5)
    np.testing.assert_allclose(float(losses.non_saturating_generator_loss(GEN)),
                               -np.mean(np.log(sig(GEN))), rtol=1e-5)


def test_least_squares_hand_computed():
    # standard: 0.5 * (mean((r - 1)^2) + mean(g^2))
    r, g = np.array([1.0, 0.0], np.float32), np.array([0.5, -1.0], np.float32)
    assert float(losses.least_squares_discriminator_loss(r, g)) == pytest.approx(
        0.5 * (0.5 + (0.25 + 1.0) / 2))
    assert float(losses.least_squares_generator_loss(g)) == pytest.approx(
        0.5 * (0.25 + 4.0) / 2)
    # authors: real -> 0, fake -> 1, no 1/2
    assert float(losses.least_squares_discriminator_loss(
        r, g, real_label=0.0, gen_label=1.0, scale=1.0)) == pytest.approx(
            0.5 + (0.25 + 4.0) / 2)


def test_hinge_hand_computed():
    r, g = np.array([2.0, 0.5], np.float32), np.array([-2.0, 0.5], np.float32)
    # relu(1 - r) = [0, 0.5]; relu(1 + g) = [0, 1.5]
    assert float(losses.hinge_discriminator_loss(r, g)) == pytest.approx(0.25 + 0.75)
    assert float(losses.hinge_generator_loss(g)) == pytest.approx(0.75)


def test_wasserstein():
    assert float(losses.wasserstein_discriminator_loss(REAL, GEN)) == pytest.approx(
        GEN.mean() - REAL.mean())
    assert float(losses.wasserstein_generator_loss(GEN)) == pytest.approx(-GEN.mean())
