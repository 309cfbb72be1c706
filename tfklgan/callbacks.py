"""Keras callbacks for a GAN run: divergence guard, TensorBoard and CSV
logging, sample grids and periodic checkpoints.

The step of a run is `model.g_optimizer.iterations` (one generator update).
Callbacks that need files receive their paths; nothing here reads flags.
"""

import csv
import math
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from tfklgan import images
from tfklgan.checkpoints import NonFiniteWeightsError
from tfklgan.optimizers import current_learning_rate


def run_step(model):
    return int(model.g_optimizer.iterations.numpy())


def truncate_csv(path, last_step):
    """Keeps the rows of a step-indexed CSV up to `last_step` (a resumed run
    redoes the later ones); returns (columns, kept rows), (None, []) if absent."""
    if not os.path.isfile(path):
        return None, []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames
        kept = [row for row in reader if int(row["step"]) <= last_step]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(kept)
    return columns, kept


def append_csv(path, columns, row):
    """Appends `row` (a dict) under `columns`, writing the header to a new file."""
    new_file = not os.path.isfile(path)
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        if new_file:
            writer.writeheader()
        writer.writerow(row)


class ProgressBar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar for a run trained in one `fit` call per epoch: shows
    "Epoch e/E" of the whole run (Keras alone would print "Epoch 2/2", "Epoch
    3/3", ...), and when training stops early (divergence) it ends at the step
    reached instead of showing the epoch as complete."""

    def __init__(self, total_epochs):
        super().__init__()
        self.total_epochs = total_epochs

    def set_params(self, params):
        super().set_params(params)
        self.epochs = self.total_epochs

    def _finalize_progbar(self, logs):
        if self.model is not None and self.model.stop_training and self.progbar is not None:
            self.target = self.progbar.target = self.seen
        super()._finalize_progbar(logs)


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training at the first step whose metrics are NaN or inf.

    Put it first: later callbacks see `diverged` and save nothing.
    """

    def __init__(self):
        super().__init__()
        self.diverged = None  # (step, metric name, value)

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            if not math.isfinite(float(value)):
                self.diverged = (run_step(self.model), name, float(value))
                self.model.stop_training = True
                return


class MetricsLogger(keras.callbacks.Callback):
    """Every `every` steps: step metrics, learning rates and throughput to
    TensorBoard (`writer`) and to a CSV file beside the event files.

    Each logged metric is the mean over the steps since the last write,
    taken from the trackers' running totals (the progress bar keeps showing
    Keras' epoch means).

    Resuming at step s keeps the CSV rows up to s and drops later ones, so
    the file always describes one continuous run.
    """

    def __init__(self, writer, csv_path, every, images_per_step, guard, start_step=0):
        super().__init__()
        self.writer = writer
        self.csv_path = csv_path
        self.every = every
        self.images_per_step = images_per_step
        self.guard = guard
        self._columns, _ = truncate_csv(csv_path, start_step)
        self._last = None
        self._sums = {}

    def on_train_begin(self, logs=None):
        self._last = (run_step(self.model), time.perf_counter())

    def on_epoch_begin(self, epoch, logs=None):
        # Keras resets the trackers at every epoch start; so do the window sums.
        self._sums = {}

    def on_train_batch_end(self, batch, logs=None):
        step = run_step(self.model)
        if step % self.every or self.guard.diverged:
            return
        self._write(step)

    def write_pending(self, step):
        """The row of the steps since the last one, if any (a run stopped
        between logging steps loses none of its steps' metrics)."""
        if self._last is not None and step > self._last[0]:
            self._write(step)

    def _write(self, step):
        now = time.perf_counter()
        last_step, last_time = self._last
        self._last = (step, now)
        row = self._window_means()
        row["lr_generator"] = current_learning_rate(self.model.g_optimizer)
        row["lr_discriminator"] = current_learning_rate(self.model.d_optimizer)
        if step > last_step and now > last_time:
            row["images_per_sec"] = (step - last_step) * self.images_per_step / (now - last_time)
        with self.writer.as_default(step=step):
            for name, value in row.items():
                group = ("learning_rate" if name.startswith("lr_") else
                         "throughput" if name == "images_per_sec" else "train")
                tf.summary.scalar(f"{group}/{name}", value)
        row = {"step": step, "time": time.time(), **row}
        if self._columns is None:
            self._columns = list(row)
        append_csv(self.csv_path, self._columns, row)

    def _window_means(self):
        means = {}
        for metric in self.model.metrics:
            total = float(metric.total.numpy())
            count = float(metric.count.numpy())
            last_total, last_count = self._sums.get(metric.name, (0.0, 0.0))
            self._sums[metric.name] = (total, count)
            if count > last_count:
                means[metric.name] = (total - last_total) / (count - last_count)
        return means

    def on_train_end(self, logs=None):
        self.writer.flush()


class SampleGrids(keras.callbacks.Callback):
    """Every `every` steps: a grid of images from fixed latents (EMA weights
    when kept) to TensorBoard and `sample_dir/step_<7-digit step>.png`.
    Class-conditional models get one row per class. `write()` adds the grid of
    the final step when training ends elsewhere (the trainer calls it once).
    """

    def __init__(self, writer, sample_dir, every, guard, num_samples=64, seed=1234):
        super().__init__()
        self.writer = writer
        self.sample_dir = sample_dir
        self.every = every
        self.guard = guard
        self.num_samples = num_samples
        self.seed = seed
        self.last_path = None
        self.last_step = None

    def _samples(self):
        """(images [n, H, W, C], columns) of the fixed latents."""
        gan = self.model
        if gan.conditional:
            per_class = 8
            classes = gan.num_classes
            latents = gan.sample_latents(per_class * classes, self.seed)
            labels = np.repeat(np.eye(classes, dtype=np.float32), per_class, axis=0)
            return gan.generate(latents, labels).numpy(), per_class
        latents = gan.sample_latents(self.num_samples, self.seed)
        return gan.generate(latents).numpy(), int(math.ceil(math.sqrt(self.num_samples)))

    def write(self):
        step = run_step(self.model)
        if step == self.last_step:
            return
        self.last_step = step
        samples, columns = self._samples()
        if not np.isfinite(samples).all():
            # The weights went NaN/inf in this step's update (its losses were
            # still finite); the guard stops training at the next step.
            print(f"warning: no sample grid at step {step}: the generator's outputs are "
                  "not finite", file=sys.stderr)
            return
        grid = images.make_grid(samples, columns)
        self.last_path = os.path.join(self.sample_dir, f"step_{step:07d}.png")
        images.save_png(self.last_path, grid)
        with self.writer.as_default(step=step):
            tag = "samples/classes" if self.model.conditional else "samples/fixed_noise"
            tf.summary.image(tag, grid[None], max_outputs=1)

    def on_train_batch_end(self, batch, logs=None):
        if run_step(self.model) % self.every == 0 and not self.guard.diverged:
            self.write()


class PeriodicCheckpoint(keras.callbacks.Callback):
    """Saves a checkpoint every `every` steps (never after divergence)."""

    def __init__(self, store, every, guard):
        super().__init__()
        self.store = store
        self.every = every
        self.guard = guard

    def on_train_batch_end(self, batch, logs=None):
        step = run_step(self.model)
        if step % self.every == 0 and not self.guard.diverged:
            try:
                self.store.save(step)
            except NonFiniteWeightsError:
                # The loss was still finite but the update was not: stop here.
                self.guard.diverged = (step, "weights", float("nan"))
                self.model.stop_training = True
