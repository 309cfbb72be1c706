"""The one protocol record: what makes two scores comparable (or shows they
are not). Every score the package writes carries it.

A score's record holds the feature network (name, sha256 identity, resize
filter and size), what the generated images were scored as (`values`), both
sides' sources and counts, the latent seed and weights of a generator, the
dtypes and neighbour counts of the computation and the library versions.
Records written before `values` existed scored generators' float output:
`values_of` reads them as "float32".
"""

from tfklgan.evaluation.prdc import DENSITY_COVERAGE_K, PRECISION_RECALL_K

# Fields a saved reference must share with the scoring that uses it.
REFERENCE_FIELDS = ("feature_network_identity", "resize_filter", "resize", "values")


def versions():
    """TensorFlow's, Keras' and TF-GAN's versions (TF-GAN's None if not installed)."""
    import importlib.metadata

    import keras
    import tensorflow as tf
    found = {"tensorflow": tf.__version__, "keras": keras.__version__}
    try:
        found["tensorflow_gan"] = importlib.metadata.version("tensorflow-gan")
    except importlib.metadata.PackageNotFoundError:
        found["tensorflow_gan"] = None
    return found


def computation_record():
    """How the scores are computed: the dtypes, the neighbour counts of
    precision/recall and density/coverage, and the libraries' versions."""
    return {"dtypes": {"activations": "float32", "fid_kid": "float64", "prdc": "float64"},
            "k": {"precision_recall": PRECISION_RECALL_K,
                  "density_coverage": DENSITY_COVERAGE_K},
            "versions": versions()}


def feature_protocol(feature_network, values="uint8"):
    """The part of the protocol the feature network fixes, for images read as
    `values` (a reference's real images are always uint8)."""
    return {"feature_network": feature_network.name,
            "feature_network_identity": feature_network.identity,
            "resize_filter": feature_network.resize_filter,
            "resize": f"{feature_network.resize_filter} to {feature_network.image_size}x"
                      f"{feature_network.image_size}",
            "values": values}


def reference_protocol(feature_network, image_set):
    """The record of a reference computed from `image_set`."""
    return {**feature_protocol(feature_network), "source": image_set.record,
            "description": image_set.description, "count": image_set.count,
            "shape": list(image_set.shape), "versions": versions()}


def score_protocol(feature_network, generated, reference):
    """The record of a score of the ImageSet `generated` against the
    reference whose record is `reference` (`reference_protocol`)."""
    source = generated.record
    return {**feature_protocol(feature_network, generated.values),
            "generated": {**source, "description": generated.description,
                          "count": generated.count, "shape": list(generated.shape)},
            "generated_count": generated.count,
            "real": {**reference.get("source", {}), "description": reference.get("description"),
                     "count": reference.get("count"), "shape": reference.get("shape")},
            "seed": source.get("seed"), "weights": source.get("weights"),
            **computation_record()}


def values_of(protocol):
    """What a recorded score scored generated images as: its `values`, or
    "float32" for records written before the field existed."""
    return protocol.get("values", "float32")
