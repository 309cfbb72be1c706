"""The table harness at a tiny scale on mnist_sample."""

import csv
import math
import os

import pytest

from tfklgan.reproduce import TABLES, ReproduceOptions, cell_config, reproduce
from test_metrics import _save_fake_hub_module
from test_training import ROOT


@pytest.mark.slow
def test_klgan_table1_tiny_proxy(tmp_path):
    _save_fake_hub_module(tmp_path / "inception")
    options = ReproduceOptions(
        scale=0.0001, seeds=[1, 2], methods=["klgan", "hinge"], dataset="mnist_sample",
        width=4, batch_size=16, eval_points=2, min_eval_samples=64,
        inception_path=str(tmp_path / "inception"), cache_dir=str(tmp_path / "cache"),
        results_dir=str(tmp_path / "results"), root=ROOT)
    out_dir, results = reproduce("klgan_table1", options)
    assert len(results) == 8  # 2 methods x with/without MBD x 2 seeds
    assert all(math.isfinite(r["fid"]) for r in results)
    table = open(os.path.join(out_dir, "table.md")).read().splitlines()
    rows = [line for line in table if line.startswith("| klgan") or line.startswith("| hinge")]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 5  # method, paper/ours without MBD, paper/ours with MBD
        assert "(n=2)" in cells[2] and "(n=2)" in cells[4]
    assert "20.20 ± 2.00" in table[-1] or any("20.20 ± 2.00" in line for line in table)
    assert "inception:sha256=" in "\n".join(table)
    with open(os.path.join(out_dir, "table.csv")) as handle:
        assert len(list(csv.DictReader(handle))) == 8
    assert sorted(os.listdir(os.path.join(out_dir, "plots"))) == ["fid_hinge.png",
                                                                   "fid_klgan.png"]
    assert len(os.listdir(os.path.join(out_dir, "grids"))) == 8
    # finished cells are not rerun
    mtimes = {r["logdir"]: os.path.getmtime(os.path.join(r["logdir"], "result.json"))
              for r in results}
    reproduce("klgan_table1", options)
    assert all(os.path.getmtime(os.path.join(d, "result.json")) == t for d, t in mtimes.items())


def test_every_table_cell_has_a_valid_flagfile():
    options = ReproduceOptions(root=ROOT)
    for name, table in TABLES.items():
        for cell in table.cells:
            config = cell_config(cell, table.seeds[0], options, "runs/x").validate()
            assert config.method in cell.flagfile or cell.method in cell.flagfile


def test_unknown_table_and_method():
    with pytest.raises(ValueError, match="unknown table"):
        reproduce("table9", ReproduceOptions(root=ROOT))
    with pytest.raises(ValueError, match="not in mnist_table"):
        reproduce("mnist_table", ReproduceOptions(root=ROOT, methods=["klgan"]))
