"""ADA (tfklgan.ada): each transform against its closed form, the gates and
the parameters' distributions, the controller, and training with it."""

import math
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from tfklgan import ada


def _images(n=4, size=8, channels=3, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (n, size, size, channels)),
                       tf.float32)


def _draws(n, set_columns, fill=0.0):
    """Draws [n, ALL_DRAWS] of `fill`, with {transform: [column values]}: each
    value a number or an [n] array, the gate first."""
    draws = np.full((n, ada.ALL_DRAWS), fill, np.float64)
    start = 0
    for name, count in ada.DRAWS.items():
        for k, value in enumerate(set_columns.get(name, ())):
            draws[:, start + k] = value
        start += count
    return tf.constant(draws, tf.float32)


def test_at_p_0_every_pipeline_is_the_identity():
    images = _images()
    draws = tf.constant(np.random.default_rng(1).uniform(size=(4, ada.ALL_DRAWS)), tf.float32)
    for pipeline in ("bgc", "blit", "geom", "color", "bgc,cutout"):
        out = ada.augment(images, draws, 0.0, ada.parse_pipeline(pipeline))
        np.testing.assert_array_equal(out, images)


def test_pixel_blitting_is_exact():
    images = _images()
    x = images.numpy()
    flipped = ada.augment(images, _draws(4, {"xflip": [0.0, 0.9]}), 1.0, ("xflip",))
    np.testing.assert_array_equal(flipped, x[:, :, ::-1])
    kept = ada.augment(images, _draws(4, {"xflip": [0.0, 0.2]}), 1.0, ("xflip",))
    np.testing.assert_array_equal(kept, x)
    for quarter in range(4):
        turned = ada.augment(images, _draws(4, {"rotate90": [0.0, (quarter + 0.5) / 4]}), 1.0,
                             ("rotate90",))
        np.testing.assert_array_equal(turned, np.rot90(x, quarter, axes=(1, 2)))
    # integer translation by +1 column (u = 0.95: 0.9 of the 1/8 range of 8 pixels,
    # rounded), the vacated column reflected from the image, as tf.pad's REFLECT
    shifted = ada.augment(images, _draws(4, {"xint": [0.0, 0.95, 0.5]}), 1.0,
                          ("xint",)).numpy()
    padded = np.pad(x, [(0, 0), (0, 0), (1, 0), (0, 0)], mode="reflect")
    np.testing.assert_array_equal(shifted, padded[:, :, :8])


def test_scaling_and_rotation_compose_the_papers_matrices():
    n = 3
    u = np.array([0.2, 0.5, 0.9])
    params = ada.draw_parameters(_draws(n, {"scale": [0.0, u]}), 1.0, ("scale",), 8, 8)
    from scipy.special import ndtri
    s = 2.0 ** (ndtri(u) * ada.SCALE_STD)
    expected = np.stack([np.diag([1 / v, 1 / v, 1.0]) for v in s])
    np.testing.assert_allclose(params.g_inv, expected, rtol=1e-5)
    # a rotation by theta before the anisotropic scaling (the post rotation shut)
    theta = (u * 2 - 1) * math.pi
    params = ada.draw_parameters(_draws(n, {"rotate": [0.0, u, 1.0, 0.5]}), 1.0,
                                 ("rotate",), 8, 8)
    rot = np.stack([[[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0],
                     [0, 0, 1]] for t in theta])
    np.testing.assert_allclose(params.g_inv, rot, atol=1e-6)
    # the bilinear resampling at a known matrix: scale 2 samples pixel x/2 about the centre
    ramp = tf.constant(np.tile(np.arange(8.0), (8, 1))[None, :, :, None], tf.float32)
    half = ada.resample(ramp, tf.constant(np.diag([0.5, 1.0, 1.0])[None], tf.float32))
    np.testing.assert_allclose(half[0, 0, :, 0], 3.5 + (np.arange(8) - 3.5) / 2, atol=1e-6)


def test_the_colour_matrix_on_known_pixels():
    grey = tf.constant(np.full((1, 2, 2, 1), 0.25), tf.float32)
    # brightness b, contrast c, luma flip: 0.25 -> c * 0.25 + ... in the paper's order
    u_b, u_c = 0.7, 0.3
    from scipy.special import ndtri
    b, c = ndtri(u_b) * ada.BRIGHTNESS_STD, 2 ** (ndtri(u_c) * ada.CONTRAST_STD)
    out = ada.augment(grey, _draws(1, {"brightness": [0.0, u_b], "contrast": [0.0, u_c],
                                      "lumaflip": [0.0, 0.9]}, fill=1.0), 1.0,
                      ("brightness", "contrast", "lumaflip"))
    np.testing.assert_allclose(out, -(c * (0.25 + b)), rtol=1e-5)
    rgb = tf.constant([[[[0.5, -0.2, 0.1], [0.3, 0.3, 0.3]]]], tf.float32)
    hued = ada.augment(rgb, _draws(1, {"hue": [0.0, 0.8]}, fill=1.0), 1.0, ("hue",)).numpy()
    np.testing.assert_allclose(hued[0, 0, 1], [0.3, 0.3, 0.3], atol=1e-6)  # grey stays grey
    np.testing.assert_allclose(hued.sum(-1), rgb.numpy().sum(-1), atol=1e-6)  # luma kept
    assert not np.allclose(hued[0, 0, 0], [0.5, -0.2, 0.1])
    washed = ada.augment(rgb, _draws(1, {"saturation": [0.0, 1e-9]}, fill=1.0), 1.0,
                         ("saturation",)).numpy()  # s = 2^-5.2: almost grey
    np.testing.assert_allclose(washed[0, 0, 0], np.full(3, 0.4 / 3), atol=0.02)


def test_adas_cutout_zeroes_a_square_of_half_the_size():
    ones = tf.ones([1, 8, 8, 1])
    out = ada.augment(ones, _draws(1, {"cutout": [0.0, 0.5, 0.5]}, fill=1.0), 1.0,
                      ("cutout",)).numpy()
    assert (out == 0).sum() == 16
    np.testing.assert_array_equal(out[0, 2:6, 2:6], 0.0)


def test_each_transform_acts_with_its_probability_and_draws_the_papers_distributions():
    n = 40_000
    rng = np.random.default_rng(4)
    draws = tf.constant(rng.uniform(size=(n, ada.ALL_DRAWS)), tf.float32)
    p = 0.6
    scale = ada.draw_parameters(draws, p, ("scale",), 8, 8).g_inv.numpy()[:, 0, 0]
    moved = scale != 1.0
    assert moved.mean() == pytest.approx(p, abs=0.01)
    log2 = -np.log2(scale[moved])
    assert log2.mean() == pytest.approx(0.0, abs=0.005)
    assert log2.std() == pytest.approx(ada.SCALE_STD, rel=0.02)
    xint = ada.draw_parameters(draws, 1.0, ("xint",), 32, 32).g_inv.numpy()[:, 0, 2]
    assert set(np.unique(xint)) == set(np.arange(-4.0, 5.0))  # up to 1/8 of 32 pixels
    flips = ada.draw_parameters(draws, p, ("xflip",), 8, 8).g_inv.numpy()[:, 0, 0]
    assert (flips == -1).mean() == pytest.approx(p / 2, abs=0.01)
    # the two rotations share p_rot = 1 - sqrt(1 - p): one of them acts with probability p
    rot = ada.draw_parameters(draws, p, ("rotate",), 8, 8).g_inv.numpy()
    assert (np.abs(rot[:, 0, 1]) > 1e-6).mean() == pytest.approx(p, abs=0.01)
    brightness = ada.draw_parameters(draws, 1.0, ("brightness",), 8, 8).color.numpy()[:, 0, 3]
    assert brightness.std() == pytest.approx(ada.BRIGHTNESS_STD, rel=0.02)


def test_every_transform_is_differentiable_with_respect_to_the_images():
    images = _images(channels=1)
    draws = tf.constant(np.random.default_rng(5).uniform(size=(4, ada.ALL_DRAWS)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(images)
        out = ada.augment(images, draws, 0.9, ada.parse_pipeline("bgc,cutout"))
        total = tf.reduce_sum(out * out)
    grads = tape.gradient(total, images)
    assert grads is not None and np.isfinite(grads.numpy()).all()
    assert np.abs(grads.numpy()).sum() > 0


def test_an_unknown_pipeline_group_is_named_in_one_line():
    with pytest.raises(ValueError, match="'rotations' is no group of ADA's pipeline; choose "
                                         "from blit, geom, color, cutout, bg, bgc"):
        ada.parse_pipeline("blit,rotations")
    assert ada.parse_pipeline("color,blit") == ("xflip", "rotate90", "xint", "brightness",
                                                "contrast", "lumaflip", "hue", "saturation")
    from test_training import tiny_config

    from tfklgan.settings import ConfigError
    with pytest.raises(ConfigError, match="--ada_pipeline='bgcx'"):
        tiny_config(pathlib.Path("/tmp/unused"), method="hinge", augment="ada",
                    ada_pipeline="bgcx")


def test_adas_controller_moves_p_towards_the_target_and_stays_above_0():
    """r_t = E[sign(D(real))] above the target (D overfits) raises p by
    count / speed; below it lowers p; p is clipped at 0 only, as in ADA's
    reference (above 1 every transform applies)."""
    p, r_t = ada.adjust(tf.constant(0.5), tf.constant(48.0), tf.constant(64.0), 0.6, 6400.0)
    assert float(r_t) == 0.75 and float(p) == pytest.approx(0.51)
    p, r_t = ada.adjust(tf.constant(0.5), tf.constant(-16.0), tf.constant(64.0), 0.6, 6400.0)
    assert float(r_t) == -0.25 and float(p) == pytest.approx(0.49)
    assert float(ada.adjust(tf.constant(0.0), tf.constant(-64.0), tf.constant(64.0), 0.6,
                            10.0)[0]) == 0.0
    assert float(ada.adjust(tf.constant(1.0), tf.constant(64.0), tf.constant(64.0), 0.6,
                            10.0)[0]) == pytest.approx(7.4)


def test_r1_under_ada_is_taken_with_respect_to_the_reals_before_augmentation(monkeypatch):
    from test_training import tiny_config

    from tfklgan import gan as gan_lib
    from tfklgan.training import build_gan
    config = tiny_config(pathlib.Path("/tmp/unused"), method="r1gan", augment="ada",
                         minibatch_discrimination=False)
    gan = build_gan(config)
    gan.ada_state.p.assign(1.0)
    seen = []
    real_penalty = gan_lib.penalties.r1_penalty

    def recording(critic, real):
        seen.append(real)
        return real_penalty(critic, real)

    monkeypatch.setattr(gan_lib.penalties, "r1_penalty", recording)
    real = _images(n=16, size=config.data.image_size, channels=config.data.channel_count)
    gan._discriminator_step(real, None)
    np.testing.assert_array_equal(seen[0], real)  # not the augmented images


def _ada_config(tmp_path, **kw):
    from test_training import tiny_config
    values = dict(method="hinge", augment="ada", ada_interval=1, ada_speed_images=400,
                  ada_target=0.2, steps=40, max_examples=64, log_every=5,
                  checkpoint_every=10, minibatch_discrimination=False)
    return tiny_config(tmp_path, **{**values, **kw})


def _column(logdir, name):
    import csv
    import os
    with open(os.path.join(logdir, "metrics.csv"), newline="") as handle:
        return [float(row[name]) for row in csv.DictReader(handle)]


def test_ada_raises_p_while_d_overfits_and_keeps_it_at_0_while_it_does_not(tmp_path):
    """64 digits: D soon judges every real image real (r_t -> 1) and p rises;
    a D that does not learn stays below the target and p stays 0. Logged as
    ada_p and ada_rt."""
    from tfklgan.training import train
    overfits = _ada_config(tmp_path / "overfits")
    train(overfits)
    p, r_t = _column(overfits.run.logdir, "ada_p"), _column(overfits.run.logdir, "ada_rt")
    assert p[0] == 0.0 and p[-1] > 0.1 and max(r_t) > 0.2
    assert all(b >= a for a, b in zip(p, p[1:], strict=False)) or p[-1] > p[0]
    calm = _ada_config(tmp_path / "calm", d_lr=1e-9)  # a D that learns nothing
    train(calm)
    assert set(_column(calm.run.logdir, "ada_p")) == {0.0}


def test_a_resumed_ada_run_ends_as_the_uninterrupted_one(tmp_path):
    """ADA's p and its running sums are in the checkpoint (a known bug
    elsewhere: the strength lost on resume)."""
    from tfklgan.run_directory import load_run
    from tfklgan.training import train
    whole = _ada_config(tmp_path / "whole", steps=30, ada_interval=4, ada_target=-0.5)
    train(whole)
    halves = _ada_config(tmp_path / "halves", steps=15, ada_interval=4, ada_target=-0.5)
    train(halves)
    # 15 D steps, an adjustment every 4: the checkpoint holds 3 steps' sums
    checkpointed, _, _ = load_run(halves.run.logdir)
    assert float(checkpointed.ada_state.seen) == 3 * 16
    assert float(checkpointed.ada_state.signs) != 0.0
    train(halves.replace(steps=30, resume=True))
    a, _, _ = load_run(whole.run.logdir)
    b, _, _ = load_run(halves.run.logdir)
    assert float(a.ada_state.p) > 0.0
    assert float(a.ada_state.p) == float(b.ada_state.p)
    for x, y in zip(a.generator.get_weights() + a.discriminator.get_weights(),
                    b.generator.get_weights() + b.discriminator.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)


def test_the_log_likelihood_ratio_of_features_equals_scipys_densities():
    import scipy.stats

    from tfklgan import losses
    rng = np.random.default_rng(6)
    features = rng.normal(size=(5, 4))
    mp, vp, mq, vq = rng.normal(size=4), rng.uniform(0.5, 2, 4), rng.normal(size=4), \
        rng.uniform(0.5, 2, 4)
    expected = (scipy.stats.norm.logpdf(features, mp, np.sqrt(vp)).sum(1)
                - scipy.stats.norm.logpdf(features, mq, np.sqrt(vq)).sum(1))
    got = losses.gaussian_log_likelihood_ratio(tf.constant(features, tf.float32),
                                               (tf.constant(mp, tf.float32),
                                                tf.constant(vp, tf.float32)),
                                               (tf.constant(mq, tf.float32),
                                                tf.constant(vq, tf.float32)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_kl_gans_heuristic_is_0_without_separation_and_near_1_with_it():
    """Cross-fitted, the sign of the features' log-likelihood ratio means what
    the sign of a logit means to ADA: an uninformed D gives E[sign] = 0 (an
    in-sample fit would not: each real image would favour the fit to itself),
    a D whose features separate real from generated gives nearly 1."""
    from tfklgan import losses
    rng = np.random.default_rng(7)

    def r_t(shift, batches=300, n=64, k=32):
        signs = []
        for _ in range(batches):
            real = tf.constant(rng.normal(size=(n, k)), tf.float32)
            gen = tf.constant(rng.normal(size=(n, k)) + shift, tf.float32)
            judged = losses.judged_real_by_features(real, gen).numpy()
            signs.append(2 * judged.mean() - 1)
        return float(np.mean(signs))

    assert abs(r_t(0.0)) < 0.02
    assert r_t(1.0) > 0.95
    # a fit that includes the image it judges leans to "real" with no separation
    real = tf.constant(rng.normal(size=(64, 32)), tf.float32)
    gen = tf.constant(rng.normal(size=(64, 32)), tf.float32)
    in_sample = losses.gaussian_log_likelihood_ratio(real, losses.gaussian_moments(real),
                                                     losses.gaussian_moments(gen))
    assert np.mean(in_sample.numpy() > 0) > 0.7


def test_kl_gan_with_ada_raises_p_while_its_features_tell_real_from_generated(tmp_path):
    """64 digits and a young generator: D's features separate the two (a
    random D's do too while G is far from the data), r_t rises above the
    target and p follows; the run logs both."""
    from tfklgan.training import train
    overfits = _ada_config(tmp_path / "overfits", method="klgan", ada_target=0.6,
                           generator_first=False)
    train(overfits)
    p, r_t = _column(overfits.run.logdir, "ada_p"), _column(overfits.run.logdir, "ada_rt")
    assert p[0] < p[-1] and p[-1] > 0.1 and max(r_t) > 0.6


def test_ada_is_refused_for_critics_and_for_a_target_it_cannot_reach():
    from test_training import tiny_config

    from tfklgan.settings import ConfigError
    with pytest.raises(ConfigError, match="--method=wgan_gp: a critic's output shifts by any "
                                          "constant"):
        tiny_config(pathlib.Path("/tmp/unused"), method="wgan_gp", augment="ada")
    for target in (7.0, 1.0, -1.0):
        with pytest.raises(ConfigError, match=f"--ada_target={target:g} is outside"):
            tiny_config(pathlib.Path("/tmp/unused"), method="hinge", augment="ada",
                        ada_target=target)


def test_an_image_is_augmented_the_same_in_any_batch():
    """The same draws give the same image, bit for bit, in a batch of 8 or in
    two of 4 (a replica's share): the parameters and coordinates are float64,
    since TF's vectorised pow, sin and cos round differently by position."""
    rng = np.random.default_rng(8)
    images = tf.constant(rng.uniform(-1, 1, (8, 32, 32, 3)), tf.float32)
    draws = tf.constant(rng.uniform(size=(8, ada.ALL_DRAWS)), tf.float32)
    transforms = ada.parse_pipeline("bgc,cutout")
    whole = ada.augment(images, draws, 0.7, transforms).numpy()
    halves = np.concatenate([ada.augment(images[:4], draws[:4], 0.7, transforms).numpy(),
                             ada.augment(images[4:], draws[4:], 0.7, transforms).numpy()])
    np.testing.assert_array_equal(whole, halves)


def test_the_validation_heuristic_is_invariant_to_a_shift_and_scale_of_ds_outputs():
    """r_v = (E D(train) - E D(valid)) / (E D(train) - E D(gen)): 0.5 where
    held-out reals score halfway between training reals and generated images;
    the same for 3 D + 5 (a critic's constant means nothing)."""
    count = tf.constant(8.0)
    p, r_v = ada.adjust_rv(tf.constant(0.2), 8 * 2.0, 8 * 1.0, 8 * 0.0, count, 0.4, 80.0)
    assert float(r_v) == pytest.approx(0.5) and float(p) == pytest.approx(0.3)
    _, shifted = ada.adjust_rv(tf.constant(0.2), 8 * 11.0, 8 * 8.0, 8 * 5.0, count, 0.4, 80.0)
    assert float(shifted) == pytest.approx(0.5)
    p, r_v = ada.adjust_rv(tf.constant(0.2), 8 * 2.0, 8 * 2.0, 8 * 0.0, count, 0.4, 80.0)
    assert float(r_v) == 0.0 and float(p) == pytest.approx(0.1)  # no overfitting: less


def test_a_critic_trains_with_ada_on_held_out_reals(tmp_path):
    from tfklgan.training import train
    config = _ada_config(tmp_path / "rv", method="wgan_gp", ada_heuristic="rv",
                         ada_target=0.1, steps=20)
    train(config)
    p, r_v = _column(config.run.logdir, "ada_p"), _column(config.run.logdir, "ada_rv")
    assert max(p) > 0.0 and all(math.isfinite(v) for v in r_v)
    from test_training import tiny_config

    from tfklgan.settings import ConfigError
    with pytest.raises(ConfigError, match="--ada_heuristic=rv with --method=klgan"):
        tiny_config(pathlib.Path("/tmp/unused"), augment="ada", ada_heuristic="rv",
                    ada_target=0.5)
    with pytest.raises(ConfigError, match=r"--ada_target=1.5 is outside \(0, 1\)"):
        tiny_config(pathlib.Path("/tmp/unused"), method="hinge", augment="ada",
                    ada_heuristic="rv", ada_target=1.5)


def test_rv_on_data_without_held_out_images_is_named_in_one_line(tmp_path):
    from PIL import Image
    from test_training import tiny_config

    from tfklgan.settings import ConfigError
    from tfklgan.training import held_out_reals
    folder = tmp_path / "four"
    folder.mkdir()
    for i in range(4):  # 4 images x 0.1 held out: none
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    config = tiny_config(tmp_path, dataset=f"images:{folder}", method="hinge", augment="ada",
                         ada_heuristic="rv", ada_target=0.5, max_examples=None)
    with pytest.raises(ConfigError, match="--ada_heuristic=rv needs held-out reals, and the "
                                          "validation split .* is empty"):
        held_out_reals(config)
    assert held_out_reals(config.replace(ada_heuristic="rt", ada_target=0.6)) is None
