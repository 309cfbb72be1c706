"""absl flags for TrainConfig, for the scripts (the library never reads flags).

`define_train_flags(flag_values)` defines one flag per TrainConfig field,
with the field's default; `config_from_flags(flag_values)` builds the config.
"""

import dataclasses
import typing

from absl import flags

from tfklgan.config import TrainConfig

HELP = {
    "method": "klgan, gan, dcgan, cgan, lsgan, hinge, wgan, wgan_gp or r1gan",
    "network": "klgan32, dcgan64, dcgan28 or cgan28; empty: picked by --image_size",
    "dataset": "mnist, celeba, mnist_sample (offline), images:<folder> or npz:<file>",
    "image_size": "output height and width (28, 32 or 64 for the built-in networks)",
    "channels": "1 or 3; 0 picks 1 for MNIST and 3 otherwise",
    "resize": "authors (full frame resized, KL-GAN code) or center_crop",
    "attributes": "CelebA attributes used as class labels, e.g. Male,Smiling",
    "max_examples": "train on a random subset of N training images (fixed by --seed); 0 = all",
    "validation_fraction": "held-out share for sources without their own split",
    "data_dir": "TFDS data_dir with prepared datasets (the offline copy for mnist/celeb_a)",
    "celeba_dir": "local CelebA folder with img_align_celeba/ and list_attr_celeba.txt",
    "cache_dir": "where decoded images are cached (default ~/.cache/tfklgan)",
    "download": "allow TFDS downloads when the data is not prepared",
    "npz_range": "npz: float images are auto (detected), 0-1 or 0-255; uint8 is always 0..255",
    "batch_size": "global batch size (split over replicas)",
    "epochs": "passes over the training split",
    "steps": "generator steps; > 0 overrides --epochs",
    "latent_dim": "latent size",
    "latent_distribution": "normal or uniform ([-1, 1]; the MNIST study's CGAN)",
    "width": "base channel count of the networks (the authors' dim)",
    "feature_dim": "discriminator feature size (KL-GAN: 8)",
    "minibatch_discrimination": "append minibatch-discrimination features to D",
    "mbd_kernels": "minibatch-discrimination kernels B",
    "mbd_kernel_dim": "minibatch-discrimination kernel size C",
    "mbd_mean": "divide similarities by n - 1 (KL-GAN code) instead of summing",
    "init": "weight initialisation: keras (layer defaults) or torch (PyTorch's defaults, "
            "as the KL-GAN authors' runs)",
    "spectral_norm_iterations": "SN(k)-DCGAN: power iterations; 0 keeps BatchNorm",
    "kl_stats": "paper or reference_code (variance used as std, as the authors' code)",
    "kl_eps": "added to the KL-GAN feature variances",
    "clip_value": "WGAN weight clipping c",
    "gp_weight": "WGAN-GP lambda",
    "gp_norm": "per_sample (standard) or per_pixel (the KL-GAN authors' code)",
    "r1_gamma": "R1 weight gamma (loss + gamma * E||grad D(x)||^2)",
    "ls_convention": "standard (real 1, fake 0, 1/2) or authors (real 0, fake 1)",
    "n_critic": "discriminator steps per generator step",
    "generator_first": "G step before the D steps (the KL-GAN authors' baselines)",
    "optimizer": "adam, adamw or rmsprop",
    "g_lr": "generator learning rate",
    "d_lr": "discriminator learning rate",
    "beta1": "Adam/AdamW beta1",
    "beta2": "Adam/AdamW beta2",
    "weight_decay": "AdamW weight decay",
    "rmsprop_rho": "RMSProp rho",
    "lr_decay": "none (Table I runs) or linear (the authors' configured schedule)",
    "lr_decay_steps": "steps of the linear decay",
    "lr_decay_final": "final learning-rate factor of the linear decay",
    "ema_decay": "keep an EMA of G's weights for sampling (0 = off)",
    "seed": "seed of weights, data order and every random draw",
    "precision": "float32, mixed_bfloat16 (GPUs) or float64 (exactness checks)",
    "jit_compile": "compile the train step with XLA",
    "strategy": "default, mirrored (all local GPUs, or the --cpu_devices) or multiworker "
                "(TF_CONFIG)",
    "cpu_devices": "split the CPU into N logical devices (N > 1), so --strategy=mirrored "
                   "runs N replicas on a machine without GPUs",
    "steps_per_execution": "train steps per compiled call (callbacks run per call)",
    "eval_every": "score FID, IS and KID every N steps (0 = off); keeps the best-FID checkpoint",
    "eval_samples": "generated (and real) images per evaluation (10,000 as in the KL-GAN paper)",
    "eval_real_samples": "real reference images per evaluation; 0: as many as --eval_samples",
    "eval_resize_filter": "resizing to the feature network's input: tfgan (bilinear, TF-GAN's "
                          "examples) or clean (antialiased bicubic, as PIL and clean-fid)",
    "eval_split": "real reference split: validation (held out, default), train or all",
    "eval_feature_network": "inception (TF-GAN's) or classifier (--classifier_path)",
    "eval_ema": "evaluate the EMA generator when the run keeps one",
    "inception_path": "local copy of the TF-Hub module tensorflow/tfgan/eval/inception/1",
    "classifier_path": "domain classifier from scripts/train_classifier.py; MNIST-like "
                       "data defaults to the one shipped with tfklgan",
    "logdir": "run directory: checkpoints, TensorBoard events, metrics.csv, samples",
    "log_every": "log metrics every N steps",
    "sample_every": "write a sample grid every N steps",
    "checkpoint_every": "checkpoint every N steps",
    "keep_checkpoints": "checkpoints to keep",
    "export_dir": "export the generator as a SavedModel here at the end",
    "resume": "continue the run in --logdir from its last checkpoint",
    "verbose": "Keras progress output: 0 silent, 1 bar, 2 one line per epoch",
}


def _base_type(annotation):
    """int for Optional[int]; other annotations unchanged."""
    if typing.get_origin(annotation) is typing.Union:
        return [a for a in typing.get_args(annotation) if a is not type(None)][0]
    return annotation


def define_train_flags(flag_values=flags.FLAGS):
    hints = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        kind = _base_type(hints[field.name])
        default = field.default
        help_text = HELP[field.name]
        if kind is bool:
            flags.DEFINE_bool(field.name, default, help_text, flag_values=flag_values)
        elif kind is int:
            flags.DEFINE_integer(field.name, default, help_text, flag_values=flag_values)
        elif kind is float:
            flags.DEFINE_float(field.name, default, help_text, flag_values=flag_values)
        elif typing.get_origin(kind) is tuple:
            flags.DEFINE_list(field.name, list(default), help_text, flag_values=flag_values)
        else:
            flags.DEFINE_string(field.name, default, help_text, flag_values=flag_values)


def config_from_flags(flag_values=flags.FLAGS):
    values = {}
    for field in dataclasses.fields(TrainConfig):
        value = flag_values[field.name].value
        values[field.name] = tuple(value) if isinstance(value, list) else value
    return TrainConfig(**values)
