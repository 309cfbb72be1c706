"""GAN objectives as pure functions of tensors.

Naming follows TF-GAN: `xxx_discriminator_loss(discriminator_real_outputs,
discriminator_gen_outputs)` and `xxx_generator_loss(discriminator_gen_outputs)`.
Outputs are logits of shape [batch] or [batch, 1]; every loss returns a
scalar in `keras.config.floatx()` (float32 unless set; also under mixed
precision), the mean over the local batch. Nothing here samples, logs or
touches a model.

KL-GAN (Sautkin & Tsvetkov) works on discriminator feature vectors instead:
see `gaussian_moments` and `symmetric_kl`.
"""

import keras
import tensorflow as tf

KL_STATS = ("paper", "reference_code")


def _f32(x):
    """Statistics and losses are computed in floatx, never in bfloat16."""
    return tf.cast(x, keras.config.floatx())


# --------------------------------------------------------------------------
# KL-GAN
# --------------------------------------------------------------------------

def gaussian_moments(features, eps=1e-10, kl_stats="paper"):
    """Per-feature mean and variance of a minibatch of feature vectors.

    Args:
      features: [n, k] discriminator features of one half of the batch (real
        or generated). Under a distribution strategy these are the features
        of the global batch: `Discriminator.pair(..., global_outputs=True)`
        gathers them, which moves as little data as all-reducing the sums
        sum(f), sum(f^2), n and needs a single collective per step.
      eps: added to the variance.
      kl_stats: "paper": variance = mean((f - mu)^2) + eps (the population
        variance, docs/reference.md §1). "reference_code": the authors' PyTorch code
        passes that variance to `Normal` as a standard deviation, so the
        variance the KL sees is (mean((f - mu)^2) + eps)^2.

    Returns:
      (mean, variance), each [k] in floatx.
    """
    if kl_stats not in KL_STATS:
        raise ValueError(f"kl_stats must be one of {KL_STATS}, got {kl_stats!r}")
    features = _f32(features)
    mean = tf.reduce_mean(features, axis=0)
    variance = tf.reduce_mean(tf.square(features - mean), axis=0) + eps
    if kl_stats == "reference_code":
        variance = tf.square(variance)
    return mean, variance


def diagonal_gaussian_kl(mean_p, var_p, mean_q, var_q):
    """KL(P || Q) for diagonal Gaussians, summed over the k components.

    KL = 1/2 * sum( log(var_q / var_p) + (var_p + (mean_p - mean_q)^2) / var_q - 1 ).
    All arguments [k]; returns a scalar.
    """
    return 0.5 * tf.reduce_sum(
        tf.math.log(var_q) - tf.math.log(var_p)
        + (var_p + tf.square(mean_p - mean_q)) / var_q - 1.0)


def symmetric_kl(real_moments, gen_moments):
    """The KL-GAN objective L(theta_G, theta_D) (paper, Eq. for SKL).

    SKL = ( ln(1 + KL(P||Q)) + ln(1 + KL(Q||P)) ) / 2 with P fitted to real
    features and Q to generated ones. D ascends it, G descends it.

    Args:
      real_moments, gen_moments: (mean, variance) pairs from `gaussian_moments`.
    Returns:
      (skl, kl_real_gen, kl_gen_real), scalars.
    """
    kl_pq = diagonal_gaussian_kl(*real_moments, *gen_moments)
    kl_qp = diagonal_gaussian_kl(*gen_moments, *real_moments)
    skl = 0.5 * (tf.math.log1p(kl_pq) + tf.math.log1p(kl_qp))
    return skl, kl_pq, kl_qp


# --------------------------------------------------------------------------
# Classic objectives on logits
# --------------------------------------------------------------------------

def minimax_discriminator_loss(discriminator_real_outputs,
                               discriminator_gen_outputs):
    """-E[log D(x)] - E[log(1 - D(G(z)))] with D = sigmoid(logit)."""
    return (tf.reduce_mean(tf.nn.softplus(-_f32(discriminator_real_outputs)))
            + tf.reduce_mean(tf.nn.softplus(_f32(discriminator_gen_outputs))))


def minimax_generator_loss(discriminator_gen_outputs):
    """E[log(1 - D(G(z)))]: the saturating minimax generator loss."""
    return -tf.reduce_mean(tf.nn.softplus(_f32(discriminator_gen_outputs)))


def non_saturating_generator_loss(discriminator_gen_outputs):
    """-E[log D(G(z))]: the non-saturating (DCGAN) generator loss."""
    return tf.reduce_mean(tf.nn.softplus(-_f32(discriminator_gen_outputs)))


def least_squares_discriminator_loss(discriminator_real_outputs,
                                     discriminator_gen_outputs,
                                     real_label=1.0, gen_label=0.0, scale=0.5):
    """LS-GAN: scale * (E[(D(x) - a)^2] + E[(D(G(z)) - b)^2]).

    The standard form (Mao et al.) is a=1, b=0, scale=1/2; the KL-GAN authors'
    code uses a=0, b=1, scale=1 (same objective up to the labels).
    """
    real = _f32(discriminator_real_outputs)
    gen = _f32(discriminator_gen_outputs)
    return scale * (tf.reduce_mean(tf.square(real - real_label))
                    + tf.reduce_mean(tf.square(gen - gen_label)))


def least_squares_generator_loss(discriminator_gen_outputs, real_label=1.0,
                                 scale=0.5):
    """LS-GAN generator: scale * E[(D(G(z)) - a)^2]."""
    return scale * tf.reduce_mean(
        tf.square(_f32(discriminator_gen_outputs) - real_label))


def hinge_discriminator_loss(discriminator_real_outputs,
                             discriminator_gen_outputs):
    """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return (tf.reduce_mean(tf.nn.relu(1.0 - _f32(discriminator_real_outputs)))
            + tf.reduce_mean(tf.nn.relu(1.0 + _f32(discriminator_gen_outputs))))


def wasserstein_discriminator_loss(discriminator_real_outputs,
                                   discriminator_gen_outputs):
    """E[D(G(z))] - E[D(x)]: minus the critic's Wasserstein estimate."""
    return (tf.reduce_mean(_f32(discriminator_gen_outputs))
            - tf.reduce_mean(_f32(discriminator_real_outputs)))


def wasserstein_generator_loss(discriminator_gen_outputs):
    """-E[D(G(z))], also the hinge generator loss."""
    return -tf.reduce_mean(_f32(discriminator_gen_outputs))


hinge_generator_loss = wasserstein_generator_loss
