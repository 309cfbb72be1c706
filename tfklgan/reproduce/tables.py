"""The paper tables as data: each table's cells (a flagfile per method and
column), seeds and the paper's numbers. A new table or study is a new entry
in TABLES; the runner and the report never branch on a table's name."""

import dataclasses
from typing import Dict, Tuple


@dataclasses.dataclass(frozen=True)
class Cell:
    """One cell: its flagfile, and `overrides` ((setting, value) pairs of
    TrainConfig's flat names) applied after the protocol, for a study whose
    cells differ in a setting the protocol fixes (batch size, steps, ...)."""
    method: str          # row
    column: str          # e.g. "without MBD"
    flagfile: str
    paper: Dict[str, Tuple[float, float]]  # metric -> (mean, std or nan)
    overrides: Tuple[Tuple[str, object], ...] = ()


@dataclasses.dataclass(frozen=True)
class Table:
    """contrasts: (label, column a, column b) pairs the report compares per
    row, mean(a) - mean(b) with its Welch 95% interval. curves_by: the FID
    plots' x axis, "step" (generator steps) or "images" (images seen).
    rows_by: the main table's rows, "method" (a column pair per cell column)
    or "cell" (a row per cell, for a study of one method's settings)."""
    title: str
    columns: Tuple[str, ...]
    metrics: Tuple[str, ...]
    seeds: Tuple[int, ...]
    cells: Tuple[Cell, ...]
    note: str
    contrasts: Tuple[Tuple[str, str, str], ...] = ()
    curves_by: str = "step"
    rows_by: str = "method"


TABLE1_PAPER = {  # mean FID +- std over 5 runs without and with MBD, docs/reference.md §1
    "klgan": ((237.4, 102.8), (20.2, 2.0)), "lsgan": ((340.6, 37.8), (187.6, 47.5)),
    "hinge": ((341.7, 45.6), (151.9, 20.0)), "wgan_gp": ((351.3, 21.6), (273.6, 71.8)),
    "r1gan": ((51.5, 5.4), (92.1, 41.9))}
TABLE1_NOTE = "Paper FIDs use torchvision's Inception v3: compare rankings and ratios, not values."


def _table1_cells():
    cells = []
    for method, (without, with_) in TABLE1_PAPER.items():
        cells.append(Cell(method, "without MBD", f"configs/table1/{method}.flags",
                          {"fid": without}))
        cells.append(Cell(method, "with MBD", f"configs/table1/{method}_mbd.flags",
                          {"fid": with_}))
    return tuple(cells)


def _table1():
    return Table("KL-GAN paper, Table I: FID on CelebA 32x32 after 300 epochs",
                 ("without MBD", "with MBD"), ("fid",), (1, 2, 3, 4, 5), _table1_cells(),
                 TABLE1_NOTE)


def _table1_long():
    """Table I's ten cells, as the CPU protocol trains them for 10,000 steps
    (the Table I proxy stops at 2,000, before most of its generators have
    learned the data)."""
    return Table("KL-GAN paper, Table I, trained long: FID and recall",
                 ("without MBD", "with MBD"), ("fid", "recall"), (1, 2, 3, 4, 5),
                 _table1_cells(), TABLE1_NOTE)


def _mnist():
    nan = float("nan")
    paper = {"dcgan": (1.484, 203.75), "wgan": (1.593, 179.76), "wgan_gp": (1.867, 171.68)}
    cells = tuple(Cell(m, "MNIST", f"configs/mnist/{m}.flags",
                       {"inception_score": (v[0], nan), "fid": (v[1], nan)})
                  for m, v in paper.items())
    return Table("MNIST study: Inception score and FID", ("MNIST",),
                 ("inception_score", "fid"), (1,), cells,
                 "The study does not say which feature network it used.")


# the SN study's IS and FID (mean of 3 runs, CelebA 64x64), docs/reference.md
SN_STUDY_PAPER = {"dcgan": (1.93, 27.72), "sn1_dcgan": (1.84, 24.61),
                  "sn2_dcgan": (1.80, 24.54), "sn3_dcgan": (1.80, 23.39)}


def _sn_cells(column, overrides=()):
    nan = float("nan")
    return tuple(Cell(m, column, f"configs/celeba64/{m}.flags",
                      {"inception_score": (v[0], nan), "fid": (v[1], nan)}, overrides)
                 for m, v in SN_STUDY_PAPER.items())


def _celeba64():
    return Table("Reduced-CelebA study: DCGAN and SN(k)-DCGAN, 64x64, 3 runs",
                 ("CelebA 64",), ("inception_score", "fid"), (1, 2, 3),
                 _sn_cells("CelebA 64"), "Mean of 3 runs in the study.")


def _sn32():
    """The SN study's four cells at 32x32 (`dcgan32`: the same design with one
    stride-2 stage fewer a side): the question is spectral normalisation's
    effect, which does not need 64x64, and at 32x32 a CPU run learns the data.
    Without a protocol it trains on CelebA at 32x32 with the cells' own settings."""
    return Table("SN study at 32x32: DCGAN and SN(k)-DCGAN, the dcgan32 networks",
                 ("32x32",), ("inception_score", "fid", "recall"), (1, 2, 3),
                 _sn_cells("32x32", (("network", "dcgan32"), ("image_size", 32))),
                 "The paper's numbers are CelebA 64x64 with Inception features: compare "
                 "the cells' order, not values.")


# The MBD study: every run sees the same number of training images (10,000
# steps at batch 64), so a larger batch is fewer, larger steps at about the
# same compute; the paper's runs used batch 1024.
MBD_STUDY_IMAGES = 640_000
MBD_STUDY_BATCHES = (64, 256, 1024)


def _mbd_study():
    cells, contrasts = [], []
    for batch in MBD_STUDY_BATCHES:
        length = (("batch_size", batch), ("steps", MBD_STUDY_IMAGES // batch))
        paper = batch == 1024
        without, with_ = f"batch {batch}, without MBD", f"batch {batch}, with MBD"
        cells.append(Cell("klgan", without, "configs/table1/klgan.flags",
                          {"fid": (237.4, 102.8)} if paper else {}, length))
        cells.append(Cell("klgan", with_, "configs/table1/klgan_mbd.flags",
                          {"fid": (20.2, 2.0)} if paper else {}, length))
        contrasts.append((f"MBD's effect at batch {batch}", without, with_))
    # the paper's MBD cell also halves D's learning rate: the same cell without that
    not_halved = "batch 64, with MBD, D lr 8e-5"
    cells.append(Cell("klgan", not_halved, "configs/table1/klgan_mbd.flags", {},
                      (("batch_size", 64), ("steps", MBD_STUDY_IMAGES // 64), ("d_lr", 8e-5))))
    contrasts.append(("halving D's learning rate with MBD, batch 64", "batch 64, with MBD",
                      not_halved))
    # and the MBD layer alone: both cells at D's learning rate of 8e-5
    contrasts.append(("the MBD layer alone (D lr 8e-5 both), batch 64", "batch 64, without MBD",
                      not_halved))
    return Table("MBD study: does minibatch discrimination help KL-GAN as in Table I? "
                 "FID by batch size, every run seeing 640,000 images",
                 tuple(c.column for c in cells), ("fid",), (1, 2, 3), tuple(cells),
                 "The paper's numbers (batch 1024, CelebA 32x32, 300 epochs) use "
                 "torchvision's Inception v3: compare MBD's effect, not values.",
                 tuple(contrasts), curves_by="images", rows_by="cell")


def _bf16_study():
    """Table I's KL-GAN cells in float32 and in mixed bfloat16 (the paper's
    runs were bf16): does bf16 train as well? Its KL statistics and losses stay
    float32 (tfklgan.losses)."""
    cells, contrasts = [], []
    for mbd, flagfile in (("without MBD", "klgan"), ("with MBD", "klgan_mbd")):
        for precision in ("float32", "mixed_bfloat16"):
            cells.append(Cell("klgan", f"{mbd}, {precision}", f"configs/table1/{flagfile}.flags",
                              {}, (("precision", precision),)))
        contrasts.append((f"bf16 against float32, {mbd}", f"{mbd}, mixed_bfloat16",
                          f"{mbd}, float32"))
    return Table("Precision study: Table I's KL-GAN cells in float32 and mixed bfloat16",
                 tuple(c.column for c in cells), ("fid", "recall"), (1, 2, 3), tuple(cells),
                 "Both precisions run on the same kernels (oneDNN uncapped), so a CPU "
                 "with bf16 instructions uses them.", tuple(contrasts), rows_by="cell")


TABLES = {"klgan_table1": _table1(), "klgan_table1_long": _table1_long(), "mnist_table": _mnist(),
          "celeba64_sn_table": _celeba64(), "sn32_table": _sn32(), "mbd_study": _mbd_study(),
          "bf16_study": _bf16_study()}


