"""`train(config)`: one GAN run from a TrainConfig, resumable and monitored.

It writes a run directory (`config.run.logdir`; its layout, lock and
loading are `tfklgan.run_directory`'s). A step is one generator update (n_critic discriminator updates for the
alternating methods).
"""

import dataclasses
import glob
import json
import os
import shutil
import signal
import sys
import tempfile
from typing import Optional

import keras
import tensorflow as tf

from tfklgan import callbacks as cb
from tfklgan import data as data_lib
from tfklgan import warm_start
from tfklgan.checkpoints import CheckpointStore
from tfklgan.config import ConfigError
from tfklgan.evaluation.training import EvaluationCallback, evaluation_setup
from tfklgan.export import data_record, export_generator, export_version
from tfklgan.gan import GAN, group_critic_batches
from tfklgan.networks import build_networks
from tfklgan.optimizers import build_optimizers, set_learning_rates
from tfklgan.preemption import stop_on_signal
from tfklgan.run_directory import (
    check_logdir,
    run_lock,
    settings_paths,
    write_run_info,
)


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or inf at `step`; the message names the last good
    checkpoint, `checkpoint` (None where none had been written)."""

    def __init__(self, message, step=None, checkpoint=None):
        super().__init__(message)
        self.step, self.checkpoint = step, checkpoint


@dataclasses.dataclass
class TrainResult:
    step: int
    logdir: str
    checkpoint: Optional[str]
    sample_grid: Optional[str]
    export_dir: Optional[str]
    history: dict
    start_step: int = 0  # where this call began: > 0 when it resumed a run
    preempted: Optional[int] = None  # the stop signal's number when one ended training


def split_cpu(count):
    """Splits the CPU into `count` logical devices. TensorFlow allows this only
    before its runtime starts, which the scripts guarantee."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    if len(tf.config.get_logical_device_configuration(cpu) or ()) == count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        raise ConfigError(f"--cpu_devices={count}: TensorFlow has already started with "
                          f"{have} CPU device(s); split the CPU before anything else runs "
                          "(as scripts/train.py does)") from None


def make_strategy(name, cpu_devices=0):
    """The tf.distribute strategy for --strategy; `cpu_devices` > 1 first splits
    the CPU, and "mirrored" then mirrors over those devices when there is no GPU."""
    if cpu_devices > 1:
        split_cpu(cpu_devices)
    if name == "mirrored":
        if cpu_devices > 1 and not tf.config.list_physical_devices("GPU"):
            return tf.distribute.MirroredStrategy(
                [f"/cpu:{i}" for i in range(cpu_devices)])
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":  # reads the cluster from TF_CONFIG
        try:
            json.loads(os.environ.get("TF_CONFIG") or "{}")
        except ValueError as err:
            raise ConfigError(f"the environment variable TF_CONFIG is not valid JSON ({err}); "
                              'set it to {"cluster": {"worker": ["host:port", ...]}, "task": '
                              '{"type": "worker", "index": i}}') from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def build_gan(config, num_classes=0, ada_validation=None):
    """The compiled GAN for a config, built in the current strategy scope;
    `ada_validation`: held-out reals for ADA's r_v (`held_out_reals`)."""
    network = config.network_config(num_classes)
    networks = build_networks(network.name, network, seed=config.run.seed)
    gan = GAN(networks, config.objective.build(), n_critic=config.objective.n_critic,
              generator_first=config.objective.generator_first,
              reuse_generated=config.objective.reuse_generated,
              ema_decay=config.optimizer.ema_decay, seed=config.run.seed,
              augment_policy=config.objective.augment_transforms,
              ada=config.objective.ada_settings, ada_validation=ada_validation)
    g_optimizer, d_optimizer = build_optimizers(config.optimizer)
    gan.compile(g_optimizer, d_optimizer, jit_compile=config.run.jit_compile,
                steps_per_execution=config.run.steps_per_execution)
    return gan


def held_out_reals(config):
    """The validation split's images (uint8) where ADA measures overfitting on
    them (--ada_heuristic=rv), else None; a ConfigError naming the flag where
    the data have no validation split."""
    if config.objective.augment != "ada" or config.objective.ada_heuristic != "rv":
        return None
    try:
        return data_lib.load_split(config.data_config("validation")).images
    except ValueError as error:
        raise ConfigError(f"--ada_heuristic=rv needs held-out reals, and {error}; give the "
                          "data a validation split (--validation_fraction) or use "
                          "--ada_heuristic=rt") from None


def _segments(start, total, per_epoch):
    """(epoch, steps) chunks from step `start` to `total`, cut at epoch ends."""
    step = start
    while step < total:
        epoch, offset = divmod(step, per_epoch)
        steps = min(per_epoch - offset, total - step)
        yield epoch, steps
        step += steps


def train(config, extra_callbacks=()):
    """Trains as `config` says; returns a TrainResult.

    Raises ConfigError / ValueError for bad settings or data (before any
    training), RunDirectoryError when the logdir conflicts, and
    TrainingDivergedError when a loss turns NaN or inf (the last good
    checkpoint is kept and named).
    """
    config.validate()
    changes = check_logdir(config)
    previous_policy = keras.mixed_precision.global_policy().name
    previous_floatx = keras.config.floatx()
    if config.run.precision == "float64":
        keras.config.set_floatx("float64")
    keras.mixed_precision.set_global_policy(config.run.precision)
    try:
        return _train(config, extra_callbacks, changes)
    finally:
        keras.config.set_floatx(previous_floatx)
        keras.mixed_precision.set_global_policy(previous_policy)


def is_chief(strategy):
    """Whether this process writes the run directory: always, but on the
    non-chief workers of a multi-worker cluster."""
    return bool(getattr(strategy.extended, "should_checkpoint", True))


def _train(config, extra_callbacks, changes):
    strategy = make_strategy(config.run.strategy, config.run.cpu_devices)
    if is_chief(strategy):
        with run_lock(config.run.logdir):
            return _train_in(config, config, strategy, extra_callbacks, changes)
    # A non-chief worker takes part in every collective, saves included, but
    # writes to a scratch folder of its own, removed at the end.
    scratch = tempfile.mkdtemp(prefix="tfklgan-worker-")
    try:
        local = config.replace(logdir=scratch, export_dir=config.run.export_dir and
                               os.path.join(scratch, "export"))
        result = _train_in(config, local, strategy, extra_callbacks, changes)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return dataclasses.replace(result, logdir=config.run.logdir, checkpoint=None,
                               sample_grid=None, export_dir=None)


def _train_in(run_config, config, strategy, extra_callbacks, changes):
    """Trains the run of `run_config` (whose checkpoints it restores), writing
    to `config.run.logdir` (the run directory, or a worker's scratch folder)."""
    run, n_critic = config.run, config.objective.n_critic
    replicas = strategy.num_replicas_in_sync
    if run.batch_size % replicas:
        raise ConfigError(f"--batch_size={run.batch_size} does not divide over "
                          f"{replicas} replicas; use a multiple of {replicas}")
    train_data = data_lib.load_split(config.data_config("train"))
    conditional = config.conditional
    stream_kwargs = dict(labels=conditional, num_classes=train_data.num_classes,
                         dtype=tf.as_dtype(keras.config.floatx()))
    # Fail on unusable data before building anything.
    data_lib.batch_stream(train_data, run.batch_size, run.seed, **stream_kwargs)
    num_classes = train_data.num_classes if conditional else 0
    per_epoch = data_lib.batches_per_epoch(train_data, run.batch_size) // n_critic
    if per_epoch < 1:
        raise ConfigError(f"{len(train_data)} training images give no full step of "
                          f"{n_critic} x {run.batch_size} images; lower "
                          "--batch_size or --n_critic")
    total = run.steps or run.epochs * per_epoch
    evaluation = evaluation_setup(config) if config.evaluation.every else None

    keras.utils.set_random_seed(run.seed)
    with strategy.scope():
        gan = build_gan(config, num_classes, held_out_reals(config))
    store = CheckpointStore(gan, os.path.join(run.logdir, "checkpoints"),
                            run.keep_checkpoints,
                            restore_directory=os.path.join(run_config.run.logdir, "checkpoints"))
    for path in store.remove_partial_writes():
        print(f"removed {path}, left by an interrupted checkpoint write", file=sys.stderr)
    start = store.restore_latest() if run.resume else 0
    for path, why in store.skipped:
        print(f"warning: skipped damaged checkpoint {path} ({why}); resuming from step "
              f"{start}", file=sys.stderr)
    if run.resume and start >= total:
        print(f"the run in {run.logdir} is complete (step {start} of {total}); nothing "
              "to train. Raise --steps or --epochs to continue it.")
        grids = sorted(glob.glob(os.path.join(run.logdir, "samples", "step_*.png")))
        return TrainResult(start, run.logdir, store.latest, grids[-1] if grids else None,
                           run.export_dir and export_version(run.export_dir), {}, start)
    initialised = None
    if start == 0 and run.init_from:  # a new run from trained weights (not on resume)
        initialised = warm_start.initialise_from(gan, run.init_from)
        if "discriminator" not in initialised["networks"]:
            print(f"note: --init_from={run.init_from} is a generator export without D, so D "
                  "starts from fresh weights; start from its run directory, or an export "
                  "made with --discriminator, to bring D too", file=sys.stderr)
    # A resume may change the learning rates.
    set_learning_rates(gan.g_optimizer, gan.d_optimizer, config.optimizer)
    for path in settings_paths(run.logdir):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as handle:
            handle.write(config.to_json())
        os.replace(path + ".tmp", path)
    write_run_info(config, start, changes, {
        "num_classes": num_classes,
        "class_names": list(train_data.class_names) if conditional else [],
        "train_examples": len(train_data), "replicas": replicas,
        **({"init_from": initialised} if initialised else {})})

    writer = tf.summary.create_file_writer(os.path.join(run.logdir, "train"))
    guard = cb.NonFiniteGuard()
    samples = cb.SampleGrids(writer, os.path.join(run.logdir, "samples"),
                             run.sample_every, guard)
    metrics_logger = cb.MetricsLogger(writer, os.path.join(run.logdir, "metrics.csv"),
                                      run.log_every, run.batch_size * n_critic, guard,
                                      start_step=start)
    callbacks = [guard, metrics_logger, samples,
                 cb.PeriodicCheckpoint(store, run.checkpoint_every, guard)]
    if evaluation:
        feature_network, real, eval_config = evaluation
        callbacks.append(EvaluationCallback(
            config.evaluation.every, feature_network, real, eval_config, writer,
            os.path.join(run.logdir, "eval.csv"),
            CheckpointStore(gan, os.path.join(run.logdir, "best"), keep=1), guard,
            start_step=start))
    callbacks.extend(extra_callbacks)
    # last of the step callbacks: a stop signal saves once what the step wrote
    preemption = stop_on_signal(strategy, store, metrics_logger, guard)
    callbacks.append(preemption)
    if run.verbose:
        callbacks.append(cb.ProgressBar(total_epochs=-(-total // per_epoch)))
    history = {}
    with preemption.catching():  # from before the first step to the last write
        for epoch, steps in _segments(start, total, per_epoch):
            step = int(gan.g_optimizer.iterations.numpy())
            stream = data_lib.batch_stream(train_data, run.batch_size, run.seed,
                                           start_batch=step * n_critic, **stream_kwargs)
            stream = group_critic_batches(stream, n_critic)
            if preemption.stop_if_signalled(gan):  # a signal between two fits
                break
            result = gan.fit(stream, epochs=epoch + 1, initial_epoch=epoch,
                             steps_per_epoch=steps, callbacks=callbacks,
                             verbose=run.verbose, shuffle=False)  # the stream is shuffled
            for name, values in result.history.items():
                history.setdefault(name, []).extend(values)
            if guard.diverged or preemption.stopped:
                break
        if preemption.stopped:
            writer.close()
            step, signum = preemption.stopped
            return TrainResult(step, run.logdir, store.latest, samples.last_path, None,
                               history, start, preempted=signum)
        return _finish(config, gan, store, samples, writer, guard, preemption, history,
                       start, train_data.class_names if conditional else ())


def _finish(config, gan, store, samples, writer, guard, preemption, history, start,
            class_names):
    """After the last step: the final grid, checkpoint and export (a stop
    signal that comes now is noted; the run completes), or the divergence error."""
    run = config.run
    if not guard.diverged:
        samples.set_model(gan)
        samples.write()  # the final step's grid (once, whatever the interval)
    writer.close()

    if guard.diverged:
        step, name, value = guard.diverged
        kept = store.latest
        where = (f"the last good checkpoint, {kept}, is kept; resume from it with "
                 "--resume (and lower learning rates)" if kept else
                 "no checkpoint had been written yet")
        raise TrainingDivergedError(f"{name} became {value} at step {step}; training "
                                    f"stopped. {where}.", step=step, checkpoint=kept)
    final_step = int(gan.g_optimizer.iterations.numpy())
    checkpoint = store.latest
    if checkpoint is None or not checkpoint.endswith(f"-{final_step}"):
        checkpoint = store.save(final_step)
    export_dir = None
    if run.export_dir:
        export_dir = export_generator(gan, run.export_dir,
                                      data=data_record(config.data_config()),
                                      class_names=class_names)
    if preemption.received:
        print(f"note: {signal.Signals(preemption.received).name} came after the last "
              f"step ({final_step}); the run is complete, its checkpoint and export "
              "written", file=sys.stderr)
    return TrainResult(final_step, run.logdir, checkpoint, samples.last_path,
                       export_dir, history, start)
