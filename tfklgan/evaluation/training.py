"""Scoring generators with IS, FID and KID, during and after training.

Defaults follow the KL-GAN paper: 10,000 held-out (validation) real images
against 10,000 generated ones. Every result carries its protocol (feature
network and sha256, real split and count, generated count, resize, EMA or
raw weights, seed), because FIDs from different protocols do not compare.
"""

import dataclasses
import math
import time
import weakref
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from tfklgan import data as data_lib
from tfklgan import metrics
from tfklgan.callbacks import append_csv, run_step, truncate_csv
from tfklgan.data.config import DEFAULT_CACHE_DIR
from tfklgan.feature_networks import FEATURE_NETWORKS, RESIZE_FILTERS, load_feature_network
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
        ]
        return [message for ok, message in checks if not ok]


def feature_network_of(eval_config):
    """The feature network an EvalConfig names (loaded; fails at once if it cannot be)."""
    return load_feature_network(eval_config.feature_network, eval_config.inception_path,
                                eval_config.classifier_path, eval_config.resize_filter)


def requested_classes(num_classes, count):
    """The class asked of each of `count` generated samples: 0, 1, 2, ... in
    turn (None for unconditional generators)."""
    return np.arange(count) % num_classes if num_classes else None


def sample_inputs(latent_dim, distribution, num_classes, count, seed):
    """Fixed latents [count, latent_dim] (and one-hot labels cycling over the
    classes) for a given seed, so every evaluation uses the same set."""
    rng = np.random.default_rng([seed, 7])
    classes = requested_classes(num_classes, count)
    if distribution == "uniform":
        latents = rng.uniform(-1.0, 1.0, (count, latent_dim)).astype(np.float32)
    else:
        latents = rng.standard_normal((count, latent_dim)).astype(np.float32)
    labels = np.eye(num_classes, dtype=np.float32)[classes] if num_classes else None
    return latents, labels


_inference_functions = weakref.WeakKeyDictionary()


class _Inference:
    """network(inputs, training=False), for one tf.function per network. A
    callable object, not a closure: TensorFlow's frequent-retracing warning
    groups functions by their code, so closures over many networks (a table's
    runs in one process) would be counted as one function retracing."""

    def __init__(self, net):
        self._network = weakref.ref(net)  # the cache must not keep the network alive

    def __call__(self, *inputs):
        return self._network()(list(inputs) if len(inputs) > 1 else inputs[0], training=False)


def gan_generator(gan, eval_config):
    """generate(start, size) -> images from the GAN (EMA weights when kept)."""
    latents, labels = sample_inputs(gan.latent_dim, gan.latent_distribution,
                                    gan.num_classes, eval_config.num_samples,
                                    eval_config.seed)
    use_ema = eval_config.use_ema and gan.ema_generator is not None
    net = gan.ema_generator if use_ema else gan.generator
    call = _inference_functions.get(net)
    if call is None:  # one tf.function per network, so evaluations do not retrace
        call = tf.function(_Inference(net), reduce_retracing=True)
        _inference_functions[net] = call

    def generate(start, size, _network=net):  # keeps the network alive with `generate`
        inputs = [latents[start:start + size]]
        if labels is not None:
            inputs.append(labels[start:start + size])
        return call(*inputs).numpy()
    return generate, ("ema" if use_ema else "raw")


class RealStatistics:
    """The real reference of a dataset split, with cached activations."""

    def __init__(self, data_config, eval_config, feature_network, count=None):
        split_config = dataclasses.replace(data_config, split=eval_config.real_split)
        split = data_lib.load_split(split_config)
        images = split.images
        count = count or eval_config.real_samples or eval_config.num_samples
        self.reference = metrics.RealReference(
            dataset=split_config.name, split=split_config.split,
            image_size=split_config.image_size, channels=split_config.channel_count,
            resize=split_config.resize, count=count, seed=split_config.seed,
            validation_fraction=split_config.validation_fraction,
            max_examples=(split_config.max_examples or 0) if split_config.split == "train"
            else 0)
        self.activations = metrics.real_activations(
            feature_network, images, self.reference, eval_config.cache_dir,
            eval_config.batch_size)
        self.labels = split.labels[metrics.reference_sample(len(images), count,
                                                            split_config.seed)]  # -1: none


def class_scores(real_features, real_labels, generated, classes):
    """Scores of a class-conditional generator, per requested class c:
    - accuracy: the share of images asked to be class c that the domain
      classifier labels c (when its logits are the generator's classes);
    - intra_fid: the FID of those images against the real images of class c.
    Returns the per-class values and their means over the classes."""
    logits, features = generated
    num_classes = int(classes.max()) + 1
    per_class = {}
    for c in range(num_classes):
        mine, theirs = features[classes == c], real_features[real_labels == c]
        entry = {"generated": int(len(mine)), "real": int(len(theirs))}
        if logits.shape[1] == num_classes:
            entry["accuracy"] = float(np.mean(np.argmax(logits[classes == c], 1) == c))
        if len(mine) > 1 and len(theirs) > 1:
            entry["intra_fid"] = metrics.frechet_distance(theirs, mine)
        per_class[str(c)] = entry
    summary = {"per_class": per_class}
    for name in ("accuracy", "intra_fid"):
        values = [e[name] for e in per_class.values() if name in e]
        if values:
            summary[f"mean_{name}"] = float(np.mean(values))
    return summary


def evaluate_generator(generate, weights, real, feature_network, eval_config, classes=None):
    """Scores and protocol of `generate(start, size)` (images in [-1, 1]) against
    a RealStatistics; with `classes` (the class asked of each generated sample)
    and a labelled reference, also the class-conditional scores."""
    started = time.time()
    generated = metrics.activations(feature_network, metrics.generated_batches(
        generate, eval_config.num_samples, eval_config.batch_size))
    result = metrics.scores(real.activations, generated)
    if classes is not None and real.labels is not None and np.all(real.labels >= 0):
        result["conditional"] = class_scores(real.activations[1], real.labels, generated,
                                             np.asarray(classes))
    result["seconds"] = time.time() - started
    result["protocol"] = metrics.protocol(feature_network, real.reference,
                                          eval_config.num_samples, eval_config.seed, weights)
    return result


class EvaluationCallback(keras.callbacks.Callback):
    """Every `every` steps: IS, FID and KID to TensorBoard (`eval/*`) and to
    `csv_path`; the best-FID weights go to their own checkpoint (`best_store`)."""

    COLUMNS = ("step", *metrics.SCORES, "seconds", "feature_network", "weights")

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
        generate, weights = gan_generator(self.model, self.eval_config)
        result = evaluate_generator(generate, weights, self.real, self.feature_network,
                                    self.eval_config)
        self.last = result
        with self.writer.as_default(step=step):
            for name in metrics.SCORES:
                tf.summary.scalar(f"eval/{name}", result[name])
        append_csv(self.csv_path, self.columns,
                   {**result, "step": step, "weights": weights,
                    "feature_network": self.feature_network.identity})
        if result["fid"] < self.best_fid:
            self.best_fid = result["fid"]
            self.best_store.save(step)
