"""The KL-GAN authors' 32x32 networks and update rules in PyTorch: a reference
implementation to train beside tfklgan and to time it against.

Not part of the tfklgan package and never imported by it (PyTorch is an
optional extra: `pip install -e ".[reference]"`); this module imports no
TensorFlow either, so a PyTorch process stays free of it.

    python reference/pytorch_gan.py --data=train.npz --method=klgan --mbd \\
        --d_lr=4e-5 --seed=1 --steps=2000 --num_samples=2000 --out=samples.npz

trains on the uint8 images `x` [n, H, W, C] of `--data` (scaled to [-1, 1] as
tfklgan's input pipeline scales them: x / 127.5 - 1), one epoch a fresh
permutation of the images drawn from the seed, the last partial batch
dropped; then writes `--num_samples` generated images as uint8 `x` (tfklgan's
rounding: round((x + 1) * 127.5), clipped) for tfklgan's evaluator.

The update rules: KL-GAN's joint step (one backward pass of -SKL, G's
gradients negated; their KL, which takes the variance for the standard
deviation); for the baselines one G step with D frozen, then one D step on
the G step's images (detached), real and generated images through D
separately, WGAN-GP's penalty with the norm over the channel axis, R1 on the
real images (gamma * E||grad||^2). AdamW with PyTorch's defaults (betas 0.9,
0.999, eps 1e-8, weight decay 0.01) and PyTorch's default initialisation.
"""

import argparse
import os
import sys
import time

import numpy as np

METHODS = ("klgan", "lsgan", "hinge", "wgan_gp", "r1gan")


def networks(width, mbd, logit, latent_dim=128, channels=3, feature_dim=8, mbd_kernels=8):
    """The authors' 32x32 generator and discriminator in PyTorch (NCHW); D with
    minibatch discrimination if `mbd` and a final Linear to one logit if `logit`."""
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
            self.mbd = nn.Parameter(torch.randn(feature_dim, mbd_kernels)) if mbd else None
            width_out = feature_dim + (mbd_kernels if mbd else 0)
            self.logit = nn.Linear(width_out, 1) if logit else None

        def tail(self, f):
            """Minibatch similarities within the batch `f` (kernel dimension 1,
            divided by n - 1), then the logit."""
            if self.mbd is not None:
                m = f @ self.mbd
                similarity = torch.exp(-(m[:, None] - m[None, :]).abs()).sum(1) - 1.0
                f = torch.cat([f, similarity / max(f.shape[0] - 1, 1)], 1)
            return f if self.logit is None else self.logit(f)

        def forward(self, x):
            return self.tail(self.trunk(x))

        def pair(self, real, fake):
            """KL-GAN: one trunk pass over both halves, the tail within each half."""
            features = self.trunk(torch.cat([real, fake]))
            return [self.tail(f) for f in features.split(real.shape[0])]

    return Generator(), Discriminator()


def klgan_step(generator, discriminator, batch_size, latent_dim=128, g_lr=8e-5, d_lr=8e-5,
               eps=1e-10):
    """The authors' joint KL-GAN update: one backward pass of -SKL, G's
    gradients negated; their KL takes the variance for the standard deviation.
    Returns step(real) -> SKL."""
    import torch

    d_opt = torch.optim.AdamW(discriminator.parameters(), lr=d_lr)
    g_opt = torch.optim.AdamW(generator.parameters(), lr=g_lr)

    def moments(f):
        mean = f.mean(0)
        return mean, ((f - mean) ** 2).mean(0) + eps  # used as a standard deviation

    def kl(mp, sp, mq, sq):  # KL(N(mp, sp^2) || N(mq, sq^2)), summed over features
        return (torch.log(sq / sp) + (sp ** 2 + (mp - mq) ** 2) / (2 * sq ** 2) - 0.5).sum()

    def step(real):
        fake = generator(torch.randn(batch_size, latent_dim))
        p, q = (moments(f) for f in discriminator.pair(real, fake))
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


def alternating_step(method, generator, discriminator, batch_size, latent_dim=128,
                     g_lr=8e-5, d_lr=8e-5, penalty_weight=10.0):
    """The authors' baseline update: a G step with D frozen, then a D step on the
    G step's images (detached), real and generated images through D separately.
    Returns step(real) -> D's loss."""
    import torch
    from torch.nn import functional

    d_opt = torch.optim.AdamW(discriminator.parameters(), lr=d_lr)
    g_opt = torch.optim.AdamW(generator.parameters(), lr=g_lr)
    d_params = list(discriminator.parameters())

    if method == "lsgan":  # the authors' labels: real 0, generated 1
        def g_loss(gen):
            return (gen ** 2).mean()

        def d_loss(real, gen):
            return (real ** 2).mean() + ((gen - 1.0) ** 2).mean()
    elif method == "wgan_gp":
        def g_loss(gen):
            return -gen.mean()

        def d_loss(real, gen):
            return gen.mean() - real.mean()
    else:  # hinge, r1gan
        def g_loss(gen):
            return -gen.mean()

        def d_loss(real, gen):
            return functional.relu(1.0 - real).mean() + functional.relu(1.0 + gen).mean()

    def input_gradients(images):
        images = images.detach().requires_grad_(True)
        return torch.autograd.grad(discriminator(images).sum(), images, create_graph=True)[0]

    def step(real):
        for param in d_params:
            param.requires_grad_(False)
        fake = generator(torch.randn(batch_size, latent_dim))
        g_opt.zero_grad(set_to_none=True)
        g_loss(discriminator(fake)).backward()
        g_opt.step()
        for param in d_params:
            param.requires_grad_(True)
        fake = fake.detach()
        loss = d_loss(discriminator(real), discriminator(fake))
        if method == "wgan_gp":  # the gradient's norm over the channel axis, per pixel
            alpha = torch.rand(batch_size, 1, 1, 1)
            grads = input_gradients(alpha * real + (1.0 - alpha) * fake)
            loss = loss + penalty_weight * ((grads.norm(2, dim=1) - 1.0) ** 2).mean()
        if method == "r1gan":
            grads = input_gradients(real)
            loss = loss + penalty_weight * grads.pow(2).sum(dim=(1, 2, 3)).mean()
        d_opt.zero_grad(set_to_none=True)
        loss.backward()
        d_opt.step()
        return float(loss.detach())

    return step


def build(method, mbd, width, batch_size, latent_dim=128, channels=3, g_lr=8e-5, d_lr=8e-5):
    """(generator, discriminator, step) of one Table I cell."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {list(METHODS)}")
    generator, discriminator = networks(width, mbd, logit=method != "klgan",
                                        latent_dim=latent_dim, channels=channels)
    if method == "klgan":
        step = klgan_step(generator, discriminator, batch_size, latent_dim, g_lr, d_lr)
    else:
        step = alternating_step(method, generator, discriminator, batch_size, latent_dim,
                                g_lr, d_lr)
    return generator, discriminator, step


def batches(images, batch_size, rng):
    """Endless float32 NCHW batches in [-1, 1] of uint8 NHWC `images`: each
    epoch a fresh permutation, the last partial batch dropped."""
    import torch
    per_epoch = len(images) // batch_size
    if per_epoch < 1:
        raise ValueError(f"{len(images)} images give no full batch of {batch_size}; "
                         "lower --batch_size")
    while True:
        order = rng.permutation(len(images))
        for index in range(per_epoch):
            chosen = images[order[index * batch_size:(index + 1) * batch_size]]
            yield torch.from_numpy(chosen.astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2)


def to_uint8(images):
    """Float NCHW images in [-1, 1] -> uint8 NHWC, rounded as tfklgan rounds."""
    array = images.permute(0, 2, 3, 1).detach().numpy().astype(np.float64)
    return np.clip(np.round((array + 1.0) * 127.5), 0, 255).astype(np.uint8)


def sample(generator, count, latent_dim=128, batch_size=200):
    """`count` uint8 NHWC samples of `generator` (latents from torch's RNG)."""
    import torch
    out = []
    with torch.no_grad():
        for start in range(0, count, batch_size):
            size = min(batch_size, count - start)
            out.append(to_uint8(generator(torch.randn(size, latent_dim))))
    return np.concatenate(out)


def train(images, method, mbd, seed, steps, batch_size=64, width=16, latent_dim=128,
          g_lr=8e-5, d_lr=8e-5, log_every=0):
    """Trains one cell on uint8 NHWC `images`; returns (generator, [(step, loss)])."""
    import torch
    torch.manual_seed(seed)
    generator, _, step = build(method, mbd, width, batch_size, latent_dim, images.shape[-1],
                               g_lr, d_lr)
    stream = batches(images, batch_size, np.random.default_rng(seed))
    losses = []
    started = time.time()
    for index in range(1, steps + 1):
        loss = step(next(stream))
        if not np.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss} at step {index}")
        losses.append((index, loss))
        if log_every and index % log_every == 0:
            print(f"step {index} of {steps}: loss {loss:.4f} ({time.time() - started:.0f} s)",
                  file=sys.stderr, flush=True)
    return generator, losses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="npz with uint8 images x [n, H, W, C]")
    parser.add_argument("--method", required=True, choices=METHODS)
    parser.add_argument("--mbd", action="store_true", help="minibatch discrimination")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--latent_dim", type=int, default=128)
    parser.add_argument("--g_lr", type=float, default=8e-5)
    parser.add_argument("--d_lr", type=float, default=8e-5)
    parser.add_argument("--num_samples", type=int, default=2000)
    parser.add_argument("--log_every", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    parser.add_argument("--out", required=True, help="npz to write the samples to (x, uint8)")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("error: PyTorch is not installed; pip install -e \".[reference]\"",
              file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    with np.load(args.data) as arrays:
        if "x" not in arrays or arrays["x"].dtype != np.uint8 or arrays["x"].ndim != 4:
            print(f"error: {args.data} holds no uint8 images x [n, H, W, C]", file=sys.stderr)
            return 2
        images = arrays["x"]
    if len(images) < args.batch_size:
        print(f"error: {len(images)} images give no full batch of {args.batch_size}; lower "
              "--batch_size", file=sys.stderr)
        return 2
    started = time.time()
    generator, losses = train(images, args.method, args.mbd, args.seed, args.steps,
                              args.batch_size, args.width, args.latent_dim, args.g_lr,
                              args.d_lr, args.log_every)
    seconds = time.time() - started
    x = sample(generator, args.num_samples, args.latent_dim)
    np.savez(args.out + ".tmp.npz", x=x, loss=np.array([v for _, v in losses]),
             train_seconds=seconds, torch_version=torch.__version__)
    os.replace(args.out + ".tmp.npz", args.out)
    print(f"done: {args.steps} steps in {seconds:.0f} s; {len(x)} samples in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
