"""TrainConfig: everything one training run needs, validated up front.

`scripts/train.py` turns absl flags into a TrainConfig; library code reads
only this object. `validate()` reports every problem it finds at once, each
with what to change.
"""

import dataclasses
import inspect
import json
from typing import Optional, Tuple

from tfklgan import objectives
from tfklgan.data import NPZ_RANGES, PREFIXES, RESIZE_PROTOCOLS, SOURCES, DataConfig, dataset_names
from tfklgan.networks import IMAGE_SIZES, NETWORKS
from tfklgan.networks.base import INITS, LATENT_DISTRIBUTIONS

OPTIMIZERS = ("adam", "adamw", "rmsprop")
LR_DECAYS = ("none", "linear")
STRATEGIES = ("default", "mirrored", "multiworker")
PRECISIONS = ("float32", "mixed_bfloat16", "float64")

# Network picked by image size when --network is not given.
DEFAULT_NETWORKS = {28: "dcgan28", 32: "klgan32", 64: "dcgan64"}


class ConfigError(ValueError):
    """Invalid settings; the message lists every problem and what to change."""


@dataclasses.dataclass
class TrainConfig:
    # what
    method: str = "klgan"
    network: str = ""            # "" = by image size (DEFAULT_NETWORKS)
    dataset: str = "mnist_sample"
    image_size: int = 32
    channels: int = 0            # 0 = 1 for MNIST-like data, else 3
    resize: str = "authors"
    attributes: Tuple[str, ...] = ()
    max_examples: Optional[int] = None  # None or 0: all
    validation_fraction: float = 0.1
    data_dir: Optional[str] = None
    celeba_dir: Optional[str] = None
    cache_dir: Optional[str] = None
    download: bool = True
    npz_range: str = "auto"
    # how long
    batch_size: int = 64
    epochs: int = 1
    steps: int = 0               # > 0 overrides epochs
    # networks
    latent_dim: int = 128
    latent_distribution: str = "normal"
    width: int = 128
    feature_dim: int = 8
    minibatch_discrimination: bool = False
    mbd_kernels: int = 8
    mbd_kernel_dim: int = 1
    mbd_mean: bool = True
    spectral_norm_iterations: int = 0
    init: str = "keras"
    # objective (names match the objective factories' arguments)
    kl_stats: str = "paper"
    kl_eps: float = 1e-10
    clip_value: float = 0.01
    gp_weight: float = 10.0
    gp_norm: str = "per_sample"
    r1_gamma: float = 10.0
    ls_convention: str = "standard"
    n_critic: int = 1
    generator_first: bool = False
    # optimization
    optimizer: str = "adamw"
    g_lr: float = 8e-5
    d_lr: float = 8e-5
    beta1: float = 0.9
    beta2: float = 0.999
    weight_decay: float = 0.01
    rmsprop_rho: float = 0.9
    lr_decay: str = "none"
    lr_decay_steps: int = 300_000
    lr_decay_final: float = 0.01
    ema_decay: float = 0.0
    # execution
    seed: int = 1
    precision: str = "float32"
    jit_compile: bool = False
    strategy: str = "default"
    cpu_devices: int = 0         # > 1: split the CPU into that many logical devices
    steps_per_execution: int = 1
    # evaluation during training (0 = off)
    eval_every: int = 0
    eval_samples: int = 10_000
    eval_split: str = "validation"
    eval_real_samples: int = 0
    eval_resize_filter: str = "tfgan"
    eval_feature_network: str = "inception"
    eval_ema: bool = True
    inception_path: Optional[str] = None
    classifier_path: Optional[str] = None
    # outputs
    logdir: str = "runs/default"
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    export_dir: Optional[str] = None
    resume: bool = False
    verbose: int = 1

    # ------------------------------------------------------------ derived

    @property
    def conditional(self):
        return self.network == "cgan28" or self.method == "cgan"

    def resolved_channels(self):
        if self.channels:
            return self.channels
        mnist_like = self.dataset in ("mnist", "mnist_sample")
        return 1 if mnist_like else 3

    def resolved_network(self):
        return self.network or DEFAULT_NETWORKS.get(self.image_size, "")

    def data_config(self, split="train"):
        kwargs = {}
        if self.cache_dir:
            kwargs["cache_dir"] = self.cache_dir
        return DataConfig(
            name=self.dataset, image_size=self.image_size,
            channels=self.resolved_channels(), split=split,
            validation_fraction=self.validation_fraction,
            max_examples=self.max_examples or None, seed=self.seed, resize=self.resize,
            attributes=tuple(self.attributes), data_dir=self.data_dir,
            celeba_dir=self.celeba_dir, download=self.download, npz_range=self.npz_range,
            **kwargs)

    def objective_options(self):
        """The config values the method's objective factory accepts."""
        factory = objectives.METHODS[self.method]
        params = inspect.signature(factory).parameters
        return {name: getattr(self, name) for name in params if hasattr(self, name)}

    # ---------------------------------------------------------- validation

    def validate(self):
        """Raises ConfigError listing every problem; returns self."""
        problems = []

        def need(ok, message):
            if not ok:
                problems.append(message)

        need(self.method in objectives.METHODS,
             f"--method={self.method!r} is unknown; choose one of {sorted(objectives.METHODS)}")
        network = self.resolved_network()
        need(network in NETWORKS,
             f"--network={self.network!r} is unknown; choose one of {sorted(NETWORKS)}"
             if self.network else
             f"no default network for --image_size={self.image_size}; pass --network "
             f"(one of {sorted(NETWORKS)}) or an image size in {sorted(DEFAULT_NETWORKS)}")
        prefix = self.dataset.partition(":")[0]
        need(self.dataset in SOURCES or (prefix in PREFIXES and ":" in self.dataset),
             f"--dataset={self.dataset!r} is unknown; choose one of {dataset_names()}")
        need(self.channels in (0, 1, 3), f"--channels must be 0 (auto), 1 or 3, got {self.channels}")
        need(self.npz_range in NPZ_RANGES,
             f"--npz_range must be one of {NPZ_RANGES}, got {self.npz_range!r}")
        need(self.resize in RESIZE_PROTOCOLS,
             f"--resize must be one of {RESIZE_PROTOCOLS}, got {self.resize!r}")
        need(self.optimizer in OPTIMIZERS,
             f"--optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        need(self.lr_decay in LR_DECAYS,
             f"--lr_decay must be one of {LR_DECAYS}, got {self.lr_decay!r}")
        need(self.strategy in STRATEGIES,
             f"--strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        need(self.precision in PRECISIONS,
             f"--precision must be one of {PRECISIONS}, got {self.precision!r}")
        need(self.init in INITS, f"--init must be one of {INITS}, got {self.init!r}")
        need(self.latent_distribution in LATENT_DISTRIBUTIONS,
             f"--latent_distribution must be one of {LATENT_DISTRIBUTIONS}")
        for name in ("batch_size", "latent_dim", "width", "feature_dim", "n_critic",
                     "log_every", "sample_every", "checkpoint_every", "keep_checkpoints",
                     "steps_per_execution"):
            need(getattr(self, name) >= 1, f"--{name} must be >= 1, got {getattr(self, name)}")
        need(self.cpu_devices >= 0, f"--cpu_devices must be >= 0, got {self.cpu_devices}")
        need(self.eval_every >= 0, f"--eval_every must be >= 0 (0 = off), got {self.eval_every}")
        need(self.eval_samples >= 2, f"--eval_samples must be >= 2, got {self.eval_samples}")
        need(self.eval_real_samples >= 0,
             f"--eval_real_samples must be >= 0 (0: --eval_samples), got {self.eval_real_samples}")
        need(self.eval_resize_filter in ("tfgan", "clean"),
             f"--eval_resize_filter must be tfgan or clean, got {self.eval_resize_filter!r}")
        need(self.eval_split in ("train", "validation", "all"),
             f"--eval_split must be train, validation or all, got {self.eval_split!r}")
        need(self.eval_feature_network in ("inception", "classifier"),
             "--eval_feature_network must be inception or classifier, got "
             f"{self.eval_feature_network!r}")
        need(self.max_examples is None or self.max_examples >= 0,
             f"--max_examples must be >= 0 (0 = all), got {self.max_examples}")
        need(self.epochs >= 1 or self.steps >= 1,
             "give --epochs >= 1 or --steps >= 1 to say how long to train")
        need(self.g_lr > 0 and self.d_lr > 0, "--g_lr and --d_lr must be > 0")
        need(0.0 <= self.ema_decay < 1.0, f"--ema_decay must be in [0, 1), got {self.ema_decay}")
        need(self.mbd_kernels >= 1 and self.mbd_kernel_dim >= 1,
             "--mbd_kernels and --mbd_kernel_dim must be >= 1")
        if self.spectral_norm_iterations and network != "dcgan64":
            problems.append("--spectral_norm_iterations applies to --network=dcgan64 "
                            f"(SN-DCGAN); {network!r} has no BatchNorm to replace")
        if self.image_size != IMAGE_SIZES.get(network, self.image_size):
            problems.append(f"--network={network} needs a different --image_size than "
                            f"{self.image_size}; drop --network to pick one by size")
        if self.attributes and self.dataset != "celeba":
            problems.append("--attributes name CelebA attributes; use them with "
                            "--dataset=celeba")
        if self.method == "cgan" and self.dataset == "celeba" and not self.attributes:
            problems.append("a CGAN on CelebA needs --attributes (e.g. Male,Smiling) "
                            "to condition on")
        if self.n_critic > 1 and self.method == "klgan":
            problems.append("--n_critic applies to alternating methods; KL-GAN updates "
                            "G and D jointly")
        if problems:
            raise ConfigError("invalid settings:\n  - " + "\n  - ".join(problems))
        return self

    # ---------------------------------------------------------- persistence

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        values = json.loads(text)
        values["attributes"] = tuple(values.get("attributes", ()))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    # Settings a resumed run may change (they take effect: the optimizers get
    # the new learning rates); every other setting must match the run it continues.
    RESUME_MAY_CHANGE = (
        "g_lr", "d_lr", "lr_decay", "lr_decay_steps", "lr_decay_final",  # learning rates
        "steps", "epochs",                                                 # length
        "log_every", "sample_every", "checkpoint_every", "keep_checkpoints",  # intervals
        "eval_every", "eval_samples", "eval_real_samples", "eval_split",   # evaluation
        "eval_resize_filter",
        "eval_feature_network", "eval_ema", "inception_path", "classifier_path",
        "export_dir", "verbose",                                           # outputs
        "data_dir", "celeba_dir", "cache_dir", "download",                 # where data is
        "strategy", "jit_compile", "steps_per_execution", "cpu_devices",   # execution
        "logdir", "resume")

    def differences(self, other):
        """(name, other's value, this value) of the settings that must match but do not."""
        return [(f.name, getattr(other, f.name), getattr(self, f.name))
                for f in dataclasses.fields(self)
                if f.name not in self.RESUME_MAY_CHANGE
                and getattr(self, f.name) != getattr(other, f.name)]

    def changes(self, other):
        """{name: [other's value, this value]} of the changeable settings that differ."""
        return {name: [getattr(other, name), getattr(self, name)]
                for name in self.RESUME_MAY_CHANGE if name not in ("logdir", "resume")
                and getattr(self, name) != getattr(other, name)}
