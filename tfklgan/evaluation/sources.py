"""Where scored images come from: one registry of sample sources, keyed by
the spec's prefix, parsed here and nowhere else.

  npz:FILE[,FILE...]   image files (`image_sets.npz_image_set`)
  images:DIR           a folder of images (`image_sets.folder_image_set`)
  stats:FILE           a saved reference (a reference only, never samples)
  a run directory      its generator (newest or given checkpoint)
  a SavedModel folder  an exported generator (scripts/export.py)
  anything else        a dataset the package reads (mnist_sample, celeba, ...)

Generators (a GAN in memory, a run, an export) draw their latents from
`latents.sample_inputs` and are read as `values` says: "uint8" (the rule:
rounded as an image file stores them, so a generator scored directly equals
its samples written to files) or "float32" (its raw output in [-1, 1]).
"""

import os
import weakref

import numpy as np
import tensorflow as tf

from tfklgan.evaluation.image_sets import (
    VALUES,
    ImageSet,
    ImageSetError,
    folder_image_set,
    npz_image_set,
)
from tfklgan.evaluation.latents import requested_classes, sample_inputs
from tfklgan.images import to_uint8

FILE_PREFIXES = ("npz", "images", "stats")


def parse_spec(spec):
    """(kind, value) of a spec: kind is npz, images, stats, run, export or dataset."""
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in FILE_PREFIXES:
        return prefix, rest
    if os.path.isdir(spec):
        from tfklgan.export import export_version
        if os.path.isfile(os.path.join(spec, "config.json")):
            return "run", spec
        if export_version(spec):
            return "export", spec
        raise ImageSetError(f"{spec!r} is a folder but neither a run directory (config.json) "
                            "nor a generator export (tfklgan.json); for a folder of images "
                            f"pass images:{spec}")
    return "dataset", spec


def open_file_set(kind, value, npz_range="auto"):
    """The ImageSet of an npz: or images: spec; stats: is refused (it holds
    activations, not images)."""
    if kind == "npz":
        return npz_image_set(value, npz_range)
    if kind == "images":
        return folder_image_set(value)
    raise ImageSetError(f"stats:{value}: saved statistics are a reference only; pass them "
                        "as --real")


# ------------------------------------------------------------------ datasets

def reference_sample(num_images, count, seed):
    """Sorted indices of a seeded random sample of `count` of `num_images` images."""
    return np.sort(np.random.default_rng([seed, 11]).permutation(num_images)[:count])


def dataset_image_set(name, split="validation", count=0, seed=0, image_size=32, channels=0,
                      **data_options):
    """A seeded random sample of `count` images (0: all) of a split of a
    dataset the package reads (`mnist_sample`, `mnist`, `celeba`, ...), with
    the other options of `tfklgan.data.DataConfig`."""
    from tfklgan.data import DataConfig
    return data_image_set(DataConfig(name, image_size=image_size, channels=channels,
                                     split=split, seed=seed, **data_options), count)


def data_image_set(config, count=0):
    """A random sample of `count` images (0: all) of the split a DataConfig
    names, drawn with its seed (which also splits train from validation)."""
    from tfklgan import data as data_lib
    loaded = data_lib.load_split(config)
    count = count or len(loaded.images)
    if count > len(loaded.images):
        raise ImageSetError(f"the {config.split} split of {config.name!r} holds "
                            f"{len(loaded.images)} images, fewer than the {count} asked for; "
                            f"pass --num_samples={len(loaded.images)} (--eval_samples in "
                            "training; --real_samples / --eval_real_samples for the real "
                            "side alone) or another split")
    chosen = reference_sample(len(loaded.images), count, config.seed)
    images = loaded.images
    record = {"source": "dataset", "dataset": config.name, "split": config.split,
              "count": count, "seed": config.seed, "image_size": config.image_size,
              "channels": config.channel_count, "resize": config.resize,
              "validation_fraction": config.validation_fraction,
              "max_examples": (config.max_examples or 0) if config.split == "train" else 0}
    return ImageSet(f"{config.name} ({config.split} split)", count, images.shape[1:],
                    lambda start, size: np.asarray(images[chosen[start:start + size]]),
                    loaded.labels[chosen], record)


# ---------------------------------------------------------------- generators

def _check_values(values):
    if values not in VALUES:
        raise ImageSetError(f"generated images are scored as one of {VALUES}, got {values!r}")


def generator_image_set(generate, count, shape, num_classes, description, record,
                        values="uint8"):
    """The ImageSet of `generate(start, size)` -> float images in [-1, 1] (the
    samples start..start+size of a fixed latent set), read as `values`."""
    _check_values(values)

    def read(start, size):
        images = np.asarray(generate(start, size))
        return to_uint8(images) if values == "uint8" else images.astype(np.float32)
    return ImageSet(description, count, tuple(shape), read,
                    requested_classes(num_classes, count), {**record, "count": count}, values)


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


def gan_image_set(gan, count, seed, use_ema=True, values="uint8", description="generator"):
    """The ImageSet of a GAN's generator (its EMA weights when kept and
    `use_ema`) on the `count` latents of `seed`; the record says which weights."""
    latents, labels = sample_inputs(gan.latent_dim, gan.latent_distribution, gan.num_classes,
                                    count, seed)
    ema = use_ema and gan.ema_generator is not None
    net = gan.ema_generator if ema else gan.generator
    call = _inference_functions.get(net)
    if call is None:  # one tf.function per network, so evaluations do not retrace
        call = tf.function(_Inference(net), reduce_retracing=True)
        _inference_functions[net] = call

    def generate(start, size, _network=net):  # keeps the network alive with the set
        inputs = [latents[start:start + size]]
        if labels is not None:
            inputs.append(labels[start:start + size])
        return call(*inputs).numpy()
    shape = tuple(int(s) for s in net.output.shape[1:])
    return generator_image_set(generate, count, shape, gan.num_classes, description,
                               {"source": "generator", "weights": "ema" if ema else "raw",
                                "seed": seed}, values)


def run_image_set(logdir, count, seed, use_ema=True, values="uint8", checkpoint=None):
    """(ImageSet of a run's generator, the run's TrainConfig)."""
    from tfklgan.run_directory import load_run
    gan, config, _ = load_run(logdir, checkpoint)
    images = gan_image_set(gan, count, seed, use_ema, values,
                           checkpoint or f"{logdir} (newest checkpoint)")
    images.record["path"] = logdir
    return images, config


def export_image_set(path, count, seed, values="uint8"):
    """(ImageSet of an exported generator, the export's info dict)."""
    from tfklgan.export import load_exported
    model, info = load_exported(path)
    signature = model.signatures["serving_default"]
    latents, labels = sample_inputs(info["latent_dim"], info["latent_distribution"],
                                    info["num_classes"], count, seed)

    def generate(start, size):
        inputs = {"latents": latents[start:start + size]}
        if labels is not None:
            inputs["labels"] = labels[start:start + size]
        return signature(**inputs)["images"].numpy()
    images = generator_image_set(generate, count, info["image_shape"], info["num_classes"],
                                 path, {"source": "generator", "path": path,
                                        "weights": info["weights"], "seed": seed}, values)
    return images, info
