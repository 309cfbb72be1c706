"""Optimizers and learning-rate schedules from a TrainConfig."""

import keras

from tfklgan.config import OPTIMIZERS


def learning_rate(config, base):
    """Constant, or the KL-GAN code's linear decay from 1.0 to
    `lr_decay_final` times `base` over `lr_decay_steps` optimizer steps."""
    if config.lr_decay == "none":
        return base
    return keras.optimizers.schedules.PolynomialDecay(
        base, decay_steps=config.lr_decay_steps,
        end_learning_rate=base * config.lr_decay_final, power=1.0)


def _adam(config, lr):
    return keras.optimizers.Adam(lr, beta_1=config.beta1, beta_2=config.beta2)


def _adamw(config, lr):
    # PyTorch's AdamW defaults (the KL-GAN code): eps 1e-8, weight decay 0.01.
    return keras.optimizers.AdamW(lr, weight_decay=config.weight_decay,
                                  beta_1=config.beta1, beta_2=config.beta2,
                                  epsilon=1e-8)


def _rmsprop(config, lr):
    return keras.optimizers.RMSprop(lr, rho=config.rmsprop_rho)


_BUILDERS = {"adam": _adam, "adamw": _adamw, "rmsprop": _rmsprop}
assert set(_BUILDERS) == set(OPTIMIZERS)


def build_optimizers(config):
    """(g_optimizer, d_optimizer) for the config."""
    build = _BUILDERS[config.optimizer]
    return (build(config, learning_rate(config, config.g_lr)),
            build(config, learning_rate(config, config.d_lr)))


def current_learning_rate(optimizer):
    """The learning rate at the optimizer's current step, as a float."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def set_learning_rates(g_optimizer, d_optimizer, config):
    """Makes the config's constant learning rates current. A restored
    checkpoint brings back the rates it was saved with; a resumed run that
    changes --g_lr / --d_lr must train with the new ones. (Decay schedules are
    built from the config, so they need nothing here.)"""
    if config.lr_decay == "none":
        g_optimizer.learning_rate = config.g_lr
        d_optimizer.learning_rate = config.d_lr
