"""Checkpoints of a GAN: both networks, both optimizers, the EMA generator.

The training step count is the generator optimizer's `iterations`, and every
random draw in training is keyed by the optimizers' step counters, so these
variables are the whole random state: restoring them continues the run
exactly. `tf.train.CheckpointManager` writes the files first and then
replaces the small `checkpoint` index atomically, so a crash while saving
leaves the index pointing at the previous, complete checkpoint.
"""

import numpy as np
import tensorflow as tf


class NonFiniteWeightsError(RuntimeError):
    """The model holds NaN or inf weights; they are never saved."""


class CheckpointStore:
    def __init__(self, gan, directory, keep=3):
        parts = dict(generator=gan.generator, discriminator=gan.discriminator,
                     g_optimizer=gan.g_optimizer, d_optimizer=gan.d_optimizer)
        if gan.ema_generator is not None:
            parts["ema_generator"] = gan.ema_generator
        self.gan = gan
        self.directory = directory
        self.checkpoint = tf.train.Checkpoint(**parts)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory,
                                                  max_to_keep=keep)

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
        return self.manager.save(checkpoint_number=step)

    def restore_latest(self):
        """Restores the newest checkpoint; returns its step, or 0 when none."""
        path = self.latest
        if path is None:
            return 0
        self.checkpoint.restore(path).assert_existing_objects_matched()
        return int(self.gan.g_optimizer.iterations.numpy())
