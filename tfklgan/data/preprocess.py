"""Preprocessing and the decode cache: a source's images decoded, cropped,
resized and converted once into uint8 [n, S, S, C], and the splits."""

import dataclasses
import os
from typing import Tuple

import numpy as np
import tensorflow as tf

from tfklgan.data.config import DataConfig, fingerprint
from tfklgan.data.registry import get_source


@dataclasses.dataclass
class Arrays:
    """Preprocessed data: images uint8 [n, S, S, C], labels int64 [n] (-1: none)."""
    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    class_names: Tuple[str, ...]


def _preprocess(element, config):
    """One element -> uint8 [S, S, C] and its label."""
    if "path" in element:
        image = tf.io.decode_image(tf.io.read_file(element["path"]),
                                   channels=config.channel_count, expand_animations=False)
    else:
        image = element["image"]
        channels = image.shape[-1]
        if channels != config.channel_count:
            image = (tf.image.grayscale_to_rgb(image) if config.channel_count == 3
                     else tf.image.rgb_to_grayscale(image))
    if config.resize == "center_crop":
        shape = tf.shape(image)
        side = tf.minimum(shape[0], shape[1])
        image = tf.image.crop_to_bounding_box(image, (shape[0] - side) // 2,
                                              (shape[1] - side) // 2, side, side)
    size = config.image_size
    image = tf.ensure_shape(resize_pixels(image, size, size),
                            [size, size, config.channel_count])
    return image, element["label"]


def resize_pixels(image, height, width):
    """uint8 [H, W, C] (or [n, H, W, C]) resized to height x width: bilinear
    with antialiasing, rounded back to uint8. Training resizes its images
    this way, and scoring resizes the odd-sized images of a folder the same."""
    resized = tf.image.resize(tf.cast(image, tf.float32), [height, width],
                              method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def _cache_path(config, source):
    # The labels depend on the attributes asked for, so they are part of the key.
    key = fingerprint(source.fingerprint, config.image_size, config.channel_count,
                       config.resize, list(config.attributes))
    name = config.name.split(":")[0]
    return os.path.join(config.cache_folder, f"{name}-{config.image_size}px-"
                                          f"{config.channel_count}ch-{config.resize}-{key}")


def load_arrays(config):
    """All images of the source, preprocessed: an `Arrays`.

    File-based sources are decoded once and cached under `config.cache_folder`
    (written atomically; read back memory-mapped).
    """
    source = get_source(config)
    path = _cache_path(config, source) if source.fingerprint else None
    # the labels are written last: with them, both files are complete
    if path and os.path.isfile(path + ".labels.npy"):
        images = np.load(path + ".images.npy", mmap_mode="r")
        labels = np.load(path + ".labels.npy")
    else:
        ds = source.elements().map(lambda e: _preprocess(e, config),
                                   num_parallel_calls=tf.data.AUTOTUNE,
                                   deterministic=True)
        images = np.empty((source.count, config.image_size, config.image_size,
                           config.channel_count), np.uint8)
        labels = np.empty(source.count, np.int64)
        start = 0
        for batch_images, batch_labels in ds.batch(1024).as_numpy_iterator():
            images[start:start + len(batch_images)] = batch_images
            labels[start:start + len(batch_labels)] = batch_labels
            start += len(batch_images)
        if start != source.count:
            raise ValueError(f"dataset {config.name!r} yielded {start} images, "
                             f"expected {source.count}")
        if path:
            os.makedirs(config.cache_folder, exist_ok=True)
            for suffix, array in ((".images.npy", images), (".labels.npy", labels)):
                tmp = f"{path}{suffix}.tmp-{os.getpid()}.npy"
                np.save(tmp, array)
                os.replace(tmp, path + suffix)
    return Arrays(images, labels, source.num_classes, source.class_names), source


def split_indices(count, config, validation=None):
    """Sorted indices of the requested split; for the train split with
    max_examples, a random subset fixed by the seed (sources may be sorted
    by class)."""
    if config.split == "all":
        index = np.arange(count)
    else:
        if validation is None:
            order = np.random.RandomState(config.seed).permutation(count)
            validation = order[:int(round(count * config.validation_fraction))]
        in_validation = np.zeros(count, bool)
        in_validation[validation] = True
        index = np.flatnonzero(in_validation == (config.split == "validation"))
    if config.split == "train" and config.subset and config.subset < len(index):
        chosen = np.random.default_rng([config.seed, 3]).permutation(len(index))
        index = np.sort(index[chosen[:config.subset]])
    return index


@dataclasses.dataclass
class ImageData:
    """Images of one split, ready to batch.

    images: uint8 [n, S, S, C] (possibly memory-mapped); labels: int64 [n]
    (-1 when unlabelled); num_classes, class_names.
    """
    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    class_names: Tuple[str, ...]
    config: DataConfig

    def __len__(self):
        return len(self.images)

    @property
    def labelled(self):
        return self.num_classes > 0


def load_split(config):
    """The split `config.split` of `config.name` as `ImageData`."""
    arrays, source = load_arrays(config)
    index = split_indices(len(arrays.images), config, source.validation)
    if len(index) == 0:
        raise ValueError(f"the {config.split} split of {config.name!r} is empty")
    images = arrays.images if len(index) == len(arrays.images) else arrays.images[index]
    return ImageData(images, arrays.labels[index], arrays.num_classes,
                     arrays.class_names, config)
