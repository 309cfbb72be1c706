"""Inception Score, FID and KID with TF-GAN's own functions, plus precision,
recall, density and coverage (tfklgan.prdc).

Pure scores of activations (`inception_score`, `frechet_distance`,
`kernel_distance`) call TF-GAN's `classifier_score_from_logits`,
`frechet_classifier_distance_from_activations` and
`kernel_classifier_distance_and_std_from_activations`. `activations` runs a
feature network over images in batches, so 10,000 to 50,000 samples need
memory only for one image batch plus the activations. `evaluate` scores a
generator against real images and returns the scores with their protocol.
"""

import dataclasses
import hashlib
import json
import os

import numpy as np
import tensorflow as tf

from tfklgan.prdc import DENSITY_COVERAGE_K, PRECISION_RECALL_K, precision_recall_density_coverage
from tfklgan.tfgan_compat import load_classifier_metrics


def inception_score(logits):
    """IS = exp(E_x KL(p(y|x) || p(y))) from logits [n, classes] (TF-GAN)."""
    return float(load_classifier_metrics().classifier_score_from_logits(
        tf.convert_to_tensor(logits, tf.float32)))


def frechet_distance(activations1, activations2):
    """FID = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) (TF-GAN), in float64."""
    return float(load_classifier_metrics().frechet_classifier_distance_from_activations(
        tf.convert_to_tensor(activations1, tf.float64),
        tf.convert_to_tensor(activations2, tf.float64)))


def kernel_distance(activations1, activations2, max_block_size=1000):
    """KID (cubic polynomial kernel MMD^2, TF-GAN) and its standard error.

    The standard error comes from the spread over blocks, so blocks are made
    small enough for at least two.
    """
    smaller = min(len(activations1), len(activations2))
    max_block_size = max(1, min(max_block_size, -(-smaller // 2)))
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # TF-GAN's map_fn(back_prop=False) deprecation notice
    try:
        kid, std = load_classifier_metrics().kernel_classifier_distance_and_std_from_activations(
            tf.convert_to_tensor(activations1, tf.float64),
            tf.convert_to_tensor(activations2, tf.float64), max_block_size=max_block_size)
    finally:
        logger.setLevel(level)
    return float(kid), float(std)


def activations(feature_network, batches):
    """(logits [n, k], features [n, d]) as float32 NumPy arrays, batch by batch.

    batches: an iterable of image batches [b, H, W, C] in [-1, 1].
    """
    run = feature_network.compiled()
    logits, features = [], []
    for batch in batches:
        batch_logits, batch_features = run(tf.convert_to_tensor(batch, tf.float32))
        logits.append(batch_logits.numpy())
        features.append(batch_features.numpy())
    return np.concatenate(logits), np.concatenate(features)


def to_unit_range(images):
    """uint8 images in [0, 255] -> float32 in [-1, 1]."""
    return np.asarray(images, np.float32) / 127.5 - 1.0


def image_batches(images, batch_size):
    """Batches of uint8 [n, S, S, C] images, as float in [-1, 1]."""
    for start in range(0, len(images), batch_size):
        yield to_unit_range(images[start:start + batch_size])


def generated_batches(generate, num_samples, batch_size):
    """Batches of generate(start, size) -> images in [-1, 1], num_samples in all."""
    for start in range(0, num_samples, batch_size):
        yield generate(start, min(batch_size, num_samples - start))


# The names `scores` returns: IS, FID, KID and its error, then tfklgan.prdc's.
SCORES = ("fid", "inception_score", "kid", "kid_std", "precision", "recall", "density",
          "coverage")


def scores(real, generated):
    """IS of the generated logits; FID, KID, precision, recall, density and
    coverage of the features (tfklgan.prdc).

    real, generated: (logits, features) pairs.
    """
    kid, kid_std = kernel_distance(real[1], generated[1])
    return {"inception_score": inception_score(generated[0]),
            "fid": frechet_distance(real[1], generated[1]),
            "kid": kid, "kid_std": kid_std,
            **precision_recall_density_coverage(real[1], generated[1])}


@dataclasses.dataclass(frozen=True)
class RealReference:
    """Which real images a score compares against (for the cache key and the record)."""
    dataset: str
    split: str
    image_size: int
    channels: int
    resize: str
    count: int
    seed: int
    validation_fraction: float
    max_examples: int = 0

    def key(self, feature_network):
        text = json.dumps([dataclasses.asdict(self), feature_network.identity,
                           feature_network.resize_filter], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]


def reference_sample(num_images, count, seed):
    """Sorted indices of a random sample of `count` of `num_images` images."""
    return np.sort(np.random.default_rng([seed, 11]).permutation(num_images)[:count])


def real_activations(feature_network, images, reference, cache_dir, batch_size=200):
    """Activations of a seeded random sample of `reference.count` images,
    cached in `cache_dir` keyed by the reference (dataset, split, seed,
    size, count, ...) and the feature network's identity."""
    path = None
    if cache_dir:
        path = os.path.join(cache_dir, f"real-{reference.dataset.split(':')[0]}-"
                                       f"{reference.split}-{reference.count}-"
                                       f"{reference.key(feature_network)}.npz")
        if os.path.isfile(path):
            with np.load(path) as cached:
                return cached["logits"], cached["features"]
    if len(images) < reference.count:
        raise ValueError(f"the {reference.split} split of {reference.dataset!r} holds "
                         f"{len(images)} images, fewer than the {reference.count} asked "
                         f"for; pass --num_samples={len(images)} (--eval_samples in "
                         "training; --real_samples / --eval_real_samples for the real "
                         "side alone) or another --real_split")
    chosen = images[reference_sample(len(images), reference.count, reference.seed)]
    result = activations(feature_network, image_batches(chosen, batch_size))
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}.npz"
        np.savez(tmp, logits=result[0], features=result[1])
        os.replace(tmp, path)
    return result


def versions():
    """TensorFlow's, Keras' and TF-GAN's versions (TF-GAN's None if not installed)."""
    import importlib.metadata

    import keras
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__}
    try:
        versions["tensorflow_gan"] = importlib.metadata.version("tensorflow-gan")
    except importlib.metadata.PackageNotFoundError:
        versions["tensorflow_gan"] = None
    return versions


def protocol(feature_network, reference, num_generated, seed, weights):
    """The record that makes a score comparable (or shows it is not)."""
    return {"feature_network": feature_network.name,
            "feature_network_identity": feature_network.identity,
            "resize": f"{feature_network.resize_filter} to {feature_network.image_size}x"
                      f"{feature_network.image_size}",
            "resize_filter": feature_network.resize_filter,
            "real": dataclasses.asdict(reference), "generated_count": num_generated,
            "seed": seed, "weights": weights, **computation_record()}


def computation_record():
    """How the scores are computed: the dtypes, the neighbour counts of
    precision/recall and density/coverage, and the libraries' versions."""
    return {"dtypes": {"activations": "float32", "fid_kid": "float64", "prdc": "float64"},
            "k": {"precision_recall": PRECISION_RECALL_K,
                  "density_coverage": DENSITY_COVERAGE_K},
            "versions": versions()}
