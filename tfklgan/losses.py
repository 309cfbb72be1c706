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


def gaussian_log_likelihood_ratio(features, real_moments, gen_moments):
    """log N(f; mu_P, var_P) - log N(f; mu_Q, var_Q) per row, summed over the k
    diagonal components: how much likelier a feature vector is under the
    Gaussian fitted to real features than under the one fitted to generated
    ones, in nats.

    Args:
      features: [n, k]; real_moments, gen_moments: (mean, variance) pairs [k].
    Returns:
      [n] in floatx.
    """
    features = _f32(features)
    (mean_p, var_p), (mean_q, var_q) = real_moments, gen_moments
    return -0.5 * tf.reduce_sum(
        tf.math.log(var_p) + tf.square(features - mean_p) / var_p
        - tf.math.log(var_q) - tf.square(features - mean_q) / var_q, axis=1)


def judged_real_by_features(real_features, gen_features, eps=1e-10, kl_stats="paper"):
    """ADA's overfitting heuristic for KL-GAN, whose D emits features, not a
    logit: for each real image, whether its features are likelier under the
    Gaussian fitted to real features than under the one fitted to generated
    ones (a log-likelihood ratio > 0), the sign ADA takes of a logit.

    The Gaussians are cross-fitted: each half of the real batch is judged by
    moments of the other half of the reals against moments of one half of the
    generated, so no image is judged by a fit to itself and both fits rest on
    as many samples. Where D's features do not tell real from generated the
    ratio's sign is then symmetric and E[sign] is 0, as for an uninformed
    logit; where they do, it tends to 1. So r_t keeps the meaning of ADA's
    and its target (0.6) carries over.

    Args:
      real_features, gen_features: [n, k] (n even, the global batch).
    Returns:
      [n] bool (n rounded down to even).
    """
    half = tf.shape(real_features)[0] // 2
    real_a, real_b = real_features[:half], real_features[half:2 * half]
    gen_a, gen_b = gen_features[:half], gen_features[half:2 * half]
    judged = []
    for judged_half, real_fit, gen_fit in ((real_a, real_b, gen_b), (real_b, real_a, gen_a)):
        ratio = gaussian_log_likelihood_ratio(
            judged_half, gaussian_moments(real_fit, eps, kl_stats),
            gaussian_moments(gen_fit, eps, kl_stats))
        judged.append(ratio > 0)
    return tf.concat(judged, axis=0)


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
