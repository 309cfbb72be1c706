"""tfklgan's KL-GAN step against the same step in PyTorch, timed alternately.

  pip install torch   # not a tfklgan dependency; only this script needs it
  python scripts/benchmark_pytorch.py --widths=32,128

The issue's speed targets are stated relative to a PyTorch implementation
of the authors' 32x32 networks on this machine class. The machine's speed
drifts by up to 30% within an hour, so the two are only comparable when
timed side by side: this script times the step in each framework (same
networks, checked by parameter count; KL-GAN with minibatch discrimination,
batch 64, float32, AdamW, one joint backward pass with G's gradients
negated), alternating fresh processes for --rounds rounds, and prints the
median images per second of each and their ratio.
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

flags.DEFINE_list("widths", ["32", "128"], "network widths")
flags.DEFINE_integer("batch_size", 64, "batch size")
flags.DEFINE_integer("rounds", 3, "alternating runs of each framework, each in a fresh process")
flags.DEFINE_integer("repeats", 5, "timings per run (the median over all runs is reported)")
flags.DEFINE_integer("steps", 3, "steps per timing")
flags.DEFINE_integer("warmup", 2, "untimed steps first")
flags.DEFINE_enum("child", None, ["tfklgan", "pytorch"], "internal: time one framework")
FLAGS = flags.FLAGS


def torch_klgan32(width, latent_dim=128, channels=3, feature_dim=8, mbd_kernels=8):
    """The authors' 32x32 generator and discriminator (+ MBD) in PyTorch (NCHW)."""
    import torch
    from torch import nn

    w = width

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.mu = nn.Parameter(torch.zeros(latent_dim))
            self.log_sigma = nn.Parameter(torch.zeros(latent_dim))
            self.project = nn.Linear(latent_dim, 16 * w)
            self.norm = nn.LayerNorm(16 * w)
            layers = [nn.Upsample(scale_factor=2, mode="nearest"),
                      nn.Conv2d(4 * w, 2 * w, 3, padding=1), nn.Mish()]
            for c_in, c_out, kernel, stride, padding in ((2 * w, 2 * w, 5, 1, 0),
                                                         (2 * w, 2 * w, 4, 2, 1),
                                                         (2 * w, w, 4, 2, 1)):
                layers += [nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding), nn.Mish(),
                           nn.InstanceNorm2d(c_out, affine=True),
                           nn.Conv2d(c_out, c_out, 3, padding=1), nn.Mish()]
            layers += [nn.Conv2d(w, channels, 3, padding=1), nn.Tanh()]
            self.body = nn.Sequential(*layers)

        def forward(self, eps):
            z = self.mu + torch.exp(self.log_sigma) * eps
            x = self.norm(nn.functional.mish(self.project(z)))
            return self.body(x.view(-1, 4 * w, 2, 2))

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            layers = []
            for c_in, c_out in ((channels, w), (w, 2 * w), (2 * w, 4 * w)):
                layers += [nn.Conv2d(c_in, c_out, 5, 2, 2), nn.LeakyReLU(0.2)]
            for c_in, c_out in ((4 * w, 8 * w), (8 * w, 16 * w)):
                layers += [nn.Conv2d(c_in, c_out, 2, 2), nn.LeakyReLU(0.2)]
            layers += [nn.Flatten(), nn.Linear(16 * w, feature_dim)]
            self.trunk = nn.Sequential(*layers)
            self.mbd = nn.Parameter(torch.randn(feature_dim, mbd_kernels))

        def minibatch(self, f):
            m = f @ self.mbd  # [n, B], kernel dimension 1
            similarity = torch.exp(-(m[:, None] - m[None, :]).abs()).sum(1) - 1.0
            return torch.cat([f, similarity / max(f.shape[0] - 1, 1)], 1)

        def pair(self, real, fake):
            features = self.trunk(torch.cat([real, fake]))
            return [self.minibatch(f) for f in features.split(real.shape[0])]

    return Generator(), Discriminator()


def torch_step(generator, discriminator, batch_size, latent_dim=128):
    """One joint KL-GAN update (docs/reference.md §1), as `GAN._joint_step` does it."""
    import torch

    d_opt = torch.optim.AdamW(discriminator.parameters(), lr=8e-5)
    g_opt = torch.optim.AdamW(generator.parameters(), lr=8e-5)

    def moments(f):
        mean = f.mean(0)
        return mean, ((f - mean) ** 2).mean(0) + 1e-10

    def kl(mp, vp, mq, vq):
        return 0.5 * (torch.log(vq / vp) + (vp + (mp - mq) ** 2) / vq - 1.0).sum()

    def step(real):
        fake = generator(torch.randn(batch_size, latent_dim))
        real_f, gen_f = discriminator.pair(real, fake)
        p, q = moments(real_f), moments(gen_f)
        skl = 0.5 * (torch.log1p(kl(*p, *q)) + torch.log1p(kl(*q, *p)))
        d_opt.zero_grad(set_to_none=True)
        g_opt.zero_grad(set_to_none=True)
        (-skl).backward()
        for param in generator.parameters():
            param.grad.neg_()
        d_opt.step()
        g_opt.step()
        return float(skl.detach())

    return step


def _count(params):
    return sum(int(p.numel()) for p in params)


def _time(run, repeats, steps, warmup):
    import numpy as np
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) / steps)
    return float(np.median(times))


def time_tfklgan(width, batch_size, repeats, steps, warmup):
    """Median seconds per KL-GAN step (the package's own benchmark); (G, D) parameter counts."""
    from tfklgan.benchmark import bench_config, benchmark_step

    config = bench_config("klgan", width, batch_size, "float32", False, True)
    # The ceiling only scales the utilization, which is not reported here.
    result = benchmark_step(config, repeats, steps, warmup, ceiling=1.0)
    return result.step_seconds, result.parameters


def time_pytorch(width, batch_size, repeats, steps, warmup):
    """Median seconds per KL-GAN step in PyTorch; (G, D) parameter counts."""
    import torch
    torch.manual_seed(0)
    generator, discriminator = torch_klgan32(width)
    step = torch_step(generator, discriminator, batch_size)
    real = torch.rand(batch_size, 3, 32, 32) * 2.0 - 1.0

    def run():
        for _ in range(steps):
            step(real)

    seconds = _time(run, repeats, steps, warmup)
    return seconds, (_count(generator.parameters()), _count(discriminator.parameters()))


def _child(framework, width):
    timer = time_tfklgan if framework == "tfklgan" else time_pytorch
    seconds, counts = timer(width, FLAGS.batch_size, FLAGS.repeats, FLAGS.steps, FLAGS.warmup)
    print(json.dumps({"seconds": seconds, "params": counts}))


def _in_child(framework, width):
    """Times one framework in a fresh process: in one process the framework
    loaded second ran 25% slower (probably because both bundle oneDNN)."""
    command = [sys.executable, __file__, f"--child={framework}", f"--widths={width}",
               f"--batch_size={FLAGS.batch_size}", f"--repeats={FLAGS.repeats}",
               f"--steps={FLAGS.steps}", f"--warmup={FLAGS.warmup}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv):
    from tfklgan.quiet import quiet_python_logs
    quiet_python_logs()
    del argv
    import tfklgan  # noqa: F401  first: it sets TensorFlow's CPU kernel switch
    if FLAGS.child:
        _child(FLAGS.child, int(FLAGS.widths[0]))
        return 0
    import importlib.util
    if importlib.util.find_spec("torch") is None:
        print("error: PyTorch is not installed; `pip install torch` (not a tfklgan "
              "dependency; only this comparison needs it)", file=sys.stderr)
        return 2
    import numpy as np

    from tfklgan.benchmark import onednn_enabled

    print(f"tfklgan with oneDNN {'on' if onednn_enabled() else 'off'}; "
          f"{FLAGS.rounds} alternating rounds of {FLAGS.repeats} timings each")
    print("| width | G params | D params | tfklgan img/s | PyTorch img/s | ratio |")
    print("|---|---|---|---|---|---|")
    for width in FLAGS.widths:
        seconds = {"tfklgan": [], "pytorch": []}
        params = {}
        for _ in range(FLAGS.rounds):
            for framework in seconds:
                result = _in_child(framework, int(width))
                seconds[framework].append(result["seconds"])
                params[framework] = tuple(result["params"])
        if params["tfklgan"] != params["pytorch"]:
            raise AssertionError(f"parameter counts differ: {params}; the networks "
                                 "are not the same")
        rates = {name: FLAGS.batch_size / float(np.median(s)) for name, s in seconds.items()}
        g_params, d_params = params["tfklgan"]
        print(f"| {width} | {g_params:,} | {d_params:,} | {rates['tfklgan']:.1f} | "
              f"{rates['pytorch']:.1f} | {rates['tfklgan'] / rates['pytorch']:.2f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    app.run(main)
