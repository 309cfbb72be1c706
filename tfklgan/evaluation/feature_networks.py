"""Feature networks for IS, FID and KID: images -> (logits, features).

Registry `FEATURE_NETWORKS`:
- "inception": TF-GAN's Inception v3 (a TF-Hub module; its handle by
  default, downloaded with tensorflow_hub, or a local copy of the module
  with `path`, loaded with `tf.saved_model.load`). Images are resized to
  299x299 (bilinear), grayscale is repeated to 3 channels, values stay in
  [-1, 1]; `logits` feed IS and `pool_3` (2048-d) feeds FID and KID.
- "classifier": a domain classifier SavedModel of this package (see
  `scripts/train_classifier.py`, e.g. an MNIST CNN, as TF-GAN's own MNIST
  examples use for their "MNIST score" and "MNIST Frechet distance"),
  returning `logits` and `features`. An MNIST classifier ships with the
  package (`PACKAGED_MNIST_CLASSIFIER`), the default for MNIST-like data.

FIDs from different feature networks are not comparable; every score
records the network's name and a sha256 of its files.
"""

import dataclasses
import hashlib
import os
import socket
from typing import Callable, Optional
from urllib.parse import urlparse

import tensorflow as tf

from tfklgan.tfgan_compat import TensorflowHubUnavailableError, import_tensorflow_hub

# TF-GAN's Inception v3 module: input 299x299x3 in [-1, 1]; outputs "logits"
# (1008 classes, for IS) and "pool_3" (2048-d, for FID and KID).
INCEPTION_HANDLE = "https://tfhub.dev/tensorflow/tfgan/eval/inception/1"
INCEPTION_LOGITS = "logits"
INCEPTION_POOL = "pool_3"
INCEPTION_SIZE = 299


class FeatureNetworkUnavailableError(ValueError):
    """The feature network cannot be loaded; the message says what to pass."""


# How images are resized to the feature network's input: FID moves by several
# points between resizing filters, so every score records which one it used.
# "tfgan": bilinear without antialiasing, as TF-GAN's examples resize.
# "clean": antialiased bicubic, which matches PIL's BICUBIC on float images
#   (to 5e-4 on the 0..255 scale), as clean-fid resizes.
RESIZE_FILTERS = {"tfgan": ("bilinear", False), "clean": ("bicubic", True)}


@dataclasses.dataclass
class FeatureNetwork:
    """name, identity (name + sha256 of its files or its handle), input size,
    channels, and `run(images [n, S, S, C] in [-1, 1]) -> (logits, features)`."""
    name: str
    identity: str
    image_size: int
    channels: int
    run: Callable
    resize_filter: str = "tfgan"
    _compiled: Optional[Callable] = dataclasses.field(default=None, repr=False, compare=False)

    def compiled(self):
        """`__call__` as one tf.function, traced once per input shape and kept."""
        if self._compiled is None:
            self._compiled = tf.function(self.__call__, reduce_retracing=True)
        return self._compiled

    def preprocess(self, images):
        images = tf.convert_to_tensor(images, tf.float32)
        if images.shape[-1] != self.channels:
            images = (tf.image.grayscale_to_rgb(images) if self.channels == 3
                      else tf.reduce_mean(images, axis=-1, keepdims=True))
        if images.shape[1] != self.image_size or images.shape[2] != self.image_size:
            method, antialias = RESIZE_FILTERS[self.resize_filter]
            images = tf.image.resize(images, [self.image_size, self.image_size],
                                     method=method, antialias=antialias)
        return images

    def __call__(self, images):
        logits, features = self.run(self.preprocess(images))
        return (tf.reshape(tf.cast(logits, tf.float32), [tf.shape(logits)[0], -1]),
                tf.reshape(tf.cast(features, tf.float32), [tf.shape(features)[0], -1]))


def directory_sha256(path, exclude=()):
    """sha256 over the relative names and contents of every file below `path`
    (but the top-level files named in `exclude`)."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            if root == path and name in exclude:
                continue
            full = os.path.join(root, name)
            digest.update(os.path.relpath(full, path).encode())
            with open(full, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def _reachable(url, timeout=5.0):
    host = urlparse(url).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def inception(inception_path=None, **_):
    """TF-GAN's Inception from a local copy (`tf.saved_model.load`), or from
    its TF-Hub handle (downloaded with `tensorflow_hub`)."""
    path = inception_path
    if path:
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise FeatureNetworkUnavailableError(
                f"--inception_path={path!r} holds no saved_model.pb; give the unpacked "
                f"TF-Hub module {INCEPTION_HANDLE}")
        identity = network_identity("inception", inception_path=path)
        module = tf.saved_model.load(path)
    else:
        if not _reachable(INCEPTION_HANDLE):
            raise FeatureNetworkUnavailableError(
                f"TF-GAN's Inception ({INCEPTION_HANDLE}) cannot be downloaded here "
                "(offline?); pass --inception_path=<a local copy of that TF-Hub module>, "
                "or --feature_network=classifier for a domain classifier")
        try:
            tfhub = import_tensorflow_hub()
        except TensorflowHubUnavailableError as err:
            raise FeatureNetworkUnavailableError(str(err)) from err
        identity = network_identity("inception")
        module = tfhub.load(INCEPTION_HANDLE)

    def run(images):
        outputs = module(images)
        return outputs[INCEPTION_LOGITS], outputs[INCEPTION_POOL]

    return FeatureNetwork("inception", identity, INCEPTION_SIZE, 3, run)


# The MNIST classifier shipped with the package (trained by
# scripts/train_classifier.py on mnist_sample; see its metadata.json).
PACKAGED_MNIST_CLASSIFIER = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets",
                                         "mnist_classifier")
MNIST_LIKE = ("mnist", "mnist_sample")
CLASSIFIER_REPORT = "metrics.json"  # written beside the model by train_classifier.py


def default_classifier_path(dataset):
    """The shipped MNIST classifier for MNIST-like datasets, else None."""
    return PACKAGED_MNIST_CLASSIFIER if dataset in MNIST_LIKE else None


def classifier(classifier_path=None, **_):
    """A domain classifier saved by scripts/train_classifier.py."""
    path = classifier_path
    if not path:
        raise FeatureNetworkUnavailableError(
            "the classifier feature network needs --classifier_path (MNIST-like data "
            f"{MNIST_LIKE} use the shipped MNIST classifier by default); train one "
            "with scripts/train_classifier.py")
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise FeatureNetworkUnavailableError(
            f"--classifier_path={path!r} holds no SavedModel; train one with "
            "scripts/train_classifier.py")
    module = tf.saved_model.load(path)
    size = int(module.image_size.numpy())
    channels = int(module.channels.numpy())

    def run(images):
        outputs = module(images)
        return outputs["logits"], outputs["features"]

    return FeatureNetwork("classifier", network_identity("classifier", classifier_path=path),
                          size, channels, run)


FEATURE_NETWORKS = {"inception": inception, "classifier": classifier}


def network_identity(name, inception_path=None, classifier_path=None):
    """What a score's protocol records as its feature network, computed from
    the files without loading them: "classifier:sha256=...",
    "inception:sha256=..." for a local copy, or the TF-Hub handle."""
    if name == "classifier":
        digest = directory_sha256(classifier_path, exclude=(CLASSIFIER_REPORT,))
        return f"classifier:sha256={digest}"
    if name == "inception":
        return (f"inception:sha256={directory_sha256(inception_path)}" if inception_path
                else f"inception:{INCEPTION_HANDLE}")
    raise ValueError(f"unknown feature network {name!r}; choose one of "
                     f"{sorted(FEATURE_NETWORKS)}")


def load_feature_network(name, inception_path=None, classifier_path=None,
                         resize_filter="tfgan"):
    """The feature network registered as `name`, from the given paths, resizing
    its inputs with `resize_filter` (a key of RESIZE_FILTERS)."""
    if name not in FEATURE_NETWORKS:
        raise ValueError(f"unknown feature network {name!r}; choose one of "
                         f"{sorted(FEATURE_NETWORKS)}")
    if resize_filter not in RESIZE_FILTERS:
        raise ValueError(f"unknown resize filter {resize_filter!r}; choose one of "
                         f"{sorted(RESIZE_FILTERS)}")
    network = FEATURE_NETWORKS[name](inception_path=inception_path,
                                     classifier_path=classifier_path)
    return dataclasses.replace(network, resize_filter=resize_filter)
