"""Image sets streamed in batches: what `tfklgan.evaluation` scores.

An `ImageSet` has a `count`, an image `shape` (H, W, C), optional integer
`labels` [count] (-1: none) and `batches(batch_size)`, which yields uint8
[b, H, W, C] arrays of consecutive images, the same boundaries for every
kind of set, so that the feature network sees the same batches whichever
file the images came from. Readers:

- `npz:FILE[,FILE...]`: the package's npz rules (images under `x`: uint8, or
  floats in [0, 1] or [0, 255]; optional labels `y`) and ADM-style files (one
  uint8 NHWC array `arr_0`, labels in `arr_1` where present); several files,
  or a glob (`npz:samples/*.npz`), form one sharded set in name order. The
  arrays are read from the zip member in chunks, never whole.
- `images:DIR`: every image under DIR, recursively, sorted by file name, then
  path (the order matters to KID's blocks, not to the other scores). Images
  of another size than most are resized to it as training resizes its
  images (bilinear, antialiased), and the set's record says how many; 16-bit
  images keep the high byte of each value, as training's decoder does;
  colour images make the set RGB, grayscale ones are repeated.
- uint8 arrays in memory (`array_image_set`).
`tfklgan.evaluation.sources` adds the package's datasets and generators.

A set's `values` say what `read` returns: "uint8" images in [0, 255] (every
file, every dataset, and a generator's output rounded as an image file
stores it), or "float32" images in [-1, 1] (a generator's raw output, the
protocol of studies scored before uint8 became the rule).
"""

import collections
import dataclasses
import glob
import os
import zipfile
from typing import Callable, Optional, Tuple

import numpy as np

from tfklgan.data.files import IMAGE_EXTENSIONS, npz_labels, npz_value_range


class ImageSetError(ValueError):
    """An image set cannot be read as asked; the message names it and the fix."""


@dataclasses.dataclass
class ImageSet:
    """count images of `shape` (H, W, C) from `read(start, size)`, as `values`
    says: uint8 in [0, 255] or float32 in [-1, 1]."""
    description: str
    count: int
    shape: Tuple[int, int, int]
    read: Callable
    labels: Optional[np.ndarray] = None
    record: dict = dataclasses.field(default_factory=dict)
    values: str = "uint8"

    def batches(self, batch_size):
        """[b, H, W, C] batches of all `count` images, in order, as read."""
        for start in range(0, self.count, batch_size):
            yield self.read(start, min(batch_size, self.count - start))

    def unit_batches(self, batch_size):
        """float32 [b, H, W, C] batches in [-1, 1]: what a feature network takes."""
        for batch in self.batches(batch_size):
            yield to_unit_range(batch) if self.values == "uint8" else np.asarray(batch,
                                                                                 np.float32)


# What generated images may be scored as (see the module docstring).
VALUES = ("uint8", "float32")


def to_unit_range(images):
    """uint8 images in [0, 255] -> float32 in [-1, 1]."""
    return np.asarray(images, np.float32) / 127.5 - 1.0


# ----------------------------------------------------------------------- npz

def _npy_member(archive, path):
    """(key, zip member name) of the image array of an npz: 'x' (the
    package's rule) or 'arr_0' (ADM-style)."""
    names = {os.path.splitext(n)[0]: n for n in archive.namelist()}
    for key in ("x", "arr_0"):
        if key in names:
            return key, names[key]
    raise ImageSetError(f"{path!r} holds no image array 'x' or 'arr_0' (found "
                        f"{sorted(names)}); save the images under 'x' (or as "
                        "np.savez(file, images) for 'arr_0')")


def _read_header(handle, path):
    """(shape, fortran order, dtype) of the .npy stream at `handle`'s start."""
    version = np.lib.format.read_magic(handle)
    readers = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        raise ImageSetError(f"{path!r}: .npy format {version} is not supported; save it "
                            "with NumPy's np.savez")
    return readers[version](handle)


class _NpyStream:
    """The rows of one .npy member of a zip, read in order, a chunk at a time."""

    def __init__(self, path):
        self.path = path
        self._archive = zipfile.ZipFile(path)
        self.key, self._member = _npy_member(self._archive, path)
        with self._archive.open(self._member) as handle:
            shape, fortran, dtype = _read_header(handle, path)
        if fortran:
            raise ImageSetError(f"{path!r}: '{self.key}' is stored in Fortran order; "
                                "save it with np.ascontiguousarray")
        if len(shape) == 3:
            shape = shape + (1,)
        if len(shape) != 4 or shape[-1] not in (1, 3):
            raise ImageSetError(f"{path!r}: '{self.key}' must be [n, H, W] or "
                                f"[n, H, W, 1 or 3] images, got shape {shape}")
        if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
            raise ImageSetError(f"{path!r}: '{self.key}' must hold numbers, got {dtype}")
        self.shape, self.dtype = tuple(int(s) for s in shape), dtype
        self.row_bytes = int(np.prod(self.shape[1:])) * dtype.itemsize
        self._handle, self._position = None, 0

    def rows(self, start, size):
        """Rows [start, start + size) as an array of the stored dtype."""
        if self._handle is None or start < self._position:
            if self._handle is not None:
                self._handle.close()
            self._handle = self._archive.open(self._member)
            _read_header(self._handle, self.path)
            self._position = 0
        if start > self._position:  # skip forward without keeping what is skipped
            skip = (start - self._position) * self.row_bytes
            while skip:
                skip -= len(self._handle.read(min(skip, 1 << 24)))
        data = self._handle.read(size * self.row_bytes)
        self._position = start + size
        return np.frombuffer(data, self.dtype).reshape((size,) + self.shape[1:])

    def labels(self):
        names = {os.path.splitext(n)[0]: n for n in self._archive.namelist()}
        key = {"x": "y", "arr_0": "arr_1"}[self.key]
        if key not in names:
            return None
        with self._archive.open(names[key]) as handle:
            return npz_labels(np.lib.format.read_array(handle), self.shape[0], self.path)


def npz_image_set(spec, npz_range="auto", batch_size=1000):
    """The images of one or several npz files (`spec`: paths or globs, comma
    separated) as one set. Floats are checked in a first streaming pass."""
    paths = []
    for part in (p for p in spec.split(",") if p):
        found = sorted(glob.glob(part)) if glob.has_magic(part) else [part]
        if not found or not all(os.path.isfile(p) for p in found):
            raise ImageSetError(f"npz:{part}: no such file; give an .npz path or a glob "
                                "(npz:samples/*.npz)")
        paths += found
    if not paths:
        raise ImageSetError(f"npz:{spec} names no file")
    try:
        streams = [_NpyStream(p) for p in paths]
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        if isinstance(err, ImageSetError):
            raise
        raise ImageSetError(f"npz:{spec}: not a readable .npz file ({err})") from None
    shapes = {s.shape[1:] for s in streams}
    if len(shapes) > 1:
        raise ImageSetError(f"npz:{spec}: the files hold images of different shapes "
                            f"{sorted(shapes)}; score each shape separately")
    offsets = np.cumsum([0] + [s.shape[0] for s in streams])
    count = int(offsets[-1])
    top = None
    if any(s.dtype != np.uint8 for s in streams):
        low, high = np.inf, -np.inf
        for s in streams:
            for start in range(0, s.shape[0], batch_size):
                rows = s.rows(start, min(batch_size, s.shape[0] - start))
                if not np.isfinite(rows).all():
                    raise ImageSetError(f"{s.path!r}: '{s.key}' holds NaN or inf values; "
                                        "images must be finite")
                low, high = min(low, float(rows.min())), max(high, float(rows.max()))
        floating = any(np.issubdtype(s.dtype, np.floating) for s in streams)
        top = npz_value_range(low, high, floating, npz_range, f"npz:{spec}")

    def read(start, size):
        parts = []
        while size:
            index = int(np.searchsorted(offsets, start, side="right") - 1)
            local = start - int(offsets[index])
            take = min(size, int(offsets[index + 1]) - start)
            rows = streams[index].rows(local, take)
            if rows.dtype != np.uint8:
                rows = np.round(np.asarray(rows, np.float64) * (255.0 / top)).astype(np.uint8)
            parts.append(rows)
            start, size = start + take, size - take
        return np.concatenate(parts) if len(parts) > 1 else np.array(parts[0])

    labels = [s.labels() for s in streams]
    if any(x is not None for x in labels) and not all(x is not None for x in labels):
        raise ImageSetError(f"npz:{spec}: some files have labels and some do not")
    labels = np.concatenate(labels) if labels[0] is not None else None
    return ImageSet(f"npz:{spec}", count, tuple(streams[0].shape[1:]), read, labels,
                    {"source": "npz", "files": [os.path.basename(p) for p in paths],
                     "array": streams[0].key, "count": count})


# ------------------------------------------------------------------- folders

def folder_image_set(folder):
    """Every image under `folder` (recursively, sorted by file name, then path). Labels where
    every image lies in a sub-folder named by an integer class id."""
    from PIL import Image
    if not os.path.isdir(folder):
        raise ImageSetError(f"images:{folder}: no such folder")
    # by file name, then path: a set written with global indices into class
    # sub-folders (scripts/sample.py) comes back in the order it was generated
    paths = sorted((os.path.join(root, name) for root, _, names in os.walk(folder)
                    for name in names if name.lower().endswith(IMAGE_EXTENSIONS)),
                   key=lambda path: (os.path.basename(path), path))
    if not paths:
        raise ImageSetError(f"images:{folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}) "
                            "in it or its sub-folders")
    sizes, colour, deep = collections.Counter(), False, 0
    for path in paths:
        try:
            with Image.open(path) as image:
                sizes[image.size] += 1
                deep += image.mode in SIXTEEN_BIT
                colour = colour or image.mode not in ("1", "L", "LA", *SIXTEEN_BIT) and not (
                    image.mode == "P" and _gray_palette(image))
        except Exception as err:  # Pillow raises many types for bad files
            raise ImageSetError(f"{path!r} is not a readable image ({err}); remove it or "
                                "convert it to PNG") from None
    # one rule with training: images of another size are resized to the set's
    # size (the one most images have), as training resizes them
    (width, height), _ = max(sizes.items(), key=lambda item: (item[1], item[0][0] * item[0][1]))
    channels = 3 if colour else 1
    resized = sum(count for size, count in sizes.items() if size != (width, height))

    def read(start, size):
        batch = np.empty((size, height, width, channels), np.uint8)
        for i, path in enumerate(paths[start:start + size]):
            with Image.open(path) as image:
                batch[i] = _pixels(image, channels, height, width)
        return batch

    record = {"source": "images", "count": len(paths)}
    if resized:
        record["resized"] = {"count": resized, "to": [height, width],
                             "sizes": {f"{w}x{h}": n for (w, h), n in sorted(sizes.items())}}
    if deep:
        record["sixteen_bit"] = {"count": deep, "read_as": "the high byte of each value"}
    relative = [os.path.relpath(p, folder).split(os.sep) for p in paths]
    labels = None
    if all(len(r) >= 2 and r[-2].isdigit() for r in relative):
        labels = np.asarray([int(r[-2]) for r in relative], np.int64)
    return ImageSet(f"images:{folder}", len(paths), (height, width, channels), read, labels,
                    record)


# Pillow's modes of 16-bit grayscale images (PNG's 16-bit gray opens as one of them).
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _pixels(image, channels, height, width):
    """uint8 [height, width, channels] of one image. 16-bit values keep their high byte (65535 -> 255), as
    TensorFlow's PNG decoder gives them to training."""
    if image.mode in SIXTEEN_BIT:
        values = np.asarray(image).astype(np.int64)
        pixels = np.repeat((values >> 8).astype(np.uint8)[..., None], channels, axis=-1)
    else:
        pixels = np.asarray(image.convert("RGB" if channels == 3 else "L"))
        pixels = pixels.reshape(*pixels.shape[:2], channels)
    if pixels.shape[:2] != (height, width):
        from tfklgan.data.preprocess import resize_pixels
        pixels = resize_pixels(pixels, height, width).numpy()
    return pixels


def _gray_palette(image):
    palette = np.asarray(image.getpalette() or [], np.int64).reshape(-1, 3)
    return bool(len(palette)) and bool(np.all(palette[:, 0] == palette[:, 1]) and
                                       np.all(palette[:, 1] == palette[:, 2]))


# -------------------------------------------------------------------- arrays

def array_image_set(images, labels=None, description="array", record=None):
    """uint8 [n, H, W(, C)] images in memory."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ImageSetError(f"{description}: images must be uint8 [n, H, W, 1 or 3], got "
                            f"{images.dtype} {images.shape}")
    return ImageSet(description, len(images), images.shape[1:],
                    lambda start, size: images[start:start + size],
                    None if labels is None else np.asarray(labels, np.int64),
                    record or {"source": description, "count": len(images)})
