"""DCGAN at 64x64 with a BatchNorm or SN(k) discriminator (docs/reference.md §4).

Generator: Dense to [4, 4, 8w], BN, ReLU -> transposed convs k4 s2 to 4w,
2w, w (BN, ReLU) -> transposed conv k4 s2 to C -> tanh (64x64).
Discriminator: conv k4 s2 to w, 2w, 4w, 8w with LeakyReLU(0.2) and BatchNorm
in all but the first, or spectral normalization with k power iterations on
every conv instead of BatchNorm (SN(k)-DCGAN), then conv k4 to 1 channel
(the logit; sigmoid is in the loss). w = 128 gives the 128..1024 channels of
the study.
"""

import dataclasses

import keras

from tfklgan.networks.base import (
    discriminator_inputs,
    generator_inputs,
    make_pair,
    maybe_spectral_norm,
)

IMAGE_SIZE = 64


def _batch_norm():
    # synchronized: batch statistics of the global batch under a strategy.
    return keras.layers.BatchNormalization(synchronized=True)


def build_generator(config):
    w = config.width
    inputs, x = generator_inputs(config)
    x = keras.layers.Dense(4 * 4 * 8 * w, use_bias=False)(x)
    x = keras.layers.Reshape((4, 4, 8 * w))(x)
    x = keras.layers.ReLU()(_batch_norm()(x))
    for filters in (4 * w, 2 * w, w):
        x = keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same",
                                         use_bias=False)(x)
        x = keras.layers.ReLU()(_batch_norm()(x))
    x = keras.layers.Conv2DTranspose(config.channels, 4, strides=2,
                                     padding="same")(x)
    images = keras.layers.Activation("tanh", dtype=keras.config.floatx(), name="tanh")(x)
    return keras.Model(inputs, images, name="generator")


def build_discriminator_trunk(config):
    """Images -> one feature per image (the logit, or KL-GAN features)."""
    w = config.width
    use_sn = config.spectral_norm_iterations > 0
    inputs, x = discriminator_inputs(config)
    for i, filters in enumerate((w, 2 * w, 4 * w, 8 * w)):
        conv = keras.layers.Conv2D(filters, 4, strides=2, padding="same",
                                   use_bias=use_sn or i == 0)
        x = maybe_spectral_norm(conv, config)(x)
        if i > 0 and not use_sn:
            x = _batch_norm()(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    out_dim = 1 if config.head == "logit" and not config.minibatch_discrimination \
        else config.feature_dim
    x = maybe_spectral_norm(keras.layers.Conv2D(out_dim, 4), config)(x)
    features = keras.layers.Flatten(dtype=keras.config.floatx())(x)
    return keras.Model(inputs, features, name="discriminator_trunk")


def build(config):
    if config.image_size != IMAGE_SIZE:
        raise ValueError(f"network 'dcgan64' makes {IMAGE_SIZE}x{IMAGE_SIZE} "
                         f"images, got image_size={config.image_size}")
    trunk = build_discriminator_trunk(config)
    tail_config = config
    if config.head == "logit" and not config.minibatch_discrimination:
        tail_config = dataclasses.replace(config, head="features")  # conv = logit
    # BatchNorm couples the samples of a batch: real and generated go
    # through the trunk separately, as in DCGAN.
    per_sample = config.spectral_norm_iterations > 0
    return make_pair(build_generator(config), trunk, tail_config, per_sample)
