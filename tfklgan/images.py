"""Image grids (pure functions) and PNG writing (the only I/O here)."""

import os

import numpy as np


def to_uint8(images):
    """Float images in [-1, 1] -> uint8 in [0, 255]."""
    images = np.asarray(images, np.float32)
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def make_grid(images, columns, padding=2, pad_value=255):
    """Tiles images [n, H, W, C] in [-1, 1] into one uint8 image.

    Row-major, `columns` per row, `padding` pixels of `pad_value` between
    and around tiles. Returns [rows * (H + p) + p, columns * (W + p) + p, C].
    """
    images = to_uint8(images)
    n, h, w, c = images.shape
    rows = -(-n // columns)
    grid = np.full((rows * (h + padding) + padding, columns * (w + padding) + padding, c),
                   pad_value, np.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top:top + h, left:left + w] = images[i]
    return grid


def interpolate_latents(start, end, steps=16):
    """z = a * end + (1 - a) * start for a in linspace(0, 1, steps).

    start, end: [m, d] pairs of latents. Returns [m * steps, d], row-major
    (each pair is one row of `steps` frames), docs/reference.md §6.
    """
    alphas = np.linspace(0.0, 1.0, steps, dtype=np.float32)[None, :, None]
    frames = alphas * np.asarray(end)[:, None] + (1.0 - alphas) * np.asarray(start)[:, None]
    return frames.reshape(-1, frames.shape[-1])


def save_png(path, image):
    """Writes a uint8 [H, W, C] image (C = 1 or 3) as PNG, creating folders."""
    from PIL import Image
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    array = image[..., 0] if image.shape[-1] == 1 else image
    Image.fromarray(array).save(path)
