"""The settings tree: sections, flat names, flags, config.json and resume rules."""

import ast
import glob
import json
import os
import subprocess
import sys

import pytest
from absl import flags

from tfklgan.cli import config_from_flags, define_train_flags, settings_help
from tfklgan.config import FLAT_NAMES, SECTIONS, TrainConfig
from tfklgan.settings import ConfigError, settings_of

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What every flagfile parsed to before the settings became sections (flat TrainConfig).
FLAGFILE_VALUES = os.path.join(ROOT, "tests", "data", "flagfile_values.json")


def _parse(path, *extra):
    values = flags.FlagValues()
    define_train_flags(values)
    values(["train.py", f"--flagfile={path}", *extra])
    return config_from_flags(values)


def _as_json(flat):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in flat.items()}


def test_every_flagfile_parses_to_the_values_it_had(monkeypatch):
    monkeypatch.chdir(ROOT)
    before = json.load(open(FLAGFILE_VALUES))
    files = sorted(glob.glob("configs/**/*.flags", recursive=True))
    assert sorted(before) == files
    defaults = _as_json(TrainConfig().flat())
    for path in files:
        parsed = _as_json(_parse(path).flat())
        assert {k: parsed[k] for k in before[path]} == before[path], path
        # settings added since keep their defaults: an old flagfile means what it meant
        assert {k: v for k, v in parsed.items() if k not in before[path]} == \
            {k: defaults[k] for k in parsed if k not in before[path]}, path


def test_config_json_is_nested_and_round_trips():
    config = TrainConfig.from_flat(method="wgan_gp", gp_weight=5.0, width=16,
                                   attributes=("Male",), dataset="celeba", eval_every=7,
                                   g_lr=1e-3, logdir="runs/x")
    stored = json.loads(config.to_json())
    assert sorted(stored) == sorted(SECTIONS)
    assert stored["objective"]["gp_weight"] == 5.0 and stored["data"]["name"] == "celeba"
    assert stored["evaluation"]["every"] == 7 and "split" not in stored["data"]
    assert TrainConfig.from_json(config.to_json()) == config


def test_flat_config_json_of_earlier_runs_loads():
    paths = sorted(glob.glob(os.path.join(ROOT, "docs", "results", "*", "runs", "*",
                                          "config.json")))
    assert paths
    for path in paths:
        flat = json.load(open(path))
        if set(flat) <= set(SECTIONS):
            continue  # a run written by this version
        config = TrainConfig.from_json(open(path).read())
        loaded = _as_json(config.flat())
        assert {k: loaded[k] for k in flat if k in FLAT_NAMES} == \
            {k: v for k, v in flat.items() if k in FLAT_NAMES}, path


def test_every_setting_has_one_flat_name_and_a_flag():
    names = [name for name in FLAT_NAMES]
    assert len(names) == len(set(names))
    values = flags.FlagValues()
    define_train_flags(values)
    assert set(FLAT_NAMES) <= set(values)
    for name, (section, field) in FLAT_NAMES.items():
        assert values[name].default == getattr(getattr(TrainConfig(), section), field) or \
            tuple(values[name].default) == getattr(getattr(TrainConfig(), section), field)


def test_resume_rules_follow_the_sections():
    resumable = {name: next(f for f in settings_of(SECTIONS[s]) if f.name == field)
                 .metadata["resumable"] for name, (s, field) in FLAT_NAMES.items()}
    for section in ("network", "objective"):
        assert not any(resumable[n] for n, (s, _) in FLAT_NAMES.items() if s == section)
    assert all(resumable[n] for n, (s, _) in FLAT_NAMES.items() if s == "evaluation")
    # what the data is must match; where it is stored may move
    assert {n for n, (s, _) in FLAT_NAMES.items() if s == "data" and resumable[n]} == \
        {"data_dir", "celeba_dir", "cache_dir", "download"}
    assert {n for n, (s, _) in FLAT_NAMES.items() if s == "optimizer" and resumable[n]} == \
        {"g_lr", "d_lr", "lr_decay", "lr_decay_steps", "lr_decay_final"}
    assert not resumable["seed"] and not resumable["batch_size"] and resumable["steps"]

    base = TrainConfig.from_flat(logdir="runs/a")
    changed = base.replace(g_lr=1e-3, eval_every=5, steps=9, logdir="runs/b", resume=True)
    assert changed.differences(base) == []
    assert changed.changes(base) == {"g_lr": [8e-5, 1e-3], "eval_every": [0, 5],
                                     "steps": [0, 9]}
    assert base.replace(width=8, kl_stats="reference_code").differences(base) == [
        ("width", 128, 8), ("kl_stats", "paper", "reference_code")]


def test_every_bad_value_of_every_section_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_flat(width=0, optimizer="sgd", eval_samples=1, resize="crop",
                              method="nope", strategy="tpu")
    message = str(err.value)
    for flag in ("--width", "--optimizer", "--eval_samples", "--resize", "--method",
                 "--strategy"):
        assert flag in message, flag
    with pytest.raises(ConfigError, match="unknown settings"):
        TrainConfig.from_flat(learning_rate=1.0)
    with pytest.raises(ConfigError, match="needs --image_size=32"):
        TrainConfig.from_flat(network="klgan32", image_size=64).validate()
    with pytest.raises(ConfigError, match="applies to the DCGAN pairs .dcgan256, dcgan128, dcgan64, dcgan32"):
        TrainConfig.from_flat(network="klgan32", spectral_norm_iterations=1).validate()
    TrainConfig.from_flat(network="dcgan32", image_size=32, spectral_norm_iterations=1,
                          method="dcgan").validate()
    for bad in (dict(method="hinge"), dict(method="klgan", generator_first=True)):
        with pytest.raises(ConfigError, match="--reuse_generated needs an alternating method "
                                              "with --generator_first"):
            TrainConfig.from_flat(reuse_generated=True, **bad)


def test_only_the_orchestration_layer_imports_train_config():
    orchestration = {"training.py", "run_directory.py", "reproduce/runner.py", "benchmark.py",
                     "reproduce/search_worker.py", "cli.py", "config.py", "__init__.py"}
    package = os.path.join(ROOT, "tfklgan")
    for path in glob.glob(os.path.join(package, "**", "*.py"), recursive=True):
        tree = ast.parse(open(path).read())
        imported = {node.module for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                     for alias in node.names}
        relative = os.path.relpath(path, package)
        if relative not in orchestration:
            assert "tfklgan.config" not in imported and "tfklgan.cli" not in imported, relative


def test_help_lists_the_settings_by_section():
    text = settings_help()
    titles = [line for line in text.splitlines() if line and not line.startswith(" ")]
    assert titles == ["Data:", "Networks:", "Objective:", "Optimization:",
                      "Evaluation during training:", "Run: length, seed, execution and outputs:"]
    assert "  --g_lr\n      generator learning rate (default: 8e-05)" in text
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--help"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Objective:" in proc.stdout and "--eval_samples" in proc.stdout
    assert "absl.flags" not in proc.stdout  # none of absl's own flags
