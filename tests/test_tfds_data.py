"""TFDS MNIST and CelebA on prepared data: the path every online user takes.

Small datasets are written in TFDS's own format (`store_as_tfds_dataset`)
under the registered names and versions, so the package opens them with
TFDS's own `mnist` and `celeb_a` builders, exactly as it opens the real ones.
"""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image
from test_training import ROOT, TRAIN, run_script

from tfklgan import data

MNIST_TRAIN, MNIST_TEST = 60, 20
CELEBA_SPLITS = {"train": 14, "validation": 3, "test": 3}


def _store(name, split_examples, data_dir):
    builder = tfds.builder(name, data_dir=data_dir)
    tfds.dataset_builders.store_as_tfds_dataset(
        name=name, version=str(builder.info.version), features=builder.info.features,
        split_datasets=split_examples, data_dir=data_dir, disable_shuffling=True)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A TFDS data_dir with mnist and celeb_a prepared, and the same CelebA
    JPEGs as a local folder (img_align_celeba/ + list_attr_celeba.txt)."""
    root = tmp_path_factory.mktemp("tfds")
    data_dir, local = root / "data", root / "celeba"
    rng = np.random.default_rng(0)
    digits = {s: rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
              for s, n in (("train", MNIST_TRAIN), ("test", MNIST_TEST))}
    labels = {s: np.arange(len(x)) % 10 for s, x in digits.items()}
    _store("mnist", {s: [(str(i), {"image": x[i], "label": int(labels[s][i])})
                         for i in range(len(x))] for s, x in digits.items()}, str(data_dir))

    features = tfds.builder("celeb_a", data_dir=str(data_dir)).info.features
    names = list(features["attributes"].keys())
    landmarks = list(features["landmarks"].keys())
    os.makedirs(local / "img_align_celeba")
    rows, splits, index = [], {}, 0
    for split, count in CELEBA_SPLITS.items():
        examples = []
        for _ in range(count):
            index += 1
            file = f"{index:06d}.jpg"
            # a smooth picture, so a JPEG of it is close to the array
            y, x = np.mgrid[0:218, 0:178]
            picture = np.stack([(x + index * 9) % 256, (y * 2) % 256,
                                (x + y + 40 * index) % 256], -1).astype(np.uint8)
            Image.fromarray(picture).save(local / "img_align_celeba" / file, quality=95)
            attributes = {n: bool(rng.integers(0, 2)) for n in names}
            rows.append((file, attributes))
            examples.append((file, {
                "image": str(local / "img_align_celeba" / file), "attributes": attributes,
                "identity": {"Identity_No": index},
                "landmarks": {n: int(rng.integers(0, 178)) for n in landmarks}}))
        splits[split] = examples
    _store("celeb_a", splits, str(data_dir))
    with open(local / "list_attr_celeba.txt", "w") as handle:
        handle.write(f"{len(rows)}\n" + " ".join(names) + "\n")
        for file, attributes in rows:
            handle.write(file + " " + " ".join("1" if attributes[n] else "-1" for n in names)
                         + "\n")
    return {"data_dir": str(data_dir), "local": str(local), "digits": digits,
            "labels": labels, "celeba_rows": rows, "cache": str(root / "cache")}


def _config(prepared, name, **kwargs):
    values = dict(image_size=28, channels=1, data_dir=prepared["data_dir"],
                  cache_dir=prepared["cache"], download=False)
    values.update(kwargs)
    return data.DataConfig(name, **values)


def test_the_builders_opened_are_tfds_own(prepared):
    for name in ("mnist", "celeb_a"):
        builder = tfds.builder(name, data_dir=prepared["data_dir"])
        assert builder.is_prepared()
        assert type(builder).__module__.startswith("tensorflow_datasets."), type(builder)


def test_mnist_splits_are_tfds_train_and_test(prepared):
    train = data.load_split(_config(prepared, "mnist", split="train"))
    validation = data.load_split(_config(prepared, "mnist", split="validation"))
    assert len(train) == MNIST_TRAIN and len(validation) == MNIST_TEST
    # the held-out split is TFDS's test split, in order
    np.testing.assert_array_equal(validation.images, prepared["digits"]["test"])
    np.testing.assert_array_equal(validation.labels, prepared["labels"]["test"])
    np.testing.assert_array_equal(np.sort(train.images.reshape(MNIST_TRAIN, -1), axis=0),
                                  np.sort(prepared["digits"]["train"].reshape(MNIST_TRAIN, -1),
                                          axis=0))
    subset = data.load_split(_config(prepared, "mnist", split="train", max_examples=10))
    assert len(subset) == 10
    assert train.num_classes == 10


def _celeba(prepared, **kwargs):
    values = dict(image_size=32, channels=3)
    values.update(kwargs)
    return data.load_split(_config(prepared, "celeba", **values))


def test_celeba_split_resize_crop_and_attribute_classes(prepared):
    total = sum(CELEBA_SPLITS.values())
    train, validation = _celeba(prepared, split="train"), _celeba(prepared, split="validation")
    assert len(train) + len(validation) == total and len(validation) == 2  # 10% held out
    everything = _celeba(prepared, split="all")
    assert everything.images.shape == (total, 32, 32, 3)
    # the authors' resize: the full 218x178 frame to 32x32; center_crop takes the
    # 178x178 centre first
    tfds_images = [e["image"].numpy() for e in tfds.builder(
        "celeb_a", data_dir=prepared["data_dir"]).as_dataset(
            split="train+validation+test", shuffle_files=False)]
    first = tf.cast(tfds_images[0], tf.float32)
    authors = tf.image.resize(first, [32, 32], antialias=True)
    np.testing.assert_array_equal(everything.images[0], np.clip(np.round(authors), 0, 255))
    cropped = _celeba(prepared, split="all", resize="center_crop")
    centre = tf.image.resize(first[20:198], [32, 32], antialias=True)
    np.testing.assert_array_equal(cropped.images[0], np.clip(np.round(centre), 0, 255))
    # held-out split: the one the package's seeded 90/10 split says
    indices = data.split_indices(total, _config(prepared, "celeba", image_size=32, channels=3,
                                                split="validation"))
    np.testing.assert_array_equal(validation.images, everything.images[indices])
    # Male,Smiling: 4 classes, class = Male + 2 * Smiling (read after the
    # unlabelled loads above: the decode cache once ignored the attributes and
    # served their labels, all -1)
    classes = _celeba(prepared, split="all", attributes=("Male", "Smiling"))
    assert classes.num_classes == 4
    expected = [int(a["Male"]) + 2 * int(a["Smiling"]) for _, a in prepared["celeba_rows"]]
    np.testing.assert_array_equal(classes.labels, expected)
    assert np.bincount(classes.labels, minlength=4).tolist() == np.bincount(
        expected, minlength=4).tolist()


def test_local_celeba_folder_equals_the_tfds_path(prepared):
    for resize in ("authors", "center_crop"):
        tfds_split = _celeba(prepared, split="all", resize=resize,
                             attributes=("Male", "Smiling"))
        local = _celeba(prepared, split="all", resize=resize, attributes=("Male", "Smiling"),
                        celeba_dir=prepared["local"], data_dir=None)
        np.testing.assert_array_equal(local.images, tfds_split.images)
        np.testing.assert_array_equal(local.labels, tfds_split.labels)


@pytest.mark.slow
@pytest.mark.parametrize("dataset,extra", [
    ("mnist", ["--image_size=28", "--network=dcgan28", "--method=dcgan"]),
    ("celeba", ["--image_size=32", "--method=klgan"]),
])
def test_two_training_steps_from_the_cli(prepared, tmp_path, dataset, extra):
    proc = run_script(TRAIN, f"--dataset={dataset}", f"--data_dir={prepared['data_dir']}",
                      "--nodownload", f"--cache_dir={tmp_path / 'cache'}", "--steps=2",
                      "--batch_size=4", "--width=4", "--latent_dim=8", "--verbose=0",
                      f"--logdir={tmp_path / 'run'}", *extra, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "done: 2 steps" in proc.stdout
