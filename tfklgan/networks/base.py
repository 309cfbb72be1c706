"""What every network builder takes and returns.

A builder turns a `NetworkConfig` into a `NetworkPair`: a generator
(latent [n, latent_dim] (+ one-hot labels [n, classes]) -> images
[n, H, W, C] in [-1, 1]) and a `Discriminator`.
"""

import dataclasses

import keras
import tensorflow as tf

from tfklgan import distribute
from tfklgan.layers import MinibatchDiscrimination
from tfklgan.settings import flag_of, raise_problems, setting

HEADS = ("features", "logit")
LATENT_DISTRIBUTIONS = ("normal", "uniform")
INITS = ("keras", "torch")  # see networks/init.py
LABEL_EMBEDDING = 100  # the MNIST study's CGAN embeds labels to 100 dims


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """The network section of the settings, and what builders take.

    name: the builder in `NETWORKS` ("" picks one by image size).
    width: the base channel count (the authors' `dim`).
    minibatch_discrimination: append MBD features (docs/reference.md §6).
    spectral_norm_iterations: 0 for BatchNorm (where the network has it),
      k >= 1 for SN(k) in the discriminator.
    latent_distribution: the generator's prior, "normal" or "uniform" in
      [-1, 1] (the MNIST study's CGAN).
    init: "keras" (the layers' own initialisers) or "torch" (PyTorch's
      defaults, as the KL-GAN authors' code starts; see networks/init.py).
    Filled in from the data and the objective when a run builds its networks:
    image_size, channels: the images' height (= width) and channel count.
    head: "features" (KL-GAN's feature vector) or "logit" (one logit).
    num_classes: > 0 for class-conditional networks: the generator joins the
      latent with the label embedded to 100 dims, the discriminator stacks
      the one-hot label, broadcast to image-sized planes, with the image.
    """
    name: str = setting("", "klgan32, dcgan256, dcgan128, dcgan64, dcgan32, dcgan28 or cgan28; "
                            "empty: picked by "
                            "--image_size", flag="network")
    latent_dim: int = setting(128, "latent size")
    latent_distribution: str = setting("normal", "normal or uniform ([-1, 1]; the MNIST "
                                                 "study's CGAN)")
    width: int = setting(128, "base channel count of the networks (the authors' dim)")
    feature_dim: int = setting(8, "discriminator feature size (KL-GAN: 8)")
    minibatch_discrimination: bool = setting(False, "append minibatch-discrimination "
                                                    "features to D")
    mbd_kernels: int = setting(8, "minibatch-discrimination kernels B")
    mbd_kernel_dim: int = setting(1, "minibatch-discrimination kernel size C")
    mbd_mean: bool = setting(True, "divide similarities by n - 1 (KL-GAN code) instead of "
                                   "summing")
    spectral_norm_iterations: int = setting(0, "SN(k)-DCGAN: power iterations; 0 keeps "
                                               "BatchNorm")
    init: str = setting("keras", "weight initialisation: keras (layer defaults) or torch "
                                 "(PyTorch's defaults, as the KL-GAN authors' runs)")
    image_size: int = 32
    channels: int = 3
    head: str = "features"
    num_classes: int = 0

    def __post_init__(self):
        raise_problems(self.problems())

    def problems(self):
        checks = [(self.head in HEADS, f"head must be one of {HEADS}, got {self.head!r}")]
        checks += [(getattr(self, name) >= 1,
                    f"{flag_of(self, name)} must be >= 1, got {getattr(self, name)!r}")
                   for name in ("latent_dim", "width", "image_size", "channels",
                                "feature_dim", "mbd_kernels", "mbd_kernel_dim")]
        checks += [
            (self.latent_distribution in LATENT_DISTRIBUTIONS,
             f"--latent_distribution must be one of {LATENT_DISTRIBUTIONS}, got "
             f"{self.latent_distribution!r}"),
            (self.init in INITS, f"--init must be one of {INITS}, got {self.init!r}"),
            (self.num_classes == 0 or self.num_classes >= 2,
             f"num_classes must be 0 (unconditional) or >= 2, got {self.num_classes!r}"),
            (self.spectral_norm_iterations >= 0,
             f"--spectral_norm_iterations must be >= 0, got {self.spectral_norm_iterations!r}"),
        ]
        return [message for ok, message in checks if not ok]

    @property
    def image_shape(self):
        return (self.image_size, self.image_size, self.channels)


@dataclasses.dataclass
class NetworkPair:
    generator: keras.Model
    discriminator: "Discriminator"
    latent_dim: int
    latent_distribution: str = "normal"
    num_classes: int = 0


class Discriminator(keras.Model):
    """trunk -> [minibatch discrimination] -> [head].

    trunk: images (or [images, one-hot labels]) -> features [n, feature_dim].
    Output: the feature vector (head None, KL-GAN) or a logit [n, 1].

    `per_sample` says the trunk treats samples independently (no BatchNorm),
    so real and generated batches can share one forward pass.
    """

    def __init__(self, trunk, minibatch=None, head=None, per_sample=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.trunk = trunk
        self.minibatch = minibatch
        self.head = head
        self.per_sample = per_sample
        self.conditional = isinstance(trunk.input, (list, tuple))

    def _tail(self, features):
        features = tf.cast(features, keras.config.floatx())  # not bfloat16
        if self.minibatch is not None:
            features = self.minibatch(features)
        if self.head is not None:
            features = self.head(features)
        return features

    def _tails(self, local_features, global_outputs):
        """Applies MBD and the head to each batch of a list of feature batches.

        Minibatch similarities compare samples of the global batch, so under a
        distribution strategy the features are first gathered from all
        replicas (one collective for the whole list). Returns the global
        outputs when `global_outputs`, else this replica's rows.
        """
        replicas = distribute.num_replicas()
        if replicas == 1 or (self.minibatch is None and not global_outputs):
            return [self._tail(f) for f in local_features]
        sizes = [tf.shape(f)[0] for f in local_features]
        joined = tf.cast(tf.concat(local_features, 0), keras.config.floatx())
        gathered = distribute.replica_gather(joined)  # [replicas * sum(n), k]
        per_replica = tf.reshape(gathered, [replicas, -1, gathered.shape[-1]])
        outputs = []
        start = 0
        for size in sizes:
            part = per_replica[:, start:start + size]
            start += size
            out = self._tail(tf.reshape(part, [-1, gathered.shape[-1]]))
            outputs.append(out if global_outputs
                           else distribute.replica_slice(out, size))
        return outputs

    def call(self, inputs, training=None, global_outputs=False):
        features = self.trunk(inputs, training=training)
        return self._tails([features], global_outputs)[0]

    def pair(self, real, generated, real_labels=None, gen_labels=None,
             training=None, global_outputs=False):
        """Outputs for a real and a generated batch of the same size.

        Minibatch similarities are taken within each batch separately (as in
        the KL-GAN authors' code). When the trunk is per-sample, both batches
        go through it as one concatenated batch. With `global_outputs`, the
        outputs of the whole global batch are returned on every replica.
        """
        def trunk_input(images, labels):
            return [images, labels] if self.conditional else images

        if self.per_sample:
            n = tf.shape(real)[0]
            labels = (tf.concat([real_labels, gen_labels], 0)
                      if self.conditional else None)
            both = self.trunk(
                trunk_input(tf.concat([real, tf.cast(generated, real.dtype)], 0),
                            labels), training=training)
            real_f, gen_f = both[:n], both[n:]
        else:
            real_f = self.trunk(trunk_input(real, real_labels), training=training)
            gen_f = self.trunk(trunk_input(generated, gen_labels),
                               training=training)
        return tuple(self._tails([real_f, gen_f], global_outputs))


def generator_inputs(config, latent_layer=None):
    """(model inputs, first tensor): the latent (through `latent_layer` if
    given), joined with the embedded label when the config is conditional."""
    inputs = z = keras.Input((config.latent_dim,), name="latent")
    if latent_layer is not None:
        z = latent_layer(z)
    if not config.num_classes:
        return inputs, z
    label = keras.Input((config.num_classes,), name="label")
    embedded = keras.layers.Dense(LABEL_EMBEDDING, use_bias=False,
                                  name="label_embedding")(label)
    return [inputs, label], keras.layers.Concatenate()([z, embedded])


def discriminator_inputs(config):
    """(model inputs, first tensor): the images, stacked with one-hot label
    planes [n, H, W, classes] when the config is class-conditional."""
    images = keras.Input(config.image_shape, name="images")
    if not config.num_classes:
        return images, images
    label = keras.Input((config.num_classes,), name="label")
    planes = keras.layers.Reshape((1, 1, config.num_classes))(label)
    planes = keras.layers.UpSampling2D(config.image_size)(planes)
    return [images, label], keras.layers.Concatenate()([images, planes])


def make_pair(generator, trunk, config, per_sample=True):
    """The NetworkPair of a generator and a discriminator trunk."""
    return NetworkPair(generator, make_discriminator(trunk, config, per_sample),
                       latent_dim=config.latent_dim,
                       latent_distribution=config.latent_distribution,
                       num_classes=config.num_classes)


def make_discriminator(trunk, config, per_sample=True, name="discriminator"):
    """Adds MBD and the head the config asks for to a feature trunk."""
    minibatch = (MinibatchDiscrimination(config.mbd_kernels, config.mbd_kernel_dim,
                                         mean=config.mbd_mean, name="minibatch",
                                         dtype=keras.config.floatx())
                 if config.minibatch_discrimination else None)
    head = (keras.layers.Dense(1, name="logit", dtype=keras.config.floatx())
            if config.head == "logit" else None)
    disc = Discriminator(trunk, minibatch, head, per_sample=per_sample, name=name)
    feature_dim = trunk.output.shape[-1]
    disc.output_dim = disc._tail(keras.ops.zeros((2, feature_dim))).shape[-1]
    disc.built = True
    return disc


def maybe_spectral_norm(layer, config):
    """Wraps `layer` in SpectralNormalization(k) when the config asks for it."""
    if config.spectral_norm_iterations:
        return keras.layers.SpectralNormalization(
            layer, power_iterations=config.spectral_norm_iterations)
    return layer
