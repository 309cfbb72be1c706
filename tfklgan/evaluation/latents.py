"""The one latent sampler: the latents (and requested classes) every
generator is scored with, and that scripts/sample.py and the training
preview grids draw from.

A NumPy generator seeded by [seed, 7] gives the same latents on every
machine and in every process, whatever TensorFlow's random state is; so a
generator scored during training, by the reproduce runner and by
scripts/evaluate.py sees the same inputs.
"""

import numpy as np


def requested_classes(num_classes, count):
    """The class asked of each of `count` samples: 0, 1, 2, ... in turn
    (None for unconditional generators). Shape [count]."""
    return np.arange(count) % num_classes if num_classes else None


def draw_latents(latent_dim, distribution, count, seed):
    """Latents [count, latent_dim] (float32) from the prior: `normal`, or
    `uniform` on [-1, 1]; fixed by `seed`."""
    rng = np.random.default_rng([seed, 7])
    if distribution == "uniform":
        return rng.uniform(-1.0, 1.0, (count, latent_dim)).astype(np.float32)
    return rng.standard_normal((count, latent_dim)).astype(np.float32)


def one_hot(classes, num_classes):
    """One-hot labels [n, num_classes] (float32) of integer classes [n]."""
    return np.eye(num_classes, dtype=np.float32)[np.asarray(classes)]


def sample_inputs(latent_dim, distribution, num_classes, count, seed):
    """(latents [count, latent_dim], one-hot labels [count, num_classes] cycling
    over the classes, or None): the inputs of a scored sample of `count`."""
    latents = draw_latents(latent_dim, distribution, count, seed)
    classes = requested_classes(num_classes, count)
    return latents, (one_hot(classes, num_classes) if num_classes else None)
