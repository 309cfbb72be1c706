"""The dataset registry: the one list of dataset names and their sources."""

from tfklgan.data.files import image_folder_source, npz_source
from tfklgan.data.sample import mnist_sample_source
from tfklgan.data.tfds_sources import celeba_source, mnist_source

SOURCES = {"mnist": mnist_source, "celeba": celeba_source,
           "mnist_sample": mnist_sample_source}
PREFIXES = {"images": image_folder_source, "npz": npz_source}


def dataset_names():
    return sorted(SOURCES) + [f"{p}:<path>" for p in sorted(PREFIXES)]


def get_source(config):
    prefix, sep, rest = config.name.partition(":")
    if sep and prefix in PREFIXES:
        if not rest:
            raise ValueError(f"dataset {config.name!r} needs a path after '{prefix}:'")
        source = PREFIXES[prefix](rest, config)
    elif config.name in SOURCES:
        source = SOURCES[config.name](config)
    else:
        raise ValueError(f"unknown dataset {config.name!r}; choose one of {dataset_names()}")
    return source
