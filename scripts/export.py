"""Export a run's generator as a SavedModel.

  python scripts/export.py --logdir=runs/klgan --export_dir=exports/klgan

Uses the EMA weights when the run kept them (--noema for the raw ones);
--discriminator saves D's weights too, for fine-tuning with --init_from.
The SavedModel's signatures: `serving_default` (latents [, one-hot labels]
-> images in [-1, 1] and uint8) and `sample` (num, seed -> latents, images).
"""

import os
import sys

from absl import app, flags

# TensorFlow's C++ log lines (e.g. grappler's "remapper failed") stay hidden;
# TFKLGAN_VERBOSE=1 shows every line.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if os.environ.get("TFKLGAN_VERBOSE") else "3")

flags.DEFINE_string("logdir", None, "run directory written by scripts/train.py")
flags.DEFINE_string("checkpoint", None, "a checkpoint path (default: the newest)")
flags.DEFINE_string("export_dir", None, "where to write the SavedModel")
flags.DEFINE_bool("ema", True, "export the EMA weights when the run kept them")
flags.DEFINE_bool("discriminator", False, "also save D's weights (no signature), so that "
                  "--init_from=<this export> starts D where training left it")
flags.mark_flags_as_required(["logdir", "export_dir"])
FLAGS = flags.FLAGS


def main(argv):
    from tfklgan.quiet import quiet_python_logs
    quiet_python_logs()
    del argv
    from tfklgan.export import data_record, export_generator
    from tfklgan.run_directory import load_run
    try:
        gan, config, info = load_run(FLAGS.logdir, FLAGS.checkpoint)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    path = export_generator(gan, FLAGS.export_dir, use_ema=FLAGS.ema,
                            class_names=info["class_names"],
                            data=data_record(config.data_config()),
                            discriminator=FLAGS.discriminator)
    print(f"exported the generator of {FLAGS.logdir} to {path}")
    return 0


if __name__ == "__main__":
    app.run(main)
