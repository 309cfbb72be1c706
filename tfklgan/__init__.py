"""tfklgan: KL-GAN and GAN baselines in TensorFlow / Keras 3."""

import os

# TensorFlow turns on its oneDNN CPU kernels by default only on CPUs with
# AVX-512 extensions. On AVX2 CPUs they train the KL-GAN networks 1.6-1.9x
# faster (docs/performance.md). TensorFlow reads this switch once, when it is
# first imported, so it counts when tfklgan is imported first (the scripts do);
# set TF_ENABLE_ONEDNN_OPTS=0 to keep TensorFlow's default Eigen kernels.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# TensorFlow's INFO and WARNING lines stay hidden unless asked for; its
# start-up notices are dropped (tfklgan.quiet; TFKLGAN_VERBOSE=1 keeps them).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfklgan.quiet import start_tensorflow  # noqa: E402

start_tensorflow()

# The package's modules import TensorFlow, so they come after the switches above.
from tfklgan import distribute, layers, losses, networks, objectives, penalties  # noqa: E402,I001
from tfklgan.gan import GAN
from tfklgan.layers import (LatentReparameterization, MinibatchDiscrimination,
                            SpaceToDepthConv2D, instance_normalization)
from tfklgan.networks import NETWORKS, NetworkConfig, build_networks
from tfklgan.objectives import METHODS, build_objective
from tfklgan.config import TrainConfig
from tfklgan.run_directory import load_run
from tfklgan.training import train

__version__ = "0.1.0"

__all__ = [
    "GAN", "LatentReparameterization", "METHODS", "MinibatchDiscrimination",
    "NETWORKS", "NetworkConfig", "SpaceToDepthConv2D", "build_networks",
    "build_objective", "distribute", "instance_normalization", "layers",
    "losses", "networks", "objectives", "penalties", "TrainConfig", "train", "load_run",
]
