"""Train a GAN: python scripts/train.py --flagfile=configs/klgan.flags

Every flag is a TrainConfig field (see --helpfull). Exit codes: 0 done,
1 training diverged (NaN/inf loss; the last good checkpoint is kept),
2 bad settings, data or run directory.
"""

import os
import sys

from absl import app, flags

# TensorFlow's C++ log lines (e.g. grappler's "remapper failed") stay hidden;
# TFKLGAN_VERBOSE=1 shows every line.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if os.environ.get("TFKLGAN_VERBOSE") else "3")

from tfklgan import cli  # noqa: E402
from tfklgan.cli import config_from_flags, define_train_flags  # noqa: E402

define_train_flags()
flags.adopt_module_key_flags(cli)  # --help lists the training flags
FLAGS = flags.FLAGS


def main(argv):
    from tfklgan.quiet import quiet_python_logs
    quiet_python_logs()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from tfklgan.training import TrainingDivergedError, train
    config = config_from_flags(FLAGS)
    try:
        result = train(config)
    except TrainingDivergedError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"done: {result.step} steps in {result.logdir}")
    print(f"  checkpoint:  {result.checkpoint}")
    if result.sample_grid:
        print(f"  sample grid: {result.sample_grid}")
    if result.export_dir:
        print(f"  generator:   {result.export_dir} (SavedModel)")
    print(f"  TensorBoard: tensorboard --logdir {result.logdir}")
    return 0


if __name__ == "__main__":
    app.run(main)
