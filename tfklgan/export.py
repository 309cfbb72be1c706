"""SavedModel export of a generator, with serving signatures.

Signatures:
- `serving_default` and `generate` (the same function): `latents` float32
  [n, latent_dim] drawn from the training prior, and for class-conditional
  generators `labels`, one-hot float32 [n, num_classes] ->
  {"images": float32 [n, H, W, C] in [-1, 1], "images_uint8": uint8 [n, H, W, C]}.
- `sample`: `num` (int32 scalar) and `seed` (int64 scalar) ->
  {"latents": float32 [num, latent_dim] from the prior (stateless, so the same
  seed gives the same latents), "images", "images_uint8"}; class-conditional
  generators draw the classes 0, 1, 2, ... in turn and also return them as
  "classes" (int32 [num]) and "labels" (one-hot float32 [num, num_classes]).
`tfklgan.json` beside the SavedModel records latent_dim, num_classes, class
names, the prior, and the training data's settings (dataset, size, split
seed), which `scripts/evaluate.py --saved_model` uses by default.

An export directory holds numbered versions (`1/`, `2/`, ...), as TF Serving
expects; each export adds one, and loading the directory takes the newest.
"""

import json
import os
import shutil

import tensorflow as tf

from tfklgan import native

INFO_FILE = "tfklgan.json"
# Hidden: TF Serving and load_exported look only at numbered folders.
STAGING_PREFIX = ".partial-export-"


class _GeneratorModule(tf.Module):
    def __init__(self, generator, latent_dim, num_classes, latent_distribution):
        super().__init__()
        self.generator = generator
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.latent_distribution = latent_distribution
        latents = tf.TensorSpec([None, latent_dim], tf.float32, name="latents")
        if num_classes:
            labels = tf.TensorSpec([None, num_classes], tf.float32, name="labels")
            self.generate = tf.function(self._generate_conditional,
                                        input_signature=[latents, labels])
        else:
            self.generate = tf.function(self._generate, input_signature=[latents])
        self.sample = tf.function(self._sample, input_signature=[
            tf.TensorSpec([], tf.int32, name="num"), tf.TensorSpec([], tf.int64, name="seed")])

    @staticmethod
    def _outputs(images):
        images = tf.cast(images, tf.float32)
        as_uint8 = tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0, 255),
                           tf.uint8)
        return {"images": images, "images_uint8": as_uint8}

    def _generate(self, latents):
        return self._outputs(self.generator(latents, training=False))

    def _generate_conditional(self, latents, labels):
        return self._outputs(self.generator([latents, labels], training=False))

    def _sample(self, num, seed):
        seed2 = tf.stack([seed, tf.constant(0, tf.int64)])
        shape = tf.stack([num, self.latent_dim])
        if self.latent_distribution == "uniform":
            latents = tf.random.stateless_uniform(shape, seed2, -1.0, 1.0, alg="philox")
        else:
            latents = tf.random.stateless_normal(shape, seed2, alg="philox")
        if not self.num_classes:
            return {"latents": latents, **self._generate(latents)}
        classes = tf.range(num) % self.num_classes
        labels = tf.one_hot(classes, self.num_classes)
        return {"latents": latents, "classes": classes, "labels": labels,
                **self._generate_conditional(latents, labels)}


def data_record(data_config):
    """The training data's settings, stored with an export so that its scores
    compare against the same real split (dataset, size, split seed, ...)."""
    return {"dataset": data_config.name, "image_size": data_config.image_size,
            "channels": data_config.channel_count, "resize": data_config.resize,
            "seed": data_config.seed, "validation_fraction": data_config.validation_fraction,
            "attributes": list(data_config.attributes)}


def _versions(directory):
    """The numbered version folders of an export directory, oldest first."""
    if not os.path.isdir(directory):
        return []
    return sorted(int(name) for name in os.listdir(directory)
                  if name.isdigit() and os.path.isdir(os.path.join(directory, name)))


def _remove_stale_staging(directory):
    """Staging folders left by exports whose process is gone (killed mid-write)."""
    for name in os.listdir(directory):
        if name.startswith(STAGING_PREFIX):
            pid = name.rsplit("-", 1)[-1]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def weight_shapes(model):
    """[[path, shape], ...] of `model`'s weights in their order: what an
    export records so that `--init_from` can compare networks before reading."""
    return [[variable.path, [int(d) for d in variable.shape]] for variable in model.weights]


def export_generator(gan, directory, use_ema=True, class_names=(), data=None,
                     discriminator=False):
    """Writes the generator (EMA weights when kept and `use_ema`) as a new
    version of the export `directory`, in TF Serving's layout: `directory/1/`,
    `directory/2/`, ...; `data` (a `data_record`) and the generator's
    `weight_shapes` are kept in tfklgan.json. With `discriminator`, D's
    weights are saved beside G's (no signature: for `--init_from`, so that
    fine-tuning from an export starts D where training left it) and their
    shapes recorded as `discriminator_weight_shapes`.

    The version is written to a hidden staging folder in `directory` and
    renamed into place, so a crash never leaves a partial version, a serving
    process watching `directory` sees only complete ones, and nothing in
    `directory` that is not a version is touched. Returns the version's path.
    """
    generator = gan.ema_generator if (use_ema and gan.ema_generator) else gan.generator
    module = _GeneratorModule(generator, gan.latent_dim, gan.num_classes,
                              gan.latent_distribution)
    if discriminator:
        module.discriminator = gan.discriminator  # tracked: its variables are saved
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    _remove_stale_staging(directory)
    staging = os.path.join(directory, f"{STAGING_PREFIX}{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    signatures = {"serving_default": module.generate, "generate": module.generate,
                  "sample": module.sample}
    try:
        with native.graph_ops_only():  # loadable without tfklgan's kernels
            tf.saved_model.save(module, staging, signatures=signatures)
        info = {"latent_dim": gan.latent_dim, "num_classes": gan.num_classes,
                "class_names": list(class_names),
                "latent_distribution": gan.latent_distribution,
                "weights": "ema" if generator is gan.ema_generator else "raw",
                "image_shape": [int(d) for d in generator.output.shape[1:]], "data": data,
                "weight_shapes": weight_shapes(generator)}
        if discriminator:
            info["discriminator_weight_shapes"] = weight_shapes(gan.discriminator)
        with open(os.path.join(staging, INFO_FILE), "w") as handle:
            json.dump(info, handle, indent=2)
        while True:  # another export may take a number at the same moment
            version = os.path.join(directory, str((_versions(directory) or [0])[-1] + 1))
            try:
                os.rename(staging, version)
                return version
            except OSError:
                if not os.path.isdir(version):
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export_version(directory):
    """The folder of an export to load: `directory` itself when it is one
    version (or an export made before versions), else its newest version."""
    versions = _versions(directory)
    candidates = [os.path.join(directory, str(v)) for v in reversed(versions)]
    for path in candidates + [directory]:
        if os.path.isfile(os.path.join(path, INFO_FILE)):
            return path
    return None


def _version_or_error(directory):
    path = export_version(directory)
    if path is None:
        raise ValueError(f"{directory!r} is not a tfklgan generator export "
                         f"(no {INFO_FILE} in it or a numbered version of it); export one "
                         "with scripts/export.py")
    return path


def export_info(directory):
    """The info dict (tfklgan.json) of an export, without loading the model."""
    with open(os.path.join(_version_or_error(directory), INFO_FILE)) as handle:
        return json.load(handle)


def load_exported(directory):
    """(loaded SavedModel, info dict) of an export: a version folder, or an
    export directory (its newest version)."""
    return tf.saved_model.load(_version_or_error(directory)), export_info(directory)
