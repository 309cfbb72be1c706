"""TF-GAN's metric functions load on TF >= 2.16 without tensorflow_hub."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tfklgan import tfgan_compat
from tfklgan.tfgan_compat import load_classifier_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_returns_tfgan_own_functions():
    cm = load_classifier_metrics()
    assert cm.__name__ == "tensorflow_gan.python.eval.classifier_metrics"
    for name in ("frechet_classifier_distance_from_activations",
                 "classifier_score_from_logits",
                 "kernel_classifier_distance_and_std_from_activations",
                 "run_classifier_fn"):
        fn = getattr(cm, name)
        assert fn.__module__ == cm.__name__, fn.__module__
    assert sys.modules[cm.__name__] is cm


def test_loaded_functions_compute():
    cm = load_classifier_metrics()
    rng = np.random.RandomState(0)
    a = rng.normal(size=(200, 4)).astype("float32")
    assert abs(float(cm.frechet_classifier_distance_from_activations(a, a))) < 1e-3
    shifted = a + 2.0
    fid = float(cm.frechet_classifier_distance_from_activations(a, shifted))
    np.testing.assert_allclose(fid, 16.0, rtol=1e-3)  # ||mu shift||^2 = 4 * 2^2


def test_second_load_is_cached():
    assert load_classifier_metrics() is load_classifier_metrics()


# A process in which pkg_resources cannot be imported, as with setuptools >= 81
# (tensorflow_hub 0.16 imports it at import time).
_WITHOUT_PKG_RESOURCES = textwrap.dedent("""
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "pkg_resources" or name.startswith("pkg_resources."):
                raise ModuleNotFoundError("No module named 'pkg_resources'")
            return None

    sys.meta_path.insert(0, Block())
    sys.modules.pop("pkg_resources", None)
""")

_METRICS_WITHOUT_HUB = _WITHOUT_PKG_RESOURCES + textwrap.dedent("""
    import os, sys
    import numpy as np
    import tensorflow as tf
    from tfklgan import tfgan_compat
    from tfklgan.evaluation import feature_networks, scores as metrics

    rng = np.random.RandomState(0)
    a = rng.normal(size=(300, 6))
    fid = metrics.frechet_distance(a, a + 1.0)
    assert abs(fid - 6.0) < 1e-3, fid
    kid, _ = metrics.kernel_distance(a, a + 1.0)
    assert kid > 0.1, kid
    assert abs(metrics.inception_score(100.0 * np.eye(4)[np.arange(40) % 4]) - 4.0) < 1e-2

    class Fake(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 299, 299, 3], tf.float32)])
        def __call__(self, images):
            pooled = tf.reduce_mean(images, axis=[1, 2])
            return {"logits": pooled, "pool_3": tf.reshape(pooled, [-1, 1, 1, 3])}

    path = os.path.join(sys.argv[1], "inception")
    tf.saved_model.save(Fake(), path)
    net = feature_networks.load_feature_network("inception", inception_path=path)
    logits, features = metrics.activations(net, [np.zeros((2, 28, 28, 1), np.float32)])
    assert features.shape == (2, 3), features.shape
    assert "tensorflow_hub" not in sys.modules, "metrics imported tensorflow_hub"
    try:
        tfgan_compat.import_tensorflow_hub()
    except tfgan_compat.TensorflowHubUnavailableError as err:
        print("HUB-ERROR:", err)
    print("OK")
""")


@pytest.mark.slow
def test_metrics_and_local_inception_work_without_pkg_resources(tmp_path):
    done = subprocess.run([sys.executable, "-c", _METRICS_WITHOUT_HUB, str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[-1] == "OK"
    errors = [line for line in lines if line.startswith("HUB-ERROR:")]
    assert len(errors) == 1
    assert "pkg_resources" in errors[0] and "--inception_path" in errors[0]


def test_hub_import_failure_is_one_line(monkeypatch):
    real_import = tfgan_compat.importlib.import_module

    def failing(name, *args):
        if name == "tensorflow_hub":
            raise ModuleNotFoundError("No module named 'pkg_resources'")
        return real_import(name, *args)

    monkeypatch.setattr(tfgan_compat.importlib, "import_module", failing)
    with pytest.raises(tfgan_compat.TensorflowHubUnavailableError) as info:
        tfgan_compat.import_tensorflow_hub()
    message = str(info.value)
    assert "\n" not in message
    assert "setuptools<81" in message and "--inception_path" in message
