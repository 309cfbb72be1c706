"""DataConfig, the data section of the settings: what to load and how."""

import dataclasses
import hashlib
import json
import os
from typing import Callable, Optional, Tuple

import numpy as np
import tensorflow as tf

from tfklgan.settings import raise_problems, setting

SPLITS = ("train", "validation", "all")
RESIZE_PROTOCOLS = ("authors", "center_crop")
NPZ_RANGES = ("auto", "0-1", "0-255")
MNIST_LIKE = ("mnist", "mnist_sample")
DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "tfklgan")


class DatasetUnavailableError(ValueError):
    """A dataset cannot be had (offline, missing files); the message says what to do."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What to load and how.

    name: a name in `SOURCES` or `images:<folder>` / `npz:<file>`.
    image_size, channels: output images [S, S, C]; channels 0 picks 1 for
      MNIST-like data and 3 otherwise (`channel_count`).
    validation_fraction: the held-out share for sources without their own
      validation split (10%, as in the KL-GAN paper).
    max_examples: train on a deterministic random subset of the training
      split, fixed by the seed (e.g. 89,931 CelebA images, docs/reference.md
      §4); None or 0: all. The validation split is never reduced.
    resize: "authors" resizes the full frame to S x S (the KL-GAN code);
      "center_crop" takes the centred square first.
    attributes: CelebA attribute names used as class labels; k attributes
      give 2^k classes (e.g. ("Male", "Smiling") -> 4).
    data_dir: TFDS data directory; celeba_dir: a local CelebA folder.
    cache_dir: where decoded file-based sources are cached (None: ~/.cache/tfklgan).
    download: allow TFDS downloads when the data is not prepared.
    npz_range: how `npz:` float images are read: "auto" (detected: [0, 1] or
      [0, 255]), "0-1" or "0-255"; uint8 images are always 0..255.
    split ("train", "validation" or "all") and seed (of the random split and
    subset) are set by the code that loads, not by the user.
    """
    name: str = setting("mnist_sample", "mnist, celeba, mnist_sample (offline), "
                        "images:<folder> or npz:<file>", flag="dataset")
    image_size: int = setting(32, "output height and width (28, 32 or 64 for the built-in "
                                  "networks)")
    channels: int = setting(0, "1 or 3; 0 picks 1 for MNIST and 3 otherwise")
    resize: str = setting("authors", "authors (full frame resized, KL-GAN code) or center_crop")
    attributes: Tuple[str, ...] = setting((), "CelebA attributes used as class labels, "
                                              "e.g. Male,Smiling")
    max_examples: Optional[int] = setting(None, "train on a random subset of N training "
                                                "images (fixed by --seed); 0 = all")
    validation_fraction: float = setting(0.1, "held-out share for sources without their "
                                              "own split")
    data_dir: Optional[str] = setting(None, "TFDS data_dir with prepared datasets (the "
                                            "offline copy for mnist/celeb_a)", resumable=True)
    celeba_dir: Optional[str] = setting(None, "local CelebA folder with img_align_celeba/ "
                                              "and list_attr_celeba.txt", resumable=True)
    cache_dir: Optional[str] = setting(None, "where decoded images are cached (default "
                                             "~/.cache/tfklgan)", resumable=True)
    download: bool = setting(True, "allow TFDS downloads when the data is not prepared",
                             resumable=True)
    npz_range: str = setting("auto", "npz: float images are auto (detected), 0-1 or 0-255; "
                                     "uint8 is always 0..255")
    split: str = "train"
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "attributes", tuple(self.attributes))
        raise_problems(self.problems())

    def problems(self):
        checks = [
            (self.npz_range in NPZ_RANGES,
             f"--npz_range must be one of {NPZ_RANGES}, got {self.npz_range!r}"),
            (self.split in SPLITS, f"split must be one of {SPLITS}, got {self.split!r}"),
            (self.channels in (0, 1, 3),
             f"--channels must be 0 (auto), 1 or 3, got {self.channels}"),
            (self.image_size >= 4, f"--image_size must be >= 4, got {self.image_size}"),
            (0.0 < self.validation_fraction < 1.0,
             f"--validation_fraction must be in (0, 1), got {self.validation_fraction}"),
            (self.max_examples is None or self.max_examples >= 0,
             f"--max_examples must be >= 0 (0 = all), got {self.max_examples}"),
            (self.resize in RESIZE_PROTOCOLS,
             f"--resize must be one of {RESIZE_PROTOCOLS}, got {self.resize!r}"),
            (not self.attributes or self.name == "celeba",
             "--attributes name CelebA attributes; use them with --dataset=celeba"),
        ]
        return [message for ok, message in checks if not ok]

    @property
    def channel_count(self):
        """1 or 3: `channels`, or by the dataset when it is 0."""
        return self.channels or (1 if self.name in MNIST_LIKE else 3)

    @property
    def cache_folder(self):
        return self.cache_dir or DEFAULT_CACHE_DIR

    @property
    def subset(self):
        """The training subset size, or None for all."""
        return self.max_examples or None


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


def numbered_class_names(count):
    """("0", "1", ..., str(count - 1)): the names of classes known by number."""
    return tuple(str(i) for i in range(count))


def fingerprint(*parts):
    """A short content key for the decode cache."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
