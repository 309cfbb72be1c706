"""Loads TF-GAN's metric functions without TF-GAN's heavy imports.

`import tensorflow_gan` fails on TF >= 2.16: its top-level `__init__`
imports the Estimator-based training code (`tf.estimator` is gone) and, on
Python 3.12, `distutils`. Its `eval` package `__init__` also imports
`inception_metrics`, which imports `tensorflow_hub`, and tensorflow_hub
0.16 imports `pkg_resources`, which setuptools >= 81 no longer ships.

The metrics need only `tensorflow_gan.python.eval.classifier_metrics`
(TensorFlow, TensorFlow Probability and `eval_utils`). This module
registers the three parent packages as bare modules pointing at the
installed files, without executing their `__init__`, and imports that one
module normally. No TF-GAN code is copied: every function returned is
TF-GAN's own. `tensorflow_hub` is imported only by `import_tensorflow_hub`,
for resolving a remote TF-Hub handle.
"""

import functools
import importlib
import importlib.util
import os
import sys
import types

CLASSIFIER_METRICS = "tensorflow_gan.python.eval.classifier_metrics"
_PARENTS = ("tensorflow_gan", "tensorflow_gan.python", "tensorflow_gan.python.eval")


def _register_parent_packages():
    """Puts bare `tensorflow_gan`, `.python` and `.python.eval` into sys.modules
    (those not imported already)."""
    spec = importlib.util.find_spec("tensorflow_gan")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "tensorflow-gan is not installed; install it with "
            "`pip install tensorflow-gan` (tfklgan uses its eval functions).")
    path = list(spec.submodule_search_locations)[0]
    for name in _PARENTS:
        if name != _PARENTS[0]:
            path = os.path.join(path, name.rpartition(".")[2])
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [path]
            module.__file__ = os.path.join(path, "__init__.py")
            sys.modules[name] = module


@functools.lru_cache(maxsize=None)
def load_classifier_metrics():
    """TF-GAN's `classifier_metrics` module: `classifier_score_from_logits`,
    `frechet_classifier_distance_from_activations`,
    `kernel_classifier_distance_and_std_from_activations`, ...

    Imports neither `tensorflow_hub` nor the rest of TF-GAN.
    """
    if CLASSIFIER_METRICS not in sys.modules:
        _register_parent_packages()
    return importlib.import_module(CLASSIFIER_METRICS)


class TensorflowHubUnavailableError(ImportError):
    """tensorflow_hub cannot be imported; the message says why and what to do."""


def import_tensorflow_hub():
    """`tensorflow_hub`, or a one-line TensorflowHubUnavailableError saying why not."""
    try:
        return importlib.import_module("tensorflow_hub")
    except ImportError as err:
        hint = (" (tensorflow_hub 0.16 needs pkg_resources, which setuptools >= 81 "
                "dropped: `pip install \"setuptools<81\"`)"
                if "pkg_resources" in str(err) else "")
        raise TensorflowHubUnavailableError(
            f"tensorflow_hub cannot be imported: {err}{hint}; it is needed only to "
            "download a TF-Hub handle, so alternatively pass a local copy of the "
            "module with --inception_path") from err
