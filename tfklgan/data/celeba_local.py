"""CelebA from a local folder (`--celeba_dir`), and its attribute labels."""

import os

import numpy as np
import tensorflow as tf

from tfklgan.data.config import DatasetUnavailableError, Source, fingerprint

CELEBA_ATTRIBUTE_FILE = "list_attr_celeba.txt"
CELEBA_IMAGE_FOLDER = "img_align_celeba"


def check_attributes(all_names, wanted):
    unknown = [a for a in wanted if a not in all_names]
    if unknown:
        raise ValueError(f"unknown CelebA attributes {unknown}; choose from {list(all_names)}")


def attribute_class_names(wanted):
    """Name of class c = sum_i attr_i * 2^i, e.g. "Male,not Smiling"."""
    return tuple(",".join(f"{'' if (c >> i) & 1 else 'not '}{a}"
                          for i, a in enumerate(wanted)) for c in range(2 ** len(wanted)))


def _attribute_labels(attribute_matrix, all_names, wanted):
    """Class index sum_i attr_i * 2^i over the wanted attributes; class names."""
    check_attributes(all_names, wanted)
    columns = [list(all_names).index(a) for a in wanted]
    bits = (attribute_matrix[:, columns] > 0).astype(np.int64)
    labels = (bits * (2 ** np.arange(len(wanted)))).sum(axis=1)
    return labels, attribute_class_names(wanted)


def local_celeba_source(config):
    root = config.celeba_dir
    attr_path = os.path.join(root, CELEBA_ATTRIBUTE_FILE)
    image_dir = os.path.join(root, CELEBA_IMAGE_FOLDER)
    if not (os.path.isfile(attr_path) and os.path.isdir(image_dir)):
        raise DatasetUnavailableError(
            f"--celeba_dir={root!r} must hold {CELEBA_IMAGE_FOLDER}/ (the aligned "
            f"JPEGs) and {CELEBA_ATTRIBUTE_FILE}")
    with open(attr_path) as handle:
        lines = handle.read().split("\n")
    names = tuple(lines[1].split())
    rows = [line.split() for line in lines[2:] if line.strip()]
    files = [row[0] for row in rows]
    matrix = np.asarray([[int(v) for v in row[1:]] for row in rows], np.int64)
    missing = [f for f in files[:10] + files[-10:]
               if not os.path.isfile(os.path.join(image_dir, f))]
    if missing:
        raise DatasetUnavailableError(f"{CELEBA_ATTRIBUTE_FILE} lists images missing "
                                      f"from {image_dir}, e.g. {missing[:3]}")
    labels, class_names = (_attribute_labels(matrix, names, config.attributes)
                           if config.attributes else (np.full(len(files), -1), ()))
    paths = [os.path.join(image_dir, f) for f in files]
    return Source(
        lambda: tf.data.Dataset.from_tensor_slices({"path": paths, "label": labels}),
        len(paths), len(class_names), class_names,
        fingerprint=fingerprint("celeba", root, len(paths), os.path.getsize(attr_path)))
