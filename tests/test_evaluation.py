"""The MNIST domain classifier, evaluation scripts and evaluation during training."""

import json
import os

import numpy as np
import pytest
from test_training import ROOT, run_script, tiny_config

from tfklgan import data
from tfklgan.evaluation import EvalConfig, scores
from tfklgan.evaluation.feature_networks import (
    PACKAGED_MNIST_CLASSIFIER,
    default_classifier_path,
    directory_sha256,
    load_feature_network,
)
from tfklgan.evaluation.image_sets import array_image_set
from tfklgan.training import train


@pytest.fixture(scope="module")
def mnist_classifier(tmp_path_factory):
    out = tmp_path_factory.mktemp("classifier") / "mnist"
    proc = run_script(os.path.join(ROOT, "scripts", "train_classifier.py"),
                      "--dataset=mnist_sample", "--epochs=1", f"--out={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.load(open(out / "metrics.json"))
    assert report["validation_examples"] == 500
    assert report["validation_accuracy"] > 0.7  # one epoch; the shipped one is tested at 97%
    return str(out)


@pytest.mark.slow
def test_classifier_round_trip_scores_real_and_noise(mnist_classifier, tmp_path):
    from tfklgan.evaluation.training import reference_of
    net = load_feature_network("classifier", classifier_path=mnist_classifier)
    assert net.image_size == 28 and net.channels == 1
    eval_config = EvalConfig(feature_network="classifier", classifier_path=mnist_classifier,
                             num_samples=400, cache_dir=str(tmp_path))
    reference = reference_of(data.DataConfig("mnist_sample", image_size=28), eval_config, net)
    train_real = reference_of(data.DataConfig("mnist_sample", image_size=28),
                              EvalConfig(num_samples=400, real_split="train",
                                         cache_dir=str(tmp_path)), net)
    activations = (reference.logits, reference.features)
    real_scores = scores.scores(activations, (train_real.logits, train_real.features))
    noise = np.random.RandomState(0).uniform(-1, 1, (400, 28, 28, 1)).astype(np.float32)
    noise_scores = scores.scores(activations, scores.activations(net, [noise[:200],
                                                                       noise[200:]]))
    assert real_scores["inception_score"] > 7.0
    assert noise_scores["inception_score"] < 3.0
    assert noise_scores["fid"] > 10 * real_scores["fid"]


@pytest.mark.slow
def test_evaluation_during_training_and_evaluate_script(tmp_path):
    cfg = tiny_config(tmp_path, method="dcgan", network="dcgan28", image_size=28, steps=4,
                      minibatch_discrimination=False, ema_decay=0.0, eval_every=2,
                      eval_samples=100, eval_feature_network="classifier",
                      cache_dir=str(tmp_path / "cache"))  # the shipped MNIST classifier
    result = train(cfg)
    rows = open(os.path.join(result.logdir, "eval.csv")).read().splitlines()
    assert rows[0].startswith("step,fid,inception_score,kid")
    assert [int(r.split(",")[0]) for r in rows[1:]] == [2, 4]
    assert os.path.isfile(os.path.join(result.logdir, "best", "checkpoint"))
    from test_training import event_tags
    assert {"eval/fid", "eval/inception_score", "eval/kid"} <= event_tags(result.logdir)

    out = tmp_path / "scores.json"
    proc = run_script(os.path.join(ROOT, "scripts", "evaluate.py"),
                      f"--logdir={result.logdir}", "--feature_network=classifier",
                      "--num_samples=100",
                      f"--cache_dir={tmp_path / 'cache'}", f"--output={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.load(open(out))
    assert set(report["scores"]) == {"fid", "inception_score", "kid", "kid_std", "precision",
                                     "recall", "density", "coverage"}
    assert 0 <= report["scores"]["recall"] <= 1 and report["scores"]["density"] >= 0
    protocol = report["protocol"]
    assert protocol["resize_filter"] == "tfgan" and protocol["k"] == {
        "precision_recall": 3, "density_coverage": 5}
    assert set(protocol["versions"]) == {"tensorflow", "keras", "tensorflow_gan"}
    assert protocol["versions"]["tensorflow_gan"]
    assert report["protocol"]["generated"]["count"] == 100
    assert report["protocol"]["real"]["split"] == "validation"
    assert report["protocol"]["values"] == "uint8"
    shipped = json.load(open(os.path.join(PACKAGED_MNIST_CLASSIFIER, "metrics.json")))
    assert report["protocol"]["feature_network_identity"] == f"classifier:sha256={shipped['sha256']}"
    assert report["real_floor"]["fid"] < report["scores"]["fid"]
    assert report["seconds"] > 0


def test_training_with_unavailable_inception_fails_before_training(tmp_path, monkeypatch):
    from tfklgan.evaluation import feature_networks
    monkeypatch.setattr(feature_networks, "_reachable", lambda url, timeout=5.0: False)
    with pytest.raises(ValueError, match="--inception_path"):
        train(tiny_config(tmp_path, eval_every=2))
    assert not os.path.isdir(tmp_path / "run" / "checkpoints")


def test_shipped_mnist_classifier_loads_offline_and_is_accurate():
    report = json.load(open(os.path.join(PACKAGED_MNIST_CLASSIFIER, "metrics.json")))
    assert directory_sha256(PACKAGED_MNIST_CLASSIFIER, exclude=("metrics.json",)) == \
        report["sha256"]
    assert default_classifier_path("mnist_sample") == PACKAGED_MNIST_CLASSIFIER
    assert default_classifier_path("mnist") == PACKAGED_MNIST_CLASSIFIER
    assert default_classifier_path("celeba") is None
    net = load_feature_network("classifier", classifier_path=PACKAGED_MNIST_CLASSIFIER)
    held_out = data.load_split(data.DataConfig("mnist_sample", image_size=28,
                                               split="validation",
                                               seed=report["validation_split_seed"]))
    logits, features = scores.activations(net, array_image_set(held_out.images).unit_batches(250))
    accuracy = float(np.mean(np.argmax(logits, 1) == held_out.labels))
    assert len(held_out.labels) == 500 and features.shape == (500, 128)
    assert accuracy >= 0.97
    assert accuracy == pytest.approx(report["validation_accuracy"], abs=1e-6)


def test_classifier_feature_network_without_a_path_says_what_to_pass():
    with pytest.raises(ValueError, match="needs --classifier_path"):
        load_feature_network("classifier")


def test_class_scores_per_requested_class():
    from tfklgan.evaluation.scores import class_scores
    rng = np.random.RandomState(0)
    classes = np.arange(300) % 3
    logits = np.eye(3)[classes] * 5.0
    logits[classes == 2] = np.eye(3)[0] * 5.0          # every "2" looks like a 0
    logits[np.flatnonzero(classes == 1)[:50]] = np.eye(3)[2] * 5.0  # half the 1s are 2s
    features = rng.normal(size=(300, 4)) + classes[:, None]
    real_labels = np.arange(600) % 3
    real_features = rng.normal(size=(600, 4)) + real_labels[:, None]
    result = class_scores(real_features, real_labels, (logits, features), classes)
    accuracy = [result["per_class"][str(c)]["accuracy"] for c in range(3)]
    assert accuracy == [1.0, 0.5, 0.0]
    assert result["mean_accuracy"] == pytest.approx(0.5)
    for c in range(3):
        assert result["per_class"][str(c)]["intra_fid"] == pytest.approx(
            scores.frechet_distance(real_features[real_labels == c], features[classes == c]))
    assert result["per_class"]["0"]["generated"] == 100 and result["per_class"]["0"]["real"] == 200


def test_clean_resize_filter_matches_pil_bicubic_on_a_real_digit():
    from PIL import Image

    from tfklgan.evaluation.feature_networks import FeatureNetwork
    digits = data.load_split(data.DataConfig("mnist_sample", image_size=28, split="all"))
    digit = digits.images[0, :, :, 0]
    as_float = digit.astype(np.float32) / 127.5 - 1.0
    for size in (299, 13):  # up (Inception) and down
        pil = np.asarray(Image.fromarray(as_float, mode="F").resize((size, size),
                                                                     Image.BICUBIC))
        net = FeatureNetwork("x", "x", size, 1, run=None, resize_filter="clean")
        ours = net.preprocess(as_float[None, :, :, None]).numpy()[0, :, :, 0]
        np.testing.assert_allclose(ours, pil, atol=1e-4)
        bilinear = FeatureNetwork("x", "x", size, 1, run=None).preprocess(
            as_float[None, :, :, None]).numpy()[0, :, :, 0]
        assert np.abs(bilinear - pil).max() > 1e-2  # the filters really differ
    with pytest.raises(ValueError, match="unknown resize filter 'lanczos'"):
        load_feature_network("classifier", classifier_path=PACKAGED_MNIST_CLASSIFIER,
                             resize_filter="lanczos")


@pytest.mark.slow
def test_evaluate_script_scores_a_conditional_generator_per_class(tmp_path):
    cfg = tiny_config(tmp_path, method="cgan", network="cgan28", image_size=28, steps=2,
                      latent_dim=100, latent_distribution="uniform",
                      minibatch_discrimination=False, ema_decay=0.0)
    result = train(cfg)
    out = tmp_path / "scores.json"
    proc = run_script(os.path.join(ROOT, "scripts", "evaluate.py"),
                      f"--logdir={result.logdir}", "--feature_network=classifier",
                      "--num_samples=200", "--resize_filter=clean", "--nofloor",
                      f"--cache_dir={tmp_path / 'cache'}", f"--output={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.load(open(out))
    conditional = report["conditional"]
    assert sorted(conditional["per_class"], key=int) == [str(c) for c in range(10)]
    assert all(e["generated"] == 20 and 0 <= e["accuracy"] <= 1
               for e in conditional["per_class"].values())
    assert {"mean_accuracy", "mean_intra_fid"} <= set(conditional)
    assert report["protocol"]["resize_filter"] == "clean"


@pytest.mark.slow
def test_exported_generator_scores_against_the_runs_own_split(tmp_path):
    cfg = tiny_config(tmp_path, method="dcgan", network="dcgan28", image_size=28, steps=2,
                      seed=3, minibatch_discrimination=False, ema_decay=0.0,
                      export_dir=str(tmp_path / "export"))
    result = train(cfg)
    info = json.load(open(tmp_path / "export" / "1" / "tfklgan.json"))
    assert info["data"]["seed"] == 3 and info["data"]["dataset"] == "mnist_sample"
    reports = []
    for source in (f"--logdir={result.logdir}", f"--saved_model={tmp_path / 'export'}"):
        out = tmp_path / f"scores{len(reports)}.json"
        proc = run_script(os.path.join(ROOT, "scripts", "evaluate.py"), source,
                          "--feature_network=classifier", "--num_samples=100", "--nofloor",
                          "--noema", f"--cache_dir={tmp_path / 'cache'}", f"--output={out}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        reports.append(json.load(open(out)))
    assert reports[1]["protocol"]["real"]["seed"] == 3  # not split seed 0
    assert reports[1]["scores"]["fid"] == pytest.approx(reports[0]["scores"]["fid"], rel=1e-6)


def test_a_run_and_its_export_give_scoring_the_same_data_options():
    """A run's settings and the data record its export keeps read the same;
    an export older than a field gets training's default for it."""
    from tfklgan.config import TrainConfig
    from tfklgan.evaluation.score import trained_data
    from tfklgan.export import data_record
    data = TrainConfig.from_flat(dataset="celeba", attributes=("Male",), seed=7,
                                 image_size=64).data_config()
    record = json.loads(json.dumps(data_record(data)))  # as tfklgan.json stores it
    assert trained_data(record) == trained_data(data_record(data)) == {
        "name": "celeba", "image_size": 64, "channels": 3, "resize": "authors", "seed": 7,
        "validation_fraction": 0.1, "attributes": ("Male",)}
    old = trained_data({"dataset": "mnist", "image_size": 28}, channels=1)
    assert old == {"name": "mnist", "image_size": 28, "channels": 1, "resize": "authors",
                   "seed": 0, "validation_fraction": 0.1, "attributes": ()}


def test_generate_keeps_working_after_the_gan_is_dropped():
    import gc

    from tfklgan.config import TrainConfig
    from tfklgan.evaluation.sources import gan_image_set
    from tfklgan.training import build_gan
    gan = build_gan(TrainConfig.from_flat(width=4, latent_dim=8, minibatch_discrimination=False,
                                image_size=32))
    images = gan_image_set(gan, 4, seed=0)
    del gan
    gc.collect()
    assert images.read(0, 4).shape == (4, 32, 32, 1) and images.read(0, 4).dtype == np.uint8


def test_evaluating_many_generators_in_one_process_warns_of_no_retracing(caplog):
    """A table scores many runs in one process: one traced function per
    network, and no frequent-retracing warning from TensorFlow."""
    from tfklgan.config import TrainConfig
    from tfklgan.evaluation.sources import gan_image_set
    from tfklgan.training import build_gan
    config = TrainConfig.from_flat(width=4, latent_dim=8, minibatch_discrimination=False,
                                   image_size=32)
    for _ in range(7):
        images = gan_image_set(build_gan(config), 6, seed=0, values="float32")
        assert images.read(0, 4).shape == (4, 32, 32, 1)
        assert images.read(4, 2).shape == (2, 32, 32, 1)  # the last, smaller batch
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]


@pytest.mark.slow
def test_training_the_runner_and_evaluate_script_score_one_generator_identically(tmp_path):
    """One path: the run's last eval.csv row (the generator in memory), the
    reproduce runner's score of its final checkpoint (what result.json holds)
    and `evaluate.py --logdir` with no other flag give the same numbers, bit
    for bit, EMA weights and the run's own latent seed included."""
    import csv

    from tfklgan.reproduce.runner import score_run
    cfg = tiny_config(tmp_path, method="dcgan", network="dcgan28", image_size=28, steps=4,
                      seed=5, minibatch_discrimination=False, ema_decay=0.9, eval_every=4,
                      eval_samples=100, eval_feature_network="classifier",
                      cache_dir=str(tmp_path / "cache"))
    result = train(cfg)
    with open(os.path.join(result.logdir, "eval.csv"), newline="") as handle:
        last = list(csv.DictReader(handle))[-1]
    assert int(last["step"]) == 4 and last["weights"] == "ema"
    runner = score_run(result.logdir, cfg)
    out = tmp_path / "scores.json"
    proc = run_script(os.path.join(ROOT, "scripts", "evaluate.py"), f"--logdir={result.logdir}",
                      "--nofloor", f"--output={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.load(open(out))
    for name in scores.SCORES:
        assert float(last[name]) == runner[name] == report["scores"][name], name
    for protocol in (runner["protocol"], report["protocol"]):
        assert (protocol["values"], protocol["weights"], protocol["seed"]) == ("uint8", "ema", 5)
        assert protocol["generated_count"] == 100 and protocol["real"]["count"] == 100
