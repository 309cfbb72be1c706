"""Training objectives: which losses, penalties and update rule a method uses.

`build_objective(method, **options)` looks the method up in `METHODS`;
`ObjectiveConfig`, the objective section of the settings, names the method,
its options and the update schedule (`build()`). Two kinds exist:

- `KLObjective` ("joint" update): KL-GAN. One backward pass of -SKL; D's
  gradients are applied as they are, G's negated.
- `AdversarialObjective` ("alternating" update): a discriminator loss, a
  generator loss and optional penalties, with n_critic D steps per G step.
"""

import dataclasses
import functools
import inspect
from typing import Callable, Optional

import tensorflow as tf

from tfklgan import ada as ada_lib
from tfklgan import augment as augment_lib
from tfklgan import losses, penalties
from tfklgan.settings import raise_problems, setting

AUGMENTATIONS = ("none", "diffaugment", "ada")

LS_CONVENTIONS = {
    # name: (real label, generated label, scale)
    "standard": (1.0, 0.0, 0.5),   # Mao et al.
    "authors": (0.0, 1.0, 1.0),    # KL-GAN authors' code: real -> 0, fake -> 1
}


def _logit_positive(outputs):
    return outputs > 0.0


@dataclasses.dataclass(frozen=True)
class KLObjective:
    """KL-GAN (docs/reference.md §1). eps is added to the variances."""
    eps: float = 1e-10
    kl_stats: str = "paper"
    update = "joint"
    head = "features"

    def __post_init__(self):
        if self.kl_stats not in losses.KL_STATS:
            raise ValueError(f"kl_stats must be one of {losses.KL_STATS}, "
                             f"got {self.kl_stats!r}")
        if self.eps < 0:
            raise ValueError(f"eps must be >= 0, got {self.eps!r}")

    @property
    def metric_names(self):
        return ("skl", "kl_real_gen", "kl_gen_real")


@dataclasses.dataclass(frozen=True)
class AdversarialObjective:
    """A classic GAN objective on logits.

    discriminator_loss(real_outputs, gen_outputs) and generator_loss(gen_outputs)
    are functions from `tfklgan.losses`. `judged_real(outputs)` says which
    outputs the discriminator classifies as real (for its accuracy).
    """
    name: str
    discriminator_loss: Callable
    generator_loss: Callable
    gradient_penalty_weight: float = 0.0
    gp_norm: str = "per_sample"
    r1_gamma: float = 0.0
    clip_value: Optional[float] = None
    judged_real: Callable = _logit_positive
    update = "alternating"
    head = "logit"

    def __post_init__(self):
        if self.gp_norm not in penalties.GP_NORMS:
            raise ValueError(f"gp_norm must be one of {penalties.GP_NORMS}, "
                             f"got {self.gp_norm!r}")
        for field in ("gradient_penalty_weight", "r1_gamma"):
            if getattr(self, field) < 0:
                raise ValueError(f"{field} must be >= 0, got {getattr(self, field)!r}")
        if self.clip_value is not None and self.clip_value <= 0:
            raise ValueError(f"clip_value must be > 0, got {self.clip_value!r}")

    @property
    def metric_names(self):
        names = ["d_loss", "g_loss", "wasserstein_estimate", "d_acc_real",
                 "d_acc_gen"]
        if self.gradient_penalty_weight:
            names.append("gradient_penalty")
        if self.r1_gamma:
            names.append("r1_penalty")
        return tuple(names)


def klgan(kl_eps=1e-10, kl_stats="paper"):
    return KLObjective(eps=kl_eps, kl_stats=kl_stats)


def minimax_gan():
    return AdversarialObjective("gan", losses.minimax_discriminator_loss,
                                losses.minimax_generator_loss)


def non_saturating_gan(name="dcgan"):
    return AdversarialObjective(name, losses.minimax_discriminator_loss,
                                losses.non_saturating_generator_loss)


def least_squares_gan(ls_convention="standard"):
    if ls_convention not in LS_CONVENTIONS:
        raise ValueError(f"ls_convention must be one of {sorted(LS_CONVENTIONS)}, "
                         f"got {ls_convention!r}")
    real, gen, scale = LS_CONVENTIONS[ls_convention]
    threshold = 0.5 * (real + gen)
    return AdversarialObjective(
        "lsgan",
        functools.partial(losses.least_squares_discriminator_loss,
                          real_label=real, gen_label=gen, scale=scale),
        functools.partial(losses.least_squares_generator_loss,
                          real_label=real, scale=scale),
        judged_real=(lambda o: o > threshold) if real > gen
        else (lambda o: o < threshold))


def hinge_gan():
    return AdversarialObjective("hinge", losses.hinge_discriminator_loss,
                                losses.hinge_generator_loss)


def wgan(clip_value=0.01):
    """WGAN with weight clipping (Arjovsky et al.); the MNIST study uses 0.03."""
    return AdversarialObjective("wgan", losses.wasserstein_discriminator_loss,
                                losses.wasserstein_generator_loss,
                                clip_value=clip_value)


def wgan_gp(gp_weight=10.0, gp_norm="per_sample"):
    return AdversarialObjective("wgan_gp", losses.wasserstein_discriminator_loss,
                                losses.wasserstein_generator_loss,
                                gradient_penalty_weight=gp_weight, gp_norm=gp_norm)


def r1_gan(r1_gamma=10.0):
    """Hinge loss plus gamma * E||grad D(x)||^2 on real data (KL-GAN baselines)."""
    return AdversarialObjective("r1gan", losses.hinge_discriminator_loss,
                                losses.hinge_generator_loss, r1_gamma=r1_gamma)


METHODS = {
    "klgan": klgan,
    "gan": minimax_gan,
    "dcgan": non_saturating_gan,
    "cgan": functools.partial(non_saturating_gan, name="cgan"),
    "lsgan": least_squares_gan,
    "hinge": hinge_gan,
    "wgan": wgan,
    "wgan_gp": wgan_gp,
    "r1gan": r1_gan,
}


def build_objective(method, **options):
    """The objective registered under `method`, with keyword overrides."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    try:
        return METHODS[method](**options)
    except TypeError as err:
        raise ValueError(f"bad option for method {method!r}: {err}") from None


def judged_real_fraction(objective, outputs):
    """Fraction of `outputs` [n, 1] the discriminator calls real."""
    return tf.reduce_mean(tf.cast(objective.judged_real(outputs), outputs.dtype))


@dataclasses.dataclass(frozen=True)
class ObjectiveConfig:
    """The objective section of the settings: the method, the options its
    factory in `METHODS` takes (by argument name), and the update schedule
    (`n_critic` D steps per G step, `generator_first`, `reuse_generated`) of
    alternating methods."""
    method: str = setting("klgan", "klgan, gan, dcgan, cgan, lsgan, hinge, wgan, wgan_gp "
                                   "or r1gan")
    kl_stats: str = setting("paper", "paper or reference_code (variance used as std, as "
                                     "the authors' code)")
    kl_eps: float = setting(1e-10, "added to the KL-GAN feature variances")
    clip_value: float = setting(0.01, "WGAN weight clipping c")
    gp_weight: float = setting(10.0, "WGAN-GP lambda")
    gp_norm: str = setting("per_sample", "per_sample (standard) or per_pixel (the KL-GAN "
                                         "authors' code)")
    r1_gamma: float = setting(10.0, "R1 weight gamma (loss + gamma * E||grad D(x)||^2)")
    ls_convention: str = setting("standard", "standard (real 1, fake 0, 1/2) or authors "
                                             "(real 0, fake 1)")
    n_critic: int = setting(1, "discriminator steps per generator step")
    generator_first: bool = setting(False, "G step before the D steps (the KL-GAN "
                                           "authors' baselines)")
    reuse_generated: bool = setting(False, "with --generator_first: the D step trains on the "
                                           "images the G step generated, before G's update "
                                           "(the KL-GAN authors' code), not on fresh ones")
    augment: str = setting("none", "augmentation of every image D sees, real and generated: "
                                   "none, diffaugment (differentiable, for small datasets) or "
                                   "ada (its probability adapted to D's overfitting)")
    augment_policy: str = setting(",".join(augment_lib.DEFAULT_POLICY),
                                  "DiffAugment's transforms, comma-separated: color, "
                                  "translation, cutout")
    ada_target: float = setting(0.6, "ADA: the target of E[sign(D(real))]; above it, more "
                                     "augmentation")
    ada_speed_images: int = setting(500_000, "ADA: images over which p may move from 0 to 1")
    ada_interval: int = setting(4, "ADA: D steps between adjustments of p")
    ada_heuristic: str = setting("rt", "ADA: how overfitting is measured: rt (the sign of D on "
                                 "the training reals) or rv (D on held-out reals against "
                                 "training reals and generated images; the validation split)")
    ada_pipeline: str = setting(ada_lib.DEFAULT_PIPELINE, "ADA: its transforms, groups of "
                                "blit, geom, color, cutout (comma-separated) or bg, bgc (the "
                                "paper's)")

    def __post_init__(self):
        raise_problems(self.problems())

    def problems(self):
        if self.method not in METHODS:
            return [f"--method={self.method!r} is unknown; choose one of {sorted(METHODS)}"]
        problems = []
        if self.n_critic < 1:
            problems.append(f"--n_critic must be >= 1, got {self.n_critic}")
        if self.n_critic > 1 and self.method == "klgan":
            problems.append("--n_critic applies to alternating methods; KL-GAN updates "
                            "G and D jointly")
        if self.augment not in AUGMENTATIONS:
            problems.append(f"--augment={self.augment!r} is unknown; choose one of "
                            f"{', '.join(AUGMENTATIONS)}")
        elif self.augment == "diffaugment":
            try:
                augment_lib.parse_policy(self.augment_policy)
            except ValueError as err:
                problems.append(f"--augment_policy: {err}")
        elif self.augment == "ada":
            if self.ada_heuristic not in ada_lib.HEURISTICS:
                problems.append(f"--ada_heuristic={self.ada_heuristic!r}: choose one of "
                                f"{ada_lib.HEURISTICS}")
            elif self.ada_heuristic == "rt" and self.method in ("wgan", "wgan_gp"):
                problems.append(f"--augment=ada with --method={self.method}: a critic's output "
                                "shifts by any constant, so the sign of D(real) that drives "
                                "r_t means nothing there; use --ada_heuristic=rv (held-out "
                                "reals) or --augment=diffaugment")
            elif self.ada_heuristic == "rv" and (self.method == "klgan" or self.conditional):
                problems.append(f"--ada_heuristic=rv with --method={self.method}: r_v needs D's "
                                "score of an unconditional image; use --ada_heuristic=rt")
            try:
                ada_lib.parse_pipeline(self.ada_pipeline)
            except ValueError as err:
                problems.append(str(err))
            if self.ada_interval < 1 or self.ada_speed_images <= 0:
                problems.append("--ada_interval must be >= 1 and --ada_speed_images > 0")
            if self.ada_heuristic == "rv" and not 0.0 < self.ada_target < 1.0:
                problems.append(f"--ada_target={self.ada_target:g} is outside (0, 1), the range "
                                "in which r_v tells overfitting; ADA's paper uses 0.5")
            elif self.ada_heuristic != "rv" and not -1.0 < self.ada_target < 1.0:
                problems.append(f"--ada_target={self.ada_target:g} is outside (-1, 1), the range "
                                "of E[sign(D(real))], so p could never move; ADA's paper "
                                "uses 0.6")
        if self.reuse_generated and (self.method == "klgan" or not self.generator_first):
            problems.append("--reuse_generated needs an alternating method with "
                            "--generator_first (the D step reuses the G step's images)")
        try:
            self.build()
        except ValueError as err:
            problems.append(str(err))
        return problems

    @property
    def conditional(self):
        return self.method == "cgan"

    def options(self):
        """The options the method's factory accepts, e.g. {"kl_eps": ..., "kl_stats": ...}."""
        params = inspect.signature(METHODS[self.method]).parameters
        return {name: getattr(self, name) for name in params if hasattr(self, name)}

    def build(self):
        return build_objective(self.method, **self.options())

    @property
    def ada_settings(self):
        """ada.AdaSettings with --augment=ada, else None."""
        if self.augment != "ada":
            return None
        return ada_lib.AdaSettings(self.ada_target, float(self.ada_speed_images),
                                   self.ada_interval, ada_lib.parse_pipeline(self.ada_pipeline),
                                   self.ada_heuristic)

    @property
    def augment_transforms(self):
        """DiffAugment's transforms, or None without augmentation."""
        return (augment_lib.parse_policy(self.augment_policy) if self.augment == "diffaugment"
                else None)
