"""A hyperparameter search declared as a study: every method gets the same
budget of trials over the same shared space (plus its own dimensions), drawn
before the first trial runs.

As Lucic et al. ("Are GANs Created Equal?", NeurIPS 2018) compared GAN losses:
a random search of equal size per method, the whole distribution of the
selection metric reported, not only the best trial. Every trial's setting is
drawn here from the declared sampler seed, so the list of trials is part of
the declaration and does not depend on how many workers run it
(`search_worker` queues the list in Optuna). The first trials of each method
are fixed: the setting the KL-GAN paper ran it at, then the setting the
method's own paper recommends, so that the search can only improve on both.

Each trial is an ordinary run of the runner (`runner.run_cell`): the method's
Table I flagfile under the search's protocol, with the trial's setting as
overrides. A trial is selected on the protocol's held-out images.
"""

import dataclasses
import math
from typing import Dict, Optional, Tuple

import numpy as np

from tfklgan.reproduce.tables import Cell

# d_lr = g_lr x this ratio (the search draws the ratio, not d_lr itself)
D_LR_RATIO = "d_lr_ratio"
KINDS = ("log_uniform", "choice")


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One searched setting: a training setting's flat name (or D_LR_RATIO),
    drawn log-uniformly from [low, high] or uniformly from `choices`."""
    name: str
    kind: str
    low: Optional[float] = None
    high: Optional[float] = None
    choices: Tuple[object, ...] = ()

    def problems(self, known):
        if self.name not in known:
            return [f"dimension {self.name!r} is not a training setting; choose from the "
                    f"flags of scripts/train.py or {D_LR_RATIO!r}"]
        if self.kind not in KINDS:
            return [f"dimension {self.name!r} has kind {self.kind!r}; choose one of {KINDS}"]
        if self.kind == "choice":
            return [] if self.choices else [f"dimension {self.name!r} has no choices"]
        bounded = all(isinstance(v, (int, float)) and math.isfinite(v)
                      for v in (self.low, self.high))
        if not bounded or not 0 < self.low < self.high:
            return [f"dimension {self.name!r} needs finite bounds 0 < low < high for a "
                    f"log-uniform draw, got low={self.low!r}, high={self.high!r}"]
        return []

    def draw(self, rng):
        if self.kind == "choice":
            return self.choices[int(rng.integers(len(self.choices)))]
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def contains(self, value):
        if self.kind == "choice":
            return value in self.choices
        return isinstance(value, (int, float)) and self.low <= value <= self.high

    def text(self):
        if self.kind == "choice":
            return f"{self.name} in {{{', '.join(map(str, self.choices))}}}"
        return f"{self.name} log-uniform on [{self.low:g}, {self.high:g}]"


@dataclasses.dataclass(frozen=True)
class MethodSpace:
    """A method's part of a search: its flagfile (the base setting the trials
    override), its own dimensions beside the shared ones, and its fixed first
    trials ((origin, {dimension: value}), ...)."""
    method: str
    flagfile: str
    dimensions: Tuple[Dimension, ...] = ()
    fixed: Tuple[Tuple[str, Tuple[Tuple[str, object], ...]], ...] = ()


@dataclasses.dataclass(frozen=True)
class Trial:
    """One declared trial: the setting, the seed it trains with, and where
    the setting came from ("random", or the paper it was fixed from)."""
    method: str
    index: int
    origin: str
    params: Tuple[Tuple[str, object], ...]
    seed: int
    flagfile: str

    @property
    def key(self):
        """"lsgan/03": the trial's name in the storage and in the plan."""
        return f"{self.method}/{self.index:02d}"

    @property
    def column(self):
        return f"trial {self.index:02d}"

    def overrides(self):
        """The trial's training settings ({flat name: value}; the ratio as d_lr)."""
        values = dict(self.params)
        if D_LR_RATIO in values:
            values["d_lr"] = values["g_lr"] * values.pop(D_LR_RATIO)
        return values

    def cell(self):
        """The trial as a table cell of the runner."""
        return Cell(self.method, self.column, self.flagfile, {},
                    tuple(sorted(self.overrides().items())))

    def to_json(self):
        return {"key": self.key, "method": self.method, "index": self.index,
                "origin": self.origin, "seed": self.seed, "flagfile": self.flagfile,
                "params": dict(self.params)}


@dataclasses.dataclass(frozen=True)
class Search:
    """A declared search. protocol: the name of its entry in
    protocols.PROTOCOLS[...] (data, width, batch, length, evaluation on held-out
    images). trials: per method, fixed ones included. seed_base: trial k of
    every method trains with seed seed_base + k (so trial k is paired across
    methods in its seed). selection: the metric a method's best trial is
    chosen by, on the protocol's held-out images."""
    name: str
    title: str
    methods: Tuple[MethodSpace, ...]
    shared: Tuple[Dimension, ...]
    trials: int
    sampler_seed: int
    seed_base: int
    selection: str = "fid"
    sampler: str = "random"
    note: str = ""

    def method(self, name):
        found = [m for m in self.methods if m.method == name]
        if not found:
            raise ValueError(f"method {name!r} is not in the search {self.name}; choose from "
                             f"{[m.method for m in self.methods]}")
        return found[0]

    def dimensions(self, method):
        return self.shared + self.method(method).dimensions

    def problems(self, known_settings, known_methods):
        """Everything wrong with the declaration, as one-line messages."""
        known = set(known_settings) | {D_LR_RATIO}
        problems = []
        if not self.methods:
            problems.append(f"search {self.name} has no methods")
        if self.sampler != "random":
            problems.append(f"search {self.name}: sampler {self.sampler!r} is not declared "
                            "here; 'random' draws the trials at declaration")
        for space in self.methods:
            if space.method not in known_methods:
                problems.append(f"search {self.name}: unknown method {space.method!r}; choose "
                                f"one of {sorted(known_methods)}")
            dims = self.dimensions(space.method)
            if not dims:
                problems.append(f"search {self.name}: {space.method} has an empty space")
            names = [d.name for d in dims]
            if len(set(names)) != len(names):
                problems.append(f"search {self.name}: {space.method} names a dimension twice")
            for dim in dims:
                problems += dim.problems(known)
            if len(space.fixed) > self.trials:
                problems.append(f"search {self.name}: {space.method} fixes more trials than "
                                f"its budget of {self.trials}")
            by_name = {d.name: d for d in dims}
            for origin, params in space.fixed:
                given = dict(params)
                if set(given) != set(by_name):
                    problems.append(f"search {self.name}: {space.method}'s {origin} trial "
                                    f"sets {sorted(given)}, not the space's {sorted(by_name)}")
                    continue
                problems += [f"search {self.name}: {space.method}'s {origin} trial has "
                             f"{name}={value!r}, outside {by_name[name].text()}"
                             for name, value in given.items()
                             if not by_name[name].contains(value)]
        if self.trials < 1:
            problems.append(f"search {self.name}: the budget must be >= 1 trial per method")
        return problems

    def declared_trials(self):
        """Every trial of every method, in order: each method's fixed trials,
        then random draws from the sampler seed (one generator per method,
        seeded by (sampler_seed, the method's position))."""
        trials = []
        for position, space in enumerate(self.methods):
            rng = np.random.default_rng([self.sampler_seed, position])
            dims = self.dimensions(space.method)
            for index in range(self.trials):
                if index < len(space.fixed):
                    origin, params = space.fixed[index]
                    params = tuple((d.name, dict(params)[d.name]) for d in dims)
                else:
                    origin = "random"
                    params = tuple((d.name, _plain(d.draw(rng))) for d in dims)
                trials.append(Trial(space.method, index, origin, params,
                                    self.seed_base + index, space.flagfile))
        return trials

    def to_json(self):
        return _plain_tree(dataclasses.asdict(self))


def _plain(value):
    """numpy scalars as Python's."""
    return value.item() if isinstance(value, np.generic) else value


def _plain_tree(value):
    if isinstance(value, dict):
        return {k: _plain_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_tree(v) for v in value]
    return _plain(value)


# ------------------------------------------------------------ Table I, tuned

SHARED = (
    Dimension("g_lr", "log_uniform", 2e-5, 1e-3),
    Dimension(D_LR_RATIO, "log_uniform", 0.25, 4.0),
    Dimension("beta1", "choice", choices=(0.0, 0.5, 0.9)),
    Dimension("beta2", "choice", choices=(0.9, 0.999)),
    Dimension("minibatch_discrimination", "choice", choices=(False, True)),
)
D_STEPS = Dimension("n_critic", "choice", choices=(1, 2, 5))


def _fixed(origin, g_lr, ratio, beta1, beta2, mbd, **own):
    return (origin, (("g_lr", g_lr), (D_LR_RATIO, ratio), ("beta1", beta1), ("beta2", beta2),
                     ("minibatch_discrimination", mbd), *own.items()))


KLGAN_PAPER = "the KL-GAN paper's setting"


def _table1_search():
    """Table I's five losses, 16 trials each at 5,000 steps. First trial: the
    KL-GAN paper's setting of the method (AdamW 8e-5, betas 0.9/0.999) in its
    better Table I column, as configs/table1 runs it: with MBD (D's rate halved
    for klgan, hinge and wgan_gp, not for lsgan), R1-GAN without. Second: the method's own paper (DCGAN's Adam 2e-4, beta1 0.5 for
    LS-GAN, Mao et al. 2017; SN-GAN's hinge setting, Adam 2e-4, betas 0.5/0.999,
    one D step, Miyato et al. 2018; WGAN-GP's Adam 1e-4, betas 0/0.9, 5 critic
    steps, lambda 10, Gulrajani et al. 2017; R1's gamma 10 with its RMSProp
    1e-4 as Adam 1e-4 without momentum, beta2 0.999 (the nearest in the space),
    Mescheder et al. 2018; KL-GAN without MBD at the paper's rate)."""
    own_steps = dict(n_critic=1)
    methods = (
        MethodSpace("klgan", "configs/table1/klgan.flags", (), (
            _fixed(KLGAN_PAPER, 8e-5, 0.5, 0.9, 0.999, True),
            _fixed("the KL-GAN paper's setting without MBD", 8e-5, 1.0, 0.9, 0.999, False))),
        MethodSpace("lsgan", "configs/table1/lsgan.flags", (D_STEPS,), (
            _fixed(KLGAN_PAPER, 8e-5, 1.0, 0.9, 0.999, True, **own_steps),
            _fixed("Mao et al. 2017 (DCGAN's Adam)", 2e-4, 1.0, 0.5, 0.999, False,
                   **own_steps))),
        MethodSpace("hinge", "configs/table1/hinge.flags", (D_STEPS,), (
            _fixed(KLGAN_PAPER, 8e-5, 0.5, 0.9, 0.999, True, **own_steps),
            _fixed("Miyato et al. 2018 (SN-GAN's hinge)", 2e-4, 1.0, 0.5, 0.999, False,
                   **own_steps))),
        MethodSpace("wgan_gp", "configs/table1/wgan_gp.flags",
                    (D_STEPS, Dimension("gp_weight", "log_uniform", 1.0, 100.0)), (
            _fixed(KLGAN_PAPER, 8e-5, 0.5, 0.9, 0.999, True, n_critic=1, gp_weight=10.0),
            _fixed("Gulrajani et al. 2017", 1e-4, 1.0, 0.0, 0.9, False, n_critic=5,
                   gp_weight=10.0))),
        MethodSpace("r1gan", "configs/table1/r1gan.flags",
                    (D_STEPS, Dimension("r1_gamma", "log_uniform", 0.1, 100.0)), (
            _fixed(KLGAN_PAPER, 8e-5, 1.0, 0.9, 0.999, False, n_critic=1, r1_gamma=10.0),
            _fixed("Mescheder et al. 2018", 1e-4, 1.0, 0.0, 0.999, False, n_critic=1,
                   r1_gamma=10.0))),
    )
    return Search("table1_search", "Table I, tuned: an equal random search per loss",
                  methods, SHARED, trials=16, sampler_seed=20261206, seed_base=400,
                  note="Trials are ordinary runs of the cpu protocol's search entry: the "
                       "4,500 training digits, width 16, batch 64, 5,000 generator steps, "
                       "selected on FID against the 500 held-out digits.")


SEARCHES: Dict[str, Search] = {"table1_search": _table1_search()}
