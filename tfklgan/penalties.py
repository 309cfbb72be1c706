"""Discriminator regularizers: WGAN-GP, R1 and WGAN weight clipping.

`critic_fn` maps images [n, H, W, C] to outputs [n] or [n, 1]. Random
numbers (the interpolation weights) are arguments, so each penalty is a pure
function of its inputs and can be checked in closed form.
"""

import keras
import tensorflow as tf

GP_NORMS = ("per_sample", "per_pixel")


def _input_gradients(critic_fn, inputs):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = tf.reduce_sum(tf.cast(critic_fn(inputs), keras.config.floatx()))
    return tf.cast(tape.gradient(outputs, inputs), keras.config.floatx())


def interpolate(real, generated, alpha):
    """x_hat = alpha * real + (1 - alpha) * generated; alpha is [n, 1, 1, 1]."""
    alpha = tf.cast(alpha, real.dtype)
    return alpha * real + (1.0 - alpha) * tf.cast(generated, real.dtype)


def gradient_penalty(critic_fn, real, generated, alpha, norm="per_sample"):
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad_xhat D(x_hat)||_2 - 1)^2].

    Args:
      critic_fn: the critic.
      real, generated: [n, H, W, C] images.
      alpha: [n, 1, 1, 1] interpolation weights drawn from U[0, 1].
      norm: "per_sample" takes the norm over all non-batch axes (the paper);
        "per_pixel" over the channel axis only, as the KL-GAN authors' code
        does, averaging over pixels.
    Returns:
      A scalar in floatx.
    """
    if norm not in GP_NORMS:
        raise ValueError(f"norm must be one of {GP_NORMS}, got {norm!r}")
    grads = _input_gradients(critic_fn, interpolate(real, generated, alpha))
    axes = (list(range(1, grads.shape.rank)) if norm == "per_sample"
            else [grads.shape.rank - 1])
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=axes) + 1e-12)
    return tf.reduce_mean(tf.square(norms - 1.0))


def r1_penalty(critic_fn, real):
    """R1 (Mescheder et al. 2018): E[||grad_x D(x)||^2] on real data.

    The weight (gamma; the KL-GAN authors use gamma * this with gamma = 10,
    Mescheder et al. gamma / 2) is applied by the caller.
    """
    grads = _input_gradients(critic_fn, real)
    return tf.reduce_mean(
        tf.reduce_sum(tf.square(grads), axis=list(range(1, grads.shape.rank))))


def clip_value(value, clip):
    """WGAN weight clipping of one tensor to [-clip, clip]."""
    return tf.clip_by_value(value, -clip, clip)
