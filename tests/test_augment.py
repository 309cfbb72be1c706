"""DiffAugment's transforms: closed forms, gradients, range, and training."""

import pathlib

import numpy as np
import pytest
import tensorflow as tf

from tfklgan import augment


def _images(n=4, size=16, channels=3, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (n, size, size, channels)),
                       tf.float32)


def test_color_at_the_middle_draw_is_the_identity_and_moves_as_the_paper_says():
    images = _images()
    np.testing.assert_allclose(augment.color(images, tf.fill([4, 3], 0.5)), images, atol=1e-6)
    # brightness alone: u = 1 adds 0.5 (saturation x1, contrast x1 at 0.5)
    brighter = augment.color(images, tf.constant([[1.0, 0.5, 0.5]] * 4))
    np.testing.assert_allclose(brighter, images + 0.5, atol=1e-6)
    # saturation 0 makes every pixel its channel mean: a gray image
    gray = augment.color(images, tf.constant([[0.5, 0.0, 0.5]] * 4)).numpy()
    np.testing.assert_allclose(gray[..., 0], gray[..., 1], atol=1e-6)
    # contrast u = 0 halves each pixel's distance from the image mean
    flat = augment.color(images, tf.constant([[0.5, 0.5, 0.0]] * 4)).numpy()
    mean = images.numpy().mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(flat - mean, 0.5 * (images.numpy() - mean), atol=1e-6)


def test_translation_shifts_by_whole_pixels_and_fills_with_zeros():
    images = _images(n=2, size=16)
    # 16 x 0.125 = 2: offsets -2..2 from five equal bins of u
    shifted = augment.translation(images, tf.constant([[0.99, 0.5], [0.0, 0.99]])).numpy()
    x = images.numpy()
    np.testing.assert_array_equal(shifted[0, 2:], x[0, :-2])   # down by 2
    np.testing.assert_array_equal(shifted[0, :2], 0.0)
    np.testing.assert_array_equal(shifted[1, :-2, 2:], x[1, 2:, :-2])  # up 2, right 2
    np.testing.assert_array_equal(shifted[1, :, :2], 0.0)
    assert np.abs(shifted).max() <= 1.0  # inside the image range


def test_cutout_zeroes_one_square_of_half_the_size():
    images = tf.ones([3, 16, 16, 1])
    cut = augment.cutout(images, tf.constant([[0.5, 0.5], [0.0, 0.0], [0.99, 0.2]])).numpy()
    assert (cut[0] == 0).sum() == 64  # 8 x 8 in the middle
    np.testing.assert_array_equal(cut[0, 4:12, 4:12], 0.0)
    assert (cut[1] == 0).sum() == 16  # centred on the corner: a quarter of it
    assert set(np.unique(cut)) <= {0.0, 1.0}


@pytest.mark.parametrize("name", sorted(augment.TRANSFORMS))
def test_every_transform_is_differentiable_and_keeps_shape_and_dtype(name):
    images = _images()
    draws = tf.constant(np.random.default_rng(1).uniform(size=(4, augment.TRANSFORMS[name])),
                        tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(images)
        out = augment.APPLY[name](images, draws)
        loss = tf.reduce_sum(out * tf.range(out.shape[-1], dtype=tf.float32) + out ** 2)
    grad = tape.gradient(loss, images)
    assert out.shape == images.shape and out.dtype == images.dtype
    assert grad is not None and np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


def test_the_policy_is_checked_and_its_draws_counted():
    assert augment.parse_policy("color, cutout") == ("color", "cutout")
    assert augment.draws_needed(augment.DEFAULT_POLICY) == 7
    with pytest.raises(ValueError, match="choose transforms from color, translation, cutout"):
        augment.parse_policy("color,flip")


def test_a_gan_with_diffaugment_trains_on_what_d_sees(tmp_path):
    """From the command line: --augment=diffaugment trains, and its training
    differs from the same run without (so D saw other images), while the
    same settings repeat exactly."""
    from test_training import tiny_config

    from tfklgan.training import train
    runs = {}
    for name, augmentation in (("plain", "none"), ("aug", "diffaugment"),
                               ("again", "diffaugment")):
        config = tiny_config(tmp_path / name, method="hinge", augment=augmentation,
                             steps=4)
        train(config)
        runs[name] = open(tmp_path / name / "run" / "metrics.csv").read().splitlines()
    column = runs["aug"][0].split(",").index("d_loss")
    values = {k: [row.split(",")[column] for row in rows[1:]] for k, rows in runs.items()}
    assert values["aug"] != values["plain"] and values["aug"] == values["again"]


def test_ada_controller_moves_p_towards_the_target_and_stays_above_0():
    """r_t = E[sign(D(real))] above the target (D overfits) raises p by
    count / speed; below it lowers p; p is clipped at 0 only, as in ADA's
    reference (above 1 every transform applies)."""
    p, r_t = augment.ada_adjust(tf.constant(0.5), tf.constant(48.0), tf.constant(64.0), 0.6,
                                6400.0)
    assert float(r_t) == 0.75 and float(p) == pytest.approx(0.51)
    p, r_t = augment.ada_adjust(tf.constant(0.5), tf.constant(-16.0), tf.constant(64.0), 0.6,
                                6400.0)
    assert float(r_t) == -0.25 and float(p) == pytest.approx(0.49)
    assert float(augment.ada_adjust(tf.constant(0.0), tf.constant(-64.0), tf.constant(64.0),
                                    0.6, 10.0)[0]) == 0.0
    assert float(augment.ada_adjust(tf.constant(1.0), tf.constant(64.0), tf.constant(64.0),
                                    0.6, 10.0)[0]) == pytest.approx(7.4)


def test_ada_applies_each_transform_with_probability_p():
    images = _images(n=64)
    draws = tf.constant(np.random.default_rng(2).uniform(size=(64, augment.ADA_DRAWS)),
                        tf.float32)
    np.testing.assert_array_equal(augment.adaptive_augment(images, draws, 0.0), images)
    every = augment.adaptive_augment(images, draws, 1.0)
    expected, start = images, 0
    for transform, count in augment.ADA_TRANSFORMS.values():
        expected = transform(expected, draws[:, start + 1:start + 1 + count])
        start += 1 + count
    np.testing.assert_allclose(every, expected, atol=1e-6)
    half = augment.adaptive_augment(images, draws, 0.5).numpy()
    changed = np.mean([not np.array_equal(a, b) for a, b in zip(half, images.numpy(),
                                                                  strict=True)])
    assert 0.8 < changed < 1.0  # 1 - 0.75 x 0.5^3 of the images get at least one transform


def test_ada_mirrors_an_image_with_probability_p_over_2():
    """ADA's x-flip is gated by p and then flips half of the gated images, so
    at p = 1 a digit and its mirror are equally likely and D still sees
    unmirrored reals as often as mirrored ones at any p (flipping every gated
    image, the old rate p, leaks mirrored output into G at p > 0.5)."""
    n = 20_000
    images = tf.reshape(tf.range(4.0), [1, 1, 4, 1]) * tf.ones([n, 1, 1, 1]) / 4.0
    rng = np.random.default_rng(3)
    for p in (0.3, 1.0):
        draws = np.full((n, augment.ADA_DRAWS), 0.5)
        start = 0
        for name, (_, count) in augment.ADA_TRANSFORMS.items():
            draws[:, start] = rng.uniform(size=n) if name == "xflip" else 1.0  # others shut
            draws[:, start + 1:start + 1 + count] = rng.uniform(size=(n, count))
            start += 1 + count
        out = augment.adaptive_augment(images, tf.constant(draws, tf.float32), p).numpy()
        mirrored = np.mean(out[:, 0, 0, 0] == 0.75)
        assert mirrored == pytest.approx(p / 2, abs=0.01)
        assert np.all((out[:, 0, 0, 0] == 0.75) | (out[:, 0, 0, 0] == 0.0))


def test_cutout_centres_reach_the_far_edge_for_an_even_side_as_the_reference():
    ones = tf.ones([2, 16, 16, 1])
    cut = augment.cutout(ones, tf.constant([[0.999, 0.999], [0.0, 0.0]])).numpy()
    # centre (16, 16): only the square's upper-left quarter is inside
    np.testing.assert_array_equal(cut[0, 12:, 12:], 0.0)
    assert (cut[0] == 0).sum() == 16
    odd = augment.cutout(tf.ones([1, 14, 14, 1]), tf.constant([[0.999, 0.999]])).numpy()
    assert odd[0, 13, 13, 0] == 0.0 and (odd[0] == 0).sum() == 16  # side 7: centre at most 13


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


def test_ada_is_refused_for_kl_gan_with_the_alternative_named():
    from test_training import tiny_config

    from tfklgan.settings import ConfigError
    with pytest.raises(ConfigError, match="KL-GAN's D emits features: use --augment=diffaugment"):
        tiny_config(pathlib.Path("/tmp/unused"), augment="ada")


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
