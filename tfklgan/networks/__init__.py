"""Network registry: name -> builder(NetworkConfig) -> NetworkPair."""

from tfklgan.networks import dcgan64, klgan32, mnist
from tfklgan.networks.base import (Discriminator, NetworkConfig, NetworkPair)

NETWORKS = {
    "klgan32": klgan32.build,
    "dcgan64": dcgan64.build,
    "dcgan28": mnist.build_dcgan28,
    "cgan28": mnist.build_cgan28,
}


def build_networks(name, config):
    """Builds the generator and discriminator registered under `name`."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; choose one of "
                         f"{sorted(NETWORKS)}")
    return NETWORKS[name](config)


__all__ = ["NETWORKS", "build_networks", "Discriminator", "NetworkConfig",
           "NetworkPair"]
