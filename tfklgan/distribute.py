"""Cross-replica helpers for code that runs inside a `train_step`.

Keras runs `train_step` once per replica; the optimizer then sums the
replicas' gradients. Everything here also works on a single device, where
the replica context is the default one.
"""

import tensorflow as tf


def multi_worker(strategy=None):
    """Whether `strategy` (default: the current one) runs on several workers
    (MultiWorkerMirroredStrategy with a cluster of more than one task)."""
    strategy = strategy or tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    return bool(strategy.extended._in_multi_worker_mode())  # noqa: SLF001 (no public API)


def num_replicas():
    """Number of replicas that share the global batch."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def replica_sum(x):
    """Sums `x` (a tensor or nest of tensors) over all replicas.

    Gradients flow through the sum: the gradient of an all-reduce is the
    all-reduce of the upstream gradients.
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, x)


def replica_gather(x):
    """Concatenates `x` [n, ...] from all replicas along axis 0, in replica order.

    Implemented as an all-reduce of zero-padded blocks (each replica writes its
    rows at its offset) rather than `all_gather`: the backward pass is then an
    all-reduce too, which keeps the collectives of all replicas in one order.
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x
    replicas = ctx.num_replicas_in_sync
    replica = tf.cast(ctx.replica_id_in_sync_group, tf.int32)
    placed = tf.one_hot(replica, replicas, dtype=x.dtype)
    padded = placed[:, None] * tf.reshape(x, [1, -1])  # [replicas, n * ...]
    gathered = ctx.all_reduce(tf.distribute.ReduceOp.SUM, padded)
    return tf.reshape(gathered, tf.concat([[-1], tf.shape(x)[1:]], 0))


def assign_variables(targets, update_fn, sources=None):
    """Assigns `update_fn(target, source)` to each target variable.

    Works from a replica context (the updates are made once, in the
    cross-replica context, as optimizers do) and outside any strategy.
    `sources` are tensors or variables with the same value on every replica.
    """
    targets = list(targets)
    sources = list(sources) if sources is not None else [None] * len(targets)

    def _assign_all(strategy, sources):
        for target, source in zip(targets, sources, strict=True):
            # a Keras variable's TensorFlow variable (a tf.Variable's `value` is a method)
            value = getattr(target, "value", target)
            tf_var = target if callable(value) else value
            args = () if source is None else (source,)
            strategy.extended.update(
                tf_var, lambda v, *a: v.assign(update_fn(v, *a)), args=args,
                group=False)

    ctx = tf.distribute.get_replica_context()
    if ctx is None:
        _assign_all(tf.distribute.get_strategy(), sources)
    else:
        ctx.merge_call(_assign_all, args=(sources,))


def replica_slice(global_tensor, local_size):
    """This replica's rows [id * local_size, (id + 1) * local_size) of a tensor
    drawn identically on every replica for the whole global batch."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return global_tensor
    start = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * local_size
    return global_tensor[start:start + local_size]
