"""`train(config)`: one GAN run from a TrainConfig, resumable and monitored.

A run directory (`config.logdir`) holds:
  config.json, run.json      the settings and what the data implied (classes)
  checkpoints/               the last `keep_checkpoints` checkpoints
  train/                     TensorBoard event files
  metrics.csv                the logged step metrics
  samples/step_<7-digit step>.png   fixed-noise sample grids
  eval.csv, best/            with --eval_every: FID/IS/KID and the best-FID checkpoint
A step is one generator update (n_critic discriminator updates for the
alternating methods).
"""

import dataclasses
import glob
import json
import os
import shutil
import sys
import tempfile
from typing import Optional

import keras
import tensorflow as tf

from tfklgan import callbacks as cb
from tfklgan import data as data_lib
from tfklgan.checkpoints import CheckpointStore
from tfklgan.config import ConfigError, TrainConfig
from tfklgan.evaluation import EvalConfig, EvaluationCallback, RealStatistics, feature_network_of
from tfklgan.export import data_record, export_generator
from tfklgan.feature_networks import default_classifier_path
from tfklgan.gan import GAN, group_critic_batches
from tfklgan.networks import NetworkConfig, build_networks
from tfklgan.objectives import build_objective
from tfklgan.optimizers import build_optimizers, set_learning_rates


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or inf; the message names the last good checkpoint."""


class RunDirectoryError(ValueError):
    """The run directory conflicts with the request (would lose or mix runs)."""


@dataclasses.dataclass
class TrainResult:
    step: int
    logdir: str
    checkpoint: Optional[str]
    sample_grid: Optional[str]
    export_dir: Optional[str]
    history: dict


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
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def network_config(config, num_classes):
    """The NetworkConfig of a TrainConfig: the fields both have, plus what is
    derived (channels, the objective's head, the data's classes)."""
    shared = {f.name: getattr(config, f.name) for f in dataclasses.fields(NetworkConfig)
              if hasattr(config, f.name)}
    head = build_objective(config.method, **config.objective_options()).head
    return NetworkConfig(**{**shared, "channels": config.resolved_channels(), "head": head,
                            "num_classes": num_classes})


def build_gan(config, num_classes=0):
    """The compiled GAN for a config, built in the current strategy scope."""
    objective = build_objective(config.method, **config.objective_options())
    networks = build_networks(config.resolved_network(), network_config(config, num_classes),
                              seed=config.seed)
    gan = GAN(networks, objective, n_critic=config.n_critic,
              generator_first=config.generator_first, ema_decay=config.ema_decay,
              seed=config.seed)
    g_optimizer, d_optimizer = build_optimizers(config)
    gan.compile(g_optimizer, d_optimizer, jit_compile=config.jit_compile,
                steps_per_execution=config.steps_per_execution)
    return gan


def settings_paths(logdir):
    """config.json of a run, and its copy beside the checkpoints (which keeps a
    run resumable when config.json is lost)."""
    return (os.path.join(logdir, "config.json"),
            os.path.join(logdir, "checkpoints", "config.json"))


def _check_logdir(config):
    """Refuses a run directory that would mix or overwrite runs; returns the
    changeable settings a resume changes ({name: [old, new]})."""
    has_checkpoints = os.path.isfile(os.path.join(config.logdir, "checkpoints", "checkpoint"))
    if config.resume:
        stored_path = next((p for p in settings_paths(config.logdir) if os.path.isfile(p)), None)
        if stored_path is None:
            if has_checkpoints:  # a run from before the settings copy, config.json lost
                print(f"warning: {config.logdir!r} has checkpoints but no stored settings; "
                      "resuming with the settings given, which cannot be checked",
                      file=sys.stderr)
                return {}
            raise RunDirectoryError(f"--resume: no run in {config.logdir!r} (no config.json "
                                    "and no checkpoints); drop --resume to start one")
        with open(stored_path) as handle:
            stored = TrainConfig.from_json(handle.read())
        diffs = config.differences(stored)
        if diffs:
            listed = ", ".join(f"{n}: {a!r} -> {b!r}" for n, a, b in diffs)
            raise RunDirectoryError(f"--resume: these settings differ from the run in "
                                    f"{config.logdir!r}: {listed}; use the run's settings "
                                    "or a new --logdir (a resume may change only "
                                    "learning rates, length, intervals, evaluation and "
                                    "outputs)")
        return config.changes(stored)
    if has_checkpoints or os.path.isfile(settings_paths(config.logdir)[0]):
        raise RunDirectoryError(f"{config.logdir!r} already holds a run; "
                                "pass --resume to continue it or choose a new --logdir "
                                "(nothing was overwritten)")
    return {}


def eval_config_of(config):
    kwargs = {"cache_dir": config.cache_dir} if config.cache_dir else {}
    return EvalConfig(feature_network=config.eval_feature_network,
                      inception_path=config.inception_path,
                      classifier_path=(config.classifier_path
                                       or default_classifier_path(config.dataset)),
                      num_samples=config.eval_samples, real_split=config.eval_split,
                      real_samples=config.eval_real_samples,
                      resize_filter=config.eval_resize_filter,
                      use_ema=config.eval_ema, seed=config.seed, **kwargs)


def _evaluation_setup(config):
    """Feature network and real statistics, loaded before training starts so
    that a missing Inception or a too-small split fails at once."""
    eval_config = eval_config_of(config)
    feature_network = feature_network_of(eval_config)
    real = RealStatistics(config.data_config(), eval_config, feature_network)
    return feature_network, real, eval_config


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
    changes = _check_logdir(config)
    previous_policy = keras.mixed_precision.global_policy().name
    previous_floatx = keras.config.floatx()
    if config.precision == "float64":
        keras.config.set_floatx("float64")
    keras.mixed_precision.set_global_policy(config.precision)
    try:
        return _train(config, extra_callbacks, changes)
    finally:
        keras.config.set_floatx(previous_floatx)
        keras.mixed_precision.set_global_policy(previous_policy)


def _write_run_info(config, start, changes, info):
    """run.json: what the data implied, and every resume (its step and the
    settings it changed)."""
    path = os.path.join(config.logdir, "run.json")
    resumes = []
    if config.resume and os.path.isfile(path):
        with open(path) as handle:
            resumes = json.load(handle).get("resumes", [])
        resumes.append({"step": start, "changed": changes})
    with open(path + ".tmp", "w") as handle:
        json.dump({**info, "resumes": resumes}, handle, indent=2)
    os.replace(path + ".tmp", path)


def is_chief(strategy):
    """Whether this process writes the run directory: always, but on the
    non-chief workers of a multi-worker cluster."""
    return bool(getattr(strategy.extended, "should_checkpoint", True))


def _train(config, extra_callbacks, changes):
    strategy = make_strategy(config.strategy, config.cpu_devices)
    if is_chief(strategy):
        return _train_in(config, config, strategy, extra_callbacks, changes)
    # A non-chief worker takes part in every collective, saves included, but
    # writes to a scratch folder of its own, removed at the end.
    scratch = tempfile.mkdtemp(prefix="tfklgan-worker-")
    try:
        local = dataclasses.replace(config, logdir=scratch,
                                    export_dir=config.export_dir and
                                    os.path.join(scratch, "export"))
        result = _train_in(config, local, strategy, extra_callbacks, changes)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return dataclasses.replace(result, logdir=config.logdir, checkpoint=None,
                               sample_grid=None, export_dir=None)


def _train_in(run_config, config, strategy, extra_callbacks, changes):
    """Trains the run of `run_config` (whose checkpoints it restores), writing
    to `config.logdir` (the run directory, or a worker's scratch folder)."""
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ConfigError(f"--batch_size={config.batch_size} does not divide over "
                          f"{replicas} replicas; use a multiple of {replicas}")
    train_data = data_lib.load_split(config.data_config("train"))
    conditional = config.conditional
    stream_kwargs = dict(labels=conditional, num_classes=train_data.num_classes,
                         dtype=tf.as_dtype(keras.config.floatx()))
    # Fail on unusable data before building anything.
    data_lib.batch_stream(train_data, config.batch_size, config.seed, **stream_kwargs)
    num_classes = train_data.num_classes if conditional else 0
    per_epoch = data_lib.batches_per_epoch(train_data, config.batch_size) // config.n_critic
    if per_epoch < 1:
        raise ConfigError(f"{len(train_data)} training images give no full step of "
                          f"{config.n_critic} x {config.batch_size} images; lower "
                          "--batch_size or --n_critic")
    total = config.steps or config.epochs * per_epoch
    evaluation = _evaluation_setup(config) if config.eval_every else None

    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        gan = build_gan(config, num_classes)
    store = CheckpointStore(gan, os.path.join(config.logdir, "checkpoints"),
                            config.keep_checkpoints,
                            restore_directory=os.path.join(run_config.logdir, "checkpoints"))
    for path in store.remove_partial_writes():
        print(f"removed {path}, left by an interrupted checkpoint write", file=sys.stderr)
    start = store.restore_latest() if config.resume else 0
    for path, why in store.skipped:
        print(f"warning: skipped damaged checkpoint {path} ({why}); resuming from step "
              f"{start}", file=sys.stderr)
    if config.resume and start >= total:
        print(f"the run in {config.logdir} is complete (step {start} of {total}); nothing "
              "to train. Raise --steps or --epochs to continue it.")
        grids = sorted(glob.glob(os.path.join(config.logdir, "samples", "step_*.png")))
        return TrainResult(start, config.logdir, store.latest, grids[-1] if grids else None,
                           config.export_dir if config.export_dir and
                           os.path.isdir(config.export_dir) else None, {})
    set_learning_rates(gan.g_optimizer, gan.d_optimizer, config)  # resumes may change them
    for path in settings_paths(config.logdir):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as handle:
            handle.write(config.to_json())
        os.replace(path + ".tmp", path)
    _write_run_info(config, start, changes, {
        "num_classes": num_classes,
        "class_names": list(train_data.class_names) if conditional else [],
        "train_examples": len(train_data), "replicas": replicas})

    writer = tf.summary.create_file_writer(os.path.join(config.logdir, "train"))
    guard = cb.NonFiniteGuard()
    samples = cb.SampleGrids(writer, os.path.join(config.logdir, "samples"),
                             config.sample_every, guard)
    callbacks = [
        guard,
        cb.MetricsLogger(writer, os.path.join(config.logdir, "metrics.csv"),
                         config.log_every, config.batch_size * config.n_critic, guard,
                         start_step=start),
        samples,
        cb.PeriodicCheckpoint(store, config.checkpoint_every, guard),
    ]
    if evaluation:
        feature_network, real, eval_config = evaluation
        callbacks.append(EvaluationCallback(
            config.eval_every, feature_network, real, eval_config, writer,
            os.path.join(config.logdir, "eval.csv"),
            CheckpointStore(gan, os.path.join(config.logdir, "best"), keep=1), guard,
            start_step=start))
    callbacks.extend(extra_callbacks)
    if config.verbose:
        callbacks.append(cb.ProgressBar(total_epochs=-(-total // per_epoch)))
    history = {}
    for epoch, steps in _segments(start, total, per_epoch):
        step = int(gan.g_optimizer.iterations.numpy())
        stream = data_lib.batch_stream(train_data, config.batch_size, config.seed,
                                       start_batch=step * config.n_critic, **stream_kwargs)
        stream = group_critic_batches(stream, config.n_critic)
        result = gan.fit(stream, epochs=epoch + 1, initial_epoch=epoch,
                         steps_per_epoch=steps, callbacks=callbacks, verbose=config.verbose,
                         shuffle=False)  # the stream is already shuffled
        for name, values in result.history.items():
            history.setdefault(name, []).extend(values)
        if guard.diverged:
            break
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
                                    f"stopped. {where}.")
    final_step = int(gan.g_optimizer.iterations.numpy())
    checkpoint = store.latest
    if checkpoint is None or not checkpoint.endswith(f"-{final_step}"):
        checkpoint = store.save(final_step)
    export_dir = None
    if config.export_dir:
        export_dir = export_generator(gan, config.export_dir,
                                      data=data_record(config.data_config()),
                                      class_names=train_data.class_names if conditional else ())
    return TrainResult(final_step, config.logdir, checkpoint, samples.last_path,
                       export_dir, history)


def load_run(logdir, checkpoint=None):
    """(gan, config, run info) of a run directory, restored from its newest
    (or the given) checkpoint. For sampling, export and evaluation."""
    config_path = next((p for p in settings_paths(logdir) if os.path.isfile(p)), None)
    if config_path is None:
        raise RunDirectoryError(f"{logdir!r} is not a tfklgan run directory (no config.json)")
    with open(config_path) as handle:
        config = TrainConfig.from_json(handle.read())
    with open(os.path.join(logdir, "run.json")) as handle:
        info = json.load(handle)
    if config.precision == "float64":  # the networks compute in float64 from here on
        keras.config.set_floatx("float64")
    gan = build_gan(dataclasses.replace(config, jit_compile=False), info["num_classes"])
    store = CheckpointStore(gan, os.path.join(logdir, "checkpoints"), config.keep_checkpoints)
    path = checkpoint or store.newest_readable()
    for skipped, why in store.skipped:
        print(f"warning: skipped damaged checkpoint {skipped} ({why})", file=sys.stderr)
    if path is None:
        raise RunDirectoryError(f"{logdir!r} has no checkpoint yet")
    store.checkpoint.restore(path).expect_partial()
    return gan, config, info
