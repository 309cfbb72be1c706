"""Publish a table's finished runs into the repository's results (docs/results):
each run's records, not its weights, with paths relative to the repository,
its study's plan and block records, then the table written again from every
run published there.

A published run is `<published>/<table>/runs/<run>/` holding config.json,
run.json, metrics.csv, eval.csv and result.json (written last, so a copy cut
short is not taken for a published run); its final sample grid goes to
`<published>/<table>/grids/`. Publishing the same run again changes nothing;
a run whose published scores differ is refused, never overwritten. The
study's plan.json goes with its first run; a published table with no stored
plan gets the table's plan (a plan written after the runs says so itself).
"""

import os
import shutil

from tfklgan.reproduce import design, freeze, records
from tfklgan.reproduce.report import grid_name, write_table
from tfklgan.reproduce.runner import finished_runs, planned_runs
from tfklgan.reproduce.tables import TABLES
from tfklgan.run_directory import read_settings

RECORDS = ("config.json", "run.json", "metrics.csv", "eval.csv")


def _repo_path(path, root):
    """`path` relative to the repository `root` when inside it, else absolute."""
    path, root = os.path.abspath(path), os.path.abspath(root)
    return os.path.relpath(path, root) if os.path.commonpath([path, root]) == root else path


def _publish_run(source, target, table_dir, root):
    """Copies one finished run's records to `target`; returns False when the
    same run is published there already. Raises ValueError when `target`
    holds a run with other scores."""
    result = records.load(source)
    if records.is_finished(target):
        published = records.load(target)
        differ = records.scores_differ(published, result)
        if differ is None:
            return False
        raise ValueError(f"{target} already holds another run ({differ} "
                         f"{published.scores.get(differ)!r}, not {result.scores.get(differ)!r})"
                         "; move it away first to publish this one in its place")
    os.makedirs(target, exist_ok=True)
    for name in RECORDS:
        if os.path.isfile(os.path.join(source, name)):
            shutil.copyfile(os.path.join(source, name), os.path.join(target, name))
    grid = result.sample_grid
    if grid and os.path.isfile(grid):
        destination = os.path.join(table_dir, "grids", grid_name(result))
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        shutil.copyfile(grid, destination)
        grid = _repo_path(destination, root)
    else:
        grid = None
    records.save(result.replace(sample_grid=grid, logdir=_repo_path(target, root)), target)
    return True


def _publish_design(table_name, source_table, table_dir):
    """The study's plan (and its block records) beside its published runs.
    Raises ValueError where the published plan and the runs' plan differ."""
    plan, declared = design.read(source_table)
    published, _ = design.read(table_dir)
    if plan is not None and published is not None and design.changes(published, plan):
        raise ValueError(f"{table_dir} holds a study declared under another plan than "
                         f"the runs of {source_table}; publish them as a study of their own")
    if plan is not None and published is None:
        os.makedirs(table_dir, exist_ok=True)
        shutil.copyfile(os.path.join(source_table, design.PLAN_FILE),
                        os.path.join(table_dir, design.PLAN_FILE))
    blocks = os.path.join(source_table, "blocks")
    if os.path.isdir(blocks):
        shutil.copytree(blocks, os.path.join(table_dir, "blocks"), dirs_exist_ok=True)


def publish(table_name, options, published_dir, relative_to=None):
    """Copies the chosen finished runs of `options.results_dir` into
    `published_dir/<table>` and writes its table from every run published
    there; the copies' paths are relative to `relative_to` (default: the
    repository, `options.root`). Trains nothing. Returns (table folder, the
    runs newly published)."""
    table, root = TABLES[table_name], relative_to or options.root
    source_table = os.path.join(options.results_dir, table_name)
    table_dir = os.path.join(published_dir, table_name)
    if os.path.realpath(source_table) == os.path.realpath(table_dir):
        raise ValueError(f"--results_dir is the published folder {published_dir}; publish from "
                         "the folder the runs trained in")
    new = []
    chosen = [(cell, seed) for cell, seed in planned_runs(table_name, options)
              if records.is_finished(records.run_dir(source_table, cell, seed))]
    if chosen:
        _publish_design(table_name, source_table, table_dir)
    for cell, seed in chosen:
        target = records.run_dir(table_dir, cell, seed)
        if _publish_run(records.run_dir(source_table, cell, seed), target, table_dir, root):
            new.append(target)
    results = [r.replace(logdir=records.run_dir(table_dir, r, r.seed),
                         sample_grid=r.sample_grid and os.path.join(root, r.sample_grid))
               for r in finished_runs(table, table_dir)]
    if results:
        plan, declaration = design.read(table_dir)
        if plan is None:  # runs published before plans were: the table's plan
            plan = table.plan
            declaration = design.write(table_dir, plan, options.protocol,
                                       *records.source_commit())
        write_table(table, results, table_dir, options.protocol,
                    design.analysed(plan, table.plan), declaration,
                    shared=shared_cells(table_name, published_dir))
    return table_dir, new


def _cells_by_training(name, folder):
    """{training-settings digest: (cell key, [RunRecord])} of a published table."""
    found = {}
    for record in finished_runs(TABLES[name], folder):
        config = read_settings(records.run_dir(folder, record, record.seed))
        if config is None:
            continue
        key = freeze.digest(freeze.training_settings(config))
        found.setdefault(key, (record.cell_key, []))[1].append(record)
    return found


def shared_cells(table_name, published_dir):
    """[(cell key, other study, other cell key, [RunRecord])]: the runs of other
    published studies that trained one of this table's cells (equal training
    settings: freeze.training_settings), in TABLES' order."""
    mine = _cells_by_training(table_name, os.path.join(published_dir, table_name))
    shared = []
    for other in TABLES:
        folder = os.path.join(published_dir, other)
        if other == table_name or not os.path.isdir(os.path.join(folder, "runs")):
            continue
        for key, (other_cell, runs) in _cells_by_training(other, folder).items():
            if key in mine:
                shared.append((mine[key][0], other, other_cell, runs))
    return shared

