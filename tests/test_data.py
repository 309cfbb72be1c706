import numpy as np
import pytest
import tensorflow as tf

from tfklgan.data import DataConfig, load_arrays, make_dataset, split_indices


def test_mnist_sample_is_real_mnist():
    x, y = load_arrays(DataConfig("mnist_sample"))
    assert x.shape == (5000, 28, 28, 1) and x.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(y), [500] * 10)
    # real digits: mostly black background, bright strokes
    assert 0.7 < np.mean(x == 0) < 0.95 and x.max() == 255


def test_pipeline_range_shape_and_seeded_shuffle():
    cfg = DataConfig("mnist_sample", image_size=32, channels=3, seed=1)
    ds, n = make_dataset(cfg, batch_size=64)
    assert n == 4500  # 90% train split
    first = next(iter(ds)).numpy()
    assert first.shape == (64, 32, 32, 3)
    assert first.min() >= -1.0 and first.max() <= 1.0 and first.min() < -0.99
    again = next(iter(make_dataset(cfg, batch_size=64)[0])).numpy()
    np.testing.assert_array_equal(first, again)


def test_splits_are_disjoint_and_subset_is_deterministic():
    train = split_indices(5000, DataConfig(split="train"))
    val = split_indices(5000, DataConfig(split="validation"))
    assert len(val) == 500 and not set(train) & set(val)
    sub = split_indices(5000, DataConfig(split="train", max_examples=123))
    np.testing.assert_array_equal(sub, train[:123])


def test_labels_one_hot():
    ds, _ = make_dataset(DataConfig("mnist_sample"), 16, labels=True)
    images, labels = next(iter(ds))
    assert labels.shape == (16, 10)
    np.testing.assert_allclose(tf.reduce_sum(labels, axis=1), 1.0)


def test_npz_source_and_errors(tmp_path):
    path = tmp_path / "d.npz"
    x = np.random.RandomState(0).randint(0, 256, (40, 8, 8, 3)).astype(np.uint8)
    np.savez(path, x=x)
    ds, n = make_dataset(DataConfig(f"npz:{path}", image_size=8, channels=3, split="all"),
                         batch_size=8, shuffle=False)
    assert n == 40
    np.testing.assert_allclose(next(iter(ds)).numpy(),
                               x[split_indices(40, DataConfig(split="all"))][:8] / 127.5 - 1,
                               atol=1e-6)
    with pytest.raises(ValueError, match="has no labels"):
        make_dataset(DataConfig(f"npz:{path}", image_size=8, channels=3), 8, labels=True)
    with pytest.raises(ValueError, match="does not exist"):
        load_arrays(DataConfig(f"npz:{tmp_path / 'missing.npz'}"))
    np.savez(tmp_path / "bad.npz", x=np.zeros((4, 8, 8, 5)))
    with pytest.raises(ValueError, match="must be"):
        load_arrays(DataConfig(f"npz:{tmp_path / 'bad.npz'}"))


def test_unknown_dataset_and_small_split():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*mnist_sample"):
        load_arrays(DataConfig("cifar"))
    with pytest.raises(ValueError, match="fewer than one batch"):
        make_dataset(DataConfig(max_examples=10), batch_size=64)
