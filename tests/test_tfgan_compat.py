import sys

import numpy as np

from tfklgan.tfgan_compat import load_tfgan_eval


def test_returns_tfgan_own_functions():
    ev = load_tfgan_eval()
    assert ev.__name__.startswith("tensorflow_gan")
    for name in ("frechet_classifier_distance_from_activations",
                 "classifier_score_from_logits",
                 "kernel_classifier_distance_and_std_from_activations",
                 "run_classifier_fn"):
        fn = getattr(ev, name)
        assert fn.__module__.startswith("tensorflow_gan.python.eval"), fn.__module__
    assert sys.modules[ev.__name__] is ev


def test_loaded_functions_compute():
    ev = load_tfgan_eval()
    rng = np.random.RandomState(0)
    a = rng.normal(size=(200, 4)).astype("float32")
    assert abs(float(ev.frechet_classifier_distance_from_activations(a, a))) < 1e-3
    shifted = a + 2.0
    fid = float(ev.frechet_classifier_distance_from_activations(a, shifted))
    np.testing.assert_allclose(fid, 16.0, rtol=1e-3)  # ||mu shift||^2 = 4 * 2^2


def test_second_load_is_cached():
    assert load_tfgan_eval() is load_tfgan_eval()
