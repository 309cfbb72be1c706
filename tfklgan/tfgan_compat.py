"""Loads TF-GAN's evaluation functions on TensorFlow >= 2.16.

`import tensorflow_gan` fails on TF >= 2.16 because its top-level
`__init__` imports the Estimator-based training code (`tf.estimator` is
gone) and, on Python 3.12, `distutils`. The `tensorflow_gan.python.eval`
subpackage depends on neither. When the normal import fails, this module
registers the two parent packages as bare modules that point at the
installed files, without executing their `__init__`, and imports the `eval`
subpackage normally. No TF-GAN code is copied: every function returned is
TF-GAN's own.
"""

import functools
import importlib
import importlib.util
import os
import sys
import types


def _register_parent_packages():
    """Puts bare `tensorflow_gan` and `tensorflow_gan.python` into sys.modules."""
    spec = importlib.util.find_spec("tensorflow_gan")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "tensorflow-gan is not installed; install it with "
            "`pip install tensorflow-gan` (tfklgan uses its eval functions).")
    root = list(spec.submodule_search_locations)[0]
    for name, path in (("tensorflow_gan", root),
                       ("tensorflow_gan.python", os.path.join(root, "python"))):
        module = types.ModuleType(name)
        module.__path__ = [path]
        module.__file__ = os.path.join(path, "__init__.py")
        sys.modules[name] = module


@functools.lru_cache(maxsize=None)
def load_tfgan_eval():
    """Returns TF-GAN's `eval` module (what `tfgan.eval` is).

    Uses `import tensorflow_gan` when it works; otherwise imports
    `tensorflow_gan.python.eval` without running the top-level `__init__`.
    """
    try:
        return importlib.import_module("tensorflow_gan").eval
    except (AttributeError, ImportError):
        # The failed import leaves partial modules behind; drop them first.
        for name in list(sys.modules):
            if name == "tensorflow_gan" or name.startswith("tensorflow_gan."):
                del sys.modules[name]
        _register_parent_packages()
        return importlib.import_module("tensorflow_gan.python.eval")
