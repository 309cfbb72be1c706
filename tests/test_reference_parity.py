"""The reference-implementation study: its statistics, its refusals, and a
tiny study end to end (with a stand-in trainer where PyTorch is absent, with
the real PyTorch trainer where it is installed)."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from tfklgan.reproduce import parity
from tfklgan.reproduce.protocols import PROTOCOLS
from tfklgan.reproduce.stats import welch_difference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

try:
    import torch
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False


def test_welch_difference_matches_scipy_and_its_interval_covers_the_difference():
    a, b = [150.0, 115.0, 141.0, 130.0], [120.0, 98.0, 131.0]
    value, (low, high), p = welch_difference(a, b)
    assert value == pytest.approx(np.mean(a) - np.mean(b))
    assert p == pytest.approx(scipy.stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-12)
    result = scipy.stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (low, high) == pytest.approx((result.low, result.high), rel=1e-9)
    assert np.isnan(welch_difference([1.0], [2.0, 3.0])[0])


def test_verdict_in_words():
    """An interval that holds 0 shows no difference; it is not agreement (a
    difference of -174 FID with p 0.053 was once called agreement)."""
    assert parity.verdict((2.0, (-1.0, 5.0), 0.3)).startswith(
        "no difference shown at this number of seeds (the interval holds 0): +2")
    assert parity.verdict((-9.0, (-12.0, -6.0), 0.001)).startswith(
        "they differ: tfklgan - PyTorch = -9")
    assert parity.verdict((float("nan"), (float("nan"),) * 2, float("nan"))) == \
        "too few seeds to compare"


def test_a_cell_the_reference_does_not_implement_is_refused():
    study = parity.Study(parity.ParityOptions(root=ROOT))
    config = study.config("klgan", "with MBD", 1)
    assert "--mbd" in parity.torch_arguments(config) and "--d_lr=4e-05" in \
        parity.torch_arguments(config)
    with pytest.raises(ValueError, match="does not implement .*weight_decay"):
        parity.torch_arguments(config.replace(weight_decay=0.0))
    with pytest.raises(ValueError, match="frameworks must be some of"):
        parity.ParityOptions(frameworks=("tensorflow",))


def test_the_cpu_proxy_keeps_keras_eps_and_the_variant_takes_pytorchs():
    # the Table I flagfiles give the authors' placement; the CPU protocol keeps
    # the one its published runs were made with; the study's variant overrides it
    from tfklgan.cli import config_from_flagfile
    assert config_from_flagfile("configs/table1/r1gan.flags", ROOT).optimizer.adam_epsilon \
        == "torch"
    study = parity.Study(parity.ParityOptions(root=ROOT))
    assert study.config("r1gan", "without MBD", 1).optimizer.adam_epsilon == "keras"
    assert study.config("r1gan", "without MBD", 1,
                        "tfklgan_torch_eps").optimizer.adam_epsilon == "torch"


@pytest.fixture
def tiny_protocol(monkeypatch):
    tiny = dataclasses.replace(PROTOCOLS["cpu"]["klgan_table1"], width=4, steps=3,
                               eval_points=1, eval_samples=64, real_samples=128)
    monkeypatch.setitem(PROTOCOLS["cpu"], "klgan_table1", tiny)
    monkeypatch.setattr(parity, "CELLS", (("klgan", "with MBD"),))
    return tiny


@pytest.mark.slow
def test_a_tiny_study_trains_scores_reports_and_resumes(tmp_path, tiny_protocol):
    # A stand-in trainer that "generates" the training images themselves: its
    # samples are real digits, so its FID must be far below an untrained
    # tfklgan's, and the report must say the two differ.
    fake = tmp_path / "fake_trainer.py"
    fake.write_text(textwrap.dedent('''
        import sys, numpy as np
        args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if "=" in a)
        x = np.load(args["data"])["x"]
        rng = np.random.default_rng(int(args["seed"]))
        np.savez(args["out"], x=x[rng.permutation(len(x))[:int(args["num_samples"])]],
                 torch_version="stand-in")
    '''))
    options = parity.ParityOptions(results_dir=str(tmp_path), seeds=(1, 2), root=str(tmp_path),
                                   progress=False)
    os.makedirs(tmp_path / "reference")
    os.symlink(fake, tmp_path / "reference" / "pytorch_gan.py")
    os.symlink(os.path.join(ROOT, "configs"), tmp_path / "configs")
    records = parity.Study(options).run()
    assert len(records) == 6  # 2 seeds x (2 tfklgan variants + the trainer)
    out = tmp_path / "reference_parity"
    with np.load(out / "data" / "train-seed1.npz") as data:
        assert data["x"].dtype == np.uint8 and data["x"].shape == (4500, 32, 32, 1)
    fids = {r["framework"]: [] for r in records}
    for r in records:
        fids[r["framework"]].append(r["fid"])
        assert r["protocol"]["real"]["seed"] == r["seed"]  # the seed's own reference
        assert len(r["samples_sha256"]) == 64
    run = json.loads((out / "pytorch" / "runs" / "klgan-with_MBD-seed1" / "run.json").read_text())
    assert run["torch_version"] == "stand-in" and "ONEDNN_MAX_CPU_ISA" in run["environment"]
    assert max(fids["pytorch"]) < 0.5 * min(fids["tfklgan"] + fids["tfklgan_torch_eps"])
    for framework, placement in (("tfklgan", "keras"), ("tfklgan_torch_eps", "torch")):
        run = out / framework / "runs" / "klgan-with_MBD-seed1" / "config.json"
        assert json.loads(run.read_text())["optimizer"]["adam_epsilon"] == placement
    assert fids["tfklgan"] != fids["tfklgan_torch_eps"]  # the placement changed the runs
    report = (out / "README.md").read_text()
    for name in ("tfklgan (Keras' Adam eps)", "tfklgan (PyTorch's Adam eps)"):
        assert f"{name} (FID): they differ: tfklgan - PyTorch = +" in report
    assert "(n=2)" in report
    assert "## MBD's effect on KL-GAN in each framework" in report
    assert "- PyTorch: too few seeds" in report  # this study ran one of the two cells
    # finished runs are kept: a second call trains and scores nothing
    before = {p: os.path.getmtime(p) for p in out.rglob("*") if p.is_file()
              and p.name != "README.md" and p.name != "results.csv"}
    parity.Study(options).run()
    assert before == {p: os.path.getmtime(p) for p in before}


@pytest.mark.skipif(not HAVE_TORCH, reason="the reference trainer needs PyTorch "
                    "(pip install -e \".[reference]\")")
def test_the_pytorch_trainer_trains_on_the_images_and_writes_tfklgans_uint8(tmp_path):
    from reference import pytorch_gan
    from tfklgan.images import to_uint8
    images = np.random.default_rng(0).integers(0, 256, (100, 32, 32, 1), np.uint8)
    # each epoch a permutation of every image, the partial batch dropped, scaled as tfklgan
    stream = pytorch_gan.batches(images, 32, np.random.default_rng(1))
    epoch = np.concatenate([next(stream).permute(0, 2, 3, 1).numpy() for _ in range(3)])
    as_uint8 = np.round((epoch + 1.0) * 127.5).astype(np.uint8)
    assert len(np.unique(as_uint8.reshape(96, -1), axis=0)) == 96
    float_images = torch.linspace(-1.0, 1.0, 2 * 32 * 32 * 3).reshape(2, 3, 32, 32)
    np.testing.assert_array_equal(pytorch_gan.to_uint8(float_images),
                                  to_uint8(float_images.permute(0, 2, 3, 1).numpy()))
    np.savez(tmp_path / "train.npz", x=images)
    for method, extra in (("klgan", ["--mbd"]), ("r1gan", [])):
        out = tmp_path / f"{method}.npz"
        proc = subprocess.run([sys.executable, os.path.join(ROOT, "reference", "pytorch_gan.py"),
                               f"--data={tmp_path / 'train.npz'}", f"--method={method}",
                               *extra, "--steps=3", "--batch_size=16", "--width=4",
                               "--num_samples=10", f"--out={out}"],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        with np.load(out) as result:
            assert result["x"].shape == (10, 32, 32, 1) and result["x"].dtype == np.uint8
            assert len(result["loss"]) == 3 and np.all(np.isfinite(result["loss"]))
            assert len(set(result["loss"].tolist())) == 3  # the weights moved
    # ten images give no batch of 64: one line, exit 2, nothing written
    bad = subprocess.run([sys.executable, os.path.join(ROOT, "reference", "pytorch_gan.py"),
                          f"--data={tmp_path / 'klgan.npz'}", "--method=klgan",
                          f"--out={tmp_path / 'none.npz'}", "--steps=1"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: 10 images give no full batch of 64; lower --batch_size"]
    assert not (tmp_path / "none.npz").exists()


def test_the_reference_study_is_one_command_and_refuses_another_protocol():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "reproduce.py"),
                           "reference_parity"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "reference_parity runs the cpu protocol; add --protocol=cpu" in proc.stderr


# ------------------------------------------- one step, weight for weight

def _torch_weights(layer):
    """A Keras layer's (weight, bias) in PyTorch's layouts: Dense [out, in],
    convolutions [out, in, kh, kw], transposed convolutions [in, out, kh, kw]."""
    kernel, bias = (v.numpy() for v in layer.weights)
    if kernel.ndim == 4:  # Conv2D and SpaceToDepthConv2D [kh, kw, in, out];
        return kernel.transpose(3, 2, 0, 1), bias  # Conv2DTranspose [kh, kw, out, in]
    return (kernel.T if kernel.ndim == 2 else kernel), bias


def _copy_into_torch(gan, generator, discriminator):
    """tfklgan's weights into the reference's modules. The generator's first
    Dense feeds a reshape to [2, 2, 4w] (NHWC) where PyTorch views [4w, 2, 2]
    (NCHW): its outputs and the LayerNorm after it are permuted to match."""
    import torch
    layers = [layer for layer in gan.generator._flatten_layers(include_self=False)
              if layer.weights]
    latent, project, norm, *rest = layers
    generator.mu.data, generator.log_sigma.data = (torch.tensor(v.numpy())
                                                   for v in latent.weights)
    c = project.units // 4
    order = np.array([(h * 2 + x) * c + k for k in range(c) for h in range(2)
                      for x in range(2)])
    kernel, bias = (v.numpy() for v in project.weights)
    generator.project.weight.data = torch.tensor(kernel[:, order].T.copy())
    generator.project.bias.data = torch.tensor(bias[order])
    gamma, beta = (v.numpy() for v in norm.weights)
    generator.norm.weight.data, generator.norm.bias.data = (torch.tensor(gamma[order]),
                                                            torch.tensor(beta[order]))
    disc = gan.discriminator
    keras_layers = rest + [layer for layer in disc.trunk.layers if layer.weights] + (
        [disc.head] if disc.head is not None else [])
    modules = [m for m in [*generator.body.modules(), *discriminator.trunk.modules(),
                           discriminator.logit] if m is not None and
               list(m.parameters(recurse=False))]
    assert len(keras_layers) == len(modules)
    for layer, module in zip(keras_layers, modules, strict=True):
        weight, bias = _torch_weights(layer)
        assert tuple(module.weight.shape) == weight.shape, (layer.name, module)
        module.weight.data, module.bias.data = torch.tensor(weight.copy()), torch.tensor(bias)
    if disc.minibatch is not None:
        discriminator.mbd.data = torch.tensor(disc.minibatch.weights[0].numpy().reshape(
            discriminator.mbd.shape))


def _weight_deltas_after_steps(method, column, placement, monkeypatch, steps=3):
    """Trains tfklgan's cell (width 4) and the reference, started from the same
    weights, on the same batches and latents; returns the per-layer
    (tfklgan, PyTorch) weight changes of D's kernels and the two losses."""
    from reference import pytorch_gan
    from tfklgan.training import build_gan
    study = parity.Study(parity.ParityOptions(root=ROOT))
    config = study.config(method, column, 1).replace(width=4, adam_epsilon=placement)
    gan = build_gan(config)
    generator, discriminator, step = pytorch_gan.build(
        method, config.network.minibatch_discrimination, 4, 64, channels=1,
        g_lr=config.optimizer.g_lr, d_lr=config.optimizer.d_lr)
    _copy_into_torch(gan, generator, discriminator)
    latents = []
    draw = gan._latents_and_labels

    def recorded(*args):
        values = draw(*args)
        latents.append(values[0].numpy())
        return values
    kernels = [layer for layer in gan.discriminator.trunk.layers if layer.weights]
    before = [_torch_weights(layer)[0] for layer in kernels]
    modules = [m for m in discriminator.trunk.modules() if list(m.parameters(recurse=False))]
    images = np.random.default_rng(0).uniform(-1, 1, (steps, 64, 32, 32, 1)).astype(np.float32)
    loss_names = {"klgan": "skl", "r1gan": "d_loss"}
    losses = []
    with monkeypatch.context() as patch:  # the reference draws tfklgan's latents
        patch.setattr(gan, "_latents_and_labels", recorded)
        patch.setattr(torch, "randn", lambda *shape, **kw: torch.tensor(latents.pop(0)))
        for batch in images:
            gan.reset_metrics()
            logs = gan.train_step(tf.constant(batch))
            ours = float(logs[loss_names[method]]) + (
                config.objective.r1_gamma * float(logs["r1_penalty"])
                if method == "r1gan" else 0.0)
            losses.append((ours, step(torch.tensor(batch).permute(0, 3, 1, 2).contiguous())))
    deltas = [(_torch_weights(layer)[0] - w0, module.weight.detach().numpy() - w0)
              for layer, module, w0 in zip(kernels, modules, before, strict=True)]
    return deltas, losses


@pytest.mark.skipif(not HAVE_TORCH, reason="the reference trainer needs PyTorch "
                    "(pip install -e \".[reference]\")")
@pytest.mark.parametrize("method,column", [("klgan", "with MBD"), ("r1gan", "without MBD")])
def test_three_steps_equal_the_references_weight_for_weight(method, column, monkeypatch):
    # With PyTorch's placement of Adam's eps the losses agree to float32
    # rounding and all but a few weights move alike: a weight whose gradient
    # is rounding noise (|g| near eps) moves by about +-lr in either
    # framework, its sign set by the noise. With Keras' placement, R1-GAN's
    # first updates of weights with small gradients differ by a large part
    # of their size in several per cent of a layer.
    def differing(deltas):  # per D kernel: share of weights off by > 10% of its largest change
        return [float(np.mean(np.abs(ours - reference) > 0.1 * np.abs(reference).max()))
                for ours, reference in deltas]

    deltas, losses = _weight_deltas_after_steps(method, column, "torch", monkeypatch)
    for ours, reference in losses:
        assert ours == pytest.approx(reference, rel=1e-4)
    assert max(differing(deltas)) <= 0.01
    if method == "r1gan":
        deltas, _ = _weight_deltas_after_steps(method, column, "keras", monkeypatch)
        assert max(differing(deltas)) >= 0.02
