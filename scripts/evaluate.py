"""Score a trained generator: IS, FID and KID (TF-GAN's functions), precision,
recall, density and coverage; for class-conditional generators also the
domain classifier's accuracy per requested class and intra-class FID.

  python scripts/evaluate.py --logdir=runs/klgan --output=runs/klgan/scores.json
  python scripts/evaluate.py --saved_model=exports/klgan --dataset=celeba --image_size=32 ...

Defaults follow the KL-GAN paper: 10,000 held-out (validation) real images
against 10,000 generated ones, TF-GAN's Inception (--inception_path for a
local copy; --feature_network=classifier --classifier_path=... for a domain
classifier). Also scores the real training split against the reference as a
floor. The JSON records the scores, counts, feature-network identity,
dataset, seed, EMA or raw weights and the time taken.
"""

import dataclasses
import json
import os
import sys
import time

from absl import app, flags

# TensorFlow's C++ log lines (e.g. grappler's "remapper failed") stay hidden;
# TFKLGAN_VERBOSE=1 shows every line.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if os.environ.get("TFKLGAN_VERBOSE") else "3")

flags.DEFINE_string("logdir", None, "run directory (its newest checkpoint)")
flags.DEFINE_string("checkpoint", None, "a checkpoint of --logdir")
flags.DEFINE_string("saved_model", None, "a generator exported by scripts/export.py")
flags.DEFINE_string("dataset", None, "real data (default: the run's)")
flags.DEFINE_integer("image_size", None, "real image size (default: the run's)")
flags.DEFINE_integer("channels", None, "real image channels (default: the run's)")
flags.DEFINE_string("resize", None, "authors or center_crop (default: the run's)")
flags.DEFINE_string("data_dir", None, "TFDS data_dir")
flags.DEFINE_integer("data_seed", None, "seed of the train/validation split (default: the "
                     "run's, or the one the export records)")
flags.DEFINE_string("celeba_dir", None, "local CelebA folder")
flags.DEFINE_string("cache_dir", None, "cache for decoded images and real activations")
flags.DEFINE_enum("feature_network", "inception", ["inception", "classifier"],
                  "feature network")
flags.DEFINE_string("inception_path", None, "local copy of TF-GAN's Inception TF-Hub module")
flags.DEFINE_string("classifier_path", None, "domain classifier SavedModel (MNIST-like "
                    "data: the MNIST classifier shipped with tfklgan by default)")
flags.DEFINE_integer("num_samples", 10_000, "generated and real images (50,000: train protocol)")
flags.DEFINE_integer("real_samples", 0, "real reference images (0: as many as --num_samples)")
flags.DEFINE_enum("real_split", "validation", ["validation", "train", "all"],
                  "real reference split")
flags.DEFINE_bool("ema", True, "use the run's EMA generator when it has one")
flags.DEFINE_bool("floor", True, "also score the real train split against the reference")
flags.DEFINE_integer("seed", 0, "seed of the generated set")
flags.DEFINE_integer("batch_size", 200, "images per feature-network batch")
flags.DEFINE_string("output", None, "JSON file to write (default: print only)")
flags.DEFINE_enum("resize_filter", "tfgan", ["tfgan", "clean"],
                  "resizing to the feature network's input: tfgan (bilinear, as TF-GAN's "
                  "examples) or clean (antialiased bicubic, as PIL and clean-fid)")
FLAGS = flags.FLAGS


def _generator():
    """(generate(start, size), weights, data config, source description, the
    class asked of each generated sample or None)."""
    from tfklgan.data import DataConfig
    from tfklgan.evaluation import gan_generator, requested_classes, sample_inputs
    from tfklgan.export import load_exported
    from tfklgan.training import load_run
    eval_config = _eval_config()
    if bool(FLAGS.logdir) == bool(FLAGS.saved_model):
        raise ValueError("give exactly one of --logdir and --saved_model")
    if FLAGS.logdir:
        gan, config, _ = load_run(FLAGS.logdir, FLAGS.checkpoint)
        generate, weights = gan_generator(gan, eval_config)
        num_classes = gan.num_classes
        data_config = config.data_config()
        source = FLAGS.checkpoint or f"{FLAGS.logdir} (newest checkpoint)"
    else:
        model, info = load_exported(FLAGS.saved_model)
        trained = info.get("data") or {}  # exports before the record: name the data
        if not ((FLAGS.dataset or trained) and (FLAGS.image_size or trained)):
            raise ValueError("this export does not record its data: name the real data "
                             "with --dataset and --image_size (and --channels, --resize, "
                             "--data_seed as trained)")
        signature = model.signatures["serving_default"]
        latents, labels = sample_inputs(info["latent_dim"], info["latent_distribution"],
                                        info["num_classes"], FLAGS.num_samples, FLAGS.seed)

        def generate(start, size):
            inputs = {"latents": latents[start:start + size]}
            if labels is not None:
                inputs["labels"] = labels[start:start + size]
            return signature(**inputs)["images"].numpy()
        weights = info["weights"]
        num_classes = info["num_classes"]
        data_config = DataConfig(
            trained.get("dataset", FLAGS.dataset),
            image_size=trained.get("image_size", FLAGS.image_size),
            channels=info["image_shape"][-1], resize=trained.get("resize", "authors"),
            seed=trained.get("seed", 0),
            validation_fraction=trained.get("validation_fraction", 0.1),
            attributes=tuple(trained.get("attributes", ())))
        source = FLAGS.saved_model
    overrides = {k: getattr(FLAGS, k) for k in
                 ("dataset", "image_size", "channels", "resize", "data_dir", "celeba_dir",
                  "cache_dir") if getattr(FLAGS, k)}
    if "dataset" in overrides:
        overrides["name"] = overrides.pop("dataset")
    if FLAGS.data_seed is not None:
        overrides["seed"] = FLAGS.data_seed
    return (generate, weights, dataclasses.replace(data_config, **overrides), source,
            requested_classes(num_classes, FLAGS.num_samples))


def _eval_config():
    from tfklgan.evaluation import EvalConfig
    kwargs = {"cache_dir": FLAGS.cache_dir} if FLAGS.cache_dir else {}
    return EvalConfig(feature_network=FLAGS.feature_network,
                      inception_path=FLAGS.inception_path,
                      classifier_path=FLAGS.classifier_path,
                      num_samples=FLAGS.num_samples, real_split=FLAGS.real_split,
                      real_samples=FLAGS.real_samples, resize_filter=FLAGS.resize_filter,
                      use_ema=FLAGS.ema, seed=FLAGS.seed, batch_size=FLAGS.batch_size,
                      **kwargs)


def main(argv):
    from tfklgan.quiet import quiet_python_logs
    quiet_python_logs()
    del argv
    from tfklgan import metrics
    from tfklgan.evaluation import RealStatistics, evaluate_generator, feature_network_of
    from tfklgan.feature_networks import default_classifier_path
    started = time.time()
    try:
        eval_config = _eval_config()
        generate, weights, data_config, source, classes = _generator()
        if not eval_config.classifier_path:  # MNIST-like data: the shipped classifier
            eval_config = dataclasses.replace(
                eval_config, classifier_path=default_classifier_path(data_config.name))
        feature_network = feature_network_of(eval_config)
        real = RealStatistics(data_config, eval_config, feature_network)
        floor = None
        if FLAGS.floor:
            train_config = dataclasses.replace(eval_config, real_split="train")
            # the whole training split, even if the run trained on a subset
            full = dataclasses.replace(data_config, max_examples=None)
            train_real = RealStatistics(full, train_config, feature_network)
            floor = metrics.scores(real.activations, train_real.activations)
            floor["protocol"] = metrics.protocol(feature_network, real.reference,
                                                 eval_config.num_samples, eval_config.seed,
                                                 "real train split")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = evaluate_generator(generate, weights, real, feature_network, eval_config,
                                classes)
    report = {"source": source, "dataset": data_config.name, "seed": FLAGS.seed,
              "scores": {k: result[k] for k in metrics.SCORES}, "protocol": result["protocol"],
              "conditional": result.get("conditional"), "real_floor": floor,
              "seconds": time.time() - started}
    text = json.dumps(report, indent=2)
    if FLAGS.output:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
        with open(FLAGS.output, "w") as handle:
            handle.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    app.run(main)
