"""Checkpoints of a GAN: both networks, both optimizers, the EMA generator.

The training step count is the generator optimizer's `iterations`, and every
random draw in training is keyed by the optimizers' step counters, so these
variables are the whole random state: restoring them continues the run
exactly. `tf.train.CheckpointManager` writes the files first and then
replaces the small `checkpoint` index atomically, so a crash while saving
leaves the index pointing at the previous, complete checkpoint.
"""

import glob
import os
import shutil

import numpy as np
import tensorflow as tf


class NonFiniteWeightsError(RuntimeError):
    """The model holds NaN or inf weights; they are never saved."""


class NoReadableCheckpointError(ValueError):
    """Every checkpoint of a run is damaged; the message says what to do."""


def unreadable_reason(path):
    """None if every tensor of checkpoint `path` reads back, else why not (one line)."""
    try:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as err:  # noqa: BLE001 (TF raises many kinds for damaged files)
        text = str(err).strip().splitlines()
        return f"{type(err).__name__}: {text[0] if text else ''}"[:200]
    return None


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (e.g. the disk is full); the message
    says what was kept."""


class CheckpointStore:
    """Saves to `directory` and restores from `restore_directory` (default: the
    same). A non-chief worker restores the chief's checkpoints but saves to a
    scratch folder of its own: every worker takes part in a save."""

    def __init__(self, gan, directory, keep=3, restore_directory=None):
        parts = dict(generator=gan.generator, discriminator=gan.discriminator,
                     g_optimizer=gan.g_optimizer, d_optimizer=gan.d_optimizer)
        if gan.ema_generator is not None:
            parts["ema_generator"] = gan.ema_generator
        if getattr(gan, "ada", None) is not None:
            parts["ada"] = gan.ada_state  # ADA's p: a resume continues its schedule
        self.gan = gan
        self.directory = directory
        self.checkpoint = tf.train.Checkpoint(**parts)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory,
                                                  max_to_keep=keep)
        self.restore_manager = (self.manager if restore_directory in (None, directory) else
                                tf.train.CheckpointManager(self.checkpoint, restore_directory,
                                                           max_to_keep=keep))
        self.skipped = []  # (checkpoint, why) passed over by restore_latest

    def remove_partial_writes(self):
        """Deletes the `<name>_temp` folders a killed save leaves behind."""
        removed = []
        for path in glob.glob(os.path.join(self.directory, "*_temp*")):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    @property
    def latest(self):
        return self.manager.latest_checkpoint

    def weights_finite(self):
        return all(np.all(np.isfinite(v.numpy())) for v in self.gan.weights)

    def save(self, step):
        """Saves as checkpoint `step`; refuses non-finite weights."""
        if not self.weights_finite():
            raise NonFiniteWeightsError(
                f"weights at step {step} are not finite; checkpoint not written")
        try:
            return self.manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as err:
            self.remove_partial_writes()
            reason = getattr(err, "message", None) or str(err)
            kept = f"the earlier checkpoints are intact (newest: {self.latest})" if self.latest \
                else "no earlier checkpoint exists"
            raise CheckpointWriteError(
                f"checkpoint of step {step} could not be written to {self.directory} "
                f"({reason.strip().splitlines()[0]}); its partial files were removed and "
                f"{kept}; free space and continue with --resume") from None

    def newest_readable(self):
        """The newest checkpoint that reads back completely, walking back past
        damaged ones (listed in `skipped`); None when the run has none. Raises
        NoReadableCheckpointError when every checkpoint is damaged."""
        candidates = list(reversed(self.restore_manager.checkpoints))
        self.skipped = []
        for path in candidates:
            reason = unreadable_reason(path)
            if reason is None:
                return path
            self.skipped.append((path, reason))
        if not candidates:
            return None
        listed = "; ".join(f"{os.path.basename(p)}: {why}" for p, why in self.skipped)
        raise NoReadableCheckpointError(
            f"no checkpoint in {self.restore_manager.directory!r} reads back ({listed}); start again "
            "with a new --logdir (the damaged files were left as they are)")

    def restore_latest(self):
        """Restores `newest_readable()`; returns its step, or 0 when none."""
        path = self.newest_readable()
        if path is None:
            return 0
        self.checkpoint.restore(path).assert_existing_objects_matched()
        return int(self.gan.g_optimizer.iterations.numpy())
