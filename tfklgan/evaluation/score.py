"""Scoring: any samples against any reference, by one protocol.

`score_image_set(generated, reference, feature_network)` is the one path
every score takes: training's evaluation, the reproduce runner, parity and
scripts/evaluate.py all end here. It runs the feature network over the
generated ImageSet in batches and returns every score (FID, KID, IS,
precision, recall, density, coverage; for labelled samples the domain
classifier's accuracy per class and the intra-class FID) with the protocol
record that makes it comparable.

`evaluate(generated, real, options)` is the same path for specs (see
`sources`): it opens both sides, picks the feature network, and for a run
directory defaults every setting to the run's own evaluation settings, so
`scripts/evaluate.py --logdir=RUN` repeats the run's final eval.csv row.
"""

import dataclasses
import time
from typing import Optional

import numpy as np

from tfklgan.evaluation import scores as scores_lib
from tfklgan.evaluation.image_sets import ImageSet, ImageSetError, array_image_set
from tfklgan.evaluation.protocol import feature_protocol, score_protocol
from tfklgan.evaluation.reference import (
    ReferenceStats,
    as_reference,
    check_count,
    image_set_activations,
)
from tfklgan.evaluation.sources import (
    dataset_image_set,
    export_image_set,
    open_file_set,
    parse_spec,
    run_image_set,
)
from tfklgan.export import data_record


def score_activations(generated, reference, generated_labels=None):
    """Every score of generated (logits, features) against a ReferenceStats;
    with labels (the class asked of each sample), per-class accuracy (when the
    classifier's logits are those classes) and intra-class FID (when the
    reference is labelled)."""
    result = {"scores": scores_lib.scores((reference.logits, reference.features), generated)}
    if generated_labels is not None and np.all(generated_labels >= 0):
        labels = reference.labels
        if labels is None or not np.all(labels >= 0):
            labels = np.full(reference.count, -1)
        result["conditional"] = scores_lib.class_scores(reference.features, labels, generated,
                                                        np.asarray(generated_labels))
    return result


def _check_shapes(generated, real_description, real_shape):
    """Refuses sides of other channels or sizes: FID between them would
    measure the colour or the resizing, not the images."""
    if generated.shape[-1] != real_shape[-1]:
        kinds = {1: "grayscale", 3: "RGB"}
        raise ImageSetError(
            f"{generated.description} is {kinds.get(generated.shape[-1])} and "
            f"{real_description} is {kinds.get(real_shape[-1])}: FID between them measures "
            "the colour, not the images; convert one side to the other's channels")
    if tuple(generated.shape[:2]) != tuple(real_shape[:2]):
        size = "x".join(str(s) for s in generated.shape[:2])
        raise ImageSetError(
            f"{generated.description} holds {size} images and {real_description} "
            f"{'x'.join(str(s) for s in real_shape[:2])}: FID between them measures the "
            f"resizing too; give a reference at {size} (--image_size for a dataset)")


def score_image_set(generated, real, feature_network, batch_size=200, progress=False):
    """Scores and protocol of `generated` against `real`.

    generated: an ImageSet, or uint8 images [n, H, W(, C)].
    real: a ReferenceStats, an ImageSet or uint8 images.
    feature_network: a `feature_networks.FeatureNetwork`.
    Returns {"scores", "conditional" (labelled samples), "protocol", "seconds",
    "reference" (the real side's ReferenceStats)}.
    """
    started = time.time()
    if not isinstance(generated, ImageSet):
        generated = array_image_set(generated, description="generated array")
    if not isinstance(real, (ReferenceStats, ImageSet)):
        real = array_image_set(real, description="real array")
    # bad input is refused before any activation is computed
    if isinstance(real, ReferenceStats):
        real_description = real.protocol.get("description", "the reference")
        real_shape = real.protocol.get("shape") or generated.shape
    else:
        real_description, real_shape = real.description, real.shape
    _check_shapes(generated, real_description, real_shape)
    check_count(generated.description, generated.count)
    reference = as_reference(real, feature_network, batch_size, progress)
    activations = image_set_activations(feature_network, generated, batch_size, progress)
    result = score_activations(activations, reference, generated.labels)
    result["protocol"] = score_protocol(feature_network, generated, reference.protocol)
    result["reference"] = reference
    result["seconds"] = time.time() - started
    return result


@dataclasses.dataclass
class ScoringOptions:
    """How `evaluate` reads and scores. None (or 0 for counts) means: a run
    directory's own evaluation setting, else the default in brackets.

    feature_network [inception], inception_path, classifier_path,
    resize_filter [tfgan]: the feature network.
    num_samples: a generator's count [10,000], or the first N of a file set [all].
    seed [0], use_ema [True], values [uint8], checkpoint [newest]: a generator's
    latents, weights and how its images are read.
    real_split [validation], real_samples [as many as the generated], dataset,
    the data options and data_seed: a dataset reference; `floor` also scores
    its train split against it.
    npz_range: float npz files; progress: lines on stderr.
    """
    feature_network: Optional[str] = None
    inception_path: Optional[str] = None
    classifier_path: Optional[str] = None
    resize_filter: Optional[str] = None
    batch_size: int = 200
    num_samples: int = 0
    default_generated: int = 10_000
    seed: Optional[int] = None
    use_ema: Optional[bool] = None
    values: Optional[str] = None
    checkpoint: Optional[str] = None
    real_samples: int = 0
    real_split: Optional[str] = None
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

    def resolved(self, run_config=None):
        """These options with every None filled: from the run's evaluation
        settings (a TrainConfig's `eval_config()`), else the defaults."""
        run = run_config.eval_config() if run_config is not None else None
        defaults = {"feature_network": "inception", "resize_filter": "tfgan", "seed": 0,
                    "use_ema": True, "values": "uint8", "real_split": "validation"}
        filled = {}
        for name, default in defaults.items():
            if getattr(self, name) is None:
                filled[name] = getattr(run, name) if run else default
        if run is not None:
            if filled.get("feature_network", self.feature_network) == run.feature_network:
                # the run's network: its local copies too, unless given
                filled.update(inception_path=self.inception_path or run.inception_path,
                              classifier_path=self.classifier_path or run.classifier_path)
            filled["num_samples"] = self.num_samples or run.num_samples
            filled["real_samples"] = self.real_samples or run.real_samples
            filled["cache_dir"] = self.cache_dir or run.cache_dir
        return dataclasses.replace(self, **filled)


def options_for(spec, options):
    """`options` resolved for the generated spec: against a run's evaluation
    settings; for an export, the latent seed defaults to its run's seed."""
    kind, value = parse_spec(spec)
    if kind == "run":
        from tfklgan.run_directory import read_settings
        return options.resolved(read_settings(value))
    if kind == "export" and options.seed is None:
        from tfklgan.export import export_info
        seed = (export_info(value).get("data") or {}).get("seed", 0)
        return dataclasses.replace(options, seed=seed).resolved()
    return options.resolved()


def open_generated(spec, options):
    """(ImageSet, the data options of its run or export ({} for files),
    the options resolved for it by `options_for`)."""
    kind, value = parse_spec(spec)
    options = options_for(spec, options)
    if kind in ("npz", "images", "stats"):
        return open_file_set(kind, value, options.npz_range), {}, options
    if kind == "run":
        images, config = run_image_set(value, options.num_samples or options.default_generated,
                                       options.seed, options.use_ema, options.values,
                                       options.checkpoint)
        data = config.data_config()
        return images, {**trained_data(data_record(data)), "data_dir": data.data_dir,
                        "celeba_dir": data.celeba_dir}, options
    if kind == "export":
        images, info = export_image_set(value, options.num_samples or options.default_generated,
                                        options.seed, options.values)
        return images, trained_data(info.get("data") or {}, info["image_shape"][-1]), options
    raise ImageSetError(f"--generated={spec!r}: give npz:FILE, images:DIR, a run directory "
                        "or a SavedModel folder")


def trained_data(record, channels=None):
    """The data options of scoring from a `data_record` (a run's settings, or
    the one an export keeps in tfklgan.json; exports older than a field get
    the training default; `channels` stands in where the record has none)."""
    return {"name": record.get("dataset"), "image_size": record.get("image_size"),
            "channels": record.get("channels") or channels,
            "resize": record.get("resize", "authors"), "seed": record.get("seed", 0),
            "validation_fraction": record.get("validation_fraction", 0.1),
            "attributes": tuple(record.get("attributes", ()))}


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
        value = getattr(options, key) or run_data.get(key)
        if value:
            dataset[key] = value
    seed = options.data_seed if options.data_seed is not None else run_data.get("seed", 0)
    return dict(split=split, count=count, seed=seed, npz_range=options.npz_range, **dataset)


def _reference_side(real, generated, run_data, options, network):
    """(the reference as an ImageSet or ReferenceStats, the floor's ImageSet or None)."""
    from tfklgan.evaluation.reference import dataset_reference
    if isinstance(real, (ReferenceStats, ImageSet)):
        return real, None
    if not isinstance(real, str):
        return array_image_set(real, description="real array"), None
    kind, value = parse_spec(real)
    if kind == "stats":
        return ReferenceStats.load(value, feature_protocol(network)), None
    if kind != "dataset":
        return open_file_set(kind, value, options.npz_range), None
    count = options.real_samples or (generated.count if generated is not None else 0)
    kwargs = _dataset_options(generated, run_data, options, options.real_split, count)
    floor = dataset_image_set(real, **{**kwargs, "split": "train"}) if options.floor else None
    images = dataset_image_set(real, **kwargs)
    # the same cache as training's evaluation, so a run's reference is computed once
    return dataset_reference(network, images, options.cache_dir, options.batch_size), floor


def _feature_network(real, run_data, options):
    """The feature network the options name; the classifier defaults to the
    reference's dataset's (a stats file records it), or the run's."""
    from tfklgan.evaluation.feature_networks import default_classifier_path, load_feature_network
    stats = isinstance(real, str) and real.startswith("stats:")
    recorded = ReferenceStats.read_protocol(real[len("stats:"):]) if stats else None
    classifier_path = options.classifier_path
    if options.feature_network == "classifier" and not classifier_path:
        named = run_data.get("name") or ""
        if isinstance(real, str) and parse_spec(real)[0] == "dataset":
            named = real
        if recorded:
            named = recorded.get("source", {}).get("dataset", "") or named
        classifier_path = default_classifier_path(named)
    return load_feature_network(options.feature_network, options.inception_path,
                                classifier_path, options.resize_filter)


def evaluate(generated, real=None, options=None, save_stats=None):
    """Every score of `generated` against `real`, with the protocol.

    generated: npz:FILE[,FILE...], images:DIR, a run directory, a SavedModel,
      uint8 images [n, H, W(, C)], an ImageSet; None with `save_stats` only
      writes the reference.
    real: a dataset name, npz:, images:, stats:FILE, uint8 images, an ImageSet
      or a ReferenceStats; None: the run's or export's own data.
    Returns {"generated", "real", "scores", "conditional", "protocol",
    "real_floor", "seconds"} (JSON-ready).
    """
    options = options or ScoringOptions()
    started = time.time()
    run_data = {}
    if isinstance(generated, str):
        generated, run_data, options = open_generated(generated, options)
    else:
        options = options.resolved()
        if generated is not None and not isinstance(generated, ImageSet):
            generated = array_image_set(generated, description="generated array")
    if generated is not None and not run_data and options.num_samples:
        if options.num_samples > generated.count:
            raise ImageSetError(f"{generated.description} holds {generated.count} images, "
                                f"fewer than the {options.num_samples} asked for "
                                "(--num_samples)")
        generated = dataclasses.replace(generated, count=options.num_samples)
    if real is None:
        if not (run_data.get("name") or options.dataset):
            raise ImageSetError("name the reference: --real=<dataset, npz:FILE, images:DIR or "
                                "stats:FILE>")
        real = options.dataset or run_data["name"]
    network = _feature_network(real, run_data, options)
    real, floor_set = _reference_side(real, generated, run_data, options, network)
    if generated is None:
        if not save_stats:
            raise ImageSetError("nothing to score: give --generated, or --save_stats to "
                                "write the reference only")
        stats = as_reference(real, network, options.batch_size, options.progress)
        stats.save(save_stats)
        return {"real": stats.protocol, "saved_stats": save_stats,
                "seconds": time.time() - started}
    result = score_image_set(generated, real, network, options.batch_size, options.progress)
    stats = result.pop("reference")
    if save_stats:
        stats.save(save_stats)
    if floor_set is not None:
        floor = score_image_set(floor_set, stats, network, options.batch_size)
        floor.pop("reference")
        result["real_floor"] = {**floor["scores"], "protocol": floor["protocol"]}
    result["generated"] = generated.description
    result["real"] = stats.protocol.get("description")
    result["seconds"] = time.time() - started
    return result
