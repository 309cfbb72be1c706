"""TrainConfig: the settings of one training run, as sections.

Each section is owned by the module that uses it and validates itself:

  data        tfklgan.data.DataConfig          what to load and how
  network     tfklgan.networks.NetworkConfig   the networks
  objective   tfklgan.objectives.ObjectiveConfig  the method and its options
  optimizer   tfklgan.optimizers.OptimizerConfig  optimizers, learning rates, EMA
  evaluation  tfklgan.evaluation.EvalConfig    scoring during training
  run         RunConfig (here)                 length, seed, execution, outputs

`TrainConfig.validate()` adds the rules that span sections. Every setting
has one flat name (its flag: `--g_lr`, `--eval_samples`), unique across
sections; `from_flat()` and `replace()` take those names. `config.json` is
nested by section and `from_json()` also reads the flat files of earlier
versions. Resume rules come from the fields: a resumed run may change the
settings marked `resumable` and nothing else.
"""

import dataclasses
import json
import os
import typing
from typing import Optional

from tfklgan.data import PREFIXES, SOURCES, DataConfig, dataset_names
from tfklgan.evaluation.feature_networks import default_classifier_path
from tfklgan.evaluation.training import EvalConfig
from tfklgan.networks import IMAGE_SIZES, NETWORKS, NetworkConfig
from tfklgan.objectives import ObjectiveConfig
from tfklgan.optimizers import OptimizerConfig
from tfklgan.settings import ConfigError, flag_name, raise_problems, setting, settings_of

__all__ = ["ConfigError", "RunConfig", "TrainConfig"]

STRATEGIES = ("default", "mirrored", "multiworker")
PRECISIONS = ("float32", "mixed_bfloat16", "float64")

# Network picked by image size when --network is not given.
DEFAULT_NETWORKS = {28: "dcgan28", 32: "klgan32", 64: "dcgan64", 128: "dcgan128",
                    256: "dcgan256"}
# the pairs whose BatchNorm SN(k) replaces
SN_NETWORKS = ("dcgan256", "dcgan128", "dcgan64", "dcgan32")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The run section: length, seed, execution and outputs. A step is one
    generator update. A resumed run may change all but batch_size, seed and
    precision."""
    batch_size: int = setting(64, "global batch size (split over replicas)")
    epochs: int = setting(1, "passes over the training split", resumable=True)
    steps: int = setting(0, "generator steps; > 0 overrides --epochs", resumable=True)
    seed: int = setting(1, "seed of weights, data order and every random draw")
    precision: str = setting("float32", "float32, mixed_bfloat16 (GPUs) or float64 "
                                        "(exactness checks)")
    jit_compile: bool = setting(False, "compile the train step with XLA", resumable=True)
    strategy: str = setting("default", "default, mirrored (all local GPUs, or the "
                                       "--cpu_devices) or multiworker (TF_CONFIG)",
                            resumable=True)
    cpu_devices: int = setting(0, "split the CPU into N logical devices (N > 1), so "
                                  "--strategy=mirrored runs N replicas on a machine without "
                                  "GPUs", resumable=True)
    steps_per_execution: int = setting(1, "train steps per compiled call (callbacks run "
                                          "per call)", resumable=True)
    logdir: str = setting("runs/default", "run directory: checkpoints, TensorBoard events, "
                                          "metrics.csv, samples", resumable=True)
    log_every: int = setting(10, "log metrics every N steps", resumable=True)
    sample_every: int = setting(500, "write a sample grid every N steps", resumable=True)
    checkpoint_every: int = setting(1000, "checkpoint every N steps", resumable=True)
    keep_checkpoints: int = setting(3, "checkpoints to keep", resumable=True)
    export_dir: Optional[str] = setting(None, "export the generator as a SavedModel here "
                                              "at the end", resumable=True)
    init_from: Optional[str] = setting(None, "start the networks from another run's newest "
                                             "checkpoint (G and D) or a generator export (G); "
                                             "fresh optimizers, step 0")
    resume: bool = setting(False, "continue the run in --logdir from its last checkpoint",
                           resumable=True)
    verbose: int = setting(1, "Keras progress output: 0 silent, 1 bar, 2 one line per epoch",
                           resumable=True)

    def __post_init__(self):
        raise_problems(self.problems())

    def problems(self):
        problems = [f"--{name} must be >= 1, got {getattr(self, name)}"
                    for name in ("batch_size", "log_every", "sample_every", "checkpoint_every",
                                 "keep_checkpoints", "steps_per_execution")
                    if getattr(self, name) < 1]
        checks = [
            (self.strategy in STRATEGIES,
             f"--strategy must be one of {STRATEGIES}, got {self.strategy!r}"),
            (self.precision in PRECISIONS,
             f"--precision must be one of {PRECISIONS}, got {self.precision!r}"),
            (self.cpu_devices >= 0, f"--cpu_devices must be >= 0, got {self.cpu_devices}"),
            (self.steps >= 0, f"--steps must be >= 0 (0: train for --epochs), got "
                              f"{self.steps}"),
            (self.epochs >= 0, f"--epochs must be >= 0, got {self.epochs}"),
            (self.epochs >= 1 or self.steps >= 1,
             "give --epochs >= 1 or --steps >= 1 to say how long to train"),
        ]
        for flag, path in (("logdir", self.logdir), ("export_dir", self.export_dir)):
            if path and os.path.exists(path) and not os.path.isdir(path):
                checks.append((False, f"--{flag}={path} is a file, not a folder; give a "
                                      "folder (it is created if missing)"))
        return problems + [message for ok, message in checks if not ok]


SECTIONS = {"data": DataConfig, "network": NetworkConfig, "objective": ObjectiveConfig,
            "optimizer": OptimizerConfig, "evaluation": EvalConfig, "run": RunConfig}
# flat name (the flag) -> (section, field name)
FLAT_NAMES = {flag_name(f): (section, f.name)
              for section, cls in SECTIONS.items() for f in settings_of(cls)}
# flat name -> whether a resumed run may change it (the field's rule)
RESUMABLE = {flag_name(f): f.metadata["resumable"]
             for cls in SECTIONS.values() for f in settings_of(cls)}
assert len(FLAT_NAMES) == sum(len(settings_of(cls)) for cls in SECTIONS.values()), \
    "setting names must be unique across sections"


def setting_type(section, field):
    """The Python type of a setting: int for Optional[int], tuple for Tuple[...]."""
    kind = typing.get_type_hints(SECTIONS[section])[field]
    if typing.get_origin(kind) is typing.Union:
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    return tuple if typing.get_origin(kind) is tuple else kind


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    data: DataConfig = DataConfig()
    network: NetworkConfig = NetworkConfig()
    objective: ObjectiveConfig = ObjectiveConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    evaluation: EvalConfig = EvalConfig()
    run: RunConfig = RunConfig()

    # ------------------------------------------------------- flat names

    @classmethod
    def from_flat(cls, **values):
        """The config of flat settings ({flag name: value}; the rest default).
        Raises ConfigError listing the problems of every section at once."""
        unknown = sorted(set(values) - set(FLAT_NAMES))
        if unknown:
            raise ConfigError(f"unknown settings {unknown}; see scripts/train.py --help")
        grouped = {section: {} for section in SECTIONS}
        for name, value in values.items():
            section, field = FLAT_NAMES[name]
            grouped[section][field] = tuple(value) if isinstance(value, list) else value
        sections, problems = {}, []
        for section, section_cls in SECTIONS.items():
            try:
                sections[section] = section_cls(**grouped[section])
            except ConfigError as err:
                problems.extend(err.problems)
        raise_problems(problems)
        return cls(**sections)

    def flat(self):
        """{flag name: value} of every setting."""
        return {name: getattr(getattr(self, section), field)
                for name, (section, field) in FLAT_NAMES.items()}

    def replace(self, **values):
        """A copy with the given flat settings changed."""
        return TrainConfig.from_flat(**{**self.flat(), **values})

    # ---------------------------------------------------------- derived

    @property
    def conditional(self):
        return self.network.name == "cgan28" or self.objective.conditional

    def resolved_network(self):
        return self.network.name or DEFAULT_NETWORKS.get(self.data.image_size, "")

    def data_config(self, split="train"):
        """The data section for one split, seeded by the run."""
        return dataclasses.replace(self.data, split=split, seed=self.run.seed)

    def network_config(self, num_classes=0):
        """The network section filled in from the data and the objective."""
        return dataclasses.replace(
            self.network, name=self.resolved_network(), image_size=self.data.image_size,
            channels=self.data.channel_count, head=self.objective.build().head,
            num_classes=num_classes)

    def with_dataset(self, dataset):
        """These settings on another dataset: the data options that belong to
        the old one (channels, CelebA attributes, subset size, crop) reset."""
        return self.replace(dataset=dataset, channels=0, attributes=(), max_examples=None,
                            resize="authors")

    def eval_config(self):
        """The evaluation section, seeded by the run; MNIST-like data defaults to
        the shipped classifier."""
        evaluation = self.evaluation
        return dataclasses.replace(
            evaluation, seed=self.run.seed, cache_dir=self.data.cache_folder,
            classifier_path=evaluation.classifier_path or default_classifier_path(
                self.data.name))

    # ------------------------------------------------------- validation

    def validate(self):
        """Raises ConfigError listing the problems that span sections; returns self."""
        problems = []
        network, size = self.resolved_network(), self.data.image_size
        if self.network.name and network not in NETWORKS:
            problems.append(f"--network={network!r} is unknown; choose one of "
                            f"{sorted(NETWORKS)}")
        elif not network:
            problems.append(f"no default network for --image_size={size}; pass --network "
                            f"(one of {sorted(NETWORKS)}) or an image size in "
                            f"{sorted(DEFAULT_NETWORKS)}")
        elif size != IMAGE_SIZES[network]:
            problems.append(f"--network={network} needs --image_size={IMAGE_SIZES[network]}, "
                            f"not {size}; drop --network to pick one by size")
        if self.network.spectral_norm_iterations and network not in SN_NETWORKS:
            problems.append("--spectral_norm_iterations applies to the DCGAN pairs "
                            f"({', '.join(SN_NETWORKS)}: SN-DCGAN); {network!r} has no "
                            "BatchNorm to replace")
        prefix, sep, _ = self.data.name.partition(":")
        if not (self.data.name in SOURCES or (sep and prefix in PREFIXES)):
            problems.append(f"--dataset={self.data.name!r} is unknown; choose one of "
                            f"{dataset_names()}")
        if self.conditional and self.data.name == "celeba" and not self.data.attributes:
            problems.append("a CGAN on CelebA needs --attributes (e.g. Male,Smiling) "
                            "to condition on")
        raise_problems(problems)
        return self

    # ------------------------------------------------------ persistence

    def to_json(self):
        """Nested by section: {"data": {"name": ...}, "network": {...}, ...}."""
        return json.dumps({section: {f.name: getattr(getattr(self, section), f.name)
                                     for f in settings_of(SECTIONS[section])}
                           for section in SECTIONS}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        """Reads to_json()'s output, or the flat config.json of earlier versions.
        Names this version does not know are ignored."""
        values = json.loads(text)
        if set(values) <= set(SECTIONS):
            by_field = {(section, field): name for name, (section, field) in FLAT_NAMES.items()}
            values = {by_field[(section, field)]: value
                      for section, fields in values.items() for field, value in fields.items()
                      if (section, field) in by_field}
        return cls.from_flat(**{k: v for k, v in values.items() if k in FLAT_NAMES})

    # ----------------------------------------------------------- resume

    def differences(self, other):
        """(name, other's value, this value) of the settings a resume must keep
        but that differ."""
        mine, theirs = self.flat(), other.flat()
        return [(name, theirs[name], mine[name]) for name, resumable in RESUMABLE.items()
                if not resumable and mine[name] != theirs[name]]

    def changes(self, other):
        """{name: [other's value, this value]} of the resumable settings that differ
        (the run directory and --resume itself aside)."""
        mine, theirs = self.flat(), other.flat()
        return {name: [theirs[name], mine[name]] for name, resumable in RESUMABLE.items()
                if resumable and name not in ("logdir", "resume") and mine[name] != theirs[name]}
