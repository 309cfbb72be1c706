"""File sources: `images:<folder>` (sub-folders give labels) and `npz:<file>`."""

import os
import sys

import numpy as np
import tensorflow as tf

from tfklgan.data.config import DatasetUnavailableError, Source, fingerprint
from tfklgan.data.sample import array_source

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def _npz_images(x, path, stated):
    """x as uint8 [n, H, W, C]: uint8 as is; other numbers in [0, 1] (scaled by
    255) or [0, 255], detected (`stated` "auto") or as stated."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"{path!r}: 'x' must be [n, H, W] or [n, H, W, 1 or 3], "
                         f"got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.number) and not np.iscomplexobj(x)):
        raise ValueError(f"{path!r}: 'x' must hold numbers, got dtype {x.dtype}")
    if x.dtype == np.uint8:
        return x
    finite = np.isfinite(x)
    if not finite.all():
        raise ValueError(f"{path!r}: 'x' holds {int(np.size(x) - finite.sum())} NaN or "
                         "inf values; images must be finite")
    top = npz_value_range(float(x.min()), float(x.max()),
                          np.issubdtype(x.dtype, np.floating), stated, repr(path))
    return np.round(np.asarray(x, np.float64) * (255.0 / top)).astype(np.uint8)


def npz_value_range(low, high, floating, stated, where):
    """The top of the value range (1 or 255) of non-uint8 npz images whose
    values span [low, high]: as `stated` ("0-1", "0-255") or, for "auto",
    [0, 1] for floats within it and [0, 255] otherwise (said on stderr)."""
    if stated == "auto":
        stated = "0-1" if low >= 0 and high <= 1 and floating else "0-255"
        print(f"{where}: images in [{low:g}, {high:g}]; read as {stated} "
              f"(--npz_range states it)", file=sys.stderr)
    top = 1.0 if stated == "0-1" else 255.0
    if low < 0 or high > top:
        raise ValueError(f"{where}: images range over [{low:g}, {high:g}], outside the "
                         f"{stated} range; save images as uint8 0..255 or floats in "
                         "[0, 1] or [0, 255] (--npz_range)")
    return top


def npz_labels(y, count, path):
    """y as int64 class ids [n]: integer ids [n] or one-hot rows [n, K]."""
    y = np.asarray(y)
    if y.ndim == 2:
        one_hot = np.all((y == 0) | (y == 1), axis=1) & (y.sum(axis=1) == 1)
        if not one_hot.all():
            bad = np.flatnonzero(~one_hot)
            raise ValueError(f"{path!r}: 'y' is [n, K] but {len(bad)} rows are not one-hot "
                             f"(first at rows {bad[:5].tolist()}); give class ids [n] or "
                             "one-hot rows")
        y = np.argmax(y, axis=1)
    if y.ndim != 1:
        raise ValueError(f"{path!r}: 'y' must be class ids [n] or one-hot [n, K], "
                         f"got shape {y.shape}")
    if len(y) != count:
        raise ValueError(f"{path!r}: 'y' has {len(y)} labels for {count} images")
    if not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"{path!r}: 'y' must hold integer class ids, got dtype {y.dtype}")
    bad = ~np.isfinite(y) | (y < 0) if np.issubdtype(y.dtype, np.floating) else y < 0
    if bad.any():
        where = np.flatnonzero(bad)
        raise ValueError(f"{path!r}: 'y' holds {len(where)} negative or non-finite labels "
                         f"(at {where[:5].tolist()}{' ...' if len(where) > 5 else ''}); "
                         "class ids must be 0, 1, 2, ...")
    if np.any(y != np.round(y)):
        raise ValueError(f"{path!r}: 'y' holds fractional values; give integer class ids")
    return y.astype(np.int64)


def npz_source(path, config):
    """Arrays 'x' (images, see `_npz_images`) and optional 'y' (labels)."""
    if not os.path.isfile(path):
        raise DatasetUnavailableError(
            f"npz file {path!r} does not exist; give the path of an .npz file "
            "holding an image array 'x' (and integer labels 'y')")
    with np.load(path) as arrays:
        if "x" not in arrays:
            raise ValueError(f"{path!r} has no array 'x' (found {sorted(arrays)}); "
                             "save the images under the key 'x'")
        x = arrays["x"]
        y = arrays["y"] if "y" in arrays else None
    x = _npz_images(x, path, config.npz_range)
    return array_source(x, None if y is None else npz_labels(y, len(x), path))


def check_image_files(paths):
    """Reads every header with Pillow; an unreadable file is named in the error."""
    from PIL import Image
    for path in paths:
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as err:  # Pillow raises many types for bad files
            raise ValueError(f"{path!r} is not a readable image ({err}); remove it "
                             "or convert it to PNG or JPEG") from None


def image_folder_source(folder, _config):
    """Images under `folder`; one level of sub-folders gives class labels."""
    if not os.path.isdir(folder):
        raise DatasetUnavailableError(f"image folder {folder!r} does not exist; pass "
                                      "--dataset=images:<an existing folder>")
    top = sorted(f for f in os.listdir(folder)
                 if f.lower().endswith(IMAGE_EXTENSIONS))
    subdirs = sorted(d for d in os.listdir(folder)
                     if os.path.isdir(os.path.join(folder, d)))
    paths, labels, names = [os.path.join(folder, f) for f in top], [-1] * len(top), ()
    if not top and subdirs:
        names = tuple(subdirs)
        for label, sub in enumerate(subdirs):
            files = sorted(f for f in os.listdir(os.path.join(folder, sub))
                           if f.lower().endswith(IMAGE_EXTENSIONS))
            paths += [os.path.join(folder, sub, f) for f in files]
            labels += [label] * len(files)
    if not paths:
        raise DatasetUnavailableError(
            f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder!r} or its sub-folders")
    check_image_files(paths)
    stats = [(p, os.path.getsize(p), int(os.path.getmtime(p))) for p in paths]
    labels = np.asarray(labels, np.int64)
    return Source(
        lambda: tf.data.Dataset.from_tensor_slices({"path": paths, "label": labels}),
        len(paths), len(names), names, fingerprint=fingerprint("images", stats))
