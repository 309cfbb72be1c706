"""Score any samples against any reference, by one protocol.

`score_samples(generated, real, ...)` takes two image sets (specs, arrays or
`ImageSet`s, see `tfklgan.image_sets`) or a saved reference (`stats:FILE`),
runs the feature network over both in batches and returns every score (FID,
KID, IS, precision, recall, density, coverage; for labelled samples the
domain classifier's accuracy per class and the intra-class FID) with the
protocol that makes it comparable. Both sides are uint8 images, so a run's
generator scored directly equals its samples written to a file.

`ReferenceStats` holds a reference's activations (logits for IS, features
for FID, KID and precision/recall/density/coverage), their mean and
covariance, and the protocol record; `save`/`load` keep it in one .npz, so a
table's real reference is computed once. Loading one whose protocol differs
from the current feature network's is an error naming the difference.
"""

import dataclasses
import json
import os
import sys
import time
from typing import Optional

import numpy as np

from tfklgan import metrics
from tfklgan.data import DataConfig
from tfklgan.image_sets import (
    ImageSet,
    ImageSetError,
    array_image_set,
    folder_image_set,
    npz_image_set,
)
from tfklgan.images import to_uint8

# Images a score needs on each side: density and coverage take each real
# image's 5th nearest neighbour, so more than 5.
MIN_IMAGES = metrics.DENSITY_COVERAGE_K + 1
# Protocol fields a saved reference must share with the current scoring.
STATS_PROTOCOL_FIELDS = ("feature_network_identity", "resize_filter", "resize", "values")


@dataclasses.dataclass
class ReferenceStats:
    """Activations of a reference set: logits [n, k], features [n, d], labels
    [n] (-1: none) and the protocol record (feature network, resize, source)."""
    logits: np.ndarray
    features: np.ndarray
    labels: Optional[np.ndarray]
    protocol: dict

    @property
    def count(self):
        return len(self.features)

    def save(self, path):
        """One .npz: logits, features, labels, mu and sigma (float64, for FID
        elsewhere) and the protocol as JSON. Written to a temporary file first."""
        features = np.asarray(self.features, np.float64)
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}.npz"
        np.savez(tmp, logits=self.logits, features=self.features,
                 labels=self.labels if self.labels is not None else np.zeros(0, np.int64),
                 mu=features.mean(axis=0), sigma=np.cov(features, rowvar=False),
                 protocol=np.asarray(json.dumps(self.protocol, sort_keys=True)))
        os.replace(tmp, path)
        return path

    FILE_KEYS = ("logits", "features", "labels", "protocol")

    @classmethod
    def read_protocol(cls, path):
        """The protocol record of the stats file at `path`, after checking that
        the file is there, whole and written by tfklgan; an ImageSetError
        names the file and what is wrong with it otherwise."""
        return cls._read(path)[1]

    @classmethod
    def _read(cls, path):
        write = "write one with scripts/evaluate.py --real=... --save_stats=FILE"
        if not os.path.isfile(path):
            raise ImageSetError(f"stats:{path}: no such file; {write}")
        try:
            with np.load(path) as arrays:
                missing = [k for k in cls.FILE_KEYS if k not in arrays.files]
                if missing:
                    held = ", ".join(arrays.files[:6]) or "nothing"
                    raise ImageSetError(
                        f"stats:{path} was not written by tfklgan (it holds {held}; a "
                        f"tfklgan stats file holds {', '.join(cls.FILE_KEYS)}, the "
                        f"activations themselves); {write}")
                values = {k: arrays[k] for k in cls.FILE_KEYS}
            protocol = json.loads(str(values["protocol"]))
        except ImageSetError:
            raise
        except Exception as err:  # zipfile, numpy and json raise many types
            raise ImageSetError(f"stats:{path} is damaged and cannot be read "
                                f"({type(err).__name__}: {err}); {write}") from None
        if values["features"].ndim != 2 or len(values["logits"]) != len(values["features"]):
            raise ImageSetError(f"stats:{path} holds activations of shapes "
                                f"{values['logits'].shape} and {values['features'].shape}, "
                                f"not [n, k] and [n, d] of one n; {write}")
        return values, protocol

    @classmethod
    def load(cls, path, expected=None):
        """The saved reference at `path`; with `expected` (a protocol dict), an
        error names every field of STATS_PROTOCOL_FIELDS that differs."""
        values, protocol = cls._read(path)
        labels = values["labels"]
        stats = cls(values["logits"], values["features"], labels if len(labels) else None,
                    protocol)
        if expected:
            check_protocol(stats.protocol, expected, f"stats:{path}")
        return stats


def check_protocol(protocol, expected, where):
    """Raises an ImageSetError naming every field of STATS_PROTOCOL_FIELDS in
    which a saved reference's protocol differs from the current one."""
    differences = [f"{k}: {protocol.get(k)!r} in the file, {expected.get(k)!r} now"
                   for k in STATS_PROTOCOL_FIELDS if protocol.get(k) != expected.get(k)]
    if differences:
        raise ImageSetError(f"{where} was computed by another protocol ("
                            + "; ".join(differences) + "); recompute it with --save_stats "
                            "or score with its protocol")


def feature_protocol(feature_network):
    """The part of the protocol the feature network fixes."""
    return {"feature_network": feature_network.name,
            "feature_network_identity": feature_network.identity,
            "resize_filter": feature_network.resize_filter,
            "resize": f"{feature_network.resize_filter} to {feature_network.image_size}x"
                      f"{feature_network.image_size}",
            "values": "uint8"}


class _Progress:
    """One stderr line every `every` seconds while a set is featurised."""

    def __init__(self, description, total, enabled, every=5.0):
        self.description, self.total, self.enabled, self.every = description, total, enabled, every
        self.started = self.last = time.time()
        self.done = 0

    def __call__(self, batches):
        for batch in batches:
            yield batch
            self.done += len(batch)
            now = time.time()
            if self.enabled and (now - self.last >= self.every) and self.done < self.total:
                self.last = now
                rate = self.done / (now - self.started)
                print(f"features of {self.description}: {self.done:,} / {self.total:,} images "
                      f"({100 * self.done / self.total:.0f}%), {now - self.started:.0f} s, about "
                      f"{(self.total - self.done) / rate:.0f} s left", file=sys.stderr,
                      flush=True)


def image_set_activations(feature_network, image_set, batch_size=200, progress=False):
    """(logits, features) of every image of the set, batch by batch."""
    batches = _Progress(image_set.description, image_set.count, progress)(
        image_set.batches(batch_size))
    return metrics.activations(feature_network, (metrics.to_unit_range(b) for b in batches))


def reference_stats(feature_network, image_set, batch_size=200, progress=False):
    """The ReferenceStats of an image set."""
    _check_count(image_set.description, image_set.count)
    logits, features = image_set_activations(feature_network, image_set, batch_size, progress)
    return ReferenceStats(logits, features, image_set.labels,
                          {**feature_protocol(feature_network), "source": image_set.record,
                           "description": image_set.description, "count": image_set.count,
                           "shape": list(image_set.shape), "versions": metrics.versions()})


def as_reference(real, feature_network, batch_size=200, progress=False):
    """`real` as ReferenceStats: computed for an ImageSet, checked against the
    feature network's protocol for saved statistics."""
    if not isinstance(real, ReferenceStats):
        return reference_stats(feature_network, real, batch_size, progress)
    check_protocol(real.protocol, feature_protocol(feature_network), "the reference statistics")
    return real


def _check_count(description, count):
    if count < MIN_IMAGES:
        raise ImageSetError(f"{description} holds {count} images; every score needs at least "
                            f"{MIN_IMAGES} (density and coverage use 5 nearest neighbours)")


def score_activations(generated, real, generated_labels=None):
    """Every score of generated (logits, features) against a ReferenceStats;
    with labels (the class asked of each sample), per-class accuracy (when the
    classifier's logits are those classes) and intra-class FID (when the
    reference is labelled)."""
    from tfklgan.evaluation import class_scores
    result = {"scores": metrics.scores((real.logits, real.features), generated)}
    if generated_labels is not None and np.all(generated_labels >= 0):
        real_labels = real.labels if real.labels is not None and np.all(real.labels >= 0) \
            else np.full(real.count, -1)
        result["conditional"] = class_scores(real.features, real_labels, generated,
                                             np.asarray(generated_labels))
    return result


def score_samples(generated, real, feature_network, batch_size=200, save_stats=None,
                  progress=False, num_samples=None):
    """Scores and protocol of `generated` against `real`.

    generated: an ImageSet, or uint8 images [n, H, W(, C)].
    real: an ImageSet, uint8 images, or a ReferenceStats.
    feature_network: a `tfklgan.feature_networks.FeatureNetwork`.
    save_stats: write the real side's ReferenceStats there.
    num_samples: score only the first N generated images.
    Returns {"scores", "conditional" (labelled samples), "protocol", "seconds",
    "real_stats" (the reference's ReferenceStats)}.
    """
    started = time.time()
    if not isinstance(generated, ImageSet):
        generated = array_image_set(generated, description="generated array")
    if not isinstance(real, (ReferenceStats, ImageSet)):
        real = array_image_set(real, description="real array")
    # bad input is refused before any activation is computed
    if isinstance(real, ReferenceStats):
        real_description = real.protocol.get("description", "the reference")
        real_channels = real.protocol.get("shape", [0, 0, generated.shape[-1]])[-1]
    else:
        real_description, real_channels = real.description, real.shape[-1]
    _check_channels(generated, real_description, real_channels)
    if num_samples and num_samples > generated.count:
        raise ImageSetError(f"{generated.description} holds {generated.count} images, fewer "
                            f"than the {num_samples} asked for (--num_samples)")
    count = num_samples or generated.count
    _check_count(generated.description, count)
    stats = as_reference(real, feature_network, batch_size, progress)
    subset = dataclasses.replace(generated, count=count)
    activations = image_set_activations(feature_network, subset, batch_size, progress)
    labels = None if generated.labels is None else generated.labels[:count]
    result = score_activations(activations, stats, labels)
    if save_stats:
        stats.save(save_stats)
    result["real_stats"] = stats
    result["protocol"] = {**feature_protocol(feature_network),
                          "generated": {**subset.record, "description": subset.description,
                                        "count": count, "shape": list(subset.shape)},
                          "real": {k: v for k, v in stats.protocol.items()
                                   if k not in STATS_PROTOCOL_FIELDS},
                          **metrics.computation_record()}
    result["seconds"] = time.time() - started
    return result


def _check_channels(generated, real_description, real_channels):
    if generated.shape[-1] != real_channels:
        kinds = {1: "grayscale", 3: "RGB"}
        raise ImageSetError(
            f"{generated.description} is {kinds.get(generated.shape[-1])} and "
            f"{real_description} is {kinds.get(real_channels)}: FID between them measures "
            "the colour, not the images; convert one side to the other's channels")


def dataset_image_set(name, split="validation", count=0, seed=0, image_size=32, channels=0,
                      **data_options):
    """A seeded random sample of `count` images (0: all) of a split of a
    dataset the package reads (`mnist_sample`, `mnist`, `celeba`, ...), as the
    training evaluation draws it (`tfklgan.metrics.reference_sample`)."""
    from tfklgan import data as data_lib
    config = DataConfig(name, image_size=image_size, channels=channels, split=split, seed=seed,
                        **data_options)
    loaded = data_lib.load_split(config)
    count = count or len(loaded.images)
    if count > len(loaded.images):
        raise ImageSetError(f"the {split} split of {name!r} holds {len(loaded.images)} "
                            f"images, fewer than the {count} asked for (--real_samples)")
    chosen = metrics.reference_sample(len(loaded.images), count, seed)
    images = loaded.images
    record = {"source": "dataset", "dataset": name, "split": split, "count": count,
              "seed": seed, "image_size": config.image_size,
              "channels": config.channel_count, "resize": config.resize,
              "validation_fraction": config.validation_fraction}
    return ImageSet(f"{name} ({split} split)", count, images.shape[1:],
                    lambda start, size: np.asarray(images[chosen[start:start + size]]),
                    loaded.labels[chosen], record)


def open_image_set(spec, npz_range="auto", **dataset_options):
    """The ImageSet a spec names: npz:..., images:..., or a dataset name
    (`dataset_image_set` with `dataset_options`)."""
    prefix, sep, rest = spec.partition(":")
    if sep and prefix == "npz":
        return npz_image_set(rest, npz_range)
    if sep and prefix == "images":
        return folder_image_set(rest)
    if sep and prefix == "stats":
        raise ImageSetError(f"{spec}: saved statistics are a reference only; pass them "
                            "as --real")
    return dataset_image_set(spec, **dataset_options)


@dataclasses.dataclass
class ScoringOptions:
    """How `evaluate` reads and scores: the feature network (`feature_network`,
    `inception_path`, `classifier_path`, `resize_filter`), how many images
    (`num_samples`: the first N of a file set, or a generator's count, where 0
    means `default_generated`; `real_samples`: a dataset reference's sample, 0
    meaning as many as the generated), a generator's latents (`seed`,
    `use_ema`, `checkpoint`), a dataset reference (`real_split`, `dataset` and
    the data options, `data_seed`; `floor` scores its train split against it),
    `npz_range` for float npz files and `progress` lines on stderr."""
    feature_network: str = "inception"
    inception_path: Optional[str] = None
    classifier_path: Optional[str] = None
    resize_filter: str = "tfgan"
    batch_size: int = 200
    num_samples: int = 0
    default_generated: int = 10_000
    seed: int = 0
    use_ema: bool = True
    checkpoint: Optional[str] = None
    real_samples: int = 0
    real_split: str = "validation"
    dataset: Optional[str] = None
    image_size: Optional[int] = None
    channels: Optional[int] = None
    resize: Optional[str] = None
    data_dir: Optional[str] = None
    data_seed: Optional[int] = None
    celeba_dir: Optional[str] = None
    cache_dir: Optional[str] = None
    npz_range: str = "auto"
    floor: bool = False
    progress: bool = False


def _run_generator(spec, options):
    """(ImageSet of a run's or an export's samples, its data options)."""
    from tfklgan.evaluation import EvalConfig, gan_generator, requested_classes, sample_inputs
    count = options.num_samples or options.default_generated
    if os.path.isfile(os.path.join(spec, "config.json")):
        from tfklgan.training import load_run
        gan, config, _ = load_run(spec, options.checkpoint)
        generate, weights = gan_generator(gan, EvalConfig(num_samples=count, seed=options.seed,
                                                          use_ema=options.use_ema))
        num_classes = gan.num_classes
        data = config.data_config()
        data_options = {"name": data.name, "image_size": data.image_size,
                        "channels": data.channel_count, "resize": data.resize,
                        "seed": data.seed, "validation_fraction": data.validation_fraction,
                        "attributes": tuple(data.attributes)}
        shape = (data.image_size, data.image_size, data.channel_count)
        source = options.checkpoint or f"{spec} (newest checkpoint)"
    else:
        from tfklgan.export import load_exported
        model, info = load_exported(spec)
        signature = model.signatures["serving_default"]
        latents, labels = sample_inputs(info["latent_dim"], info["latent_distribution"],
                                        info["num_classes"], count, options.seed)

        def generate(start, size):
            inputs = {"latents": latents[start:start + size]}
            if labels is not None:
                inputs["labels"] = labels[start:start + size]
            return signature(**inputs)["images"].numpy()
        weights, num_classes = info["weights"], info["num_classes"]
        trained = info.get("data") or {}
        data_options = {"name": trained.get("dataset"), "image_size": trained.get("image_size"),
                        "channels": info["image_shape"][-1],
                        "resize": trained.get("resize", "authors"),
                        "seed": trained.get("seed", 0),
                        "validation_fraction": trained.get("validation_fraction", 0.1),
                        "attributes": tuple(trained.get("attributes", ()))}
        shape = tuple(info["image_shape"])
        source = spec
    classes = requested_classes(num_classes, count)
    images = ImageSet(source, count, shape,
                      lambda start, size: to_uint8(np.asarray(generate(start, size))),
                      classes, {"source": "generator", "path": spec, "weights": weights,
                                "seed": options.seed, "count": count})
    return images, data_options


def open_generated(spec, options):
    """(ImageSet, the data options of its run or export, or {})."""
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in ("npz", "images"):
        return open_image_set(spec, options.npz_range), {}
    if os.path.isdir(spec):
        from tfklgan.export import export_version
        if os.path.isfile(os.path.join(spec, "config.json")) or export_version(spec):
            return _run_generator(spec, options)
        raise ImageSetError(f"{spec!r} is a folder but neither a run directory (config.json) "
                            "nor a generator export (tfklgan.json); for a folder of images "
                            f"pass images:{spec}")
    raise ImageSetError(f"--generated={spec!r}: give npz:FILE, images:DIR, a run directory "
                        "or a SavedModel folder")


def _stats_dataset(path):
    """The dataset a saved reference was drawn from ("" if unknown); a file
    that is missing, damaged or foreign is refused here, before anything
    else is loaded for it."""
    return ReferenceStats.read_protocol(path).get("source", {}).get("dataset", "")


def _dataset_options(generated, run_data, options, split, count):
    """The keyword arguments of `dataset_image_set` for a dataset reference:
    the run's data options where it has them, else the samples' size and
    channels; the options' overrides first."""
    shape = generated.shape if generated is not None else (32, 32, 0)
    dataset = {"image_size": options.image_size or run_data.get("image_size") or shape[0],
               "channels": options.channels or run_data.get("channels") or shape[-1],
               "resize": options.resize or run_data.get("resize") or "authors",
               "validation_fraction": run_data.get("validation_fraction", 0.1),
               "attributes": run_data.get("attributes", ())}
    for key in ("data_dir", "celeba_dir", "cache_dir"):
        if getattr(options, key):
            dataset[key] = getattr(options, key)
    seed = options.data_seed if options.data_seed is not None else run_data.get("seed", 0)
    return dict(split=split, count=count, seed=seed, npz_range=options.npz_range, **dataset)


def evaluate(generated, real=None, options=None, save_stats=None):
    """Every score of `generated` against `real`, with the protocol: the
    package's one scoring function for any samples and any reference.

    generated: npz:FILE[,FILE...], images:DIR, a run directory, a SavedModel,
      uint8 images [n, H, W(, C)], an ImageSet; None with `save_stats` only
      writes the reference.
    real: a dataset name, npz:, images:, stats:FILE, uint8 images, an ImageSet
      or a ReferenceStats; None: the run's or export's own data.
    Returns {"generated", "real", "scores", "conditional", "protocol",
    "real_floor", "seconds"} (JSON-ready).
    """
    from tfklgan.feature_networks import default_classifier_path, load_feature_network
    options = options or ScoringOptions()
    started = time.time()
    run_data = {}
    if isinstance(generated, str):
        generated, run_data = open_generated(generated, options)
    elif generated is not None and not isinstance(generated, ImageSet):
        generated = array_image_set(generated, description="generated array")
    # the generated count: a generator's (options.num_samples or the default), else
    # the first num_samples of the set (0: all)
    count = 0 if generated is None else options.num_samples or generated.count
    if real is None:
        if not (run_data.get("name") or options.dataset):
            raise ImageSetError("name the reference: --real=<dataset, npz:FILE, images:DIR or "
                                "stats:FILE>")
        real = options.dataset or run_data["name"]
    dataset_reference = isinstance(real, str) and not real.startswith(("npz:", "images:",
                                                                       "stats:"))
    classifier_path = options.classifier_path
    if options.feature_network == "classifier" and not classifier_path:
        # the default domain classifier of the reference's dataset (a stats file
        # records it), or of the run's
        named = real if dataset_reference else run_data.get("name") or ""
        if isinstance(real, str) and real.startswith("stats:"):
            named = _stats_dataset(real[len("stats:"):]) or named
        classifier_path = default_classifier_path(named)
    elif isinstance(real, str) and real.startswith("stats:"):
        ReferenceStats.read_protocol(real[len("stats:"):])  # refused before any network loads
    network = load_feature_network(options.feature_network, options.inception_path,
                                   classifier_path, options.resize_filter)
    floor_set = None
    if isinstance(real, str) and real.startswith("stats:"):
        real = ReferenceStats.load(real[len("stats:"):], feature_protocol(network))
    elif dataset_reference:
        kwargs = _dataset_options(generated, run_data, options, options.real_split,
                                  options.real_samples or count)
        if options.floor:  # real train images against the reference: the floor
            floor_set = dataset_image_set(real, **{**kwargs, "split": "train"})
        real = dataset_image_set(real, **kwargs)
    elif isinstance(real, str):
        real = open_image_set(real, options.npz_range)
    elif not isinstance(real, (ImageSet, ReferenceStats)):
        real = array_image_set(real, description="real array")
    if generated is None:
        if not save_stats:
            raise ImageSetError("nothing to score: give --generated, or --save_stats to "
                                "write the reference only")
        stats = as_reference(real, network, options.batch_size, options.progress)
        stats.save(save_stats)
        return {"real": stats.protocol, "saved_stats": save_stats,
                "seconds": time.time() - started}
    result = score_samples(generated, real, network, options.batch_size, save_stats,
                           options.progress, num_samples=None if run_data else
                           options.num_samples or None)
    stats = result.pop("real_stats")
    if floor_set is not None:
        floor = score_samples(floor_set, stats, network, options.batch_size)
        floor.pop("real_stats")
        result["real_floor"] = {**floor["scores"], "protocol": floor["protocol"]}
    result["generated"] = generated.description
    result["real"] = stats.protocol.get("description")
    result["seconds"] = time.time() - started
    return result
