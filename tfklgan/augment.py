"""Differentiable augmentation of the images the discriminator sees
(DiffAugment: Zhao et al., "Differentiable Augmentation for Data-Efficient
GAN Training", NeurIPS 2020).

With little data D memorises the real images. DiffAugment applies the same
family of random transforms to every image D sees, real and generated, in
D's updates and in G's, and differentiably, so G's gradients pass through
them. The transforms are pure functions of the images and of the uniform
draws given to them: the GAN draws those for the global batch from its
stateless seed (like its latents), so a step is a function of (seed, step)
and a distributed step equals one device's.

Images are [n, H, W, C] in [-1, 1]; each transform keeps shape and dtype.
Per image, with u ~ U(0, 1) drawn per transform parameter:
- color: brightness x + (u - 0.5); saturation (x - m_c) * 2u + m_c with m_c
  the mean over channels; contrast (x - m) * (u + 0.5) + m with m the image
  mean. The results may leave [-1, 1], as in the paper.
- translation: a shift of up to 1/8 of the size along each axis, the
  vacated pixels zero.
- cutout: a square of half the size (rounded) set to zero, its centre
  anywhere in the image (the square clipped at the borders).

ADA, whose transforms act with a probability its controller adapts, is
`tfklgan.ada`.
"""

import tensorflow as tf

# transform -> the number of uniform draws it takes per image
TRANSFORMS = {"color": 3, "translation": 2, "cutout": 2}
DEFAULT_POLICY = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def parse_policy(policy):
    """("color", "translation", ...) of a comma-separated policy, checked."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip()) if isinstance(
        policy, str) else tuple(policy)
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown or not names:
        raise ValueError(f"augmentation policy {policy!r}: choose transforms from "
                         f"{', '.join(TRANSFORMS)} (comma-separated)")
    return names


def draws_needed(policy):
    """Uniform draws per image that `diff_augment` takes for `policy`."""
    return sum(TRANSFORMS[name] for name in policy)


def color(images, u):
    """Brightness, saturation and contrast; u [n, 3] in [0, 1)."""
    u = tf.cast(u[:, :, None, None, None], images.dtype)  # [n, 3, 1, 1, 1]
    images = images + (u[:, 0] - 0.5)
    channel_mean = tf.reduce_mean(images, axis=3, keepdims=True)
    images = (images - channel_mean) * (2.0 * u[:, 1]) + channel_mean
    image_mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return (images - image_mean) * (u[:, 2] + 0.5) + image_mean


def _offsets(u, largest):
    """Integer offsets in [-largest, largest] from u in [0, 1)."""
    return tf.minimum(tf.cast(tf.floor(u * (2 * largest + 1)), tf.int32) - largest, largest)


def translation(images, u, ratio=TRANSLATION_RATIO):
    """Shift each image by (dy, dx), |d| <= ratio x size, filling with zeros;
    u [n, 2] in [0, 1)."""
    height, width = images.shape[1], images.shape[2]
    sy, sx = int(height * ratio + 0.5), int(width * ratio + 0.5)
    if not (sy or sx):
        return images
    dy, dx = _offsets(u[:, 0], sy), _offsets(u[:, 1], sx)
    padded = tf.pad(images, [[0, 0], [sy, sy], [sx, sx], [0, 0]])
    rows = tf.range(height)[None, :] + sy - dy[:, None]   # [n, H]
    cols = tf.range(width)[None, :] + sx - dx[:, None]    # [n, W]
    shifted = tf.gather(padded, rows, axis=1, batch_dims=1)   # [n, H, W + 2 sx, C]
    return tf.gather(shifted, cols, axis=2, batch_dims=1)     # [n, H, W, C]


def cutout(images, u, ratio=CUTOUT_RATIO):
    """Zero a square of side ratio x size centred anywhere; u [n, 2] in [0, 1).
    The centre is drawn from 0..H - 1, and from 0..H where the square's side is
    even (as DiffAugment's reference draws it: the square's centre pixel is
    then the lower-right of its middle four)."""
    height, width = images.shape[1], images.shape[2]
    ch, cw = int(height * ratio + 0.5), int(width * ratio + 0.5)
    cy = tf.cast(tf.floor(u[:, 0] * (height + 1 - ch % 2)), tf.int32)
    cx = tf.cast(tf.floor(u[:, 1] * (width + 1 - cw % 2)), tf.int32)
    rows = tf.range(height)[None, :] - (cy[:, None] - ch // 2)   # [n, H]
    cols = tf.range(width)[None, :] - (cx[:, None] - cw // 2)    # [n, W]
    inside_rows = (rows >= 0) & (rows < ch)
    inside_cols = (cols >= 0) & (cols < cw)
    hole = inside_rows[:, :, None] & inside_cols[:, None, :]     # [n, H, W]
    return images * tf.cast(~hole, images.dtype)[..., None]


APPLY = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(images, draws, policy=DEFAULT_POLICY):
    """`images` [n, H, W, C] through each transform of `policy` in order;
    draws [n, draws_needed(policy)] uniform in [0, 1), consumed in order."""
    start = 0
    for name in policy:
        count = TRANSFORMS[name]
        images = APPLY[name](images, draws[:, start:start + count])
        start += count
    return images
