"""The one reference type: the activations a score compares against.

`ReferenceStats` holds a reference set's logits [n, k] (for IS), features
[n, d] (for FID, KID, precision/recall/density/coverage), labels [n] (-1:
none) and its protocol record. It is computed from an ImageSet
(`compute_reference`), cached for a dataset sample (`dataset_reference`),
saved to one .npz (`save`, also holding mu and sigma for other tools) and
loaded back (`load`), which checks the file before trusting it: missing,
damaged, foreign, or computed by another protocol, each is one error
naming the file and what is wrong.
"""

import dataclasses
import hashlib
import json
import os
import sys
import time
from typing import Optional

import numpy as np

from tfklgan.evaluation import scores as scores_lib
from tfklgan.evaluation.image_sets import ImageSetError
from tfklgan.evaluation.prdc import DENSITY_COVERAGE_K
from tfklgan.evaluation.protocol import REFERENCE_FIELDS, feature_protocol, reference_protocol

# Images a score needs on each side: density and coverage take each real
# image's 5th nearest neighbour, so more than 5.
MIN_IMAGES = DENSITY_COVERAGE_K + 1
_WRITE_ONE = "write one with scripts/evaluate.py --real=... --save_stats=FILE"


@dataclasses.dataclass
class ReferenceStats:
    """Activations of a reference set: logits [n, k], features [n, d], labels
    [n] (-1: none; None: unlabelled) and the protocol record."""
    logits: np.ndarray
    features: np.ndarray
    labels: Optional[np.ndarray]
    protocol: dict

    FILE_KEYS = ("logits", "features", "labels", "protocol")

    @property
    def count(self):
        return len(self.features)

    def save(self, path):
        """One .npz: logits, features, labels, mu and sigma (float64, for FID
        elsewhere) and the protocol as JSON. Written to a temporary file first."""
        features = np.asarray(self.features, np.float64)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}.npz"
        np.savez(tmp, logits=self.logits, features=self.features,
                 labels=self.labels if self.labels is not None else np.zeros(0, np.int64),
                 mu=features.mean(axis=0), sigma=np.cov(features, rowvar=False),
                 protocol=np.asarray(json.dumps(self.protocol, sort_keys=True)))
        os.replace(tmp, path)
        return path

    @classmethod
    def read_protocol(cls, path):
        """The protocol record of the stats file at `path`, after checking that
        the file is there, whole and written by tfklgan."""
        return cls._read(path)[1]

    @classmethod
    def _read(cls, path):
        if not os.path.isfile(path):
            raise ImageSetError(f"stats:{path}: no such file; {_WRITE_ONE}")
        try:
            with np.load(path) as arrays:
                missing = [k for k in cls.FILE_KEYS if k not in arrays.files]
                if missing:
                    held = ", ".join(arrays.files[:6]) or "nothing"
                    raise ImageSetError(
                        f"stats:{path} was not written by tfklgan (it holds {held}; a "
                        f"tfklgan stats file holds {', '.join(cls.FILE_KEYS)}, the "
                        f"activations themselves); {_WRITE_ONE}")
                values = {k: arrays[k] for k in cls.FILE_KEYS}
            protocol = json.loads(str(values["protocol"]))
        except ImageSetError:
            raise
        except Exception as err:  # zipfile, numpy and json raise many types
            raise ImageSetError(f"stats:{path} is damaged and cannot be read "
                                f"({type(err).__name__}: {err}); {_WRITE_ONE}") from None
        if values["features"].ndim != 2 or len(values["logits"]) != len(values["features"]):
            raise ImageSetError(f"stats:{path} holds activations of shapes "
                                f"{values['logits'].shape} and {values['features'].shape}, "
                                f"not [n, k] and [n, d] of one n; {_WRITE_ONE}")
        return values, protocol

    @classmethod
    def load(cls, path, expected=None):
        """The saved reference at `path`; with `expected` (a protocol dict), an
        error names every field of REFERENCE_FIELDS that differs."""
        values, protocol = cls._read(path)
        labels = values["labels"]
        stats = cls(values["logits"], values["features"], labels if len(labels) else None,
                    protocol)
        if expected:
            check_protocol(stats.protocol, expected, f"stats:{path}")
        return stats


def check_protocol(protocol, expected, where):
    """Raises an ImageSetError naming every field of REFERENCE_FIELDS in which a
    saved reference's protocol differs from the current one."""
    differences = [f"{k}: {protocol.get(k)!r} in the file, {expected.get(k)!r} now"
                   for k in REFERENCE_FIELDS if protocol.get(k) != expected.get(k)]
    if differences:
        raise ImageSetError(f"{where} was computed by another protocol ("
                            + "; ".join(differences) + "); recompute it with --save_stats "
                            "or score with its protocol")


def check_count(description, count):
    """Refuses a side of fewer than MIN_IMAGES images."""
    if count < MIN_IMAGES:
        raise ImageSetError(f"{description} holds {count} images; every score needs at least "
                            f"{MIN_IMAGES} (density and coverage use 5 nearest neighbours)")


class Progress:
    """One stderr line every `every` seconds while a set is featurised."""

    def __init__(self, description, total, enabled, every=5.0):
        self.description, self.total, self.enabled, self.every = description, total, enabled, every
        self.started = self.last = time.time()
        self.done = 0

    def __call__(self, batches):
        for batch in batches:
            yield batch
            self.done += len(batch)
            now = time.time()
            if self.enabled and (now - self.last >= self.every) and self.done < self.total:
                self.last = now
                rate = self.done / (now - self.started)
                print(f"features of {self.description}: {self.done:,} / {self.total:,} images "
                      f"({100 * self.done / self.total:.0f}%), {now - self.started:.0f} s, about "
                      f"{(self.total - self.done) / rate:.0f} s left", file=sys.stderr,
                      flush=True)


def image_set_activations(feature_network, image_set, batch_size=200, progress=False):
    """(logits [n, k], features [n, d]) of every image of the set, batch by batch."""
    batches = Progress(image_set.description, image_set.count, progress)(
        image_set.unit_batches(batch_size))
    return scores_lib.activations(feature_network, batches)


def compute_reference(feature_network, image_set, batch_size=200, progress=False):
    """The ReferenceStats of an ImageSet of real images."""
    check_count(image_set.description, image_set.count)
    logits, features = image_set_activations(feature_network, image_set, batch_size, progress)
    return ReferenceStats(logits, features, image_set.labels,
                          reference_protocol(feature_network, image_set))


def as_reference(real, feature_network, batch_size=200, progress=False):
    """`real` as ReferenceStats: computed for an ImageSet, checked against the
    feature network's protocol for saved statistics."""
    if not isinstance(real, ReferenceStats):
        return compute_reference(feature_network, real, batch_size, progress)
    check_protocol(real.protocol, feature_protocol(feature_network), "the reference statistics")
    return real


def dataset_reference(feature_network, image_set, cache_dir=None, batch_size=200):
    """The ReferenceStats of a dataset sample (`sources.dataset_image_set`),
    cached in `cache_dir` keyed by the sample's record and the feature
    network, so a table's runs compute their real reference once."""
    if not cache_dir:
        return compute_reference(feature_network, image_set, batch_size)
    key = hashlib.sha256(json.dumps([image_set.record, feature_network.identity,
                                     feature_network.resize_filter],
                                    sort_keys=True).encode()).hexdigest()[:20]
    record = image_set.record
    path = os.path.join(cache_dir, f"reference-{record['dataset'].split(':')[0]}-"
                                   f"{record['split']}-{image_set.count}-{key}.npz")
    expected = feature_protocol(feature_network)
    if os.path.isfile(path):
        try:
            return ReferenceStats.load(path, expected)
        except ImageSetError as err:  # computed again below, and the entry replaced
            print(f"warning: the cached reference {path} cannot be used ({err}); computing it "
                  "again", file=sys.stderr)
    stats = compute_reference(feature_network, image_set, batch_size)
    stats.save(path)
    return stats
