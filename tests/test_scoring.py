"""Scoring samples from anywhere (tfklgan.evaluation, scripts/evaluate.py)."""

import json
import os
import tracemalloc

import numpy as np
import pytest
from test_training import ROOT, run_script, tiny_config

from tfklgan import data
from tfklgan.evaluation import ReferenceStats, ScoringOptions, evaluate
from tfklgan.evaluation.feature_networks import PACKAGED_MNIST_CLASSIFIER
from tfklgan.evaluation.image_sets import ImageSetError, folder_image_set, npz_image_set
from tfklgan.evaluation.score import open_generated
from tfklgan.images import save_png
from tfklgan.training import train

EVALUATE = os.path.join(ROOT, "scripts", "evaluate.py")


@pytest.fixture(scope="module")
def digits():
    """300 real digits at 32x32 (uint8 [300, 32, 32, 1]) and their labels."""
    split = data.load_split(data.DataConfig("mnist_sample", image_size=32, split="train"))
    return np.asarray(split.images[:300]), split.labels[:300]


def _options(**kwargs):
    return ScoringOptions(feature_network="classifier",
                                  classifier_path=PACKAGED_MNIST_CLASSIFIER, **kwargs)


def _write_folder(folder, images, labels=None):
    for index, image in enumerate(images):
        sub = "" if labels is None else str(labels[index])
        save_png(os.path.join(folder, sub, f"{index:05d}.png"), image)


def test_adm_style_shards_and_a_folder_of_the_same_images_score_the_same(tmp_path, digits):
    images, labels = digits
    np.savez(tmp_path / "a.npz", images[:130])           # ADM-style: arr_0, uint8 NHWC
    np.savez(tmp_path / "b.npz", images[130:])
    _write_folder(str(tmp_path / "png"), images)
    real = images[::-1].copy()
    sharded = evaluate(f"npz:{tmp_path}/*.npz", real, _options(batch_size=64))
    folder = evaluate(f"images:{tmp_path / 'png'}", real, _options(batch_size=64))
    single = evaluate(images, real, _options(batch_size=64))
    assert sharded["scores"] == folder["scores"] == single["scores"]
    assert sharded["protocol"]["generated"]["files"] == ["a.npz", "b.npz"]
    assert sharded["protocol"]["generated"]["count"] == 300
    assert sharded["protocol"]["values"] == "uint8"
    # the package's npz rule ('x', labels 'y') reads the same images, with labels
    np.savez(tmp_path / "labelled.npz", x=images[..., 0], y=labels)
    labelled = npz_image_set(str(tmp_path / "labelled.npz"))
    assert labelled.shape == (32, 32, 1) and np.array_equal(labelled.labels, labels)
    assert np.array_equal(np.concatenate(list(labelled.batches(64))), images)


def test_saved_stats_score_as_the_dataset_and_refuse_another_protocol(tmp_path, digits):
    images, _ = digits
    stats = str(tmp_path / "reference.npz")
    options = _options(real_samples=200, data_seed=4)
    direct = evaluate(images, "mnist_sample", options, save_stats=stats)
    from_file = evaluate(images, f"stats:{stats}", options)
    assert from_file["scores"] == direct["scores"]
    assert {k: from_file["protocol"]["real"][k] for k in (
        "source", "dataset", "split", "count", "seed", "image_size", "channels", "resize",
        "validation_fraction")} == {
        "source": "dataset", "dataset": "mnist_sample", "split": "validation", "count": 200,
        "seed": 4, "image_size": 32, "channels": 1, "resize": "authors",
        "validation_fraction": 0.1}
    with np.load(stats) as saved:  # mean and covariance for FID elsewhere
        assert saved["mu"].shape == (128,) and saved["sigma"].shape == (128, 128)
        assert saved["features"].shape == (200, 128)
    with pytest.raises(ImageSetError, match=r"another protocol \(resize_filter: 'tfgan' in "
                                            r"the file, 'clean' now"):
        evaluate(images, f"stats:{stats}", _options(resize_filter="clean"))
    # the reference alone, written once
    only = evaluate(None, "mnist_sample", _options(real_samples=100),
                            save_stats=str(tmp_path / "only.npz"))
    assert only["real"]["count"] == 100 and os.path.isfile(tmp_path / "only.npz")


@pytest.mark.slow
def test_a_generator_scored_directly_equals_its_samples_in_files(tmp_path):
    """A conditional run: its generator, its samples as npz (with the requested
    classes) and as a PNG folder (one sub-folder per class) give identical
    scores, per-class accuracy included; so do they from saved stats."""
    result = train(tiny_config(tmp_path, method="cgan", network="cgan28", image_size=28,
                               steps=2, latent_dim=100, latent_distribution="uniform",
                               minibatch_discrimination=False, ema_decay=0.0))
    options = _options(num_samples=200, data_seed=5, progress=True)
    direct = evaluate(result.logdir, "mnist_sample", options,
                              save_stats=str(tmp_path / "stats.npz"))
    samples, _, _ = open_generated(result.logdir, options)
    x = np.concatenate(list(samples.batches(200)))
    np.savez(tmp_path / "samples.npz", x=x, y=samples.labels)
    _write_folder(str(tmp_path / "png"), x, samples.labels)
    file_options = _options(data_seed=5)
    reports = [evaluate(spec, real, file_options)
               for spec in (f"npz:{tmp_path / 'samples.npz'}", f"images:{tmp_path / 'png'}")
               for real in ("mnist_sample", f"stats:{tmp_path / 'stats.npz'}")]
    for report in reports:
        assert report["scores"] == direct["scores"]
        assert report["conditional"] == direct["conditional"]
    per_class = direct["conditional"]["per_class"]
    assert sorted(per_class, key=int) == [str(c) for c in range(10)]
    assert all(e["generated"] == 20 and 0 <= e["accuracy"] <= 1 for e in per_class.values())
    assert direct["protocol"]["generated"]["source"] == "generator"


def test_bad_inputs_get_one_clear_line(tmp_path, digits):
    images, _ = digits
    os.makedirs(tmp_path / "empty" / "sub")
    with pytest.raises(ImageSetError, match="holds no images"):
        folder_image_set(str(tmp_path / "empty"))
    rgb = np.repeat(images[:50], 3, axis=-1)
    with pytest.raises(ImageSetError, match="is grayscale and .* is RGB"):
        evaluate(images[:50], rgb, _options())
    with pytest.raises(ImageSetError, match=r"holds 32x32 images and real array 28x28: FID "
                                            r"between them measures the resizing too"):
        evaluate(images[:50], images[:50, 2:30, 2:30], _options())
    stats = str(tmp_path / "digits28.npz")
    evaluate(None, "mnist_sample", _options(image_size=28, real_samples=50), save_stats=stats)
    with pytest.raises(ImageSetError, match=r"holds 32x32 images and mnist_sample \(validation "
                                            r"split\) 28x28: .*--image_size for a dataset"):
        evaluate(images[:50], f"stats:{stats}", _options())
    with pytest.raises(ImageSetError, match="holds 4 images; every score needs at least 6"):
        evaluate(images[:4], images, _options())
    np.savez(tmp_path / "floats.npz", x=images.astype(np.float32) * 2.0)
    with pytest.raises(ValueError, match=r"range over \[0, 510\], outside the 0-255 range"):
        npz_image_set(str(tmp_path / "floats.npz"))
    np.savez(tmp_path / "nan.npz", x=np.full((8, 4, 4), np.nan, np.float32))
    with pytest.raises(ImageSetError, match="NaN or inf"):
        npz_image_set(str(tmp_path / "nan.npz"))
    np.savez(tmp_path / "other.npz", images=images)
    with pytest.raises(ImageSetError, match=r"no image array 'x' or 'arr_0' \(found \['images'\]"):
        npz_image_set(str(tmp_path / "other.npz"))
    with pytest.raises(ImageSetError, match="no such file"):
        npz_image_set(str(tmp_path / "missing.npz"))
    with pytest.raises(ImageSetError, match="fewer than the 1000 asked for"):
        evaluate(images, images, _options(num_samples=1000))
    # float images in [0, 1] are scaled; in [0, 255] read as they are
    np.savez(tmp_path / "unit.npz", x=images.astype(np.float32) / 255.0)
    unit = npz_image_set(str(tmp_path / "unit.npz"))
    assert np.array_equal(np.concatenate(list(unit.batches(100))), images)


def test_npz_sets_stream_in_batches(tmp_path):
    """Reading a 94 MB npz batch by batch holds about one batch at a time."""
    images = np.random.default_rng(0).integers(0, 256, (7_680, 64, 64, 3), dtype=np.uint8)
    np.savez(tmp_path / "big.npz", images)
    del images
    image_set = npz_image_set(str(tmp_path / "big.npz"))
    tracemalloc.start()
    total = 0
    for batch in image_set.batches(256):
        total += len(batch)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert total == 7_680
    assert peak < 20 * 2**20, peak  # a batch is 3 MB; the file 94 MB


@pytest.mark.slow
def test_evaluate_script_scores_files_and_refuses_bad_input_in_one_line(tmp_path, digits):
    images, _ = digits
    np.savez(tmp_path / "samples.npz", images)
    out = tmp_path / "scores.json"
    proc = run_script(EVALUATE, f"--generated=npz:{tmp_path / 'samples.npz'}",
                      "--real=mnist_sample", "--feature_network=classifier",
                      f"--save_stats={tmp_path / 'stats.npz'}", f"--output={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.load(open(out))
    assert report["protocol"]["generated"]["count"] == 300
    assert report["real_floor"]["fid"] >= 0 and os.path.isfile(tmp_path / "stats.npz")
    os.makedirs(tmp_path / "nothing")
    proc = run_script(EVALUATE, f"--generated=images:{tmp_path / 'nothing'}",
                      f"--real=stats:{tmp_path / 'stats.npz'}", "--feature_network=classifier")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: images:")
    assert "Traceback" not in proc.stderr


def test_a_folder_of_mixed_sizes_is_resized_as_training_resizes_it(tmp_path, digits):
    """One rule for training and scoring: an image of another size than most
    is resized to it with training's resize (it was refused by scoring and
    resized by training), and the set's record says so."""
    import tensorflow as tf

    from tfklgan.data.preprocess import resize_pixels
    images, _ = digits
    _write_folder(str(tmp_path / "mixed"), images[:20])
    big = np.random.default_rng(0).integers(0, 256, (64, 64, 1), dtype=np.uint8)
    save_png(str(tmp_path / "mixed" / "big.png"), big)
    image_set = folder_image_set(str(tmp_path / "mixed"))
    assert image_set.shape == (32, 32, 1)
    assert image_set.record["resized"] == {"count": 1, "to": [32, 32],
                                           "sizes": {"32x32": 20, "64x64": 1}}
    read = np.concatenate(list(image_set.batches(30)))
    assert np.array_equal(read[:20], images[:20])
    expected = resize_pixels(tf.constant(big), 32, 32).numpy()
    assert np.array_equal(read[20], expected)
    # the resize is training's own: a folder of the 64x64 image trains on those pixels
    trained = [np.asarray(data.load_split(data.DataConfig(
        "images:" + str(tmp_path / "mixed"), image_size=32, channels=1, split=split,
        cache_dir=str(tmp_path / "cache"))).images) for split in ("train", "validation")]
    assert any(np.array_equal(image, expected) for images in trained for image in images)


def test_16_bit_images_are_scaled_to_8_bits_as_training_reads_them(tmp_path):
    """A 16-bit PNG was clipped to 255 pixel by pixel (all white); now each
    value keeps its high byte, as TensorFlow's PNG decoder gives training."""
    import tensorflow as tf
    from PIL import Image
    rng = np.random.default_rng(1)
    os.makedirs(tmp_path / "deep")
    for index in range(8):
        Image.fromarray(rng.integers(0, 65536, (16, 16)).astype(np.uint16)).save(
            tmp_path / "deep" / f"{index}.png")
    image_set = folder_image_set(str(tmp_path / "deep"))
    read = np.concatenate(list(image_set.batches(8)))
    decoded = tf.io.decode_image(tf.io.read_file(str(tmp_path / "deep" / "0.png")),
                                 channels=1).numpy()
    assert np.array_equal(read[0], decoded) and 0 < read.mean() < 255
    assert image_set.record["sixteen_bit"]["count"] == 8


def test_a_stats_file_that_is_damaged_missing_or_foreign_is_named_in_one_line(tmp_path,
                                                                               digits):
    """Each was a traceback (zipfile.BadZipFile) or "the classifier feature
    network needs --classifier_path", which names neither the file nor what is
    wrong with it."""
    images, _ = digits
    good = str(tmp_path / "good.npz")
    evaluate(None, images[:60], _options(), save_stats=good)
    with open(good, "rb") as handle:
        (tmp_path / "cut.npz").write_bytes(handle.read()[:3000])
    np.savez(tmp_path / "foreign.npz", mu=np.zeros(64), sigma=np.eye(64))
    np.savez(tmp_path / "other.npz", logits=np.zeros((5, 10)), features=np.zeros((6, 128)),
             labels=np.zeros(0), protocol=np.asarray("{}"))
    cases = {"cut": r"stats:.*cut.npz is damaged and cannot be read \(BadZipFile",
             "missing": r"stats:.*missing.npz: no such file",
             "foreign": r"stats:.*foreign.npz was not written by tfklgan \(it holds mu, sigma",
             "other": r"stats:.*other.npz holds activations of shapes \(5, 10\) and \(6, 128\)"}
    for name, message in cases.items():
        for options in (_options(), ScoringOptions(feature_network="classifier")):
            with pytest.raises(ImageSetError, match=message):
                evaluate(images[:60], f"stats:{tmp_path / name}.npz", options)
    # and from the command line: one line, exit code 2
    np.savez(tmp_path / "generated.npz", x=images[:60])
    proc = run_script(EVALUATE, f"--generated=npz:{tmp_path / 'generated.npz'}",
                      f"--real=stats:{tmp_path / 'cut.npz'}", "--feature_network=classifier")
    assert proc.returncode == 2 and "is damaged and cannot be read" in proc.stderr
    assert "Traceback" not in proc.stderr
    # a good file of another feature network is refused with the difference named
    assert ReferenceStats.load(good).count == 60
