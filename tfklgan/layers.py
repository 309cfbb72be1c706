"""Keras layers used by the networks.

- `MinibatchDiscrimination` (Salimans et al. 2016), over the global batch.
- `LatentReparameterization`: the KL-GAN generator's learnable latent
  distribution, z = mu + exp(log_sigma) * eps.
- `SpaceToDepthConv2D`: a 2x2 stride-2 valid convolution computed as
  `space_to_depth` followed by a matrix multiply (identical result, faster
  on CPU; docs/performance.md).
- `Mish`: x tanh(softplus(x)), through the fused CPU kernels of
  `tfklgan.native` where they run (same values, faster).
- `instance_normalization`: GroupNormalization with one group per channel.
"""

import keras
import tensorflow as tf

from tfklgan import native


@keras.saving.register_keras_serializable(package="tfklgan")
class MinibatchDiscrimination(keras.layers.Layer):
    """Appends minibatch-similarity features to a batch of feature vectors.

    M = f(x) T with T of shape [A, B, C]; c_b(i, j) = exp(-||M_ib - M_jb||_1);
    o(x_i)_b = sum_{j != i} c_b(i, j), divided by (n - 1) when `mean`.
    Output: concat(f(x), o(x)), shape [n, A + B].

    The layer compares the rows it is given; `Discriminator` hands it the
    features of the global batch under a distribution strategy.

    Args:
      num_kernels: B.
      kernel_dim: C.
      mean: divide by n - 1 as the KL-GAN authors do (Salimans et al. do not).
    """

    def __init__(self, num_kernels=8, kernel_dim=1, mean=True,
                 kernel_initializer="random_normal_stddev1", **kwargs):
        super().__init__(**kwargs)
        if num_kernels < 1 or kernel_dim < 1:
            raise ValueError("num_kernels and kernel_dim must be >= 1, got "
                             f"{num_kernels!r} and {kernel_dim!r}")
        self.num_kernels = num_kernels
        self.kernel_dim = kernel_dim
        self.mean = mean
        self.kernel_initializer = kernel_initializer

    def build(self, input_shape):
        init = self.kernel_initializer
        if init == "random_normal_stddev1":  # the authors' N(0, 1) init
            init = keras.initializers.RandomNormal(stddev=1.0)
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[-1], self.num_kernels * self.kernel_dim),
            initializer=init)

    def call(self, features):
        m = tf.matmul(features, tf.cast(self.kernel, features.dtype))
        m = tf.reshape(m, [-1, self.num_kernels, self.kernel_dim])
        # [n, n, B]: L1 distances between all pairs of rows
        l1 = tf.reduce_sum(tf.abs(m[:, None] - m[None, :]), axis=-1)
        similarity = tf.reduce_sum(tf.exp(-l1), axis=1) - 1.0  # drop j == i
        if self.mean:
            n = tf.cast(tf.shape(m)[0], similarity.dtype)
            similarity = similarity / tf.maximum(n - 1.0, 1.0)
        return tf.concat([features, similarity], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + self.num_kernels)

    def get_config(self):
        return {**super().get_config(), "num_kernels": self.num_kernels,
                "kernel_dim": self.kernel_dim, "mean": self.mean,
                "kernel_initializer": self.kernel_initializer}


@keras.saving.register_keras_serializable(package="tfklgan")
class LatentReparameterization(keras.layers.Layer):
    """z = mu + exp(log_sigma) * eps with learnable mu, log_sigma [latent_dim].

    Input eps [n, latent_dim] ~ N(0, I); both vectors start at zero, so the
    layer starts as the identity (KL-GAN authors' generator).
    """

    def build(self, input_shape):
        dim = input_shape[-1]
        self.mu = self.add_weight(name="mu", shape=(dim,), initializer="zeros")
        self.log_sigma = self.add_weight(name="log_sigma", shape=(dim,),
                                         initializer="zeros")

    def call(self, eps):
        mu = tf.cast(self.mu, eps.dtype)
        return mu + tf.exp(tf.cast(self.log_sigma, eps.dtype)) * eps


@keras.saving.register_keras_serializable(package="tfklgan")
class SpaceToDepthConv2D(keras.layers.Layer):
    """Conv2D(filters, kernel_size=2, strides=2, padding="valid") as a matmul.

    Input [n, H, W, C] with even H and W; output [n, H/2, W/2, filters].
    The kernel is stored as [2, 2, C, filters], like Conv2D's, so weights
    transfer between the two.
    """

    def __init__(self, filters, use_bias=True, kernel_initializer="glorot_uniform",
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        h, w, c = input_shape[1:]
        if (h is not None and h % 2) or (w is not None and w % 2):
            raise ValueError(f"SpaceToDepthConv2D needs even height and width, "
                             f"got input shape {tuple(input_shape)}")
        self.kernel = self.add_weight(name="kernel", shape=(2, 2, c, self.filters),
                                      initializer=self.kernel_initializer)
        self.bias = (self.add_weight(name="bias", shape=(self.filters,),
                                     initializer="zeros")
                     if self.use_bias else None)

    def call(self, x):
        # space_to_depth orders each block's channels as (row, col, channel),
        # which is the row-major flattening of a [2, 2, C] kernel slice.
        blocks = tf.nn.space_to_depth(x, 2)
        kernel = tf.reshape(tf.cast(self.kernel, x.dtype), [-1, self.filters])
        shape = tf.shape(blocks)
        y = tf.matmul(tf.reshape(blocks, [-1, blocks.shape[-1]]), kernel)
        y = tf.reshape(y, tf.concat([shape[:3], [self.filters]], 0))
        if self.bias is not None:
            y = y + tf.cast(self.bias, x.dtype)
        return y

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        return (n, None if h is None else h // 2, None if w is None else w // 2,
                self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer)}


@keras.saving.register_keras_serializable(package="tfklgan")
class Mish(keras.layers.Layer):
    """Mish (Misra 2019), x tanh(softplus(x)), elementwise: [n, ...] -> [n, ...].
    Values equal keras.activations.mish bit for bit; see `tfklgan.native`."""

    def call(self, inputs):
        return native.mish(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


def instance_normalization(channels, epsilon=1e-5, name=None):
    """InstanceNorm2d(affine=True): per-sample, per-channel normalization."""
    return keras.layers.GroupNormalization(groups=channels, epsilon=epsilon,
                                           name=name)
