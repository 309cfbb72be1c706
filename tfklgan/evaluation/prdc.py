"""Precision, recall, density and coverage of generated against real activations.

k-nearest-neighbour estimates of how much of the generated set lies on the
real manifold and how much of the real manifold it covers, computed on the
same activations as FID and KID:

- precision and recall (Kynkaanniemi et al., 2019, k = 3): the manifold of a
  set is the union of balls around its points whose radius is the distance
  to the point's k-th nearest neighbour within its own set (the point itself
  excluded). precision = share of generated points inside the real manifold;
  recall = share of real points inside the generated manifold.
- density and coverage (Naeem et al., 2020, k = 5): density = (1 / (k M))
  sum_j sum_i [g_j inside the ball of r_i] (about 1 for two samples of the
  same distribution; (k + 1) / k for two identical sets);
  coverage = share of real balls that hold at least one generated point.

Distances are Euclidean and computed in row chunks, so a [n, m] distance
matrix is never held: memory is about `max_elements` numbers per chunk.
"""

import numpy as np
import tensorflow as tf

PRECISION_RECALL_K = 3
DENSITY_COVERAGE_K = 5


def _row_chunks(n, m, max_elements):
    rows = max(1, int(max_elements // max(m, 1)))
    for start in range(0, n, rows):
        yield start, min(n, start + rows)


def _squared_distances(a, b, b_norms):
    """||a_i - b_j||^2 [len(a), len(b)] (clamped at 0 against round-off)."""
    a_norms = tf.reduce_sum(a * a, axis=1, keepdims=True)
    return tf.maximum(a_norms + b_norms[None, :] - 2.0 * tf.matmul(a, b, transpose_b=True), 0.0)


def kth_neighbour_radii(x, ks, dtype=tf.float64, max_elements=2 ** 24):
    """{k: squared distance from each point of x [n, d] to its k-th nearest
    neighbour in x, the point itself excluded, [n]} for every k in `ks`."""
    x = tf.convert_to_tensor(x, dtype)
    n = int(x.shape[0])
    top = max(ks)
    if n <= top:
        raise ValueError(f"k-nearest-neighbour radii need more than k = {top} points, got {n}")
    norms = tf.reduce_sum(x * x, axis=1)
    found = []
    for start, end in _row_chunks(n, n, max_elements):
        d2 = _squared_distances(x[start:end], x, norms)
        own = tf.stack([tf.range(end - start), tf.range(start, end)], axis=1)
        d2 = tf.tensor_scatter_nd_update(d2, own, tf.fill([end - start], tf.constant(np.inf, dtype)))
        found.append(-tf.math.top_k(-d2, k=top).values)  # ascending, [rows, top]
    nearest = tf.concat(found, axis=0)
    return {k: nearest[:, k - 1] for k in ks}


def precision_recall_density_coverage(real, generated, pr_k=PRECISION_RECALL_K,
                                      dc_k=DENSITY_COVERAGE_K, dtype=tf.float64,
                                      max_elements=2 ** 24):
    """{"precision", "recall", "density", "coverage"} of activations
    real [n, d] and generated [m, d], as floats."""
    real = tf.convert_to_tensor(real, dtype)
    generated = tf.convert_to_tensor(generated, dtype)
    real_radii = kth_neighbour_radii(real, (pr_k, dc_k), dtype, max_elements)
    generated_radii = kth_neighbour_radii(generated, (pr_k,), dtype, max_elements)[pr_k]
    real_norms = tf.reduce_sum(real * real, axis=1)
    n, m = int(real.shape[0]), int(generated.shape[0])
    inside_real = []                              # per generated point: in the real manifold
    density_counts = []                           # per generated point: real balls it is in
    recalled = tf.zeros([n], tf.bool)             # per real point: in the generated manifold
    nearest_generated = tf.fill([n], tf.constant(np.inf, dtype))
    for start, end in _row_chunks(m, n, max_elements):
        d2 = _squared_distances(generated[start:end], real, real_norms)  # [rows, n]
        inside_real.append(tf.reduce_any(d2 <= real_radii[pr_k][None, :], axis=1))
        density_counts.append(tf.reduce_sum(
            tf.cast(d2 <= real_radii[dc_k][None, :], dtype), axis=1))
        recalled = recalled | tf.reduce_any(d2 <= generated_radii[start:end, None], axis=0)
        nearest_generated = tf.minimum(nearest_generated, tf.reduce_min(d2, axis=0))
    return {
        "precision": float(tf.reduce_mean(tf.cast(tf.concat(inside_real, 0), dtype))),
        "recall": float(tf.reduce_mean(tf.cast(recalled, dtype))),
        "density": float(tf.reduce_sum(tf.concat(density_counts, 0)) / (dc_k * m)),
        "coverage": float(tf.reduce_mean(tf.cast(nearest_generated <= real_radii[dc_k],
                                                 dtype))),
    }
