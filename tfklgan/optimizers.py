"""Optimizers and learning-rate schedules from the optimizer section."""

import dataclasses

import keras

from tfklgan.settings import raise_problems, setting

OPTIMIZERS = ("adam", "adamw", "rmsprop")
LR_DECAYS = ("none", "linear")
EPSILON_PLACEMENTS = ("keras", "torch")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """The optimizer section of the settings. A resumed run may change the
    learning rates and their schedule; the rest must match."""
    optimizer: str = setting("adamw", "adam, adamw or rmsprop")
    g_lr: float = setting(8e-5, "generator learning rate", resumable=True)
    d_lr: float = setting(8e-5, "discriminator learning rate", resumable=True)
    beta1: float = setting(0.9, "Adam/AdamW beta1")
    beta2: float = setting(0.999, "Adam/AdamW beta2")
    weight_decay: float = setting(0.01, "AdamW weight decay")
    adam_epsilon: str = setting("keras", "where Adam/AdamW add eps: keras (to sqrt(v) before "
                                         "the bias correction) or torch (to the corrected "
                                         "sqrt(v_hat), as PyTorch and the KL-GAN code)")
    rmsprop_rho: float = setting(0.9, "RMSProp rho")
    lr_decay: str = setting("none", "none (Table I runs) or linear (the authors' configured "
                                    "schedule)", resumable=True)
    lr_decay_steps: int = setting(300_000, "steps of the linear decay", resumable=True)
    lr_decay_final: float = setting(0.01, "final learning-rate factor of the linear decay",
                                    resumable=True)
    ema_decay: float = setting(0.0, "keep an EMA of G's weights for sampling (0 = off)")

    def __post_init__(self):
        raise_problems(self.problems())

    def problems(self):
        checks = [
            (self.optimizer in OPTIMIZERS,
             f"--optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}"),
            (self.adam_epsilon in EPSILON_PLACEMENTS,
             f"--adam_epsilon must be one of {EPSILON_PLACEMENTS}, got {self.adam_epsilon!r}"),
            (self.lr_decay in LR_DECAYS,
             f"--lr_decay must be one of {LR_DECAYS}, got {self.lr_decay!r}"),
            (self.g_lr > 0 and self.d_lr > 0, "--g_lr and --d_lr must be > 0"),
            (0.0 <= self.ema_decay < 1.0, f"--ema_decay must be in [0, 1), got {self.ema_decay}"),
        ]
        return [message for ok, message in checks if not ok]


def learning_rate(config, base):
    """Constant, or the KL-GAN code's linear decay from 1.0 to
    `lr_decay_final` times `base` over `lr_decay_steps` optimizer steps."""
    if config.lr_decay == "none":
        return base
    return keras.optimizers.schedules.PolynomialDecay(
        base, decay_steps=config.lr_decay_steps,
        end_learning_rate=base * config.lr_decay_final, power=1.0)


class _TorchEpsilon:
    """Adam's update with eps added where PyTorch adds it.

    Keras divides by sqrt(v_t) + eps and folds both bias corrections into the
    step size, so its eps acts as eps / sqrt(1 - beta2^t) on the corrected
    sqrt(v_hat): about 32 eps at the first step with beta2 = 0.999, which damps
    the first updates of weights with small gradients. PyTorch (and so the
    KL-GAN authors' AdamW) divides by sqrt(v_hat) + eps:

        theta -= lr / (1 - beta1^t) * m_t / (sqrt(v_t) / sqrt(1 - beta2^t) + eps)

    Keras has no option for it, hence this override of `update_step`; the
    optimizer's state (moments, step count) and the decoupled weight decay
    (applied before the step, as in PyTorch) stay Keras' own.
    """

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = keras.ops.cast(learning_rate, dtype)
        gradient = keras.ops.cast(gradient, dtype)
        t = keras.ops.cast(self.iterations + 1, dtype)
        correction1 = 1 - keras.ops.power(keras.ops.cast(self.beta_1, dtype), t)
        correction2 = 1 - keras.ops.power(keras.ops.cast(self.beta_2, dtype), t)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign_add(m, (gradient - m) * (1 - self.beta_1))
        self.assign_add(v, (keras.ops.square(gradient) - v) * (1 - self.beta_2))
        denominator = keras.ops.sqrt(v) / keras.ops.sqrt(correction2) + self.epsilon
        self.assign_sub(variable, (lr / correction1) * m / denominator)


class TorchEpsilonAdam(_TorchEpsilon, keras.optimizers.Adam):
    """keras.optimizers.Adam with PyTorch's placement of eps (see _TorchEpsilon)."""


class TorchEpsilonAdamW(_TorchEpsilon, keras.optimizers.AdamW):
    """keras.optimizers.AdamW with PyTorch's placement of eps (see _TorchEpsilon)."""


def _adam(config, lr):
    adam = TorchEpsilonAdam if config.adam_epsilon == "torch" else keras.optimizers.Adam
    return adam(lr, beta_1=config.beta1, beta_2=config.beta2)


def _adamw(config, lr):
    # PyTorch's AdamW defaults (the KL-GAN code): eps 1e-8, weight decay 0.01;
    # `adam_epsilon` says where eps goes.
    adamw = TorchEpsilonAdamW if config.adam_epsilon == "torch" else keras.optimizers.AdamW
    return adamw(lr, weight_decay=config.weight_decay, beta_1=config.beta1,
                 beta_2=config.beta2, epsilon=1e-8)


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
