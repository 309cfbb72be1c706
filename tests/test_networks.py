import numpy as np
import pytest

from tfklgan import NETWORKS, NetworkConfig, build_networks


def test_klgan32_parameter_counts_at_width_128():
    pair = build_networks("klgan32", NetworkConfig(width=128, minibatch_discrimination=True))
    assert pair.generator.count_params() == 5_992_835      # ~5.99M
    assert pair.discriminator.count_params() == 14_611_784  # ~14.61M
    logit = build_networks("klgan32", NetworkConfig(width=128, head="logit",
                                                   minibatch_discrimination=True))
    assert logit.discriminator.count_params() == 14_611_784 + 17


SMALL = {
    "klgan32": dict(image_size=32, channels=3),
    "dcgan256": dict(image_size=256, channels=3),
    "dcgan128": dict(image_size=128, channels=3),
    "dcgan64": dict(image_size=64, channels=3),
    "dcgan32": dict(image_size=32, channels=1),
    "dcgan28": dict(image_size=28, channels=1),
    "cgan28": dict(image_size=28, channels=1, num_classes=10),
}
CONDITIONAL = {"klgan32": 32, "dcgan64": 64, "dcgan32": 32, "dcgan28": 28}


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("head,mbd", [("features", False), ("logit", False), ("logit", True)])
def test_shapes(name, head, mbd):
    cfg = NetworkConfig(width=4, latent_dim=6, head=head, minibatch_discrimination=mbd,
                        **SMALL[name])
    pair = build_networks(name, cfg)
    z = np.random.RandomState(0).normal(size=(3, 6)).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[[1, 2, 3]]
    x = pair.generator([z, labels] if cfg.num_classes else z).numpy()
    assert x.shape == (3, *cfg.image_shape)
    assert np.all(np.abs(x) <= 1.0)
    real_out, gen_out = pair.discriminator.pair(x, x, labels, labels) \
        if cfg.num_classes else pair.discriminator.pair(x, x)
    width = 1 if head == "logit" else cfg.feature_dim + (cfg.mbd_kernels if mbd else 0)
    assert real_out.shape == gen_out.shape == (3, width)
    assert pair.discriminator.output_dim == width


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("name,size,convs", [("dcgan128", 128, 6), ("dcgan64", 64, 5),
                                             ("dcgan32", 32, 4)])
def test_spectral_norm_dcgan(k, name, size, convs):
    cfg = NetworkConfig(width=4, image_size=size, head="logit", spectral_norm_iterations=k)
    disc = build_networks(name, cfg).discriminator
    names = [layer.__class__.__name__ for layer in disc.trunk.layers]
    assert names.count("SpectralNormalization") == convs
    assert "BatchNormalization" not in names
    assert all(layer.power_iterations == k for layer in disc.trunk.layers
               if layer.__class__.__name__ == "SpectralNormalization")
    bn = build_networks(name, NetworkConfig(width=4, image_size=size, head="logit"))
    assert [l.__class__.__name__ for l in bn.discriminator.trunk.layers].count(
        "BatchNormalization") == convs - 2  # none after the first conv nor on the logit


def test_the_dcgan_pairs_double_their_channels_per_stage():
    """dcgan64: G 8w-4w-2w-w-C, D w-2w-4w-8w-1; dcgan32 one stage fewer a side."""
    def channels(name, size):
        pair = build_networks(name, NetworkConfig(width=4, image_size=size, channels=1,
                                                  head="logit"))
        g = [l.filters for l in pair.generator.layers if hasattr(l, "filters")]
        d = [l.filters for l in pair.discriminator.trunk.layers if hasattr(l, "filters")]
        dense = [l.units for l in pair.generator.layers if hasattr(l, "units")]
        return dense, g, d
    assert channels("dcgan64", 64) == ([4 * 4 * 32], [16, 8, 4, 1], [4, 8, 16, 32, 1])
    assert channels("dcgan32", 32) == ([4 * 4 * 16], [8, 4, 1], [4, 8, 16, 1])
    # at 128 and 256 the stages nearest 4x4 stop at 8w instead of doubling on
    assert channels("dcgan128", 128) == ([4 * 4 * 32], [32, 16, 8, 4, 1],
                                         [4, 8, 16, 32, 32, 1])
    assert channels("dcgan256", 256) == ([4 * 4 * 32], [32, 32, 16, 8, 4, 1],
                                         [4, 8, 16, 32, 32, 32, 1])
    with pytest.raises(ValueError, match="makes 32x32 images, got image_size=64"):
        build_networks("dcgan32", NetworkConfig(width=4, image_size=64))


@pytest.mark.parametrize("name", sorted(CONDITIONAL))
def test_every_network_can_be_conditional(name):
    size = CONDITIONAL[name]
    cfg = NetworkConfig(width=2, latent_dim=5, image_size=size, channels=3, num_classes=4,
                        head="logit")
    pair = build_networks(name, cfg)
    z = np.random.RandomState(0).normal(size=(4, 5)).astype(np.float32)
    labels = np.eye(4, dtype=np.float32)
    x = pair.generator([z, labels])
    assert x.shape == (4, size, size, 3)
    assert pair.discriminator.conditional
    assert pair.discriminator([x, labels]).shape == (4, 1)
    # the label changes the output
    assert not np.allclose(pair.generator([z, labels]), pair.generator([z, labels[::-1]]))


def test_cgan28_uses_uniform_noise_and_label_planes():
    pair = build_networks("cgan28", NetworkConfig(width=4, latent_dim=100, image_size=28,
                                                  channels=1, num_classes=10, head="logit",
                                                  latent_distribution="uniform"))
    assert pair.latent_distribution == "uniform"
    assert pair.num_classes == 10
    stacked = [l for l in pair.discriminator.trunk.layers if l.name.startswith("concatenate")]
    assert stacked[0].output.shape[-1] == 1 + 10  # image + 10 label planes
    embedding = pair.generator.get_layer("label_embedding")
    assert embedding.kernel.shape == (10, 100)


def test_unknown_network_and_bad_sizes():
    with pytest.raises(ValueError, match="unknown network 'resnet'.*klgan32"):
        build_networks("resnet", NetworkConfig())
    with pytest.raises(ValueError, match="image_size=64"):
        build_networks("klgan32", NetworkConfig(image_size=64))
    with pytest.raises(ValueError, match="head must be one of"):
        NetworkConfig(head="softmax")
    with pytest.raises(ValueError, match="num_classes >= 2"):
        build_networks("cgan28", NetworkConfig(image_size=28, channels=1))


def _torch_layers(pair):
    from tfklgan.networks.init import TORCH_LAYERS, _layers
    disc = pair.discriminator
    models = [pair.generator, disc.trunk] + ([disc.head] if disc.head is not None else [])
    return [layer for model in models for layer in _layers(model)
            if isinstance(layer, TORCH_LAYERS)]


@pytest.mark.parametrize("name", ["klgan32", "dcgan64", "dcgan32", "cgan28"])
def test_torch_init_draws_uniform_in_one_over_sqrt_fan_in(name):
    import keras
    cfg = NetworkConfig(width=8, latent_dim=16, head="logit", minibatch_discrimination=True,
                        init="torch", **SMALL[name])
    pair = build_networks(name, cfg, seed=3)
    kinds = set()
    for layer in _torch_layers(pair):
        kernel = layer.kernel.numpy()
        if isinstance(layer, keras.layers.Conv2DTranspose):
            kh, kw, out_channels, _ = kernel.shape  # torch: (in, out, kh, kw), fan_in from out
            fan_in = out_channels * kh * kw
            kinds.add("Conv2DTranspose")
        else:
            fan_in = int(np.prod(kernel.shape[:-1]))
            kinds.add(type(layer).__name__)
        bound = 1.0 / np.sqrt(fan_in)
        for weights in [kernel] + ([layer.bias.numpy()] if layer.bias is not None else []):
            assert np.abs(weights).max() <= bound * (1 + 1e-6), layer.name
            if weights.size >= 200:  # uniform: the extremes come close to the bound
                assert np.abs(weights).max() > 0.9 * bound, layer.name
                assert abs(np.std(weights) - bound / np.sqrt(3)) < 0.15 * bound, layer.name
    assert {"Conv2D", "Dense"} <= kinds
    if name != "cgan28":
        assert "Conv2DTranspose" in kinds
    for layer in pair.generator.layers:  # normalisation: scale 1, offset 0
        if isinstance(layer, (keras.layers.BatchNormalization,
                              keras.layers.LayerNormalization)):
            np.testing.assert_array_equal(layer.gamma.numpy(), 1.0)
            np.testing.assert_array_equal(layer.beta.numpy(), 0.0)
    mbd = pair.discriminator.minibatch.kernel.numpy()  # N(0, 1) as before
    assert 0.6 < mbd.std() < 1.4


def test_torch_init_is_seeded_and_keras_init_is_unchanged():
    import keras
    cfg = dict(width=4, latent_dim=8, image_size=32, channels=1)

    def weights(**kwargs):
        keras.utils.set_random_seed(0)
        pair = build_networks("klgan32", NetworkConfig(**cfg, **kwargs), seed=5)
        return [w.numpy() for w in pair.generator.weights + pair.discriminator.weights]

    default, keras_init = weights(), weights(init="keras")
    for a, b in zip(default, keras_init, strict=True):
        np.testing.assert_array_equal(a, b)
    torch_a, torch_b = weights(init="torch"), weights(init="torch")
    for a, b in zip(torch_a, torch_b, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(default, torch_a, strict=True))
    with pytest.raises(ValueError, match="init must be one of"):
        NetworkConfig(init="jax")


def test_a_folder_of_128px_images_trains_without_naming_a_network(tmp_path):
    """Users' own data at 128x128: --image_size=128 picks dcgan128, with
    MBD and spectral normalisation available as for the other pairs."""
    from test_training import tiny_config

    from tfklgan.images import save_png
    from tfklgan.run_directory import load_run
    from tfklgan.training import train
    rng = np.random.default_rng(0)
    for index in range(20):
        save_png(str(tmp_path / "faces" / f"{index}.png"),
                 rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    config = tiny_config(tmp_path, method="hinge", dataset=f"images:{tmp_path / 'faces'}",
                         image_size=128, steps=2, batch_size=4, max_examples=None,
                         spectral_norm_iterations=1, checkpoint_every=1)
    assert config.network_config().name == "dcgan128"
    result = train(config.validate())
    gan, _, _ = load_run(config.run.logdir)
    assert result.step == 2
    assert gan.generate(gan.sample_latents(2)).shape == (2, 128, 128, 3)
