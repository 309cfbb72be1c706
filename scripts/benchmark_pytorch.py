"""tfklgan's training step against the KL-GAN authors' step in PyTorch, timed alternately.

  pip install torch   # not a tfklgan dependency; only this script needs it
  python scripts/benchmark_pytorch.py --widths=32,128                  # KL-GAN with MBD
  python scripts/benchmark_pytorch.py --all_methods --widths=32,128    # every Table I cell

Speed targets are stated relative to a PyTorch implementation of the KL-GAN
authors' 32x32 networks and update rules on this machine class. The
machine's speed drifts by up to 30% within an hour, so the two are only
comparable side by side: each round times every cell in a fresh tfklgan
process, then in a fresh PyTorch process that never loads TensorFlow (with
TensorFlow merely loaded, PyTorch's step ran 3-4% slower; running both in
one process slowed the second by about 25%), for --rounds rounds. Per cell it prints each framework's median
images per second and its spread over the rounds (the largest distance of a
round from the median, relative to the median), the ratio of each round,
and the median of those ratios.

tfklgan runs each cell's own Table I flagfile (configs/table1) at the
benchmark's width and batch, float32. PyTorch runs the same networks
(parameter counts checked) with the authors' update rules: KL-GAN's joint
step (one backward pass of -SKL, G's gradients negated; their KL, which
takes the variance for the standard deviation); for the baselines one G
step with D frozen, then one D step on the G step's images (detached), real
and generated images through D separately, WGAN-GP's penalty with the norm
over the channel axis, R1 on the real images (gamma 10).
"""

import json
import os
import subprocess
import sys
import time

from absl import app, flags

# TensorFlow's C++ log lines (e.g. grappler's "remapper failed") stay hidden;
# TFKLGAN_VERBOSE=1 shows every line.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if os.environ.get("TFKLGAN_VERBOSE") else "3")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # reference/pytorch_gan.py: the PyTorch networks and update rules
# Table I's rows (tfklgan.benchmark.TABLE1_METHODS, which a test checks; not imported,
# as the PyTorch child must not load TensorFlow)
METHODS = ("klgan", "lsgan", "hinge", "wgan_gp", "r1gan")

flags.DEFINE_list("widths", ["32", "128"], "network widths")
flags.DEFINE_list("methods", ["klgan"], f"methods to time: {', '.join(METHODS)}")
flags.DEFINE_list("mbd", ["true"], "minibatch discrimination settings to time: true, false")
flags.DEFINE_bool("all_methods", False, "every Table I cell: all methods, without and with "
                  "minibatch discrimination (overrides --methods and --mbd)")
flags.DEFINE_integer("batch_size", 64, "batch size")
flags.DEFINE_integer("rounds", 5, "alternating rounds, each framework in a fresh process")
flags.DEFINE_integer("repeats", 5, "timings per cell and round (their median is the round's)")
flags.DEFINE_integer("steps", 3, "steps per timing")
flags.DEFINE_integer("warmup", 2, "untimed steps first")
flags.DEFINE_string("output", None, "also write the table here (Markdown)")
flags.DEFINE_enum("child", None, ["tfklgan", "pytorch"], "internal: time one framework")
FLAGS = flags.FLAGS


# ---------------------------------------------------------------- PyTorch side

def _count(params):
    return sum(int(p.numel()) for p in params)


def _median_seconds(run, repeats, steps, warmup):
    import numpy as np
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) / steps)
    return float(np.median(times))


def time_pytorch(method, mbd, width, batch_size, repeats, steps, warmup):
    """Median seconds per step of one cell in PyTorch; (G, D) parameter counts."""
    import torch

    from reference.pytorch_gan import build
    torch.manual_seed(0)
    generator, discriminator, step = build(method, mbd, width, batch_size)
    real = torch.rand(batch_size, 3, 32, 32) * 2.0 - 1.0

    def run():
        for _ in range(steps):
            step(real)

    seconds = _median_seconds(run, repeats, steps, warmup)
    return seconds, (_count(generator.parameters()), _count(discriminator.parameters()))


# ---------------------------------------------------------------- tfklgan side

def time_tfklgan(method, mbd, width, batch_size, repeats, steps, warmup):
    """Median seconds per step of one cell (the package's own benchmark of the
    cell's Table I settings); (G, D) parameter counts."""
    from tfklgan.benchmark import benchmark_step, table1_bench_config

    config = table1_bench_config(method, mbd, width, batch_size, root=ROOT)
    # The ceiling only scales the utilization, which is not reported here.
    result = benchmark_step(config, repeats, steps, warmup, ceiling=1.0)
    return result.step_seconds, result.parameters


# ---------------------------------------------------------------- orchestration

def _cells():
    if FLAGS.all_methods:
        return [(m, mbd) for m in METHODS for mbd in (False, True)]
    unknown = sorted(set(FLAGS.methods) - set(METHODS))
    if unknown:
        raise app.UsageError(f"unknown methods {unknown}; choose from {list(METHODS)}")
    settings = [s.lower() in ("1", "true", "on") for s in FLAGS.mbd]
    return [(m, mbd) for m in FLAGS.methods for mbd in settings]


def _child(framework, width, cells):
    timer = time_tfklgan if framework == "tfklgan" else time_pytorch
    results = []
    for method, mbd in cells:
        seconds, counts = timer(method, mbd, width, FLAGS.batch_size, FLAGS.repeats,
                                FLAGS.steps, FLAGS.warmup)
        results.append({"method": method, "mbd": mbd, "seconds": seconds, "params": counts})
    print(json.dumps(results))


def _in_child(framework, width, cells):
    """Times the cells in a fresh process of one framework; None with its error
    output if the process failed."""
    command = [sys.executable, __file__, f"--child={framework}", f"--widths={width}",
               f"--methods={','.join(dict.fromkeys(m for m, _ in cells))}",
               f"--mbd={','.join(sorted({str(mbd).lower() for _, mbd in cells}))}",
               f"--batch_size={FLAGS.batch_size}", f"--repeats={FLAGS.repeats}",
               f"--steps={FLAGS.steps}", f"--warmup={FLAGS.warmup}"]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        return None, proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    return {(r["method"], r["mbd"]): r for r in results}, None


def spread(values):
    """The largest distance of a value from the median, relative to the median."""
    import numpy as np
    median = float(np.median(values))
    return max(abs(v - median) for v in values) / median


def summary_rows(rates, batch_size):
    """Per cell: each framework's median img/s and spread, the ratio per round
    and its median. `rates[(cell, framework)]` = seconds per step, per round."""
    import numpy as np
    rows = []
    for cell in dict.fromkeys(c for c, _ in rates):
        ours = [batch_size / s for s in rates[(cell, "tfklgan")]]
        theirs = [batch_size / s for s in rates[(cell, "pytorch")]]
        ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
        rows.append({"cell": cell, "tfklgan": float(np.median(ours)), "tfklgan_spread":
                     spread(ours), "pytorch": float(np.median(theirs)),
                     "pytorch_spread": spread(theirs), "ratios": ratios,
                     "ratio": float(np.median(ratios))})
    return rows


def main(argv):
    del argv
    cells = _cells()
    if FLAGS.child == "pytorch":
        # No tfklgan here: TensorFlow loaded into the PyTorch process slows its
        # step by 3-4% (measured), though it never runs.
        _child("pytorch", int(FLAGS.widths[0]), cells)
        return 0
    from tfklgan.quiet import quiet_python_logs
    quiet_python_logs()
    import tfklgan  # noqa: F401  first: it sets TensorFlow's CPU kernel switch
    if FLAGS.child:
        _child(FLAGS.child, int(FLAGS.widths[0]), cells)
        return 0
    import importlib.util
    if importlib.util.find_spec("torch") is None:
        print("error: PyTorch is not installed; `pip install torch` (not a tfklgan "
              "dependency; only this comparison needs it)", file=sys.stderr)
        return 2

    from tfklgan.benchmark import onednn_enabled

    print(f"tfklgan with oneDNN {'on' if onednn_enabled() else 'off'}; {FLAGS.rounds} "
          f"alternating rounds, each the median of {FLAGS.repeats} timings of {FLAGS.steps} "
          f"steps; batch {FLAGS.batch_size}, float32", flush=True)
    header = ("| method | MBD | width | G params | D params | tfklgan img/s (spread) | "
              "PyTorch img/s (spread) | ratio per round | median ratio |")
    lines = [header, "|" + "---|" * 9]
    for width in (int(w) for w in FLAGS.widths):
        rates, params = {}, {}
        for round_index in range(FLAGS.rounds):
            for framework in ("tfklgan", "pytorch"):
                results, error = _in_child(framework, width, cells)
                if results is None:
                    print(f"error: the {framework} process failed (width {width}): "
                          f"{' '.join(error)}", file=sys.stderr)
                    return 1
                for cell in cells:
                    rates.setdefault((cell, framework), []).append(results[cell]["seconds"])
                    params[(cell, framework)] = tuple(results[cell]["params"])
            print(f"width {width}: round {round_index + 1} of {FLAGS.rounds} done", flush=True)
        for cell in cells:
            if params[(cell, "tfklgan")] != params[(cell, "pytorch")]:
                raise AssertionError(f"{cell}: parameter counts differ: tfklgan "
                                     f"{params[(cell, 'tfklgan')]}, PyTorch "
                                     f"{params[(cell, 'pytorch')]}")
        for row in summary_rows(rates, FLAGS.batch_size):
            (method, mbd), (g_params, d_params) = row["cell"], params[(row["cell"], "tfklgan")]
            lines.append(
                f"| {method} | {'on' if mbd else 'off'} | {width} | {g_params:,} | "
                f"{d_params:,} | {row['tfklgan']:.1f} (±{100 * row['tfklgan_spread']:.0f}%) | "
                f"{row['pytorch']:.1f} (±{100 * row['pytorch_spread']:.0f}%) | "
                f"{', '.join(f'{r:.2f}' for r in row['ratios'])} | {row['ratio']:.2f} |")
        print("\n".join(lines[-len(cells):]), flush=True)
    table = "\n".join(lines)
    print("\n" + table)
    if FLAGS.output:
        with open(FLAGS.output, "w") as handle:
            handle.write(table + "\n")
    return 0


if __name__ == "__main__":
    app.run(main)
