"""The scores: Inception Score, FID and KID with TF-GAN's own functions,
precision, recall, density and coverage (`prdc`), and the class-conditional
scores. Pure functions of activations, plus `activations`, which runs a
feature network over image batches (memory for one batch plus the
activations, so 10,000 to 50,000 samples fit).

`inception_score`, `frechet_distance` and `kernel_distance` call TF-GAN's
`classifier_score_from_logits`,
`frechet_classifier_distance_from_activations` and
`kernel_classifier_distance_and_std_from_activations`.
"""

import numpy as np
import tensorflow as tf

from tfklgan.evaluation.prdc import precision_recall_density_coverage
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


# The names `scores` returns: IS, FID, KID and its error, then prdc's.
SCORES = ("fid", "inception_score", "kid", "kid_std", "precision", "recall", "density",
          "coverage")


def scores(real, generated):
    """IS of the generated logits; FID, KID, precision, recall, density and
    coverage of the features (`prdc`).

    real, generated: (logits, features) pairs.
    """
    kid, kid_std = kernel_distance(real[1], generated[1])
    return {"inception_score": inception_score(generated[0]),
            "fid": frechet_distance(real[1], generated[1]),
            "kid": kid, "kid_std": kid_std,
            **precision_recall_density_coverage(real[1], generated[1])}


def class_scores(real_features, real_labels, generated, classes):
    """Scores of a class-conditional generator, per requested class c:
    - accuracy: the share of images asked to be class c that the domain
      classifier labels c (when its logits are the generator's classes);
    - intra_fid: the FID of those images against the real images of class c.

    real_features [m, d], real_labels [m], generated (logits [n, k], features
    [n, d]), classes [n]. Returns the per-class values and their means.
    """
    logits, features = generated
    num_classes = int(classes.max()) + 1
    per_class = {}
    for c in range(num_classes):
        mine, theirs = features[classes == c], real_features[real_labels == c]
        entry = {"generated": int(len(mine)), "real": int(len(theirs))}
        if logits.shape[1] == num_classes:
            entry["accuracy"] = float(np.mean(np.argmax(logits[classes == c], 1) == c))
        if len(mine) > 1 and len(theirs) > 1:
            entry["intra_fid"] = frechet_distance(theirs, mine)
        per_class[str(c)] = entry
    summary = {"per_class": per_class}
    for name in ("accuracy", "intra_fid"):
        values = [e[name] for e in per_class.values() if name in e]
        if values:
            summary[f"mean_{name}"] = float(np.mean(values))
    return summary
