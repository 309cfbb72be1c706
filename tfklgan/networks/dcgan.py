"""DCGAN with a BatchNorm or SN(k) discriminator (docs/reference.md §4), at
64x64 (`dcgan64`, the reduced-CelebA study's pair), 32x32 (`dcgan32`, the
same design with one stage fewer on each side), and 128x128 or 256x256
(`dcgan128`, `dcgan256`: one and two stages more, for users' own data).

Generator at 64x64: Dense to [4, 4, 8w], BN, ReLU -> transposed convs k4 s2
to 4w, 2w, w (BN, ReLU) -> transposed conv k4 s2 to C -> tanh. At 32x32:
Dense to [4, 4, 4w] -> 2w, w -> C.
Discriminator at 64x64: conv k4 s2 to w, 2w, 4w, 8w with LeakyReLU(0.2) and
BatchNorm in all but the first, or spectral normalization with k power
iterations on every conv instead of BatchNorm (SN(k)-DCGAN), then conv k4 to
1 channel at 1x1 (the logit; sigmoid is in the loss). At 32x32: w, 2w, 4w,
then the same conv. w = 128 gives the 128..1024 channels of the study.
Every stage has at most 8w channels (MAX_MULTIPLIER): the 64x64 and 32x32
pairs never reach it; at 128x128 and 256x256 the stages nearest 4x4 keep
8w instead of doubling to 16w and 32w, as DCGANs at those sizes commonly do.
"""

import dataclasses
import functools

import keras

from tfklgan.networks.base import (
    discriminator_inputs,
    generator_inputs,
    make_pair,
    maybe_spectral_norm,
)

IMAGE_SIZES = {"dcgan256": 256, "dcgan128": 128, "dcgan64": 64, "dcgan32": 32}
MAX_MULTIPLIER = 8


def _stages(config):
    """Stride-2 stages per side: 4x4 doubled to the image size (4 at 64x64)."""
    return config.image_size.bit_length() - 3


def _channels(width, stage):
    """Channels of stride-2 stage `stage` (0 nearest the image): 2^stage x
    width, at most MAX_MULTIPLIER x width."""
    return min(2 ** stage, MAX_MULTIPLIER) * width


def builder(name):
    """The registry's builder of `name` (a key of IMAGE_SIZES)."""
    return functools.partial(build, image_size=IMAGE_SIZES[name])


def _batch_norm():
    # synchronized: batch statistics of the global batch under a strategy.
    return keras.layers.BatchNormalization(synchronized=True)


def build_generator(config):
    w, stages = config.width, _stages(config)
    inputs, x = generator_inputs(config)
    top = _channels(w, stages - 1)
    x = keras.layers.Dense(4 * 4 * top, use_bias=False)(x)
    x = keras.layers.Reshape((4, 4, top))(x)
    x = keras.layers.ReLU()(_batch_norm()(x))
    for i in reversed(range(stages - 1)):
        x = keras.layers.Conv2DTranspose(_channels(w, i), 4, strides=2, padding="same",
                                         use_bias=False)(x)
        x = keras.layers.ReLU()(_batch_norm()(x))
    x = keras.layers.Conv2DTranspose(config.channels, 4, strides=2,
                                     padding="same")(x)
    images = keras.layers.Activation("tanh", dtype=keras.config.floatx(), name="tanh")(x)
    return keras.Model(inputs, images, name="generator")


def build_discriminator_trunk(config):
    """Images -> one feature per image (the logit, or KL-GAN features)."""
    w, stages = config.width, _stages(config)
    use_sn = config.spectral_norm_iterations > 0
    inputs, x = discriminator_inputs(config)
    for i in range(stages):
        conv = keras.layers.Conv2D(_channels(w, i), 4, strides=2, padding="same",
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


def build(config, image_size):
    """The pair that makes `image_size` (a value of IMAGE_SIZES) images."""
    if config.image_size != image_size:
        raise ValueError(f"this DCGAN pair makes {image_size}x{image_size} images, got "
                         f"image_size={config.image_size}")
    trunk = build_discriminator_trunk(config)
    tail_config = config
    if config.head == "logit" and not config.minibatch_discrimination:
        tail_config = dataclasses.replace(config, head="features")  # conv = logit
    # BatchNorm couples the samples of a batch: real and generated go
    # through the trunk separately, as in DCGAN.
    per_sample = config.spectral_norm_iterations > 0
    return make_pair(build_generator(config), trunk, tail_config, per_sample)
