"""Test set-up: two logical CPU devices (for MirroredStrategy tests) and quiet TF.

The logical devices must be configured before TensorFlow initializes its
runtime, so this runs at import, before any test module builds a tensor.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfklgan  # noqa: E402,F401,I001  first, as users do: it turns on oneDNN kernels
import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


def pytest_collection_modifyitems(items):
    """The end-to-end tests (marked slow) first, in their order: pytest-xdist
    hands the first quarter of the tests out in turn and the rest to whichever
    worker is free, so the short tests fill the gaps and the workers end
    together instead of one finishing a long test alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def mirrored_strategy():
    """One MirroredStrategy for the session: TF's collective keys clash when
    several strategies over the same devices live in one process."""
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield
