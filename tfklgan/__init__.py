"""tfklgan: KL-GAN and GAN baselines in TensorFlow / Keras 3."""

from tfklgan import distribute, layers, losses, networks, objectives, penalties
from tfklgan.gan import GAN
from tfklgan.layers import (LatentReparameterization, MinibatchDiscrimination,
                            ShiftedSumConv2D, SpaceToDepthConv2D, StridedConv2D,
                            SubPixelConv2DTranspose, instance_normalization)
from tfklgan.networks import NETWORKS, NetworkConfig, build_networks
from tfklgan.objectives import METHODS, build_objective
from tfklgan.config import TrainConfig
from tfklgan.training import load_run, train

__version__ = "0.1.0"

__all__ = [
    "GAN", "LatentReparameterization", "METHODS", "MinibatchDiscrimination",
    "NETWORKS", "NetworkConfig", "ShiftedSumConv2D", "SpaceToDepthConv2D",
    "StridedConv2D", "SubPixelConv2DTranspose", "build_networks",
    "build_objective", "distribute", "instance_normalization", "layers",
    "losses", "networks", "objectives", "penalties", "TrainConfig", "train", "load_run",
]
