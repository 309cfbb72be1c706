"""Keras layers used by the networks.

- `MinibatchDiscrimination` (Salimans et al. 2016), over the global batch.
- `LatentReparameterization`: the KL-GAN generator's learnable latent
  distribution, z = mu + exp(log_sigma) * eps.
- `SpaceToDepthConv2D`: a 2x2 stride-2 valid convolution computed as
  `space_to_depth` followed by a matrix multiply (identical result, several
  times faster on CPU for wide layers; see PITFALLS).
- `StridedConv2D`: a strided valid Conv2D whose input gradient is computed
  as a stride-1 convolution on the space-to-depth layout (TF's own strided
  input gradient is several times slower on CPU for small images).
- `SubPixelConv2DTranspose`: a "same" transposed convolution with stride s
  computed as s*s small stride-1 convolutions, one per output phase,
  interleaved with depth_to_space (no products with inserted zeros).
- `ShiftedSumConv2D`: a stride-1 "same" Conv2D with few output channels as
  one matrix multiply to kh * kw * filters channels and a shifted sum.
- `instance_normalization`: GroupNormalization with one group per channel.
"""

import keras
import tensorflow as tf


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


def _strided_conv2d(x, kernel, stride):
    """VALID conv2d with stride s; x [n, H, W, C] with H, W multiples of s.

    Forward and weight gradient are TF's own kernels. The input gradient,
    dx[s*Y + p, s*X + q] = sum_{a, b} dy[Y - a, X - b] k[s*a + p, s*b + q]
    (k zero-padded to a multiple of s), is a stride-1 "full" convolution of
    dy whose s*s*C output channels are the (p, q, c) of space_to_depth.
    """
    @tf.custom_gradient
    def conv(x, kernel):
        def grad(dy):
            kh, kw, c, o = kernel.shape
            ah, aw = -(-kh // stride), -(-kw // stride)
            flipped = tf.pad(kernel, [[0, ah * stride - kh], [0, aw * stride - kw],
                                      [0, 0], [0, 0]])
            flipped = tf.reshape(flipped, [ah, stride, aw, stride, c, o])[::-1, :, ::-1]
            flipped = tf.reshape(tf.transpose(flipped, [0, 2, 5, 1, 3, 4]),
                                 [ah, aw, o, stride * stride * c])
            x_shape, dy_shape = tf.shape(x), tf.shape(dy)
            pad_h = x_shape[1] // stride - dy_shape[1]
            pad_w = x_shape[2] // stride - dy_shape[2]
            dy_full = tf.pad(dy, [[0, 0], [ah - 1, pad_h], [aw - 1, pad_w], [0, 0]])
            dx = tf.nn.depth_to_space(
                tf.nn.conv2d(dy_full, flipped, 1, "VALID"), stride)
            dkernel = tf.raw_ops.Conv2DBackpropFilter(
                input=x, filter_sizes=tf.shape(kernel), out_backprop=dy,
                strides=[1, stride, stride, 1], padding="VALID")
            return dx, dkernel
        return tf.nn.conv2d(x, kernel, stride, "VALID"), grad
    return conv(x, kernel)


@keras.saving.register_keras_serializable(package="tfklgan")
class StridedConv2D(keras.layers.Conv2D):
    """Conv2D(filters, kernel_size, strides=s, padding="valid"), same weights.

    Input [n, H, W, C] with H and W multiples of s (pad with ZeroPadding2D
    first, as PyTorch's padding=p does); output [n, (H-k)//s+1, (W-k)//s+1,
    filters]. Only the input gradient's formulation differs (see
    `_strided_conv2d`); outputs and gradients equal Conv2D's.
    """

    def __init__(self, filters, kernel_size, strides=2, padding="valid", **kwargs):
        if padding != "valid":
            raise ValueError(f"StridedConv2D is a valid convolution, got "
                             f"padding={padding!r}; pad with ZeroPadding2D first")
        super().__init__(filters, kernel_size, strides=strides, padding="valid",
                         **kwargs)
        if self.strides[0] != self.strides[1] or self.dilation_rate != (1, 1):
            raise ValueError(f"StridedConv2D needs equal strides and no dilation, "
                             f"got strides={self.strides}, "
                             f"dilation_rate={self.dilation_rate}")

    def build(self, input_shape):
        s = self.strides[0]
        h, w = input_shape[1:3]
        if (h is not None and h % s) or (w is not None and w % s):
            raise ValueError(f"StridedConv2D with stride {s} needs height and width "
                             f"divisible by {s}, got input shape {tuple(input_shape)}")
        super().build(input_shape)

    def convolution_op(self, inputs, kernel):
        return _strided_conv2d(inputs, tf.convert_to_tensor(kernel), self.strides[0])


def _phase_taps(kernel_size, stride):
    """Per output phase p: (first input offset, kernel taps) of a 'same' conv.

    A transposed convolution with TF's 'same' padding writes input i with
    tap t to output s*i + t - b, b = max(k - s, 0) // 2. Output s*Y + p thus
    sums x[Y - d] * k[s*d + p + b] over the d with 0 <= s*d + p + b < k.
    Returns [(-d_max, [taps for d = d_max down to d_min])] per phase p;
    (0, []) for a phase no tap reaches (kernel smaller than the stride).
    """
    before = max(kernel_size - stride, 0) // 2
    phases = []
    for p in range(stride):
        ds = [d for d in range(-kernel_size, kernel_size + 1)
              if 0 <= stride * d + p + before < kernel_size]
        phases.append((-max(ds), [stride * d + p + before for d in sorted(ds, reverse=True)])
                      if ds else (0, []))
    return phases


def _subpixel_conv2d_transpose(x, kernel, stride):
    """conv2d_transpose(x, kernel [kh, kw, O, C], stride, 'SAME'), x [n, H, W, C].

    Forward: one VALID convolution per output phase (py, px) on a padded
    window of x, interleaved by depth_to_space. Gradients are TF's own
    (a strided Conv2D and Conv2DBackpropFilter), as for conv2d_transpose.
    """
    kh, kw = kernel.shape[:2]
    rows, cols = _phase_taps(kh, stride), _phase_taps(kw, stride)
    pad_h = (max(-o for o, t in rows if t), max(o + len(t) - 1 for o, t in rows if t))
    pad_w = (max(-o for o, t in cols if t), max(o + len(t) - 1 for o, t in cols if t))

    @tf.custom_gradient
    def conv(x, kernel):
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        padded = tf.pad(x, [[0, 0], list(pad_h), list(pad_w), [0, 0]])
        taps = tf.transpose(kernel, [0, 1, 3, 2])  # [kh, kw, C, O]
        phases = []
        for row_offset, row_taps in rows:
            for col_offset, col_taps in cols:
                if not (row_taps and col_taps):
                    phases.append(tf.zeros([tf.shape(x)[0], h, w, kernel.shape[2]], x.dtype))
                    continue
                top, left = row_offset + pad_h[0], col_offset + pad_w[0]
                window = padded[:, top:top + h + len(row_taps) - 1,
                                left:left + w + len(col_taps) - 1]
                phase_kernel = tf.gather(tf.gather(taps, row_taps, axis=0), col_taps, axis=1)
                phases.append(tf.nn.conv2d(window, phase_kernel, 1, "VALID"))
        y = (tf.nn.depth_to_space(tf.concat(phases, -1), stride) if stride > 1
             else phases[0])

        def grad(dy):
            dx = tf.nn.conv2d(dy, kernel, stride, "SAME")
            dkernel = tf.raw_ops.Conv2DBackpropFilter(
                input=dy, filter_sizes=tf.shape(kernel), out_backprop=x,
                strides=[1, stride, stride, 1], padding="SAME")
            return dx, dkernel
        return y, grad
    return conv(x, kernel)


@keras.saving.register_keras_serializable(package="tfklgan")
class SubPixelConv2DTranspose(keras.layers.Conv2DTranspose):
    """Conv2DTranspose(filters, kernel_size, strides=s, padding="same").

    Same weights, outputs [n, s*H, s*W, filters] and gradients as Keras';
    the forward pass is s*s stride-1 convolutions, one per output phase
    (`_subpixel_conv2d_transpose`), about 1.5x faster than TF's transposed
    convolution on CPU.
    """

    def __init__(self, filters, kernel_size, strides=2, padding="same", **kwargs):
        if padding != "same":
            raise ValueError(f"SubPixelConv2DTranspose is a 'same' transposed "
                             f"convolution, got padding={padding!r}")
        super().__init__(filters, kernel_size, strides=strides, padding="same", **kwargs)
        if (self.strides[0] != self.strides[1] or self.dilation_rate != (1, 1)
                or self.output_padding is not None):
            raise ValueError(f"SubPixelConv2DTranspose needs equal strides, no "
                             f"dilation and no output_padding, got strides="
                             f"{self.strides}, dilation_rate={self.dilation_rate}, "
                             f"output_padding={self.output_padding}")

    def call(self, inputs):
        y = _subpixel_conv2d_transpose(inputs, tf.convert_to_tensor(self.kernel),
                                       self.strides[0])
        if self.use_bias:
            y = y + self.bias
        return self.activation(y) if self.activation is not None else y


@keras.saving.register_keras_serializable(package="tfklgan")
class ShiftedSumConv2D(keras.layers.Conv2D):
    """Conv2D(filters, odd kernel_size, padding="same"), same weights.

    y[h, w] = sum_{i, j} (x @ k[i, j])[h + i - ph, w + j - pw]: one
    [n*H*W, C] x [C, kh*kw*filters] matrix multiply, then kh*kw shifted
    slices summed. For few output channels (a to-RGB layer) this is several
    times faster on CPU than TF's convolution, forward and backward.
    """

    def __init__(self, filters, kernel_size, padding="same", **kwargs):
        if padding != "same":
            raise ValueError(f"ShiftedSumConv2D is a 'same' convolution, got "
                             f"padding={padding!r}")
        super().__init__(filters, kernel_size, padding="same", **kwargs)
        kh, kw = self.kernel_size
        if (self.strides != (1, 1) or self.dilation_rate != (1, 1)
                or kh % 2 == 0 or kw % 2 == 0):
            raise ValueError(f"ShiftedSumConv2D needs stride 1, no dilation and an "
                             f"odd kernel, got strides={self.strides}, dilation_rate="
                             f"{self.dilation_rate}, kernel_size={self.kernel_size}")

    def convolution_op(self, inputs, kernel):
        kh, kw, c, o = kernel.shape
        shape = tf.shape(inputs)
        taps = tf.matmul(tf.reshape(inputs, [-1, c]),
                         tf.reshape(tf.transpose(kernel, [2, 0, 1, 3]), [c, kh * kw * o]))
        taps = tf.reshape(taps, tf.concat([shape[:3], [kh * kw, o]], 0))
        ph, pw = kh // 2, kw // 2
        taps = tf.pad(taps, [[0, 0], [ph, ph], [pw, pw], [0, 0], [0, 0]])
        h, w = shape[1], shape[2]
        return tf.add_n([taps[:, i:i + h, j:j + w, i * kw + j]
                         for i in range(kh) for j in range(kw)])


def instance_normalization(channels, epsilon=1e-5, name=None):
    """InstanceNorm2d(affine=True): per-sample, per-channel normalization."""
    return keras.layers.GroupNormalization(groups=channels, epsilon=epsilon,
                                           name=name)
