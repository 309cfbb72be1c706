"""Weight initialisation schemes applied to a built network pair.

"keras": the layers' own initialisers (Glorot-uniform kernels, zero biases).
"torch": PyTorch's defaults, as the KL-GAN authors' networks start: every
  Conv2D, Conv2DTranspose and Dense kernel and bias uniform in
  +-1/sqrt(fan_in), with fan_in as PyTorch computes it from its weight
  layout: in_channels * kh * kw for a convolution, in_features for a linear
  layer, and out_channels * kh * kw for a transposed convolution (PyTorch
  stores that weight as (in, out, kh, kw) and reads fan_in from dim 1).
  Normalisation scales stay 1 and offsets 0; the minibatch-discrimination
  tensor keeps its N(0, 1) draw.
"""

import math

import keras
import numpy as np

from tfklgan.layers import SpaceToDepthConv2D
from tfklgan.networks.base import INITS


def torch_fan_in(layer):
    """PyTorch's fan_in of a Conv2D, Conv2DTranspose, Dense or SpaceToDepthConv2D."""
    shape = tuple(layer.kernel.shape)
    if isinstance(layer, keras.layers.Conv2DTranspose):  # (kh, kw, out, in)
        return shape[0] * shape[1] * shape[2]
    return int(np.prod(shape[:-1]))  # (kh, kw, in, out) or (in, out)


def _layers(model):
    """Every layer below `model`, spectral-norm wrappers unwrapped."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        yield getattr(layer, "layer", layer)


TORCH_LAYERS = (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.Dense,
                SpaceToDepthConv2D)


def apply_torch_init(models, seed):
    """Re-draws every kernel and bias of the PyTorch-initialised layer types in
    `models` uniform in +-1/sqrt(fan_in) (seeded: the same seed, the same weights)."""
    rng = np.random.default_rng([seed, 3])
    seen = set()
    for model in models:
        for layer in _layers(model):
            if not isinstance(layer, TORCH_LAYERS) or id(layer) in seen:
                continue
            seen.add(id(layer))
            bound = 1.0 / math.sqrt(torch_fan_in(layer))
            for weight in (layer.kernel, getattr(layer, "bias", None)):
                if weight is not None:
                    weight.assign(rng.uniform(-bound, bound, tuple(weight.shape))
                                  .astype(weight.dtype))


def initialize(pair, scheme, seed):
    """Applies `scheme` ("keras" leaves the pair as built) to a NetworkPair."""
    if scheme not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {scheme!r}")
    if scheme == "torch":
        disc = pair.discriminator
        apply_torch_init([pair.generator, disc.trunk]
                         + ([disc.head] if disc.head is not None else []), seed)
    return pair
