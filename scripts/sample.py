"""Write sample grids, latent interpolations and class grids as PNG, and
samples for scoring elsewhere.

  python scripts/sample.py --logdir=runs/klgan --out_dir=samples/klgan
  python scripts/sample.py --saved_model=exports/klgan --out_dir=samples/klgan
  python scripts/sample.py --logdir=runs/klgan --out_dir=samples/klgan \
      --num_samples=10000 --npz --png          # samples.npz and png/000000.png ...

Writes grid.png (the first --num of the samples scoring draws),
interpolation.png (--rows rows of --steps
frames between two latents, docs/reference.md §6) and, for class-conditional
generators, classes.png (one row per class). With --num_samples=N, also the
N samples that scripts/evaluate.py scores for this generator (its latents,
seed and uint8 rounding): --npz writes samples.npz (uint8 'x', and for
class-conditional generators the requested classes 'y'), --png writes
png/<index>.png (in png/<class>/ for class-conditional generators).
"""

import os
import sys

from absl import app, flags

# TensorFlow's C++ log lines (e.g. grappler's "remapper failed") stay hidden;
# TFKLGAN_VERBOSE=1 shows every line.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if os.environ.get("TFKLGAN_VERBOSE") else "3")

flags.DEFINE_string("logdir", None, "run directory (uses its newest checkpoint)")
flags.DEFINE_string("checkpoint", None, "a checkpoint path in --logdir")
flags.DEFINE_string("saved_model", None, "a generator exported by scripts/export.py")
flags.DEFINE_string("out_dir", None, "where to write the PNG files")
flags.DEFINE_integer("num", 64, "samples in grid.png")
flags.DEFINE_integer("rows", 8, "interpolation rows")
flags.DEFINE_integer("steps", 16, "frames per interpolation row")
flags.DEFINE_integer("per_class", 8, "samples per class in classes.png")
flags.DEFINE_integer("seed", None, "seed of the latents (default: the run's seed, as "
                     "scripts/evaluate.py and training's evaluation use)")
flags.DEFINE_bool("ema", True, "use the EMA generator of a run when it has one")
flags.DEFINE_integer("num_samples", 0, "also write this many samples for scoring (--npz, --png)")
flags.DEFINE_bool("npz", True, "with --num_samples: write samples.npz")
flags.DEFINE_bool("png", False, "with --num_samples: write png/<index>.png")
flags.mark_flag_as_required("out_dir")
FLAGS = flags.FLAGS


def _generator_from_flags():
    """(generate(latents, labels) -> images in [-1, 1], info dict)."""
    import numpy as np

    from tfklgan.export import load_exported
    from tfklgan.run_directory import load_run
    if bool(FLAGS.logdir) == bool(FLAGS.saved_model):
        raise ValueError("give exactly one of --logdir and --saved_model")
    if FLAGS.saved_model:
        model, info = load_exported(FLAGS.saved_model)
        signature = model.signatures["serving_default"]

        def generate(latents, labels=None):
            inputs = {"latents": latents}
            if info["num_classes"]:
                inputs["labels"] = labels
            return signature(**inputs)["images"].numpy()
        return generate, info
    gan, _, run_info = load_run(FLAGS.logdir, FLAGS.checkpoint)
    info = {"latent_dim": gan.latent_dim, "num_classes": gan.num_classes,
            "latent_distribution": gan.latent_distribution,
            "class_names": run_info["class_names"]}

    def generate(latents, labels=None):
        return np.asarray(gan.generate(latents, labels, use_ema=FLAGS.ema))
    return generate, info


def main(argv):
    from tfklgan.quiet import quiet_python_logs
    quiet_python_logs()
    del argv
    import numpy as np

    from tfklgan import images
    from tfklgan.evaluation.latents import draw_latents, sample_inputs
    try:
        generate, info = _generator_from_flags()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    dim, classes = info["latent_dim"], info["num_classes"]
    distribution = info["latent_distribution"]
    seed = _options().seed

    def inputs(n):
        """The first n of the latents (and cycled labels) scoring draws for the seed."""
        return sample_inputs(dim, distribution, classes, n, seed)

    columns = int(np.ceil(np.sqrt(FLAGS.num)))
    written = []
    grid = images.make_grid(generate(*inputs(FLAGS.num)), columns)
    written.append(os.path.join(FLAGS.out_dir, "grid.png"))
    images.save_png(written[-1], grid)

    ends, end_labels = inputs(2 * FLAGS.rows)
    frames = images.interpolate_latents(ends[:FLAGS.rows], ends[FLAGS.rows:], FLAGS.steps)
    frame_labels = None
    if classes:
        frame_labels = np.repeat(end_labels[:FLAGS.rows], FLAGS.steps, axis=0)
    strip = images.make_grid(generate(frames, frame_labels), FLAGS.steps)
    written.append(os.path.join(FLAGS.out_dir, "interpolation.png"))
    images.save_png(written[-1], strip)

    if classes:
        n = FLAGS.per_class * classes
        class_labels = np.repeat(np.eye(classes, dtype=np.float32), FLAGS.per_class, axis=0)
        grid = images.make_grid(generate(draw_latents(dim, distribution, n, seed),
                                         class_labels), FLAGS.per_class)
        written.append(os.path.join(FLAGS.out_dir, "classes.png"))
        images.save_png(written[-1], grid)
        print("classes (one row each): " + ", ".join(info["class_names"]))
    if FLAGS.num_samples:
        written += _write_samples()
    print("wrote " + ", ".join(written))
    return 0


def _options():
    """The scoring options of the flags, the seed resolved against a run's settings."""
    from tfklgan.evaluation.score import ScoringOptions, options_for
    options = ScoringOptions(num_samples=FLAGS.num_samples, seed=FLAGS.seed, use_ema=FLAGS.ema,
                             checkpoint=FLAGS.checkpoint, values="uint8")
    return options_for(FLAGS.logdir or FLAGS.saved_model, options)


def _write_samples():
    """The --num_samples samples as scripts/evaluate.py draws them."""
    import numpy as np

    from tfklgan import images
    from tfklgan.evaluation.score import open_generated
    samples, _, _ = open_generated(FLAGS.logdir or FLAGS.saved_model, _options())
    x = np.concatenate(list(samples.batches(200)))
    written = []
    if FLAGS.npz:
        written.append(os.path.join(FLAGS.out_dir, "samples.npz"))
        arrays = {"x": x} if samples.labels is None else {"x": x, "y": samples.labels}
        np.savez(written[-1], **arrays)
    if FLAGS.png:
        for index, image in enumerate(x):
            folder = "png" if samples.labels is None else f"png/{samples.labels[index]}"
            images.save_png(os.path.join(FLAGS.out_dir, folder, f"{index:06d}.png"), image)
        written.append(os.path.join(FLAGS.out_dir, "png") + f"/ ({len(x)} files)")
    return written


if __name__ == "__main__":
    app.run(main)
