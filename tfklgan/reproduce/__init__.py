"""One command per paper table: run every cell, score it, write the table.

- `tables`: the paper's tables as data (cells, the paper's numbers, each
  study's plan);
- `design`: a study's plan (blocks, contrasts, correction, verdict rules),
  stored before its first run and obeyed after;
- `records`: run folders and result.json (RunRecord), a run's commit and
  its time apart from time it stood stopped;
- `analysis`: blocks by machine, contrasts paired within blocks, Holm's
  correction, the ranking's bootstrap interval, the bar of the best cell;
- `protocols`: fixed reduced protocols (the CPU proxies) and their oneDNN cap;
- `runner`: `reproduce(table, options)` trains and scores every (cell, seed)
  run under `results/<table>/runs/` (finished runs are kept, interrupted ones
  resumed) and writes the table;
- `stats`: means, rankings, Kendall's tau, prediction intervals;
- `report`: table.md, table.csv, plots and grids from the runs' results;
- `parity`: the reference-implementation study (tfklgan beside a PyTorch
  trainer of the authors' update rules);
- `publish`: finished runs' records copied into the repository's results,
  their table written there;
- `verify`: a rerun compared with the published runs (bit-equal on the same
  kernel fingerprint, the cell's prediction interval elsewhere).
"""

from tfklgan.reproduce.design import AFTER, BEFORE, Contrast, Plan, difference
from tfklgan.reproduce.protocols import PROTOCOL_CPU_ISA, PROTOCOLS, Protocol, cap_onednn_isa
from tfklgan.reproduce.publish import publish
from tfklgan.reproduce.records import RunRecord
from tfklgan.reproduce.runner import (
    ReproduceOptions,
    RunPreempted,
    cell_config,
    planned_runs,
    reproduce,
    run_cell,
    run_length,
)
from tfklgan.reproduce.stats import kendall_tau, prediction_interval, ranks
from tfklgan.reproduce.tables import TABLES, Cell, Table
from tfklgan.reproduce.verify import verify

__all__ = ["AFTER", "BEFORE", "PROTOCOLS", "PROTOCOL_CPU_ISA", "TABLES", "Cell", "Contrast",
           "Plan", "Protocol", "ReproduceOptions", "RunPreempted", "RunRecord", "Table",
           "cap_onednn_isa", "cell_config", "difference", "kendall_tau", "planned_runs",
           "prediction_interval", "publish", "ranks", "reproduce", "run_cell", "run_length",
           "verify"]
