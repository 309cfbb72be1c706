"""Score samples from anywhere against any reference: IS, FID and KID
(TF-GAN's functions), precision, recall, density and coverage; for labelled
samples the domain classifier's accuracy per class and intra-class FID.

  python scripts/evaluate.py --generated=runs/klgan --output=runs/klgan/scores.json
  python scripts/evaluate.py --generated=npz:samples.npz --real=mnist_sample \\
      --feature_network=classifier
  python scripts/evaluate.py --generated=images:samples/ --real=stats:mnist_train.npz
  python scripts/evaluate.py --real=mnist_sample --real_split=train \\
      --feature_network=classifier --save_stats=mnist_train.npz   # a reference, once

--generated: npz:FILE[,FILE...] (the package's npz rules, or ADM-style
`arr_0` uint8 NHWC; globs allowed), images:DIR (recursively), a run
directory (its newest checkpoint) or a SavedModel of scripts/export.py.
--real: a dataset name (mnist_sample, mnist, celeba, ...; a seeded sample of
--real_split), npz:, images:, or stats:FILE (saved by --save_stats). With a
run or SavedModel and no --real, the run's own data is the reference.

A run directory is scored by its own evaluation settings (feature network,
sample counts, latent seed, EMA, split) unless a flag says otherwise, so
`--logdir=RUN` repeats the final row of the run's eval.csv exactly.
Every image is scored as uint8 (a generator's output is rounded as an image
file stores it), so a generator scored directly and its samples written to
a file give the same scores; a run trained with --eval_values=float32 is
scored as it was. The JSON records the scores and the protocol (feature
network and its sha256, resize filter, values, both sides' sources and
counts, versions).
"""

import json
import os
import sys

from absl import app, flags

# TensorFlow's C++ log lines (e.g. grappler's "remapper failed") stay hidden;
# TFKLGAN_VERBOSE=1 shows every line.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if os.environ.get("TFKLGAN_VERBOSE") else "3")

flags.DEFINE_string("generated", None, "the samples: npz:FILE, images:DIR, a run directory "
                    "or a SavedModel")
flags.DEFINE_string("real", None, "the reference: a dataset name, npz:FILE, images:DIR or "
                    "stats:FILE (default for a run or SavedModel: its own data)")
flags.DEFINE_string("save_stats", None, "write the reference's activations and statistics "
                    "to this .npz (reuse it as --real=stats:FILE)")
flags.DEFINE_string("logdir", None, "a run directory (the same as --generated=DIR)")
flags.DEFINE_string("checkpoint", None, "a checkpoint of the run (default: its newest)")
flags.DEFINE_string("saved_model", None, "an export (the same as --generated=DIR)")
flags.DEFINE_string("dataset", None, "real data of a run's or export's reference (default: "
                    "the run's; the same as --real=NAME)")
flags.DEFINE_integer("image_size", None, "real image size (default: the samples' size)")
flags.DEFINE_integer("channels", None, "real image channels (default: the samples')")
flags.DEFINE_string("resize", None, "authors or center_crop (default: the run's)")
flags.DEFINE_string("data_dir", None, "TFDS data_dir")
flags.DEFINE_integer("data_seed", None, "seed of the train/validation split and of the real "
                     "sample (default: the run's, or 0)")
flags.DEFINE_string("celeba_dir", None, "local CelebA folder")
flags.DEFINE_string("cache_dir", None, "cache for decoded images")
flags.DEFINE_enum("npz_range", "auto", ["auto", "0-1", "0-255"],
                  "how float images in npz files are read")
flags.DEFINE_enum("feature_network", None, ["inception", "classifier"],
                  "feature network (default: a run's, else inception)")
flags.DEFINE_string("inception_path", None, "local copy of TF-GAN's Inception TF-Hub module")
flags.DEFINE_string("classifier_path", None, "domain classifier SavedModel (MNIST-like "
                    "data: the MNIST classifier shipped with tfklgan by default)")
flags.DEFINE_integer("num_samples", 0, "generated images: a generator's count (0: a run's "
                     "--eval_samples, else 10,000), or the first N of a file set (0: all)")
flags.DEFINE_integer("real_samples", 0, "real images of a dataset reference (0: a run's, else "
                     "as many as the generated; a file reference: all)")
flags.DEFINE_enum("real_split", None, ["validation", "train", "all"],
                  "split of a dataset reference (default: a run's, else validation)")
flags.DEFINE_bool("ema", None, "use the run's EMA generator when it has one (default: as the "
                  "run's evaluation did, else yes)")
flags.DEFINE_enum("values", None, ["uint8", "float32"],
                  "score a generator's images as uint8 (the rule) or float32 (default: as the "
                  "run's evaluation did, else uint8)")
flags.DEFINE_bool("floor", True, "with a dataset reference, also score its real train split "
                  "against it (the score of real images)")
flags.DEFINE_integer("seed", None, "seed of a generator's latents (default: a run's "
                     "evaluation seed, else 0)")
flags.DEFINE_integer("batch_size", 200, "images per feature-network batch")
flags.DEFINE_bool("progress", True, "print progress to stderr while images are featurised")
flags.DEFINE_string("output", None, "JSON file to write (default: print only)")
flags.DEFINE_enum("resize_filter", None, ["tfgan", "clean"],
                  "resizing to the feature network's input: tfgan (bilinear, as TF-GAN's "
                  "examples) or clean (antialiased bicubic, as PIL and clean-fid); default: "
                  "a run's, else tfgan")
FLAGS = flags.FLAGS

DEFAULT_GENERATED = 10_000


def _generated_spec():
    given = [s for s in (FLAGS.generated, FLAGS.logdir, FLAGS.saved_model) if s]
    if len(given) > 1:
        raise ValueError("give one of --generated, --logdir and --saved_model")
    if not given and not FLAGS.save_stats:
        raise ValueError("give the samples to score: --generated=npz:FILE, images:DIR, a run "
                         "directory or a SavedModel (or --real with --save_stats alone)")
    return given[0] if given else None


def main(argv):
    del argv
    from tfklgan.quiet import quiet_python_logs
    quiet_python_logs()
    from tfklgan.evaluation import ScoringOptions, evaluate
    try:
        options = ScoringOptions(
            feature_network=FLAGS.feature_network, inception_path=FLAGS.inception_path,
            classifier_path=FLAGS.classifier_path, resize_filter=FLAGS.resize_filter,
            batch_size=FLAGS.batch_size, num_samples=FLAGS.num_samples,
            default_generated=DEFAULT_GENERATED, seed=FLAGS.seed, use_ema=FLAGS.ema,
            values=FLAGS.values,
            checkpoint=FLAGS.checkpoint, real_samples=FLAGS.real_samples,
            real_split=FLAGS.real_split, dataset=FLAGS.dataset, image_size=FLAGS.image_size,
            channels=FLAGS.channels, resize=FLAGS.resize, data_dir=FLAGS.data_dir,
            data_seed=FLAGS.data_seed, celeba_dir=FLAGS.celeba_dir, cache_dir=FLAGS.cache_dir,
            npz_range=FLAGS.npz_range, floor=FLAGS.floor, progress=FLAGS.progress)
        report = evaluate(_generated_spec(), FLAGS.real, options, save_stats=FLAGS.save_stats)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    text = json.dumps(report, indent=2)
    if FLAGS.output:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
        with open(FLAGS.output + ".tmp", "w") as handle:
            handle.write(text)
        os.replace(FLAGS.output + ".tmp", FLAGS.output)
    print(text)
    return 0


if __name__ == "__main__":
    app.run(main)
