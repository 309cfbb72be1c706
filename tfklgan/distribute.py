"""Cross-replica helpers for code that runs inside a `train_step`.

Keras runs `train_step` once per replica; the optimizer then sums the
replicas' gradients. Everything here also works on a single device, where
the replica context is the default one.
"""

import tensorflow as tf


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

    Returns (gathered, offset), `offset` being the index of this replica's
    first row in `gathered`.
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x, 0
    gathered = ctx.all_gather(x, axis=0)
    offset = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * tf.shape(x)[0]
    return gathered, offset


def assign_variables(targets, update_fn, sources=None):
    """Assigns `update_fn(target, source)` to each target variable.

    Works from a replica context (the updates are made once, in the
    cross-replica context, as optimizers do) and outside any strategy.
    `sources` are tensors or variables with the same value on every replica.
    """
    targets = list(targets)
    sources = list(sources) if sources is not None else [None] * len(targets)

    def _assign_all(strategy, sources):
        for target, source in zip(targets, sources):
            tf_var = getattr(target, "value", target)
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
