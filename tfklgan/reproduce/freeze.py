"""What defines a run, frozen when its study is declared.

A study's runs are comparable only if every run of a cell trains and is
scored as declared. The declaration stores, per cell, its resolved settings:
every setting of the TrainConfig the runner builds (the flagfile expanded,
the protocol and the cell's overrides applied), less the ones that say where
a run lives or which seed it is, plus the feature network's identity (a
sha256 of its files) and what generated images are scored as. Before each
run the runner resolves the cell again and refuses to train when anything
differs, naming the setting.
"""

import hashlib
import json

from tfklgan.evaluation.feature_networks import network_identity
from tfklgan.settings import flag_name, settings_of

# Settings that say where a run lives or which block it is, not what it is.
LOCATION = ("seed", "logdir", "resume", "verbose", "export_dir", "cache_dir", "data_dir",
            "celeba_dir", "inception_path", "classifier_path")


def _plain(value):
    """JSON's form of a value (tuples as lists), so a stored freeze compares equal."""
    return json.loads(json.dumps(value))


def resolved_settings(config):
    """{setting: value} of a run's TrainConfig that define it, with
    `feature_network` (its identity, a sha256 of its files) and nothing that
    names the run's folder or seed."""
    settings = {k: v for k, v in config.flat().items() if k not in LOCATION}
    evaluation = config.eval_config()
    settings["feature_network"] = network_identity(
        evaluation.feature_network, inception_path=evaluation.inception_path,
        classifier_path=evaluation.classifier_path)
    return _plain(settings)


# How often a run logs, samples and checkpoints: not what it trains.
CADENCE = ("log_every", "sample_every", "checkpoint_every", "keep_checkpoints")


def training_settings(config):
    """The settings that decide what a run trains ({setting: value}): all but
    its location, seed, cadence and evaluation section. Two runs of two
    studies with equal training settings trained the same cell."""
    evaluation = {flag_name(f) for f in settings_of(type(config.evaluation))}
    return _plain({k: v for k, v in config.flat().items()
                   if k not in LOCATION and k not in CADENCE and k not in evaluation})


def digest(value):
    """sha256 of a JSON value in canonical form (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def differences(declared, current):
    """[(setting, declared value, current value)] where two resolved settings
    differ (a setting one lacks shows as None)."""
    return [(name, declared.get(name), current.get(name))
            for name in sorted(set(declared) | set(current))
            if declared.get(name) != current.get(name)]


class FrozenSettingError(ValueError):
    """A run whose resolved settings differ from those its study declared."""


def check(label, declared, current, where):
    """Raises FrozenSettingError naming each setting in which `current`
    differs from `declared` (the cell `label` of the study stored in `where`)."""
    changed = differences(declared, _plain(current))
    if changed:
        listed = "; ".join(f"{name}: declared {old!r}, now {new!r}"
                           for name, old, new in changed[:5])
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        raise FrozenSettingError(
            f"{label} would not train as declared in {where} ({listed}{more}); a changed "
            "cell is a new study (another --results_dir)")
