"""Network registry: name -> builder(NetworkConfig) -> NetworkPair."""

from tfklgan.networks import dcgan, klgan32, mnist
from tfklgan.networks.base import Discriminator, NetworkConfig, NetworkPair
from tfklgan.networks.init import INITS, initialize

NETWORKS = {
    "klgan32": klgan32.build,
    **{name: dcgan.builder(name) for name in dcgan.IMAGE_SIZES},
    "dcgan28": mnist.build_dcgan28,
    "cgan28": mnist.build_cgan28,
}

# The image size each network makes.
IMAGE_SIZES = {
    "klgan32": klgan32.IMAGE_SIZE,
    **dcgan.IMAGE_SIZES,
    "dcgan28": mnist.IMAGE_SIZE,
    "cgan28": mnist.IMAGE_SIZE,
}


def build_networks(name, config, seed=0):
    """Builds the generator and discriminator registered under `name`, with
    the initialisation `config.init` names (seeded by `seed` for "torch")."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; choose one of "
                         f"{sorted(NETWORKS)}")
    return initialize(NETWORKS[name](config), config.init, seed)


__all__ = ["IMAGE_SIZES", "INITS", "NETWORKS", "build_networks", "Discriminator", "NetworkConfig",
           "NetworkPair"]
