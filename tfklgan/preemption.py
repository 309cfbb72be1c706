"""Stop cleanly on SIGTERM or SIGINT: finish the step, save, say how to resume.

A cluster scheduler, a preemptible VM or Kubernetes sends SIGTERM before it
stops a job; Ctrl-C sends SIGINT. `PreemptionCheckpoint` catches both while
`fit` runs: the step in progress completes, then the metrics row of the
steps since the last one is written, a checkpoint is saved at that step and
training stops. `train` returns with `preempted` set, and scripts/train.py
exits with 128 + the signal's number (143 for SIGTERM, 130 for SIGINT), as a
process killed by it would, so schedulers read it the same way.

TensorFlow's `tf.distribute.experimental.PreemptionCheckpointHandler` does
this for custom loops under MultiWorkerMirroredStrategy, where the workers
must agree on the step; this callback handles one process (one device or
MirroredStrategy), where the step is this process's own.
"""

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
    is also a logging or checkpoint step is written once. `stopped` is then
    (step, signal number)."""

    def __init__(self, store, metrics, guard):
        super().__init__()
        self.store, self.metrics, self.guard = store, metrics, guard
        self.stopped = None
        self._signal = None
        self._previous = {}

    def _handle(self, signum, _frame):
        self._signal = signum

    def on_train_begin(self, logs=None):
        if threading.current_thread() is threading.main_thread():  # signals reach it alone
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)

    def on_train_end(self, logs=None):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def on_train_batch_end(self, batch, logs=None):
        if self._signal is None or self.guard.diverged:
            return
        step = run_step(self.model)
        self.metrics.write_pending(step)
        if not (self.store.latest or "").endswith(f"-{step}"):
            self.store.save(step)
        self.stopped = (step, self._signal)
        self.model.stop_training = True
