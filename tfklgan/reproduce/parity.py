"""The reference-implementation study: tfklgan and the authors' update rules in
PyTorch, trained side by side on one proxy and scored by one protocol.

Per seed s: the training images of the Table I proxy (the train split of
seed s, uint8, exactly what tfklgan's run of seed s trains on) are written
to `data/train-seed<s>.npz`; for every cell, tfklgan trains it (the table
runner's run, resumable) and the PyTorch trainer (`reference/pytorch_gan.py`,
in a process of its own that never loads TensorFlow) trains it on those
images with the cell's learning rates, batch, width, latent size, steps and
MBD setting. Each framework's final generator gives `samples` uint8 images;
both sets are scored against one saved reference of seed s (the train
split's `real_samples` images, the table's classifier), so the two
frameworks differ in nothing the evaluation sees.

tfklgan trains each cell twice: as the Table I proxy runs it (Keras' Adam,
which adds eps before the bias correction) and with `adam_epsilon=torch`
(eps where PyTorch adds it, the reference's update exactly); the second is
named "tfklgan_torch_eps".

The report per cell: mean ± std over seeds of FID, recall and coverage per
framework, the difference of the means (tfklgan - PyTorch) with its 95%
confidence interval and Welch's t-test, and a verdict in words. PyTorch is
needed only by the trainer's interpreter (`torch_python`), never here.
"""

import csv
import dataclasses
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from typing import Optional, Tuple

import numpy as np

from tfklgan import fingerprint
from tfklgan.reproduce.protocols import PROTOCOLS, cap_onednn_isa
from tfklgan.reproduce.records import run_dir, run_name
from tfklgan.reproduce.report import fmt
from tfklgan.reproduce.runner import ReproduceOptions, cell_config, run_cell
from tfklgan.reproduce.stats import mean_std, welch_difference
from tfklgan.reproduce.tables import TABLES

TABLE = "klgan_table1"
# (method, column) of Table I: the paper's headline cells and its strongest baseline
CELLS = (("klgan", "without MBD"), ("klgan", "with MBD"), ("r1gan", "without MBD"))
SCORES = ("fid", "recall", "coverage")
FRAMEWORKS = ("tfklgan", "tfklgan_torch_eps", "pytorch")
FRAMEWORK_NAMES = {"tfklgan": "tfklgan (Keras' Adam eps)",
                   "tfklgan_torch_eps": "tfklgan (PyTorch's Adam eps)", "pytorch": "PyTorch"}
# each tfklgan variant's settings on top of the Table I cell
TFKLGAN_VARIANTS = {"tfklgan": (), "tfklgan_torch_eps": (("adam_epsilon", "torch"),)}
TRAINER = os.path.join("reference", "pytorch_gan.py")
# what selects PyTorch's CPU kernels besides the machine and the thread count
TORCH_ENVIRONMENT = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")

# What the PyTorch trainer hard-codes; a cell whose flagfile differs is refused
# rather than compared with a reference that does something else (the one
# known difference, where Adam adds eps, is a variant the study measures).
_FIXED = {"optimizer.optimizer": "adamw", "optimizer.weight_decay": 0.01,
          "optimizer.beta1": 0.9, "optimizer.beta2": 0.999, "optimizer.ema_decay": 0.0,
          "optimizer.lr_decay": "none", "network.feature_dim": 8, "network.mbd_kernels": 8,
          "network.mbd_kernel_dim": 1, "network.mbd_mean": True, "network.init": "torch",
          "network.latent_distribution": "normal", "objective.n_critic": 1}
_FIXED_BY_METHOD = {"klgan": {"objective.kl_stats": "reference_code"},
                    "r1gan": {"objective.r1_gamma": 10.0, "objective.generator_first": True,
                              "objective.reuse_generated": True}}


@dataclasses.dataclass
class ParityOptions:
    """results_dir: the study goes to results_dir/reference_parity/.
    seeds: per cell and framework. torch_python: the interpreter with PyTorch
    for the trainer (default: this one). samples: generated images scored
    per run. torch_threads: the trainer's thread count (0: PyTorch's default)."""
    results_dir: str = "results"
    seeds: Tuple[int, ...] = (1, 2, 3, 4, 5)
    protocol: str = "cpu"
    torch_python: Optional[str] = None
    torch_threads: int = 0
    root: str = "."
    classifier_path: Optional[str] = None
    progress: bool = True
    report_only: bool = False
    frameworks: Tuple[str, ...] = FRAMEWORKS

    def __post_init__(self):
        unknown = sorted(set(self.frameworks) - set(FRAMEWORKS))
        if unknown or not self.frameworks:
            raise ValueError(f"frameworks must be some of {list(FRAMEWORKS)}, got "
                             f"{list(self.frameworks)}")


def samples_sha256(path):
    """SHA-256 of the uint8 samples `x` of an npz file: a rerun on the same
    kernel fingerprint must give the same digest."""
    with np.load(path) as arrays:
        return hashlib.sha256(np.ascontiguousarray(arrays["x"]).tobytes()).hexdigest()


def _cell(method, column, framework="tfklgan"):
    """The Table I cell, with the settings of a tfklgan variant."""
    for cell in TABLES[TABLE].cells:
        if (cell.method, cell.column) == (method, column):
            return dataclasses.replace(
                cell, overrides=cell.overrides + TFKLGAN_VARIANTS[framework])
    raise KeyError((method, column))


def _setting(config, dotted):
    part, field = dotted.split(".")
    return getattr(getattr(config, part), field)


def torch_arguments(config):
    """The trainer's flags for a cell's TrainConfig; refuses a config with a
    setting the trainer does not implement."""
    fixed = {**_FIXED, **_FIXED_BY_METHOD.get(config.objective.method, {})}
    differ = {k: _setting(config, k) for k, v in fixed.items() if _setting(config, k) != v}
    if differ:
        raise ValueError(f"the PyTorch reference does not implement {differ} "
                         f"({config.objective.method})")
    args = [f"--method={config.objective.method}", f"--steps={config.run.steps}",
            f"--batch_size={config.run.batch_size}", f"--width={config.network.width}",
            f"--latent_dim={config.network.latent_dim}", f"--g_lr={config.optimizer.g_lr}",
            f"--d_lr={config.optimizer.d_lr}"]
    return args + (["--mbd"] if config.network.minibatch_discrimination else [])


class Study:
    """The study's files under `options.results_dir`/reference_parity."""

    def __init__(self, options):
        self.options = options
        self.protocol = PROTOCOLS[options.protocol][TABLE]
        self.out = os.path.join(options.results_dir, "reference_parity")
        self.table_options = ReproduceOptions(protocol=options.protocol, root=options.root,
                                              classifier_path=options.classifier_path,
                                              feature_network="classifier", progress=False)

    def config(self, method, column, seed, framework="tfklgan"):
        path = self.tfklgan_dir(method, column, seed, framework)
        return cell_config(_cell(method, column, framework), seed, self.table_options, path,
                           TABLE)

    def tfklgan_dir(self, method, column, seed, framework="tfklgan"):
        return run_dir(os.path.join(self.out, framework), _cell(method, column), seed)

    def pytorch_dir(self, method, column, seed):
        return os.path.join(self.out, "pytorch", "runs", run_name(method, column, seed))

    def score_path(self, framework, method, column, seed):
        return os.path.join(self.out, "scores",
                            f"{framework}-{run_name(method, column, seed)}.json")

    # ------------------------------------------------------------ the steps

    def train_data(self, seed):
        """data/train-seed<s>.npz: the uint8 images the runs of seed s train on."""
        from tfklgan import data as data_lib
        path = os.path.join(self.out, "data", f"train-seed{seed}.npz")
        if not os.path.isfile(path):
            config = self.config(*CELLS[0], seed)
            images = np.asarray(data_lib.load_split(config.data_config("train")).images)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            np.savez(path + ".tmp.npz", x=images)
            os.replace(path + ".tmp.npz", path)
        return path

    def reference(self, seed):
        """data/reference-seed<s>.npz: the saved reference statistics of seed s."""
        from tfklgan.evaluation import evaluate
        path = os.path.join(self.out, "data", f"reference-seed{seed}.npz")
        if not os.path.isfile(path):
            config = self.config(*CELLS[0], seed)
            data = config.data_config()
            evaluate(None, data.name, self._scoring_options(seed), save_stats=path + ".tmp.npz")
            os.replace(path + ".tmp.npz", path)
        return path

    def _scoring_options(self, seed):
        from tfklgan.evaluation import ScoringOptions
        config = self.config(*CELLS[0], seed)
        return ScoringOptions(feature_network="classifier",
                              classifier_path=self.options.classifier_path,
                              real_split=self.protocol.real_split,
                              real_samples=self.protocol.real_samples, data_seed=seed,
                              image_size=config.data.image_size,
                              channels=config.data.channel_count, resize=config.data.resize,
                              num_samples=self.protocol.eval_samples)

    def train_tfklgan(self, method, column, seed, framework="tfklgan"):
        """The table runner's run of the cell in one tfklgan variant (resumed
        if interrupted), then its final generator's samples as samples.npz,
        as scripts/sample.py writes them."""
        from tfklgan.evaluation.score import ScoringOptions, open_generated
        path = self.tfklgan_dir(method, column, seed, framework)
        samples = os.path.join(path, "samples.npz")
        if not os.path.isfile(samples):
            run_cell(_cell(method, column, framework), seed, self.table_options, path, TABLE)
            generated, _, _ = open_generated(path, ScoringOptions(
                num_samples=self.protocol.eval_samples, seed=0, use_ema=False,
                values="uint8"))
            np.savez(samples + ".tmp.npz", x=np.concatenate(list(generated.batches(200))))
            os.replace(samples + ".tmp.npz", samples)
        return samples

    def train_pytorch(self, method, column, seed):
        """The PyTorch trainer on the same images and settings, in its own
        process; a run that was interrupted starts again (it keeps no
        checkpoint)."""
        path = self.pytorch_dir(method, column, seed)
        samples = os.path.join(path, "samples.npz")
        if os.path.isfile(samples):
            return samples
        os.makedirs(path, exist_ok=True)
        config = self.config(method, column, seed)
        command = [self.options.torch_python or sys.executable,
                   os.path.join(self.options.root, TRAINER), f"--data={self.train_data(seed)}",
                   f"--seed={seed}", f"--num_samples={self.protocol.eval_samples}",
                   f"--out={samples}", f"--threads={self.options.torch_threads}",
                   *torch_arguments(config)]
        started = time.time()
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"the PyTorch trainer failed ({' '.join(command)}): "
                               f"{proc.stderr.strip()[-2000:]}")
        with np.load(samples) as written:
            torch_version = str(written["torch_version"])
        with open(os.path.join(path, "run.json"), "w") as handle:
            # the trainer's process inherits the oneDNN cap: PyTorch's oneDNN
            # kernels follow it too, so it is part of what a rerun must match
            json.dump({"command": command[1:], "seconds": round(time.time() - started, 1),
                       "torch_version": torch_version,
                       "environment": {k: os.environ.get(k) for k in TORCH_ENVIRONMENT},
                       "machine": fingerprint.current()}, handle, indent=2)
        return samples

    def score(self, framework, method, column, seed, samples):
        """Scores of one run's samples against the seed's reference (cached)."""
        from tfklgan.evaluation import evaluate
        path = self.score_path(framework, method, column, seed)
        if os.path.isfile(path):
            with open(path) as handle:
                return json.load(handle)
        result = evaluate(f"npz:{samples}", f"stats:{self.reference(seed)}",
                                  self._scoring_options(seed))
        record = {"framework": framework, "method": method, "column": column, "seed": seed,
                  **{k: result["scores"][k] for k in SCORES}, "scores": result["scores"],
                  "samples_sha256": samples_sha256(samples),
                  "protocol": result["protocol"], "machine": fingerprint.current()}
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as handle:
            json.dump(record, handle, indent=2)
        os.replace(path + ".tmp", path)
        return record

    def planned(self):
        """[(seed, method, column, framework)], a seed's runs together, so a
        partial study is balanced between the frameworks."""
        return [(seed, method, column, framework) for seed in self.options.seeds
                for method, column in CELLS for framework in self.options.frameworks]

    def run(self):
        """Trains and scores every planned run not done yet, then writes the
        report; returns the scored records."""
        cap_onednn_isa()
        planned = self.planned()
        started = time.time()
        records = []
        for index, (seed, method, column, framework) in enumerate(planned):
            done = os.path.isfile(self.score_path(framework, method, column, seed))
            if self.options.report_only and not done:
                continue
            if not done and self.options.progress:
                elapsed = time.time() - started
                print(f"run {index + 1} of {len(planned)}: {framework}, {method}, {column}, "
                      f"seed {seed} ({elapsed / 60:.0f}m elapsed)", file=sys.stderr,
                      flush=True)
            if done:
                samples = None
            elif framework == "pytorch":
                samples = self.train_pytorch(method, column, seed)
            else:
                samples = self.train_tfklgan(method, column, seed, framework)
            records.append(self.score(framework, method, column, seed, samples))
            write_report(records, self.out, self.protocol)
        return records


# ------------------------------------------------------------------ report

def cell_summary(records, method, column):
    """Per framework {score: (mean, std, n)}; per tfklgan variant and score the
    Welch difference against PyTorch."""
    chosen = [r for r in records if (r["method"], r["column"]) == (method, column)]
    by = {f: [r for r in chosen if r["framework"] == f] for f in FRAMEWORKS}
    summary = {f: {s: (*mean_std([r[s] for r in rows]), len(rows)) for s in SCORES}
               for f, rows in by.items()}
    differences = {f: {s: welch_difference([r[s] for r in by[f]],
                                           [r[s] for r in by["pytorch"]]) for s in SCORES}
                   for f in TFKLGAN_VARIANTS}
    return summary, differences


def verdict(difference):
    """The plain-words verdict of one score's comparison."""
    value, (low, high), p = difference
    if math.isnan(value) or math.isnan(low):
        return "too few seeds to compare"
    where = f"{value:+.3g} (95% CI {low:+.3g} to {high:+.3g}, Welch p = {p:.2g})"
    if low <= 0 <= high:
        return f"no difference shown at this number of seeds (the interval holds 0): {where}"
    return f"they differ: tfklgan - PyTorch = {where}"


def write_report(records, out, protocol):
    """results.csv (one row per run) and README.md (per cell and score)."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["framework", "method", "column", "seed", *SCORES])
        for r in sorted(records, key=lambda r: (r["method"], r["column"], r["framework"],
                                                r["seed"])):
            writer.writerow([r["framework"], r["method"], r["column"], r["seed"],
                             *(f"{r[s]:.6g}" for s in SCORES)])
    machines = sorted({fingerprint.text(r["machine"]) for r in records})
    lines = ["# tfklgan and a PyTorch reference of the authors' update rules, side by side", "",
             f"Proxy: the Table I CPU protocol ({protocol.dataset}, width {protocol.width}, "
             f"batch {protocol.batch_size}, {protocol.steps} steps); each framework's final "
             f"generator gives {protocol.eval_samples} uint8 samples, scored against the same "
             f"saved reference per seed ({protocol.real_samples} images of the "
             f"{protocol.real_split} split, the shipped MNIST classifier). "
             "Difference: tfklgan minus PyTorch, Welch's 95% confidence interval and t-test. "
             "tfklgan variants: Keras' Adam eps (as the Table I proxy runs train: eps added "
             "to sqrt(v) before the bias correction) and PyTorch's Adam eps "
             "(`--adam_epsilon=torch`, the reference's update).",
             "", f"Scored on: {'; '.join(machines)}.", ""]
    variants = [f for f in TFKLGAN_VARIANTS if any(r["framework"] == f for r in records)]
    lines += ["| cell | score | tfklgan variant | tfklgan | PyTorch | difference (95% CI) | "
              "Welch p |", "|---|---|---|---|---|---|---|"]
    verdicts = []
    for method, column in CELLS:
        summary, differences = cell_summary(records, method, column)
        for score in SCORES:
            mp, sp, n_p = summary["pytorch"][score]
            for framework in variants:
                mt, st, nt = summary[framework][score]
                value, (low, high), p = differences[framework][score]
                ci = "n/a" if math.isnan(low) else f"{value:+.3g} ({low:+.3g} to {high:+.3g})"
                lines.append(f"| {method}, {column} | {score} | "
                             f"{FRAMEWORK_NAMES[framework].removeprefix('tfklgan ')} | "
                             f"{fmt(mt, st)} (n={nt}) | {fmt(mp, sp)} (n={n_p}) | {ci} | "
                             f"{'n/a' if math.isnan(p) else f'{p:.2g}'} |")
        verdicts += [f"- **{method}, {column}**, {FRAMEWORK_NAMES[framework]} (FID): "
                     f"{verdict(differences[framework]['fid'])}." for framework in variants]
    lines += ["", "## Verdicts", "", *verdicts]
    lines += ["", "## MBD's effect on KL-GAN in each framework", "",
              "FID without MBD minus FID with MBD (positive: MBD helps), Welch's 95% "
              "interval; the paper reports 237.4 - 20.2 = +217.2.", ""]
    for framework in [*variants, "pytorch"]:
        fids = {column: [r["fid"] for r in records if (r["framework"], r["method"],
                                                        r["column"]) == (framework, "klgan",
                                                                         column)]
                for column in ("without MBD", "with MBD")}
        value, (low, high), p = welch_difference(fids["without MBD"], fids["with MBD"])
        effect = ("too few seeds" if math.isnan(low) else
                  f"{value:+.1f} (95% CI {low:+.1f} to {high:+.1f}, Welch p = {p:.2g}; n = "
                  f"{len(fids['without MBD'])} and {len(fids['with MBD'])})")
        lines.append(f"- {FRAMEWORK_NAMES[framework]}: {effect}")
    lines.append("")
    with open(os.path.join(out, "README.md"), "w") as handle:
        handle.write("\n".join(lines))
