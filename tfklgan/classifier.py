"""A small domain classifier for IS/FID-style scores (e.g. on MNIST).

TF-GAN's MNIST examples score generators with an MNIST classifier instead of
Inception ("MNIST score", "MNIST Frechet distance"). `build_classifier`
makes a compact CNN; `save_classifier` writes it as a SavedModel whose call
maps images [n, S, S, C] in [-1, 1] to {"logits": [n, classes], "features":
[n, 128]} and which records `image_size` and `channels`.
"""

import keras
import tensorflow as tf

FEATURE_DIM = 128


def build_classifier(image_size, channels, num_classes):
    """(classifier, feature model): conv 32-32-pool-64-64-pool -> dense 128 -> logits."""
    images = keras.Input((image_size, image_size, channels))
    x = images
    for filters in (32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    features = keras.layers.Dense(FEATURE_DIM, activation="relu", name="features")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(keras.layers.Dropout(0.3)(features))
    return keras.Model(images, logits), keras.Model(images, features)


class _ClassifierModule(tf.Module):
    def __init__(self, network, image_size, channels):
        super().__init__()
        self.network = network
        self.image_size = tf.Variable(image_size, trainable=False)
        self.channels = tf.Variable(channels, trainable=False)

    @tf.function
    def __call__(self, images):
        logits, features = self.network(images, training=False)
        return {"logits": logits, "features": features}


def save_classifier(classifier, features, path, image_size, channels):
    """Writes the SavedModel; `tf.saved_model.load(path)(images)` gives the outputs.

    Only the weights are saved: a new model over the same layers leaves the
    training optimizer's state out."""
    network = keras.Model(classifier.inputs, [classifier.outputs[0], features.outputs[0]])
    module = _ClassifierModule(network, image_size, channels)
    spec = tf.TensorSpec([None, image_size, image_size, channels], tf.float32)
    serving = module.__call__.get_concrete_function(spec)
    tf.saved_model.save(module, path, signatures={"serving_default": serving})
    return path
