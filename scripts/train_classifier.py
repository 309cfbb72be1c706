"""Train the domain classifier used as a feature network for IS/FID/KID.

  python scripts/train_classifier.py --dataset=mnist_sample --out=classifiers/mnist

Trains a small CNN on the train split, reports accuracy on the held-out
validation split, and saves a SavedModel (images in [-1, 1] -> logits and
128-d features) plus `metrics.json` (held-out accuracy, the model files'
sha256, versions). The MNIST classifier shipped in tfklgan/assets was made
with `--dataset=mnist_sample --out=tfklgan/assets/mnist_classifier`. Then score with
--eval_feature_network=classifier --classifier_path=classifiers/mnist.
"""

import json
import os
import sys

from absl import app, flags

# TensorFlow's C++ log lines (e.g. grappler's "remapper failed") stay hidden;
# TFKLGAN_VERBOSE=1 shows every line.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if os.environ.get("TFKLGAN_VERBOSE") else "3")

flags.DEFINE_string("dataset", "mnist_sample", "a labelled dataset (mnist, mnist_sample, ...)")
flags.DEFINE_integer("image_size", 28, "input size")
flags.DEFINE_integer("channels", 1, "input channels")
flags.DEFINE_string("data_dir", None, "TFDS data_dir (offline copy of mnist)")
flags.DEFINE_integer("epochs", 12, "training epochs")
flags.DEFINE_integer("batch_size", 64, "batch size")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate")
flags.DEFINE_integer("seed", 0, "seed")
flags.DEFINE_float("min_accuracy", 0.0, "exit with code 1 if held-out accuracy is lower")
flags.DEFINE_string("out", None, "where to write the SavedModel")
flags.mark_flag_as_required("out")
FLAGS = flags.FLAGS


def main(argv):
    from tfklgan.quiet import quiet_python_logs
    quiet_python_logs()
    del argv
    import keras
    import numpy as np
    import tensorflow as tf

    from tfklgan import data
    from tfklgan.classifier import build_classifier, save_classifier
    from tfklgan.evaluation.feature_networks import CLASSIFIER_REPORT, directory_sha256

    def split(name):
        return data.load_split(data.DataConfig(
            FLAGS.dataset, image_size=FLAGS.image_size, channels=FLAGS.channels,
            split=name, seed=FLAGS.seed, data_dir=FLAGS.data_dir))
    try:
        train_data, val_data = split("train"), split("validation")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not train_data.labelled:
        print(f"error: dataset {FLAGS.dataset!r} has no labels to learn", file=sys.stderr)
        return 2
    keras.utils.set_random_seed(FLAGS.seed)
    classifier, features = build_classifier(FLAGS.image_size, FLAGS.channels,
                                            train_data.num_classes)
    classifier.compile(keras.optimizers.Adam(FLAGS.learning_rate),
                       keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       metrics=["accuracy"])

    def arrays(split_data):
        return (np.asarray(split_data.images, np.float32) / 127.5 - 1.0, split_data.labels)

    x, y = arrays(train_data)
    # small random shifts: 2 pixels at most
    augment = keras.Sequential([keras.layers.RandomTranslation(0.08, 0.08, seed=FLAGS.seed)])
    stream = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=FLAGS.seed)
              .batch(FLAGS.batch_size).map(lambda a, b: (augment(a, training=True), b))
              .prefetch(tf.data.AUTOTUNE))
    classifier.fit(stream, epochs=FLAGS.epochs, verbose=2, shuffle=False)  # shuffled above
    vx, vy = arrays(val_data)
    accuracy = float(classifier.evaluate(vx, vy, verbose=0)[1])
    save_classifier(classifier, features, FLAGS.out, FLAGS.image_size, FLAGS.channels)
    report = {"dataset": FLAGS.dataset, "train_examples": len(x),
              "validation_examples": len(vx), "validation_accuracy": accuracy,
              "validation_split_seed": FLAGS.seed, "epochs": FLAGS.epochs, "seed": FLAGS.seed,
              "image_size": FLAGS.image_size, "channels": FLAGS.channels,
              "sha256": directory_sha256(FLAGS.out, exclude=(CLASSIFIER_REPORT,)),
              "tensorflow": tf.__version__, "keras": keras.__version__}
    with open(os.path.join(FLAGS.out, CLASSIFIER_REPORT), "w") as handle:
        json.dump(report, handle, indent=2)
    print(f"held-out accuracy {accuracy:.4f} on {len(vx)} {FLAGS.dataset} digits; "
          f"saved to {FLAGS.out}")
    return 1 if accuracy < FLAGS.min_accuracy else 0


if __name__ == "__main__":
    app.run(main)
