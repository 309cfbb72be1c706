"""Training-step throughput: generated images per second, FLOPs and utilization.

  python scripts/benchmark.py --methods=klgan --widths=32,128 --batch_size=64 --jit=false,true

For each method x width x jit setting: the median images per second over
--repeats timings of --steps steps after --warmup steps; FLOPs per step from
TensorFlow's profiler; achieved GFLOP/s; this machine's float32 matmul
GFLOP/s (measured in the same run) as the ceiling; their ratio; and the
fraction of step time spent waiting for input data. Results are printed as a
Markdown table (and written to --output).
"""

import os

from absl import app, flags

# TensorFlow's C++ log lines (e.g. grappler's "remapper failed") stay hidden;
# TFKLGAN_VERBOSE=1 shows every line.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if os.environ.get("TFKLGAN_VERBOSE") else "3")

flags.DEFINE_list("methods", ["klgan"], "methods to time")
flags.DEFINE_list("widths", ["32"], "network widths")
flags.DEFINE_list("jit", ["false"], "jit settings to try: false, true")
flags.DEFINE_string("network", "", "network (default: by image size)")
flags.DEFINE_integer("image_size", 32, "image size")
flags.DEFINE_integer("batch_size", 64, "batch size")
flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16"], "precision")
flags.DEFINE_bool("minibatch_discrimination", True, "minibatch discrimination on")
flags.DEFINE_string("dataset", "mnist_sample", "input data")
flags.DEFINE_integer("repeats", 5, "timings (the median is reported)")
flags.DEFINE_integer("steps", 5, "steps per timing")
flags.DEFINE_integer("warmup", 3, "untimed steps first")
flags.DEFINE_string("output", None, "also write the table here")
flags.DEFINE_bool("layers", False, "instead of whole steps, time SpaceToDepthConv2D against "
                  "the Keras Conv2D it replaces (klgan32 discriminator shapes, each width)")
flags.DEFINE_bool("evaluation", False, "instead of training steps, time a full evaluation "
                  "(10,000 generated vs 10,000 real, shipped MNIST classifier: IS, FID, KID, "
                  "precision/recall, density/coverage) and Inception-shaped features per 1,000")
flags.DEFINE_integer("eval_images", 10_000, "images per side for --evaluation")
flags.DEFINE_bool("loop", False, "instead of the bare step, time scripts/train.py's whole "
                  "loop (callbacks included) at the Table I CPU-proxy settings of each "
                  "--methods cell (--minibatch_discrimination), logging every 10 steps, "
                  "with sample grids and checkpoints every --loop_every steps, against the "
                  "bare step; each callback's cost by turning it off")
flags.DEFINE_integer("loop_steps", 800, "steps per loop timing (--loop)")
flags.DEFINE_integer("loop_every", 400, "sample-grid and checkpoint interval (--loop; the "
                     "proxy's)")
flags.DEFINE_integer("loop_rounds", 3, "rounds of the loop variants, in turn (--loop)")
flags.DEFINE_integer("decode", 0, "instead of training steps, time the first run on N "
                     "synthetic CelebA-sized JPEGs (decode, resize, cache) at 32 and 64")
FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv):
    from tfklgan.quiet import quiet_python_logs
    quiet_python_logs()
    del argv
    from tfklgan.benchmark import (
        bench_config,
        benchmark_step,
        compare_layers,
        layer_table,
        markdown_table,
        matmul_ceiling,
        precision_dtype,
    )
    if FLAGS.decode:
        import json
        import tempfile

        from tfklgan.benchmark import benchmark_celeba_decode, write_celeba_like_folder
        root = write_celeba_like_folder(tempfile.mkdtemp(), FLAGS.decode)
        print(json.dumps({f"{size}px {resize}": benchmark_celeba_decode(root, size, resize)
                          for size, resize in ((32, "authors"), (64, "center_crop"))},
                         indent=2))
        return 0
    if FLAGS.evaluation:
        import json

        from tfklgan.benchmark import benchmark_evaluation, benchmark_inception_standin
        print(json.dumps({"evaluation": benchmark_evaluation(FLAGS.eval_images),
                          "inception_standin": benchmark_inception_standin()}, indent=2))
        return 0
    if FLAGS.loop:
        from tfklgan.benchmark import benchmark_loop, loop_table
        from tfklgan.reproduce import TABLES, ReproduceOptions, cell_config
        options = ReproduceOptions(protocol="cpu", root=ROOT)
        column = "with MBD" if FLAGS.minibatch_discrimination else "without MBD"
        for method in FLAGS.methods:
            cell = next(c for c in TABLES["klgan_table1"].cells
                        if c.method == method and c.column == column)
            config = cell_config(cell, 1, options, "runs/loop-benchmark", "klgan_table1")
            rates = benchmark_loop(config.replace(log_every=10), FLAGS.loop_steps,
                                   every=FLAGS.loop_every, rounds=FLAGS.loop_rounds)
            print(f"\n{method}, {column}, Table I CPU proxy (width {config.network.width}, "
                  f"batch {config.run.batch_size}), {FLAGS.loop_steps} steps:")
            print(loop_table(rates), flush=True)
        return 0
    if FLAGS.layers:
        for width in FLAGS.widths:
            print(f"\nwidth {width}, batch {FLAGS.batch_size}:")
            print(layer_table(compare_layers(int(width), FLAGS.batch_size, FLAGS.repeats)))
        return 0
    ceiling = matmul_ceiling(precision_dtype(FLAGS.precision))
    print(f"ceiling: {ceiling.text()}", flush=True)
    results = []
    for method in FLAGS.methods:
        for width in FLAGS.widths:
            for jit in FLAGS.jit:
                config = bench_config(method, int(width), FLAGS.batch_size, FLAGS.precision,
                                      jit.lower() in ("1", "true", "on"),
                                      FLAGS.minibatch_discrimination, network=FLAGS.network,
                                      dataset=FLAGS.dataset, image_size=FLAGS.image_size)
                results.append(benchmark_step(config, FLAGS.repeats, FLAGS.steps,
                                              FLAGS.warmup, ceiling.best))
                print(markdown_table(results[-1:]).splitlines()[-1], flush=True)
    table = markdown_table(results)
    print("\n" + table)
    print("\nFLOPs: TensorFlow profiler on the step graph (forward + backward). "
          f"Ceiling: the best {ceiling.text()} in this process.")
    if FLAGS.output:
        with open(FLAGS.output, "w") as handle:
            handle.write(table + "\n")
    return 0


if __name__ == "__main__":
    app.run(main)
