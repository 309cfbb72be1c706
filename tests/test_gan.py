"""Training-step behaviour of the GAN model on tiny networks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfklgan
from tfklgan import NetworkConfig, build_networks, build_objective
from tfklgan.gan import GAN, group_critic_batches
from tfklgan.networks.base import make_discriminator


def tiny_gan(method, mbd=False, network="klgan32", ema_decay=0.0, n_critic=1,
             generator_first=False, reuse_generated=False, **objective_options):
    objective = build_objective(method, **objective_options)
    size = {"klgan32": 32, "dcgan64": 64}.get(network, 28)
    cfg = NetworkConfig(width=4, latent_dim=8, image_size=size,
                        channels=1 if size == 28 else 3, head=objective.head,
                        minibatch_discrimination=mbd,
                        num_classes=10 if network == "cgan28" else 0)
    gan = GAN(build_networks(network, cfg), objective, ema_decay=ema_decay,
              n_critic=n_critic, generator_first=generator_first,
              reuse_generated=reuse_generated)
    gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    return gan


def images(n, size=32, channels=3, seed=0):
    return np.random.RandomState(seed).uniform(-1, 1, (n, size, size, channels)).astype(
        np.float32)


def snapshot(model):
    return [w.copy() for w in model.get_weights()]


def changed(before, model):
    return any(not np.allclose(a, b) for a, b in zip(before, model.get_weights(), strict=True))


@pytest.mark.parametrize("method,mbd", [
    ("klgan", False), ("klgan", True), ("gan", False), ("dcgan", True),
    ("lsgan", False), ("hinge", True), ("wgan", False), ("wgan_gp", True),
    ("r1gan", False)])
def test_every_objective_trains_five_steps(method, mbd):
    gan = tiny_gan(method, mbd=mbd)
    g0, d0 = snapshot(gan.generator), snapshot(gan.discriminator)
    ds = tf.data.Dataset.from_tensor_slices(images(40)).batch(8, drop_remainder=True)
    history = gan.fit(ds, epochs=1, verbose=0).history
    assert gan.d_optimizer.iterations.numpy() == 5
    assert gan.g_optimizer.iterations.numpy() == 5
    for name, values in history.items():
        assert np.isfinite(values[-1]), (name, values)
    assert changed(g0, gan.generator) and changed(d0, gan.discriminator)
    expected = {"skl"} if method == "klgan" else {"d_loss", "g_loss", "d_acc_real"}
    assert expected <= set(history)


def test_wgan_clips_critic_weights():
    gan = tiny_gan("wgan", clip_value=0.02)
    ds = tf.data.Dataset.from_tensor_slices(images(16)).batch(8)
    gan.fit(ds, verbose=0)
    for w in gan.discriminator.trainable_weights:
        assert np.max(np.abs(w.numpy())) <= 0.02 + 1e-7


def test_n_critic_steps_per_generator_step():
    gan = tiny_gan("wgan_gp", n_critic=3)
    ds = group_critic_batches(
        tf.data.Dataset.from_tensor_slices(images(48)).batch(8, drop_remainder=True), 3)
    assert ds.element_spec.shape.as_list() == [8, 3, 32, 32, 3]
    gan.fit(ds, verbose=0)
    assert gan.d_optimizer.iterations.numpy() == 6
    assert gan.g_optimizer.iterations.numpy() == 2


def test_group_critic_batches_keeps_batch_order():
    ds = tf.data.Dataset.range(12).batch(2)  # [0,1], [2,3], ...
    grouped = next(iter(group_critic_batches(ds, 3))).numpy()
    np.testing.assert_array_equal(grouped, [[0, 2, 4], [1, 3, 5]])


def _one_batch_update(generator_first):
    gan = tiny_gan("hinge", generator_first=generator_first)
    gan.g_optimizer.learning_rate.assign(0.0)  # G's output fixed: order shows via D
    ds = tf.data.Dataset.from_tensor_slices(images(8)).batch(8)
    gan.fit(ds, verbose=0)
    return gan


def test_reuse_generated_trains_d_on_the_g_steps_images():
    """With --reuse_generated the D step after the G step trains on G's images
    from before its update (the KL-GAN authors' code): D's SGD update equals one
    computed by hand from the initial weights and the G step's latents. Without
    it, the D step draws and generates anew, and the update differs."""
    from tfklgan.gan import _G_LABELS, _G_LATENT
    real = tf.constant(images(8))
    error = {}
    for reuse in (True, False):
        gan = tiny_gan("hinge", generator_first=True, reuse_generated=reuse)
        gan.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
        d_vars = gan.discriminator.trainable_variables
        initial = [v.numpy() for v in d_vars]
        latents, _ = gan._latents_and_labels(8, 0, _G_LATENT, _G_LABELS)
        fake = gan.generate(latents, use_ema=False, training=True)  # before G's update
        with tf.GradientTape() as tape:
            loss = gan.objective.discriminator_loss(
                *gan.discriminator.pair(real, fake, training=True))
        expected = [w - 0.1 * g.numpy() for w, g in zip(initial, tape.gradient(loss, d_vars),
                                                        strict=True)]
        gan.train_step(real)
        error[reuse] = max(float(np.max(np.abs(v.numpy() - e)))
                           for v, e in zip(d_vars, expected, strict=True))
    assert error[True] < 1e-6 and error[False] > 1e-4, error
    with pytest.raises(ValueError, match="reuse_generated needs generator_first"):
        tiny_gan("hinge", reuse_generated=True)


def test_generator_first_order():
    # With G first, the G step sees the initial D; with D first, the updated D.
    # The G gradient norms of the two orders therefore differ.
    a = _one_batch_update(True)
    b = _one_batch_update(False)
    ga = float(a.metrics[[m.name for m in a.metrics].index("g_grad_norm")].result())
    gb = float(b.metrics[[m.name for m in b.metrics].index("g_grad_norm")].result())
    assert ga != pytest.approx(gb, rel=1e-4)


def test_ema_generator_tracks_weights():
    gan = tiny_gan("klgan", ema_decay=0.5)
    w0 = snapshot(gan.generator)
    ds = tf.data.Dataset.from_tensor_slices(images(8)).batch(8)
    gan.fit(ds, verbose=0)
    w1 = gan.generator.get_weights()
    for ema, before, after in zip(gan.ema_generator.get_weights(), w0, w1, strict=True):
        np.testing.assert_allclose(ema, 0.5 * before + 0.5 * after, rtol=1e-5, atol=1e-7)
    z = gan.sample_latents(3)
    np.testing.assert_allclose(gan.generate(z), gan.ema_generator(z), atol=1e-6)
    assert not np.allclose(gan.generate(z), gan.generate(z, use_ema=False))


def test_joint_update_equals_hand_computed_sgd():
    """One joint step = D: w - lr * d(-SKL)/dw; G: w - lr * dSKL/dw."""
    gan = tiny_gan("klgan")
    lr = 0.05
    gan.compile(keras.optimizers.SGD(lr), keras.optimizers.SGD(lr))
    real = images(8)
    latents = gan._stateless("normal", [8, 8], 0, 0)
    d_vars, g_vars = gan.discriminator.trainable_variables, gan.generator.trainable_variables
    d0, g0 = [v.numpy() for v in d_vars], [v.numpy() for v in g_vars]
    with tf.GradientTape() as tape:
        fake = gan.generator(latents, training=True)
        r, f = gan.discriminator.pair(real, fake, training=True)
        skl = tfklgan.losses.symmetric_kl(tfklgan.losses.gaussian_moments(r),
                                          tfklgan.losses.gaussian_moments(f))[0]
    grads = tape.gradient(skl, d_vars + g_vars)
    gan.fit(tf.data.Dataset.from_tensor_slices(real).batch(8), verbose=0)
    for v, w0, g in zip(d_vars, d0, grads[:len(d_vars)], strict=True):
        np.testing.assert_allclose(v.numpy(), w0 + lr * g.numpy(), rtol=1e-4, atol=1e-6)
    for v, w0, g in zip(g_vars, g0, grads[len(d_vars):], strict=True):
        np.testing.assert_allclose(v.numpy(), w0 - lr * g.numpy(), rtol=1e-4, atol=1e-6)


def _toy_gan(g_learning_rate):
    z = keras.Input((1,))
    generator = keras.Model(z, keras.layers.Dense(1)(z))
    x = keras.Input((1,))
    h = keras.layers.Dense(16, activation="tanh")(keras.layers.Rescaling(0.5)(x))
    trunk = keras.Model(x, keras.layers.Dense(4)(h))
    disc = make_discriminator(trunk, NetworkConfig(head="features"))
    pair = tfklgan.networks.NetworkPair(generator, disc, latent_dim=1)
    gan = GAN(pair, build_objective("klgan", kl_eps=1e-6))
    gan.compile(keras.optimizers.Adam(g_learning_rate), keras.optimizers.Adam(1e-2))
    return gan


@pytest.mark.parametrize("g_sign", [1.0, -1.0])
def test_joint_update_moves_generator_towards_data(g_sign):
    """1-D data ~ N(3, 0.5^2), linear G: KL-GAN fits mean and spread within
    300 steps. A negative G learning rate flips G's gradient, and must fail."""
    gan = _toy_gan(g_sign * 1e-2)
    data = np.random.RandomState(0).normal(3.0, 0.5, (256 * 300, 1)).astype(np.float32)
    gan.fit(tf.data.Dataset.from_tensor_slices(data).batch(256), verbose=0)
    samples = gan.generate(gan.sample_latents(5000)).numpy()
    converged = abs(samples.mean() - 3.0) < 0.1 and abs(samples.std() - 0.5) < 0.1
    assert converged == (g_sign > 0), (samples.mean(), samples.std())


def test_conditional_gan_trains_with_labels():
    gan = tiny_gan("cgan", network="cgan28")
    x = images(16, size=28, channels=1)
    y = np.eye(10, dtype=np.float32)[np.arange(16) % 10]
    g0 = snapshot(gan.generator)
    gan.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), verbose=0)
    assert changed(g0, gan.generator)
    out = gan.generate(gan.sample_latents(10), np.eye(10, dtype=np.float32))
    assert out.shape == (10, 28, 28, 1)
    with pytest.raises(ValueError, match="class-conditional"):
        gan.generate(gan.sample_latents(2))


def test_conditional_wgan_gp_interpolates_labels():
    gan = tiny_gan("wgan_gp", network="cgan28")
    x = images(8, size=28, channels=1)
    y = np.eye(10, dtype=np.float32)[np.arange(8)]
    history = gan.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), verbose=0).history
    assert np.isfinite(history["gradient_penalty"][-1])


@pytest.mark.parametrize("name,size", [("dcgan64", 64), ("dcgan32", 32)])
def test_dcgan_batchnorm_and_spectral_norm_train(name, size):
    for k in (0, 2):
        objective = build_objective("dcgan")
        cfg = NetworkConfig(width=2, latent_dim=8, image_size=size, head="logit",
                            spectral_norm_iterations=k)
        gan = GAN(build_networks(name, cfg), objective)
        gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
        d0, g0 = snapshot(gan.discriminator), snapshot(gan.generator)
        gan.fit(tf.data.Dataset.from_tensor_slices(images(8, size=size)).batch(4), verbose=0)
        assert changed(d0, gan.discriminator) and changed(g0, gan.generator)


def test_same_seed_same_result():
    def run():
        keras.utils.set_random_seed(3)
        gan = tiny_gan("wgan_gp", mbd=True)
        gan.fit(tf.data.Dataset.from_tensor_slices(images(16)).batch(8), verbose=0)
        return gan.generator.get_weights() + gan.discriminator.get_weights()
    for a, b in zip(run(), run(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_configuration_messages():
    with pytest.raises(ValueError, match="unknown method 'vae'"):
        build_objective("vae")
    with pytest.raises(ValueError, match="bad option for method 'hinge'"):
        build_objective("hinge", clip_value=0.1)
    with pytest.raises(ValueError, match="head='features'"):
        GAN(build_networks("klgan32", NetworkConfig(width=2, head="logit")),
            build_objective("klgan"))
    with pytest.raises(ValueError, match="head='logit'"):
        GAN(build_networks("klgan32", NetworkConfig(width=2)), build_objective("hinge"))
    with pytest.raises(ValueError, match="n_critic must be >= 1"):
        GAN(build_networks("klgan32", NetworkConfig(width=2, head="logit")),
            build_objective("wgan"), n_critic=0)


def test_mixed_bfloat16_trains_with_float32_losses():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        gan = tiny_gan("klgan", mbd=True)
        assert gan.generator.get_layer("project").compute_dtype == "bfloat16"
        history = gan.fit(tf.data.Dataset.from_tensor_slices(images(16)).batch(8),
                          verbose=0).history
        assert np.isfinite(history["skl"][-1])
        assert gan.generate(gan.sample_latents(2)).dtype == tf.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.slow
def test_jit_compile_trains_deterministically():
    # XLA draws other random numbers than the CPU kernels for the same
    # stateless seed, so jit and non-jit runs are compared only with themselves.
    def run():
        keras.utils.set_random_seed(5)
        gan = tiny_gan("klgan", mbd=True)
        gan.compile(keras.optimizers.SGD(1e-2), keras.optimizers.SGD(1e-2), jit_compile=True)
        w0 = snapshot(gan.generator)
        history = gan.fit(tf.data.Dataset.from_tensor_slices(images(16)).batch(8),
                          verbose=0).history
        assert np.isfinite(history["skl"][-1]) and changed(w0, gan.generator)
        return gan.generator.get_weights()
    for a, b in zip(run(), run(), strict=True):
        np.testing.assert_array_equal(a, b)
