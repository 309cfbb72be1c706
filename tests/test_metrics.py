"""IS, FID and KID against closed forms and SciPy; feature-network loading."""

import os
import time

import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf

from tfklgan.evaluation import feature_networks
from tfklgan.evaluation import scores as metrics


def np_fid(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)  # unbiased, as TF-GAN
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * root))


def test_fid_matches_scipy():
    rng = np.random.RandomState(0)
    a = rng.normal(size=(500, 16)).astype(np.float32)
    b = (rng.normal(size=(500, 16)) @ rng.normal(size=(16, 16)) * 0.5 + 0.3).astype(np.float32)
    np.testing.assert_allclose(metrics.frechet_distance(a, b), np_fid(a, b), rtol=1e-3)


def test_fid_of_identical_sets_is_zero():
    a = np.random.RandomState(1).normal(size=(300, 8)).astype(np.float32)
    assert abs(metrics.frechet_distance(a, a)) < 1e-3


def _exact_gaussian_sample(n, mean, cov, seed):
    """n points whose sample mean and unbiased covariance are exactly mean and cov."""
    z = np.random.RandomState(seed).normal(size=(n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(z.T @ z / (n - 1))).T
    return z @ np.linalg.cholesky(cov).T + mean


def test_fid_follows_the_gaussian_closed_form():
    d = 4
    mu1, mu2 = np.zeros(d), np.array([1.0, -2.0, 0.5, 0.0])
    s1, s2 = np.diag([1.0, 2.0, 0.5, 1.0]), np.diag([4.0, 1.0, 0.5, 0.25])
    a = _exact_gaussian_sample(4000, mu1, s1, 0)
    b = _exact_gaussian_sample(4000, mu2, s2, 1)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(
        np.diag(s1) + np.diag(s2) - 2 * np.sqrt(np.diag(s1) * np.diag(s2)))
    np.testing.assert_allclose(metrics.frechet_distance(a, b), expected, rtol=1e-3)


def test_inception_score_extremes():
    same = np.tile([[2.0, -1.0, 0.5]], (50, 1))
    assert metrics.inception_score(same) == pytest.approx(1.0, abs=1e-4)
    k = 5
    confident = 100.0 * np.eye(k)[np.arange(100) % k]
    assert metrics.inception_score(confident) == pytest.approx(float(k), rel=1e-3)


def test_kid_same_and_shifted():
    rng = np.random.RandomState(2)
    a = rng.normal(size=(1000, 16))
    b = rng.normal(size=(1000, 16))
    kid_same, std_same = metrics.kernel_distance(a, b)
    kid_shift, std_shift = metrics.kernel_distance(a, b + 1.0)
    # cubic kernel (x.y / d + 1)^3: a unit shift in 16-d gives MMD^2 of about 7.4
    assert abs(kid_same) < 0.02 and std_same > 0
    assert kid_shift > 5.0 and kid_shift > 100 * abs(kid_same)


def _save_fake_hub_module(path):
    """A TF-Hub-format SavedModel with `logits` and `pool_3` outputs, like
    TF-GAN's Inception: images [n, 299, 299, 3] in [-1, 1]."""
    class Fake(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.random.stateless_normal([12, 10], [1, 2]))

        @tf.function(input_signature=[tf.TensorSpec([None, 299, 299, 3], tf.float32)])
        def __call__(self, images):
            pooled = tf.reshape(tf.nn.avg_pool2d(images, 149, 150, "VALID"), [-1, 12])
            return {"logits": 5.0 * pooled @ self.w,
                    "pool_3": tf.reshape(pooled, [-1, 1, 1, 12])}
    tf.saved_model.save(Fake(), str(path))


def test_local_inception_module_loads_through_the_inception_path(tmp_path):
    _save_fake_hub_module(tmp_path / "inception")
    net = feature_networks.load_feature_network("inception",
                                                inception_path=str(tmp_path / "inception"))
    assert net.name == "inception" and net.identity.startswith("inception:sha256=")
    gray = np.random.RandomState(0).uniform(-1, 1, (6, 28, 28, 1)).astype(np.float32)
    logits, features = metrics.activations(net, [gray[:3], gray[3:]])
    assert logits.shape == (6, 10) and features.shape == (6, 12)
    bright = np.clip(gray + 0.8, -1, 1)
    real = metrics.activations(net, [gray])
    fake = metrics.activations(net, [bright])
    result = metrics.scores(real, fake)
    assert result["fid"] > 0.1 and np.isfinite(result["inception_score"])
    assert metrics.scores(real, real)["fid"] < 1e-3


def test_inception_offline_fails_fast_naming_inception_path(monkeypatch):
    monkeypatch.setattr(feature_networks, "_reachable", lambda url, timeout=5.0: False)
    start = time.time()
    with pytest.raises(feature_networks.FeatureNetworkUnavailableError,
                       match="--inception_path"):
        feature_networks.load_feature_network("inception")
    assert time.time() - start < 5
    with pytest.raises(feature_networks.FeatureNetworkUnavailableError,
                       match="holds no saved_model.pb"):
        feature_networks.load_feature_network("inception", inception_path="/no/such/dir")
    with pytest.raises(ValueError, match="unknown feature network 'vgg'"):
        feature_networks.load_feature_network("vgg")


def test_dataset_reference_is_cached_by_its_record_and_recomputed_when_damaged(tmp_path,
                                                                              capsys):
    from tfklgan.evaluation.image_sets import array_image_set
    from tfklgan.evaluation.reference import dataset_reference
    _save_fake_hub_module(tmp_path / "inception")
    net = feature_networks.load_feature_network("inception",
                                                inception_path=str(tmp_path / "inception"))
    images = np.random.RandomState(0).randint(0, 256, (20, 8, 8, 3)).astype(np.uint8)

    def sample(pixels, seed):
        return array_image_set(pixels, record={"dataset": "npz:x", "split": "validation",
                                               "count": 20, "seed": seed})
    cache = tmp_path / "cache"
    first = dataset_reference(net, sample(images, 0), str(cache))
    assert len(os.listdir(cache)) == 1
    damaged = cache / os.listdir(cache)[0]  # seed 0's entry
    again = dataset_reference(net, sample(images * 0, 0), str(cache))
    np.testing.assert_array_equal(first.features, again.features)  # read from the cache
    dataset_reference(net, sample(images, 1), str(cache))
    assert len(os.listdir(cache)) == 2
    damaged.write_bytes(damaged.read_bytes()[:100])
    recomputed = dataset_reference(net, sample(images, 0), str(cache))
    np.testing.assert_array_equal(first.features, recomputed.features)
    assert f"the cached reference {damaged} cannot be used" in capsys.readouterr().err
