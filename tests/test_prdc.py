"""Precision/recall and density/coverage against a brute-force float64 reference."""

import numpy as np
import pytest
import scipy.spatial

from tfklgan.evaluation.prdc import kth_neighbour_radii, precision_recall_density_coverage


def brute_force(real, fake, pr_k=3, dc_k=5):
    """The definitions, with full float64 distance matrices (SciPy)."""
    def radii(x, k):
        d = scipy.spatial.distance.cdist(x, x)
        np.fill_diagonal(d, np.inf)
        return np.sort(d, axis=1)[:, k - 1]
    d = scipy.spatial.distance.cdist(fake, real)  # [m, n]
    r3, r5, f3 = radii(real, pr_k), radii(real, dc_k), radii(fake, pr_k)
    return {"precision": np.mean(np.any(d <= r3[None, :], axis=1)),
            "recall": np.mean(np.any(d <= f3[:, None], axis=0)),
            "density": np.sum(d <= r5[None, :]) / (dc_k * len(fake)),
            "coverage": np.mean(d.min(axis=0) <= r5)}


@pytest.mark.parametrize("max_elements", [2 ** 24, 700])  # one chunk, many chunks
def test_matches_brute_force_reference(max_elements):
    rng = np.random.RandomState(0)
    real = rng.normal(size=(300, 6))
    fake = rng.normal(size=(240, 6)) * 1.3 + 0.4
    ours = precision_recall_density_coverage(real, fake, max_elements=max_elements)
    expected = brute_force(real, fake)
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, abs=1e-12), name
    assert 0.05 < ours["precision"] < 0.95 and 0.05 < ours["coverage"] < 0.95


def test_radii_exclude_the_point_itself_and_count_duplicates():
    x = np.array([[0.0], [0.0], [1.0], [3.0], [7.0]])
    radii = kth_neighbour_radii(x, (1, 2), max_elements=3)
    np.testing.assert_allclose(radii[1].numpy(), np.array([0, 0, 1, 2, 4]) ** 2)
    np.testing.assert_allclose(radii[2].numpy(), np.array([1, 1, 1, 3, 6]) ** 2)
    with pytest.raises(ValueError, match="more than k = 5 points"):
        kth_neighbour_radii(x, (5,))


def test_identical_sets_and_far_apart_sets():
    rng = np.random.RandomState(1)
    real = rng.normal(size=(400, 8))
    same = precision_recall_density_coverage(real, real)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    # each point lies in its own ball and in the balls of the k points that
    # have it among their k nearest: (1 + k) / k on average
    assert same["density"] == pytest.approx(6 / 5)
    fresh = precision_recall_density_coverage(real, rng.normal(size=(400, 8)))
    assert fresh["density"] == pytest.approx(1.0, abs=0.15)
    far = precision_recall_density_coverage(real, real + 100.0)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_mode_dropping_halves_recall_and_coverage_but_keeps_precision():
    rng = np.random.RandomState(2)
    centres = rng.normal(size=(10, 2)) * 30.0
    real = centres[np.arange(2000) % 10] + rng.normal(size=(2000, 2))
    fake = centres[np.arange(2000) % 5] + rng.normal(size=(2000, 2))  # 5 of the 10 modes
    scores = precision_recall_density_coverage(real, fake)
    assert scores["precision"] > 0.9
    assert scores["recall"] == pytest.approx(0.5, abs=0.05)
    assert scores["coverage"] == pytest.approx(0.5, abs=0.05)
