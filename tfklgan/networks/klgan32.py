"""The KL-GAN authors' 32x32 generator and discriminator (docs/reference.md §1).

Generator: eps [n, latent] -> learnable latent affine -> Linear(4*4*w), Mish,
LayerNorm -> [2, 2, 4w] -> nearest x2 -> conv3 2w, Mish -> convT k5 (4 -> 8),
Mish, IN, conv3, Mish -> convT k4 s2 (8 -> 16), Mish, IN, conv3, Mish ->
convT k4 s2 to w (16 -> 32), Mish, IN, conv3, Mish -> conv3 to C -> tanh.

Discriminator: conv k5 s2 p2 to w, 2w, 4w, then conv k2 s2 to 8w and 16w,
each with LeakyReLU(0.2) (32 -> 1) -> flatten -> Linear to 8 features.
At w = 128 with MBD: 5,992,835 and 14,611,784 parameters (+17 for a logit).

The 2x2 stride-2 convolutions are `SpaceToDepthConv2D` (same weights and
outputs, faster on CPU; docs/performance.md); Mish runs as one fused CPU
kernel where it can (`tfklgan.native`, the same values).
"""

import keras

from tfklgan.layers import (
    LatentReparameterization,
    Mish,
    SpaceToDepthConv2D,
    instance_normalization,
)
from tfklgan.networks.base import discriminator_inputs, generator_inputs, make_pair

IMAGE_SIZE = 32


def _mish(x):
    return Mish()(x)


def build_generator(config):
    w = config.width
    inputs, x = generator_inputs(
        config, LatentReparameterization(name="latent_affine"))
    x = keras.layers.Dense(4 * 4 * w, name="project")(x)
    x = keras.layers.LayerNormalization(epsilon=1e-5)(_mish(x))
    x = keras.layers.Reshape((2, 2, 4 * w))(x)
    x = keras.layers.UpSampling2D(2, interpolation="nearest")(x)
    x = _mish(keras.layers.Conv2D(2 * w, 3, padding="same")(x))
    # (transposed conv, output channels, kernel, stride, padding)
    blocks = ((2 * w, 5, 1, "valid"), (2 * w, 4, 2, "same"), (w, 4, 2, "same"))
    for filters, kernel, stride, padding in blocks:
        x = keras.layers.Conv2DTranspose(filters, kernel, strides=stride,
                                         padding=padding)(x)
        x = instance_normalization(filters)(_mish(x))
        x = _mish(keras.layers.Conv2D(filters, 3, padding="same")(x))
    x = keras.layers.Conv2D(config.channels, 3, padding="same", name="to_image")(x)
    images = keras.layers.Activation("tanh", dtype=keras.config.floatx(), name="tanh")(x)
    return keras.Model(inputs, images, name="generator")


def build_discriminator_trunk(config):
    w = config.width
    inputs, x = discriminator_inputs(config)
    for filters in (w, 2 * w, 4 * w):
        x = keras.layers.ZeroPadding2D(2)(x)  # PyTorch's padding=2
        x = keras.layers.Conv2D(filters, 5, strides=2)(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    for filters in (8 * w, 16 * w):
        x = keras.layers.LeakyReLU(0.2)(SpaceToDepthConv2D(filters)(x))
    x = keras.layers.Flatten()(x)
    features = keras.layers.Dense(config.feature_dim, name="features")(x)
    return keras.Model(inputs, features, name="discriminator_trunk")


def build(config):
    if config.image_size != IMAGE_SIZE:
        raise ValueError(f"network 'klgan32' makes {IMAGE_SIZE}x{IMAGE_SIZE} "
                         f"images, got image_size={config.image_size}; resize "
                         f"the data to {IMAGE_SIZE} or pick another network")
    return make_pair(build_generator(config), build_discriminator_trunk(config), config)
