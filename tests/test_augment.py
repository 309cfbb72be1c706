"""DiffAugment's transforms: closed forms, gradients, range, and training."""


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


def test_cutout_centres_reach_the_far_edge_for_an_even_side_as_the_reference():
    ones = tf.ones([2, 16, 16, 1])
    cut = augment.cutout(ones, tf.constant([[0.999, 0.999], [0.0, 0.0]])).numpy()
    # centre (16, 16): only the square's upper-left quarter is inside
    np.testing.assert_array_equal(cut[0, 12:, 12:], 0.0)
    assert (cut[0] == 0).sum() == 16
    odd = augment.cutout(tf.ones([1, 14, 14, 1]), tf.constant([[0.999, 0.999]])).numpy()
    assert odd[0, 13, 13, 0] == 0.0 and (odd[0] == 0).sum() == 16  # side 7: centre at most 13
