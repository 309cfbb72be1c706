"""Train a GAN: python scripts/train.py --flagfile=configs/klgan.flags

--help lists the settings by section; every flag is a TrainConfig setting.
Exit codes: 0 done,
1 training diverged (NaN/inf loss; the last good checkpoint is kept),
2 bad settings, data or run directory.
"""

import os
import sys

from absl import app, flags

# TensorFlow's C++ log lines (e.g. grappler's "remapper failed") stay hidden;
# TFKLGAN_VERBOSE=1 shows every line.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if os.environ.get("TFKLGAN_VERBOSE") else "3")

from tfklgan.cli import config_from_flags, define_train_flags, settings_help  # noqa: E402

define_train_flags()
FLAGS = flags.FLAGS
HELP_FLAGS = ("-h", "-?", "--help", "--helpshort")


def parse_flags(argv):
    """absl's parsing, with --help printing the settings grouped by section."""
    if any(arg in HELP_FLAGS for arg in argv[1:]):
        print(__doc__)
        print(settings_help())
        print("--flagfile=FILE reads flags from a file; --helpfull adds absl's own flags.")
        sys.exit(0)
    return app.parse_flags_with_usage(argv)


def main(argv):
    from tfklgan.quiet import quiet_python_logs
    quiet_python_logs()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from tfklgan.checkpoints import CheckpointWriteError
    from tfklgan.preemption import exit_code
    from tfklgan.training import TrainingDivergedError, train
    try:
        result = train(config_from_flags(FLAGS))
    except (TrainingDivergedError, CheckpointWriteError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if result.preempted:
        import signal
        name = signal.Signals(result.preempted).name
        saved = (f"checkpoint {result.checkpoint} saved" if result.checkpoint else
                 "the chief saved the checkpoint")  # a non-chief worker's
        print(f"stopped by {name} after step {result.step}: {saved}; continue with the "
              f"same command and --resume (--logdir={result.logdir})", file=sys.stderr)
        return exit_code(result.preempted)
    print(f"done: {result.step} steps in {result.logdir}")
    print(f"  checkpoint:  {result.checkpoint}")
    if result.sample_grid:
        print(f"  sample grid: {result.sample_grid}")
    if result.export_dir:
        print(f"  generator:   {result.export_dir} (SavedModel)")
    print(f"  TensorBoard: tensorboard --logdir {result.logdir}")
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
