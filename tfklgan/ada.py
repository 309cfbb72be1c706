"""ADA's augmentation pipeline (Karras et al., "Training Generative
Adversarial Networks with Limited Data", NeurIPS 2020, Appendix B), in
TensorFlow, differentiable with respect to the images.

Every transform has its own gate: it acts on an image with probability p
(the rotations with p_rot = 1 - sqrt(1 - p) each, before and after the
anisotropic scaling, so that one of them acts with probability p) and draws
its parameter from the distribution the paper gives. The geometric
transforms are composed into one inverse matrix per image, G_inv (output
pixel -> input pixel, in pixel units about the image centre), and the image
is resampled once, bilinearly, with reflection at the borders; the colour
transforms are composed into one 4x4 matrix C acting on RGB (a grey image
takes the mean of its rows: brightness, contrast and luma flip act, hue and
saturation need colour). The paper resamples at twice the resolution
between two sym6 wavelet low-pass filters; here the resampling is bilinear
at the image's own resolution, so a rotated or scaled image is a little
softer than ADA's and aliases more.

Groups (`--ada_pipeline`, comma-separated, or the paper's names):
  blit    x-flip (i = floor(2u): half of the gated images), 90-degree
          rotations (floor(4u)), integer translation (uniform, up to 1/8)
  geom    isotropic scaling (2^N(0, 0.2)), rotation (uniform angle), anisotropic
          scaling (2^N(0, 0.2)), fractional translation (N(0, 0.125) of the size)
  color   brightness (N(0, 0.2)), contrast (2^N(0, 0.5)), luma flip, hue
          rotation (uniform angle), saturation (2^N(0, 1))
  cutout  a square of half the size, centred uniformly, set to 0
  bg = blit,geom; bgc = blit,geom,color (the paper's default)

Every draw is a uniform per image given by the caller (the GAN draws them
for the global batch from its stateless seed, so a step repeats and a
distributed step equals one device's); normal draws are their inverse CDF.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

# group -> its transforms, in the order they compose
GROUPS = {"blit": ("xflip", "rotate90", "xint"),
          "geom": ("scale", "rotate", "aniso", "xfrac"),
          "color": ("brightness", "contrast", "lumaflip", "hue", "saturation"),
          "cutout": ("cutout",)}
ALIASES = {"bg": ("blit", "geom"), "bgc": ("blit", "geom", "color")}
DEFAULT_PIPELINE = "bgc"
# transform -> the uniform draws it takes per image, its gate first (the
# rotation's two gates and angles are one entry: pre and post)
DRAWS = {"xflip": 2, "rotate90": 2, "xint": 3, "scale": 2, "rotate": 4, "aniso": 2,
         "xfrac": 3, "brightness": 2, "contrast": 2, "lumaflip": 2, "hue": 2,
         "saturation": 2, "cutout": 3}
ALL_DRAWS = sum(DRAWS.values())
# the paper's parameter ranges
XINT_MAX, SCALE_STD, ANISO_STD, XFRAC_STD = 0.125, 0.2, 0.2, 0.125
BRIGHTNESS_STD, CONTRAST_STD, SATURATION_STD, CUTOUT_SIZE = 0.2, 0.5, 1.0, 0.5
LUMA = np.array([1.0, 1.0, 1.0, 0.0]) / math.sqrt(3.0)
# The parameters and the sampling coordinates are computed in float64: TF's
# vectorised exp, pow, sin and cos round the last bit differently from their
# scalar forms, so in float32 an image's coordinates would depend on where it
# sits in the batch (by up to about 1e-5 pixels), and a distributed step would
# not equal one device's.
EXACT = tf.float64


def parse_pipeline(pipeline):
    """The transforms of a pipeline spec ("bgc", "blit,color", "bgc,cutout"),
    in the paper's order; ValueError naming the choices for anything else."""
    names = [n.strip() for n in pipeline.split(",") if n.strip()] if isinstance(
        pipeline, str) else list(pipeline)
    groups = []
    for name in names:
        if name not in GROUPS and name not in ALIASES:
            raise ValueError(f"--ada_pipeline={pipeline!r}: {name!r} is no group of ADA's "
                             f"pipeline; choose from {', '.join([*GROUPS, *ALIASES])}, "
                             "comma-separated")
        groups += ALIASES.get(name, (name,))
    if not groups:
        raise ValueError(f"--ada_pipeline={pipeline!r} names no transform; the paper's is bgc")
    return tuple(t for group in GROUPS if group in groups for t in GROUPS[group])


def _normal(u):
    """Standard normal draws from uniforms in [0, 1) (the inverse CDF)."""
    u = tf.clip_by_value(u, 1e-7, 1.0 - 1e-7)
    return math.sqrt(2.0) * tf.math.erfinv(2.0 * u - 1.0)


def _gated(gate, p, value, disabled):
    """`value` where the gate's draw is below p, else `disabled`."""
    return tf.where(gate < p, value, tf.cast(disabled, value.dtype))


def _matrices(rows):
    """[n, k, k] from k rows of k entries, each a scalar or an [n] tensor."""
    n = next(tf.shape(x)[0] for row in rows for x in row if isinstance(x, tf.Tensor))
    return tf.stack([tf.stack([tf.broadcast_to(tf.cast(x, EXACT), [n]) for x in row],
                              axis=-1) for row in rows], axis=1)


def _compose(a, b):
    """a @ b for batches of small matrices, as elementwise products and a sum
    over the inner axis: the same numbers whatever the batch size (a batched
    matmul may block its sums differently for another batch, and a
    distributed step must equal one device's)."""
    return tf.reduce_sum(a[:, :, :, None] * b[:, None, :, :], axis=2)


def _translate(tx, ty):
    return _matrices([[1, 0, tx], [0, 1, ty], [0, 0, 1]])


def _scale(sx, sy):
    return _matrices([[sx, 0, 0], [0, sy, 0], [0, 0, 1]])


def _rotate(cos, sin):
    return _matrices([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]])


@dataclasses.dataclass(frozen=True)
class Parameters:
    """One image batch's drawn parameters: the geometric inverse G_inv
    [n, 3, 3], the colour matrix C [n, 4, 4] and the cutout (size [n],
    centre [n, 2]; size 0 where not gated)."""
    g_inv: tf.Tensor
    color: tf.Tensor
    cutout_size: tf.Tensor
    cutout_centre: tf.Tensor


def draw_parameters(draws, p, transforms, height, width):
    """Parameters of `transforms` from draws [n, ALL_DRAWS] uniform in [0, 1)
    at strength p (a scalar). Each transform reads its own columns
    (DRAWS, in the order of the dict), so a pipeline's draws do not depend on
    which other transforms it holds."""
    draws = tf.cast(draws, EXACT)
    p = tf.cast(p, EXACT)
    columns, start = {}, 0
    for name, count in DRAWS.items():
        columns[name] = [draws[:, start + k] for k in range(count)]
        start += count
    n = tf.shape(draws)[0]
    g_inv = tf.eye(3, batch_shape=[n], dtype=EXACT)
    zeros, ones = tf.zeros([n], EXACT), tf.ones([n], EXACT)
    on = set(transforms)
    if "xflip" in on:
        gate, u = columns["xflip"]
        i = _gated(gate, p, tf.floor(u * 2.0), 0.0)
        g_inv = _compose(g_inv, _scale(1.0 - 2.0 * i, ones))
    if "rotate90" in on:
        gate, u = columns["rotate90"]
        i = tf.cast(_gated(gate, p, tf.floor(u * 4.0), 0.0), tf.int32) % 4
        # exact cosines and sines of i quarter turns
        cos = tf.gather(tf.constant([1.0, 0.0, -1.0, 0.0], EXACT), i)
        sin = tf.gather(tf.constant([0.0, 1.0, 0.0, -1.0], EXACT), i)
        g_inv = _compose(g_inv, _rotate(cos, sin))
    if "xint" in on:
        gate, ux, uy = columns["xint"]
        tx = _gated(gate, p, (ux * 2.0 - 1.0) * XINT_MAX, 0.0)
        ty = _gated(gate, p, (uy * 2.0 - 1.0) * XINT_MAX, 0.0)
        g_inv = _compose(g_inv, _translate(-tf.round(tx * width), -tf.round(ty * height)))
    if "scale" in on:
        gate, u = columns["scale"]
        s = _gated(gate, p, 2.0 ** (_normal(u) * SCALE_STD), 1.0)
        g_inv = _compose(g_inv, _scale(1.0 / s, 1.0 / s))
    p_rot = 1.0 - tf.sqrt(tf.maximum(1.0 - p, 0.0))  # P(pre or post) = p
    if "rotate" in on:
        gate_pre, u_pre, gate_post, u_post = columns["rotate"]
        pre = _gated(gate_pre, p_rot, (u_pre * 2.0 - 1.0) * math.pi, 0.0)
        g_inv = _compose(g_inv, _rotate(tf.cos(pre), tf.sin(pre)))
    if "aniso" in on:
        gate, u = columns["aniso"]
        s = _gated(gate, p, 2.0 ** (_normal(u) * ANISO_STD), 1.0)
        g_inv = _compose(g_inv, _scale(1.0 / s, s))
    if "rotate" in on:
        post = _gated(gate_post, p_rot, (u_post * 2.0 - 1.0) * math.pi, 0.0)
        g_inv = _compose(g_inv, _rotate(tf.cos(post), tf.sin(post)))
    if "xfrac" in on:
        gate, ux, uy = columns["xfrac"]
        tx = _gated(gate, p, _normal(ux) * XFRAC_STD, 0.0)
        ty = _gated(gate, p, _normal(uy) * XFRAC_STD, 0.0)
        g_inv = _compose(g_inv, _translate(-tx * width, -ty * height))
    color = _color_matrix(columns, p, on, n)
    size, centre = zeros, tf.zeros([n, 2], EXACT)
    if "cutout" in on:
        gate, ux, uy = columns["cutout"]
        size = _gated(gate, p, tf.fill([n], CUTOUT_SIZE), 0.0)
        centre = tf.stack([ux, uy], axis=1)
    return Parameters(g_inv, color, size, centre)


def _color_matrix(columns, p, on, n):
    eye = tf.eye(4, batch_shape=[n], dtype=EXACT)
    outer = tf.constant(np.outer(LUMA, LUMA), EXACT)
    c = eye
    if "brightness" in on:
        gate, u = columns["brightness"]
        b = _gated(gate, p, _normal(u) * BRIGHTNESS_STD, 0.0)
        c = _compose(_matrices([[1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]]), c)
    if "contrast" in on:
        gate, u = columns["contrast"]
        k = _gated(gate, p, 2.0 ** (_normal(u) * CONTRAST_STD), 1.0)
        c = _compose(_matrices([[k, 0, 0, 0], [0, k, 0, 0], [0, 0, k, 0], [0, 0, 0, 1]]), c)
    if "lumaflip" in on:
        gate, u = columns["lumaflip"]
        i = _gated(gate, p, tf.floor(u * 2.0), 0.0)[:, None, None]
        c = _compose(eye - 2.0 * outer * i, c)  # a Householder reflection (grey plane)
    if "hue" in on:
        gate, u = columns["hue"]
        theta = _gated(gate, p, (u * 2.0 - 1.0) * math.pi, 0.0)
        c = _compose(_rotation_about_luma(theta), c)
    if "saturation" in on:
        gate, u = columns["saturation"]
        s = _gated(gate, p, 2.0 ** (_normal(u) * SATURATION_STD), 1.0)[:, None, None]
        c = _compose(outer + (eye - outer) * s, c)
    return c


def _rotation_about_luma(theta):
    """[n, 4, 4] rotations by theta about the grey axis (1, 1, 1) / sqrt(3)."""
    x = y = z = 1.0 / math.sqrt(3.0)
    s, c = tf.sin(theta), tf.cos(theta)
    cc = 1.0 - c
    return _matrices([[x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s, 0],
                      [y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s, 0],
                      [z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c, 0],
                      [0, 0, 0, 1]])


def _reflect(index, size):
    """Indices reflected into [0, size - 1] without repeating the edge (as
    tf.pad's REFLECT: ... 2 1 | 0 1 2 ... size-1 | size-2 ...)."""
    if size == 1:
        return tf.zeros_like(index)
    period = 2 * (size - 1)
    index = tf.math.floormod(index, period)
    return tf.where(index > size - 1, period - index, index)


def resample(images, g_inv):
    """images [n, H, W, C] resampled at G_inv @ (x, y, 1) for every output
    pixel (x, y about the image centre), bilinearly, reflecting at the
    borders. Exact where G_inv maps pixels to pixels (flips, quarter turns,
    integer translations)."""
    height, width = images.shape[1], images.shape[2]
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    ys, xs = np.meshgrid(np.arange(height) - cy, np.arange(width) - cx, indexing="ij")
    xs, ys = (tf.constant(v.ravel()[None], EXACT) for v in (xs, ys))       # [1, P]
    g = tf.cast(g_inv, EXACT)[:, :2, :, None]                       # [n, 2, 3, 1]
    x = g[:, 0, 0] * xs + g[:, 0, 1] * ys + g[:, 0, 2] + cx         # [n, P], elementwise
    y = g[:, 1, 0] * xs + g[:, 1, 1] * ys + g[:, 1, 2] + cy
    x0, y0 = tf.floor(x), tf.floor(y)
    wx = tf.cast(x - x0, images.dtype)[..., None]
    wy = tf.cast(y - y0, images.dtype)[..., None]
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    flat = tf.reshape(images, [tf.shape(images)[0], height * width, images.shape[3]])

    def pixel(yi, xi):
        index = _reflect(yi, height) * width + _reflect(xi, width)
        return tf.gather(flat, index, axis=1, batch_dims=1)         # [n, P, C]

    top = pixel(y0, x0) * (1 - wx) + pixel(y0, x0 + 1) * wx
    bottom = pixel(y0 + 1, x0) * (1 - wx) + pixel(y0 + 1, x0 + 1) * wx
    return tf.reshape(top * (1 - wy) + bottom * wy, tf.shape(images))


def apply_color(images, color):
    """The colour matrices C [n, 4, 4] on images [n, H, W, C]: RGB as C's
    upper 3x4 (an affine map), one channel as the mean of its rows."""
    channels = images.shape[3]
    color = tf.cast(color, images.dtype)
    if channels == 3:  # elementwise, as _compose: the same numbers for any batch size
        c = color[:, None, None, :, :]                              # [n, 1, 1, 4, 4]
        return (c[..., :3, 0] * images[..., 0:1] + c[..., :3, 1] * images[..., 1:2]
                + c[..., :3, 2] * images[..., 2:3] + c[..., :3, 3])
    if channels == 1:
        rows = tf.reduce_mean(color[:, :3, :], axis=1)              # [n, 4]
        gain = tf.reduce_sum(rows[:, :3], axis=1)[:, None, None, None]
        return images * gain + rows[:, 3][:, None, None, None]
    raise ValueError(f"ADA's colour transforms take RGB or grey images, not {channels} "
                     "channels; leave 'color' out of --ada_pipeline")


def apply_cutout(images, size, centre):
    """Zero a square of side `size` (a fraction of the image; 0: none)
    centred at `centre` (fractions, [n, 2] as x, y)."""
    height, width = images.shape[1], images.shape[2]
    xs = (tf.range(width, dtype=EXACT) + 0.5) / width
    ys = (tf.range(height, dtype=EXACT) + 0.5) / height
    size, centre = tf.cast(size, EXACT), tf.cast(centre, EXACT)
    keep_x = tf.abs(xs[None, :] - centre[:, 0:1]) >= size[:, None] / 2     # [n, W]
    keep_y = tf.abs(ys[None, :] - centre[:, 1:2]) >= size[:, None] / 2     # [n, H]
    keep = keep_y[:, :, None] | keep_x[:, None, :]
    return images * tf.cast(keep, images.dtype)[..., None]


DEFAULT_TRANSFORMS = parse_pipeline(DEFAULT_PIPELINE)


def augment(images, draws, p, transforms=DEFAULT_TRANSFORMS):
    """images [n, H, W, C] in [-1, 1] through ADA's `transforms` at strength
    p; draws [n, ALL_DRAWS] uniform in [0, 1)."""
    params = draw_parameters(draws, p, transforms, images.shape[1], images.shape[2])
    on = set(transforms)
    if on & set(GROUPS["blit"] + GROUPS["geom"]):
        images = resample(images, params.g_inv)
    if on & set(GROUPS["color"]):
        images = apply_color(images, params.color)
    if "cutout" in on:
        images = apply_cutout(images, params.cutout_size, params.cutout_centre)
    return images


HEURISTICS = ("rt", "rv")


@dataclasses.dataclass(frozen=True)
class AdaSettings:
    """ADA's controller and pipeline: the heuristic ("rt": r_t =
    E[sign(D(real))]; "rv": r_v from held-out reals, `adjust_rv`), its target,
    the images over which p may move by 1 (its speed), the D steps between
    adjustments (Karras et al. 2020: rt 0.6, rv 0.5, 500,000 images, 4 steps)
    and the transforms (`parse_pipeline`)."""
    target: float = 0.6
    speed_images: float = 500_000.0
    interval: int = 4
    transforms: tuple = DEFAULT_TRANSFORMS
    heuristic: str = "rt"


class AdaState(tf.Module):
    """ADA's p, its last heuristic value (r_t or r_v) and the sums since the
    last adjustment, as variables (mirrored under a strategy, saved with the
    checkpoints). rt sums the signs and counts the images; rv also sums D's
    outputs on the training reals, the held-out reals and the generated
    images (`with_validation`)."""

    def __init__(self, with_validation=False):
        super().__init__(name="ada")
        aggregation = tf.VariableAggregation.ONLY_FIRST_REPLICA

        def variable(name):
            return tf.Variable(0.0, trainable=False, name=name, aggregation=aggregation)
        self.p, self.r_t, self.signs, self.seen = (
            variable(name) for name in ("p", "r_t", "signs", "seen"))
        if with_validation:
            self.real_sum, self.valid_sum, self.gen_sum = (
                variable(name) for name in ("real_sum", "valid_sum", "gen_sum"))


def adjust(p, sign_sum, count, target, speed_images):
    """ADA's controller: the overfitting heuristic r_t = E[sign(D(real))] over
    the `count` real images since the last adjustment (`sign_sum` the sum of
    their signs), and p moved by count / speed_images towards more
    augmentation where r_t > target, less where below, clipped at 0 only (as
    ADA's code: p above 1 applies every transform and keeps a margin before
    the controller lowers it again); returns (p, r_t)."""
    r_t = sign_sum / tf.maximum(count, 1.0)
    step = tf.sign(r_t - target) * count / speed_images
    return tf.maximum(p + step, 0.0), r_t


def adjust_rv(p, real_sum, valid_sum, gen_sum, count, target, speed_images):
    """ADA's validation heuristic r_v = (E[D(train)] - E[D(valid)]) /
    (E[D(train)] - E[D(gen)]) over the `count` images of each kind since the
    last adjustment: 0 where D scores held-out reals as it scores its training
    reals, 1 where it scores them as generated. Unchanged when D's outputs are
    shifted or scaled, so it serves a critic too. p moves as in `adjust`;
    returns (p, r_v)."""
    count = tf.maximum(count, 1.0)
    real, valid, gen = real_sum / count, valid_sum / count, gen_sum / count
    r_v = (real - valid) / tf.maximum(real - gen, 1e-8)
    step = tf.sign(r_v - target) * count / speed_images
    return tf.maximum(p + step, 0.0), r_v
