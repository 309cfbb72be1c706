"""The resumable batch stream: batch b of a run depends only on (seed, b)."""

import numpy as np
import tensorflow as tf


def to_model_range(images, dtype=tf.float32):
    """uint8 [..., C] -> `dtype` in [-1, 1]."""
    return tf.cast(images, dtype) / 127.5 - 1.0


def batches_per_epoch(data, batch_size):
    return len(data) // batch_size


def batch_stream(data, batch_size, seed, start_batch=0, labels=False,
                 num_classes=None, dtype=tf.float32):
    """An endless tf.data stream of shuffled batches, from batch `start_batch`.

    Epoch e visits the images in the order np.random.default_rng([seed, e])
    .permutation(n), cut into n // batch_size full batches, so batch b of the
    stream depends only on (seed, b): a resumed run continues the exact
    stream of an uninterrupted one. Yields images [B, S, S, C] in [-1, 1] of
    `dtype`, or (images, one-hot labels [B, num_classes]) with `labels`.
    """
    per_epoch = batches_per_epoch(data, batch_size)
    if per_epoch < 1:
        raise ValueError(f"the {data.config.split} split of {data.config.name!r} holds "
                         f"{len(data)} images, fewer than one batch of {batch_size}")
    if labels and not data.labelled:
        raise ValueError(f"dataset {data.config.name!r} has no labels, but the "
                         "method is class-conditional; pick a labelled dataset "
                         "(for CelebA, name --attributes)")
    num_classes = num_classes or data.num_classes

    def generate():
        epoch, batch = divmod(start_batch, per_epoch)
        while True:
            order = np.random.default_rng([seed, epoch]).permutation(len(data))
            for b in range(batch, per_epoch):
                index = np.sort(order[b * batch_size:(b + 1) * batch_size])
                chosen = order[b * batch_size:(b + 1) * batch_size]
                # sorted reads are faster on memory-mapped arrays; restore order
                rows = data.images[index][np.argsort(np.argsort(chosen))]
                yield (rows, data.labels[chosen]) if labels else rows
            epoch, batch = epoch + 1, 0

    shape = (batch_size, *data.images.shape[1:])
    if labels:
        signature = (tf.TensorSpec(shape, tf.uint8), tf.TensorSpec([batch_size], tf.int64))
        ds = tf.data.Dataset.from_generator(generate, output_signature=signature)
        ds = ds.map(lambda x, y: (to_model_range(x, dtype), tf.one_hot(y, num_classes)))
    else:
        ds = tf.data.Dataset.from_generator(
            generate, output_signature=tf.TensorSpec(shape, tf.uint8))
        ds = ds.map(lambda x: to_model_range(x, dtype))
    # A fixed prefetch and no autotuning: the generator is cheap, and an
    # autotuned iterator takes TensorFlow a second or two to destroy (its
    # tuning thread must wake up first), paid at every epoch's end.
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(2).with_options(options)
