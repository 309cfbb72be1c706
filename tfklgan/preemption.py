"""Stop cleanly on SIGTERM or SIGINT: finish the step, save, say how to resume.

A cluster scheduler, a preemptible VM or Kubernetes sends SIGTERM before it
stops a job; Ctrl-C sends SIGINT. `PreemptionCheckpoint` catches both for the
whole of a training, from before its first step to its last write: the step
in progress completes (a signal between two `fit` calls stops before the
next step), then the metrics row of the steps since the last one is written,
a checkpoint is saved at that step and training stops. `train` returns with
`preempted` set, and scripts/train.py exits with 128 + the signal's number
(143 for SIGTERM, 130 for SIGINT), as a process killed by it would, so
schedulers read it the same way. A signal after the last step lets the run
finish its final checkpoint and export: it is complete, not preempted.

TensorFlow's `tf.distribute.experimental.PreemptionCheckpointHandler` does
this for custom loops under MultiWorkerMirroredStrategy, where the workers
must agree on the step; this callback handles one process (one device or
MirroredStrategy), where the step is this process's own.
"""

import contextlib
import signal
import threading

import keras

from tfklgan.callbacks import run_step

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def exit_code(signum):
    """128 + the signal's number, the shell's code for a process it ended."""
    return 128 + int(signum)


class PreemptionCheckpoint(keras.callbacks.Callback):
    """Saves and stops at the end of the step during which a stop signal came.

    store: the run's CheckpointStore; metrics: the MetricsLogger whose pending
    row is written first. Put it after the periodic callbacks, so a step that
    is also a logging or checkpoint step is written once. Signals are caught
    inside `catching()`; `received` is the number of the first that came,
    and `stopped` (step, signal number) once training stopped for it."""

    def __init__(self, store, metrics, guard):
        super().__init__()
        self.store, self.metrics, self.guard = store, metrics, guard
        self.stopped = None
        self.received = None

    def _handle(self, signum, _frame):
        if self.received is None:
            self.received = signum

    @contextlib.contextmanager
    def catching(self):
        """Holds the stop signals' handlers (in the main thread, the only one
        signals reach) until the block ends, then restores the earlier ones."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                previous[signum] = signal.signal(signum, self._handle)
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def stop_if_signalled(self, model):
        """Writes the pending row and a checkpoint at the model's step and
        returns True if a stop signal has come (and training has not diverged)."""
        if self.stopped:
            return True
        if self.received is None or self.guard.diverged:
            return False
        step = run_step(model)
        self.metrics.write_pending(step)
        if not (self.store.latest or "").endswith(f"-{step}"):
            self.store.save(step)
        self.stopped = (step, self.received)
        return True

    def on_train_batch_end(self, batch, logs=None):
        if self.stop_if_signalled(self.model):
            self.model.stop_training = True
