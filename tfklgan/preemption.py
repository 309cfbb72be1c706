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

One process (one device or MirroredStrategy) owns its step, and
`PreemptionCheckpoint` catches the signals itself. Under
MultiWorkerMirroredStrategy the workers must agree on the step at which all
of them save, whichever of them the signal reached: `MultiWorkerPreemption`
leaves that to TensorFlow's `tf.distribute.experimental.PreemptionCheckpointHandler`
(SIGTERM only; SIGINT keeps Python's default there), whose `save_fn` writes
the run's own checkpoint, so the run keeps one checkpoint format and its
fallbacks for damaged files.
"""

import contextlib
import shutil
import signal
import tempfile
import threading

import keras
import tensorflow as tf

from tfklgan.callbacks import run_step
from tfklgan.distribute import multi_worker

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _not_tensorflows_own_deprecation(record):
    """False for the deprecation warning TensorFlow's handler raises by
    calling its own deprecated `total_run_calls` when it saves."""
    return "total_run_calls" not in record.getMessage()


def exit_code(signum):
    """128 + the signal's number, the shell's code for a process it ended."""
    return 128 + int(signum)


class _StopOnSignal(keras.callbacks.Callback):
    """What both variants share: `received` is the number of the first stop
    signal that came, `stopped` (step, signal number) once training stopped
    for it; `_save_at` writes the pending metrics row and a checkpoint."""

    def __init__(self, store, metrics, guard):
        super().__init__()
        self.store, self.metrics, self.guard = store, metrics, guard
        self.stopped = None
        self.received = None

    def _note(self, signum):
        if self.received is None:
            self.received = signum

    def _save_at(self, step):
        self.metrics.write_pending(step)
        if not (self.store.latest or "").endswith(f"-{step}"):
            self.store.save(step)


class PreemptionCheckpoint(_StopOnSignal):
    """Saves and stops at the end of the step during which a stop signal came.

    store: the run's CheckpointStore; metrics: the MetricsLogger whose pending
    row is written first. Put it after the periodic callbacks, so a step that
    is also a logging or checkpoint step is written once. Signals are caught
    inside `catching()`."""

    @contextlib.contextmanager
    def catching(self):
        """Holds the stop signals' handlers (in the main thread, the only one
        signals reach) until the block ends, then restores the earlier ones."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                previous[signum] = signal.signal(signum, lambda num, _frame: self._note(num))
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
        self._save_at(step)
        self.stopped = (step, self.received)
        return True

    def on_train_batch_end(self, batch, logs=None):
        if self.stop_if_signalled(self.model):
            self.model.stop_training = True


class MultiWorkerPreemption(_StopOnSignal):
    """SIGTERM to any worker of a MultiWorkerMirroredStrategy cluster: all of
    them save at the same step and stop.

    TensorFlow's handler watches SIGTERM on every worker; the worker it
    reaches posts, through the cluster's coordination service, the step after
    its current one, and at the end of that step every worker calls
    `_save_at` (the chief into the run directory, the others into their
    scratch folders) and stops. Its own bookkeeping checkpoint (a call
    counter) lives in a scratch folder of its own; the run's step is the
    optimizer's. `strategy`: the MultiWorkerMirroredStrategy in use."""

    def __init__(self, strategy, store, metrics, guard):
        super().__init__(store, metrics, guard)
        self.strategy = strategy
        self._handler = None
        self._saved_step = None

    @contextlib.contextmanager
    def catching(self):
        """Runs TensorFlow's handler (which takes SIGTERM) until the block
        ends, then restores the earlier SIGTERM handler."""
        previous = signal.getsignal(signal.SIGTERM)
        scratch = tempfile.mkdtemp(prefix="tfklgan-preemption-")
        counter = tf.train.CheckpointManager(tf.train.Checkpoint(), scratch, max_to_keep=1)
        self._handler = tf.distribute.experimental.PreemptionCheckpointHandler(
            self.strategy.cluster_resolver, counter,
            termination_config=tf.distribute.experimental.TerminationConfig(
                exit_fn=self._stop, save_fn=self._save_at))
        tensorflow_handler = signal.getsignal(signal.SIGTERM)

        def note_then_handle(signum, frame):
            self._note(signum)
            tensorflow_handler(signum, frame)

        signal.signal(signal.SIGTERM, note_then_handle)
        tf.get_logger().addFilter(_not_tensorflows_own_deprecation)
        try:
            yield self
        finally:
            tf.get_logger().removeFilter(_not_tensorflows_own_deprecation)
            signal.signal(signal.SIGTERM, previous)
            shutil.rmtree(scratch, ignore_errors=True)

    def stop_if_signalled(self, model):
        """Whether the cluster has stopped (the handler decides at step ends)."""
        return bool(self.stopped)

    def _save_at(self, step):
        super()._save_at(step)
        self._saved_step = step

    def _stop(self):  # the handler's exit_fn: after every worker saved
        self.stopped = (self._saved_step, signal.SIGTERM)
        self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        if not self.guard.diverged:
            self._handler.save_checkpoint_if_preempted(run_step(self.model))


def stop_on_signal(strategy, store, metrics, guard):
    """The preemption callback for `strategy`."""
    if multi_worker(strategy):
        return MultiWorkerPreemption(strategy, store, metrics, guard)
    return PreemptionCheckpoint(store, metrics, guard)
