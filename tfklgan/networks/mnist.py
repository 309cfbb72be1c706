"""28x28 networks of the MNIST study (REFERENCE §3).

`dcgan28`: G: Dense to [7, 7, 4w], BN, ReLU -> transposed conv k4 s2 to 2w
(BN, ReLU) -> transposed conv k4 s2 to C -> tanh. D: conv k4 s2 to w and 2w
with LeakyReLU(0.2) -> flatten -> Linear (features or logit). WGAN and
WGAN-GP use the same pair.

`cgan28`: the same bodies, conditioned on a one-hot label [n, classes]. The
generator joins 100-d uniform noise with the label embedded to 100 dims;
the discriminator stacks the label, broadcast to 28x28 planes, with the image.
"""

import keras

from tfklgan.networks.base import NetworkPair, make_discriminator

IMAGE_SIZE = 28
LABEL_EMBEDDING = 100


def _generator_body(x, config):
    w = config.width
    x = keras.layers.Dense(7 * 7 * 4 * w, use_bias=False)(x)
    x = keras.layers.Reshape((7, 7, 4 * w))(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(synchronized=True)(x))
    x = keras.layers.Conv2DTranspose(2 * config.width, 4, strides=2,
                                     padding="same", use_bias=False)(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(synchronized=True)(x))
    x = keras.layers.Conv2DTranspose(config.channels, 4, strides=2,
                                     padding="same")(x)
    return keras.layers.Activation("tanh", dtype=keras.config.floatx(), name="tanh")(x)


def _discriminator_body(x, config):
    for filters in (config.width, 2 * config.width):
        x = keras.layers.Conv2D(filters, 4, strides=2, padding="same")(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.Flatten()(x)
    return keras.layers.Dense(config.feature_dim, name="features")(x)


def _check(config, name):
    if config.image_size != IMAGE_SIZE:
        raise ValueError(f"network {name!r} makes {IMAGE_SIZE}x{IMAGE_SIZE} "
                         f"images, got image_size={config.image_size}")


def build_dcgan28(config):
    _check(config, "dcgan28")
    if config.num_classes:
        raise ValueError("network 'dcgan28' is unconditional; use 'cgan28'")
    z = keras.Input((config.latent_dim,), name="latent")
    generator = keras.Model(z, _generator_body(z, config), name="generator")
    images = keras.Input(config.image_shape, name="images")
    trunk = keras.Model(images, _discriminator_body(images, config),
                        name="discriminator_trunk")
    return NetworkPair(generator, make_discriminator(trunk, config),
                       latent_dim=config.latent_dim)


def build_cgan28(config):
    _check(config, "cgan28")
    if config.num_classes < 2:
        raise ValueError("network 'cgan28' is class-conditional: it needs "
                         f"num_classes >= 2, got {config.num_classes}")
    z = keras.Input((config.latent_dim,), name="latent")
    label = keras.Input((config.num_classes,), name="label")
    embedded = keras.layers.Dense(LABEL_EMBEDDING, use_bias=False,
                                  name="label_embedding")(label)
    joined = keras.layers.Concatenate()([z, embedded])
    generator = keras.Model([z, label], _generator_body(joined, config),
                            name="generator")

    images = keras.Input(config.image_shape, name="images")
    d_label = keras.Input((config.num_classes,), name="label")
    planes = keras.layers.Reshape((1, 1, config.num_classes))(d_label)
    planes = keras.layers.UpSampling2D(IMAGE_SIZE)(planes)
    stacked = keras.layers.Concatenate()([images, planes])
    trunk = keras.Model([images, d_label], _discriminator_body(stacked, config),
                        name="discriminator_trunk")
    return NetworkPair(generator, make_discriminator(trunk, config),
                       latent_dim=config.latent_dim, latent_distribution="uniform",
                       num_classes=config.num_classes)
