"""Scoring during training: the evaluation settings (`EvalConfig`), the
run's reference, `score_gan` and the callback that logs it.

Defaults follow the KL-GAN paper: 10,000 held-out (validation) real images
against 10,000 generated ones. Training scores through the same functions
as the reproduce runner and scripts/evaluate.py (`score.score_image_set`),
so the three give the same numbers for one generator and one seed.
"""

import dataclasses
import math
from typing import Optional

import keras
import tensorflow as tf

from tfklgan import data as data_lib
from tfklgan.callbacks import append_csv, run_step, truncate_csv
from tfklgan.data.config import DEFAULT_CACHE_DIR
from tfklgan.evaluation.feature_networks import (
    FEATURE_NETWORKS,
    RESIZE_FILTERS,
    load_feature_network,
)
from tfklgan.evaluation.image_sets import VALUES
from tfklgan.evaluation.reference import dataset_reference
from tfklgan.evaluation.score import score_image_set
from tfklgan.evaluation.scores import SCORES
from tfklgan.evaluation.sources import data_image_set, gan_image_set
from tfklgan.settings import raise_problems, setting


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """The evaluation section of the settings: how generators are scored, and
    how often during training (`every`, 0 = off). A resumed run may change
    any of it. `seed`, `batch_size` and `cache_dir` are set by the caller."""
    every: int = setting(0, "score FID, IS and KID every N steps (0 = off); keeps the "
                            "best-FID checkpoint", flag="eval_every", resumable=True)
    num_samples: int = setting(10_000, "generated (and real) images per evaluation (10,000 "
                                       "as in the KL-GAN paper)", flag="eval_samples",
                               resumable=True)
    real_split: str = setting("validation", "real reference split: validation (held out, "
                                            "default), train or all", flag="eval_split",
                              resumable=True)
    real_samples: int = setting(0, "real reference images per evaluation; 0: as many as "
                                   "--eval_samples", flag="eval_real_samples", resumable=True)
    resize_filter: str = setting("tfgan", "resizing to the feature network's input: tfgan "
                                          "(bilinear, TF-GAN's examples) or clean "
                                          "(antialiased bicubic, as PIL and clean-fid)",
                                 flag="eval_resize_filter", resumable=True)
    feature_network: str = setting("inception", "inception (TF-GAN's) or classifier "
                                                "(--classifier_path)",
                                   flag="eval_feature_network", resumable=True)
    use_ema: bool = setting(True, "evaluate the EMA generator when the run keeps one",
                            flag="eval_ema", resumable=True)
    values: str = setting("uint8", "score generated images as uint8 (rounded as an image "
                                   "file stores them, the rule) or float32 (the raw "
                                   "output, the protocol of studies scored before)",
                          flag="eval_values", resumable=True)
    inception_path: Optional[str] = setting(None, "local copy of the TF-Hub module "
                                                  "tensorflow/tfgan/eval/inception/1",
                                            resumable=True)
    classifier_path: Optional[str] = setting(None, "domain classifier from "
                                                   "scripts/train_classifier.py; MNIST-like "
                                                   "data defaults to the one shipped with "
                                                   "tfklgan", resumable=True)
    seed: int = 0
    batch_size: int = 200
    cache_dir: str = DEFAULT_CACHE_DIR

    def __post_init__(self):
        raise_problems(self.problems())

    def problems(self):
        checks = [
            (self.every >= 0, f"--eval_every must be >= 0 (0 = off), got {self.every}"),
            (self.num_samples >= 2, f"--eval_samples must be >= 2, got {self.num_samples}"),
            (self.real_samples >= 0,
             f"--eval_real_samples must be >= 0 (0: --eval_samples), got {self.real_samples}"),
            (self.real_split in data_lib.SPLITS,
             f"--eval_split must be one of {data_lib.SPLITS}, got {self.real_split!r}"),
            (self.resize_filter in RESIZE_FILTERS,
             f"--eval_resize_filter must be one of {sorted(RESIZE_FILTERS)}, got "
             f"{self.resize_filter!r}"),
            (self.feature_network in FEATURE_NETWORKS,
             f"--eval_feature_network must be one of {sorted(FEATURE_NETWORKS)}, got "
             f"{self.feature_network!r}"),
            (self.values in VALUES,
             f"--eval_values must be one of {VALUES}, got {self.values!r}"),
        ]
        return [message for ok, message in checks if not ok]


def feature_network_of(eval_config):
    """The feature network an EvalConfig names (loaded; fails at once if it cannot be)."""
    return load_feature_network(eval_config.feature_network, eval_config.inception_path,
                                eval_config.classifier_path, eval_config.resize_filter)


def reference_of(data_config, eval_config, feature_network):
    """The cached ReferenceStats training scores against: a seeded sample of
    `real_samples` (0: `num_samples`) images of `real_split` of the run's data."""
    split = dataclasses.replace(data_config, split=eval_config.real_split)
    images = data_image_set(split, eval_config.real_samples or eval_config.num_samples)
    return dataset_reference(feature_network, images, eval_config.cache_dir,
                             eval_config.batch_size)


def evaluation_setup(config):
    """(feature network, reference, EvalConfig) of a TrainConfig, loaded before
    training starts so that a missing Inception or a too-small split fails at once."""
    eval_config = config.eval_config()
    feature_network = feature_network_of(eval_config)
    return (feature_network, reference_of(config.data_config(), eval_config, feature_network),
            eval_config)


def score_gan(gan, reference, feature_network, eval_config):
    """Every score of a GAN's generator (`num_samples` latents of `seed`, EMA
    weights when kept and `use_ema`, read as `values`) against a
    ReferenceStats, flat: {fid, ..., "conditional" (conditional GANs with a
    labelled reference), "seconds", "protocol"}."""
    generated = gan_image_set(gan, eval_config.num_samples, eval_config.seed,
                              eval_config.use_ema, eval_config.values)
    result = score_image_set(generated, reference, feature_network, eval_config.batch_size)
    del result["reference"]
    return {**result.pop("scores"), **result}


class EvaluationCallback(keras.callbacks.Callback):
    """Every `every` steps: IS, FID and KID to TensorBoard (`eval/*`) and to
    `csv_path`; the best-FID weights go to their own checkpoint (`best_store`)."""

    COLUMNS = ("step", *SCORES, "seconds", "feature_network", "weights")

    def __init__(self, every, feature_network, real, eval_config, writer, csv_path,
                 best_store, guard, start_step=0):
        super().__init__()
        self.every = every
        self.feature_network = feature_network
        self.real = real
        self.eval_config = eval_config
        self.writer = writer
        self.csv_path = csv_path
        self.best_store = best_store
        self.guard = guard
        columns, kept = truncate_csv(csv_path, start_step)
        self.columns = columns or self.COLUMNS  # a resumed run keeps its file's columns
        self.best_fid = min((float(r["fid"]) for r in kept), default=math.inf)
        self.last = None

    def on_train_batch_end(self, batch, logs=None):
        step = run_step(self.model)
        if step % self.every or self.guard.diverged:
            return
        result = score_gan(self.model, self.real, self.feature_network, self.eval_config)
        self.last = result
        with self.writer.as_default(step=step):
            for name in SCORES:
                tf.summary.scalar(f"eval/{name}", result[name])
        append_csv(self.csv_path, self.columns,
                   {**result, "step": step, "weights": result["protocol"]["weights"],
                    "feature_network": self.feature_network.identity})
        if result["fid"] < self.best_fid:
            self.best_fid = result["fid"]
            self.best_store.save(step)
