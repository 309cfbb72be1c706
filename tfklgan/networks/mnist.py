"""28x28 networks of the MNIST study (docs/reference.md §3).

`dcgan28`: G: Dense to [7, 7, 4w], BN, ReLU -> transposed conv k4 s2 to 2w
(BN, ReLU) -> transposed conv k4 s2 to C -> tanh. D: conv k4 s2 to w and 2w
with LeakyReLU(0.2) -> flatten -> Linear (features or logit). WGAN and
WGAN-GP use the same pair.

`cgan28`: the same pair, class-conditional (the study's CGAN: 100-d uniform
noise joined with the label embedded to 100 dims; the one-hot label
broadcast to 28x28 planes stacked with the image).
"""

import keras

from tfklgan.networks.base import discriminator_inputs, generator_inputs, make_pair

IMAGE_SIZE = 28


def build_dcgan28(config):
    if config.image_size != IMAGE_SIZE:
        raise ValueError(f"network 'dcgan28' makes {IMAGE_SIZE}x{IMAGE_SIZE} "
                         f"images, got image_size={config.image_size}")
    w = config.width
    inputs, x = generator_inputs(config)
    x = keras.layers.Dense(7 * 7 * 4 * w, use_bias=False)(x)
    x = keras.layers.Reshape((7, 7, 4 * w))(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(synchronized=True)(x))
    x = keras.layers.Conv2DTranspose(2 * w, 4, strides=2, padding="same",
                                     use_bias=False)(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(synchronized=True)(x))
    x = keras.layers.Conv2DTranspose(config.channels, 4, strides=2, padding="same")(x)
    images = keras.layers.Activation("tanh", dtype=keras.config.floatx(), name="tanh")(x)
    generator = keras.Model(inputs, images, name="generator")

    d_inputs, x = discriminator_inputs(config)
    for filters in (w, 2 * w):
        x = keras.layers.Conv2D(filters, 4, strides=2, padding="same")(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.Flatten()(x)
    features = keras.layers.Dense(config.feature_dim, name="features")(x)
    trunk = keras.Model(d_inputs, features, name="discriminator_trunk")
    return make_pair(generator, trunk, config)


def build_cgan28(config):
    if config.num_classes < 2:
        raise ValueError("network 'cgan28' is class-conditional: it needs "
                         f"num_classes >= 2, got {config.num_classes}")
    return build_dcgan28(config)
