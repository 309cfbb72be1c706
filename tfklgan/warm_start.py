"""Starting a new run from trained weights (`--init_from`).

The source is a run directory (its newest checkpoint gives G, D and G's
EMA) or a generator export (`scripts/export.py`: G, and the EMA starts from
it; D too where it was exported with `--discriminator`, else D starts fresh
and the run says so). The new run keeps its own settings, data, fresh optimizers and
step 0, for fine-tuning on other data or continuing a generator under other
settings. A network of another shape is refused with one line naming its
first layer that differs (from a run's networks, or the weight shapes an
export records; an older export is refused without the name), before
anything is written.
"""

import os

import tensorflow as tf


class InitFromError(ValueError):
    """The source cannot start this run (missing, or networks of another shape)."""


def _check_shapes(source, model, what, network):
    """Raises InitFromError at the first weight whose shape differs."""
    ours = model.weights
    if len(source) != len(ours):
        raise InitFromError(f"--init_from={what}: its {network} has {len(source)} weight "
                            f"tensors, this run's {len(ours)}: start from a run of the same "
                            "network")
    for (path, shape), variable in zip(source, ours, strict=True):
        if tuple(shape) != tuple(variable.shape):
            layer = variable.path.rsplit("/", 1)[0]  # "generator/dense_1/kernel" -> its layer
            raise InitFromError(
                f"--init_from={what}: the {network}'s layer {layer!r} has "
                f"weights of shape {tuple(shape)} there ({path}) and {tuple(variable.shape)} "
                "here; start from a run of the same network (width, latent size, image size)")


def _from_run(gan, source):
    from tfklgan.export import weight_shapes
    from tfklgan.run_directory import load_run
    trained, _, info = load_run(source)
    pairs = [("generator", trained.generator, gan.generator),
             ("discriminator", trained.discriminator, gan.discriminator)]
    for network, theirs, ours in pairs:
        _check_shapes(weight_shapes(theirs), ours, source, network)
    for _, theirs, ours in pairs:
        ours.set_weights(theirs.get_weights())
    if gan.ema_generator is not None:
        gan.ema_generator.set_weights((trained.ema_generator or trained.generator).get_weights())
    checkpoint = tf.train.latest_checkpoint(os.path.join(source, "checkpoints"))
    return {"source": os.path.abspath(source), "kind": "run", "checkpoint": checkpoint,
            "step": int(trained.g_optimizer.iterations.numpy()),
            "networks": ["generator", "discriminator"] + (
                ["ema_generator"] if gan.ema_generator is not None else [])}


def _from_export(gan, source):
    from tfklgan.export import export_info, export_version
    folder = export_version(source)
    variables = os.path.join(folder, "variables", "variables")
    targets = [gan.generator] + ([gan.ema_generator] if gan.ema_generator is not None else [])
    info = export_info(folder)
    recorded = info.get("weight_shapes")
    if recorded is not None:  # the EMA generator is the same network
        _check_shapes(recorded, gan.generator, source, "generator")
    carried = info.get("discriminator_weight_shapes")
    if carried is not None:  # exported with its discriminator
        _check_shapes(carried, gan.discriminator, source, "discriminator")
    for model in targets:
        try:
            tf.train.Checkpoint(generator=model).read(variables).assert_existing_objects_matched()
        except (ValueError, AssertionError):
            # what weight_shapes cannot show, or an export made before it was recorded
            raise InitFromError(
                f"--init_from={source}: its generator does not match this run's; start from "
                "an export of the same network (width, latent size, image size), or export "
                "its run again (scripts/export.py) to have the layer that differs named") from None
    if carried is not None:
        tf.train.Checkpoint(discriminator=gan.discriminator).read(
            variables).assert_existing_objects_matched()
    return {"source": os.path.abspath(folder), "kind": "export", "checkpoint": variables,
            "networks": ["generator"] + (["discriminator"] if carried is not None else [])
            + (["ema_generator"] if len(targets) > 1 else [])}


def initialise_from(gan, source):
    """Sets `gan`'s networks from `source` (a run directory or a generator
    export); returns the record of what was taken (for run.json)."""
    from tfklgan.export import export_version
    if os.path.isfile(os.path.join(source, "config.json")):
        return _from_run(gan, source)
    if os.path.isdir(source) and export_version(source):
        return _from_export(gan, source)
    raise InitFromError(f"--init_from={source}: neither a run directory (config.json) nor a "
                        "generator export (scripts/export.py); pass one of those")
