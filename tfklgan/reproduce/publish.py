"""Publish a table's finished runs into the repository's results (docs/results):
each run's records, not its weights, with paths relative to the repository,
then the table written again from every run published there.

A published run is `<published>/<table>/runs/<run>/` holding config.json,
run.json, metrics.csv, eval.csv and result.json (written last, so a copy cut
short is not taken for a published run); its final sample grid goes to
`<published>/<table>/grids/`. Publishing the same run again changes nothing;
a run whose published scores differ is refused, never overwritten.
"""

import json
import os
import shutil

from tfklgan import metrics
from tfklgan.reproduce.report import grid_name, write_table
from tfklgan.reproduce.runner import planned_runs, run_dir, write_json
from tfklgan.reproduce.tables import TABLES

RECORDS = ("config.json", "run.json", "metrics.csv", "eval.csv")


def published_runs(published_table, cell):
    """The folders of the cell's published runs (every seed), in seed order."""
    runs = os.path.join(published_table, "runs")
    prefix = os.path.basename(run_dir("", cell, ""))
    if not os.path.isdir(runs):
        return []
    seeds = sorted(int(name[len(prefix):]) for name in os.listdir(runs)
                   if name.startswith(prefix) and name[len(prefix):].isdigit()
                   and os.path.isfile(os.path.join(runs, name, "result.json")))
    return [run_dir(published_table, cell, seed) for seed in seeds]


def _repo_path(path, root):
    """`path` relative to the repository `root` when inside it, else absolute."""
    path, root = os.path.abspath(path), os.path.abspath(root)
    return os.path.relpath(path, root) if os.path.commonpath([path, root]) == root else path


def _load(path):
    with open(os.path.join(path, "result.json")) as handle:
        return json.load(handle)


def _publish_run(source, target, table_dir, root):
    """Copies one finished run's records to `target`; returns False when the
    same run is published there already. Raises ValueError when `target`
    holds a run with other scores."""
    result = _load(source)
    if os.path.isfile(os.path.join(target, "result.json")):
        published = _load(target)
        differ = [k for k in metrics.SCORES if published.get(k) != result.get(k)]
        if not differ:
            return False
        raise ValueError(f"{target} already holds another run ({differ[0]} "
                         f"{published.get(differ[0])!r}, not {result.get(differ[0])!r}); "
                         "move it away first to publish this one in its place")
    os.makedirs(target, exist_ok=True)
    for name in RECORDS:
        if os.path.isfile(os.path.join(source, name)):
            shutil.copyfile(os.path.join(source, name), os.path.join(target, name))
    grid = result.get("sample_grid")
    if grid and os.path.isfile(grid):
        destination = os.path.join(table_dir, "grids", grid_name(result))
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        shutil.copyfile(grid, destination)
        result["sample_grid"] = _repo_path(destination, root)
    else:
        result["sample_grid"] = None
    result["logdir"] = _repo_path(target, root)
    write_json(os.path.join(target, "result.json"), result)
    return True


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
    for cell, seed in planned_runs(table_name, options):
        source = run_dir(source_table, cell, seed)
        if os.path.isfile(os.path.join(source, "result.json")):
            target = run_dir(table_dir, cell, seed)
            if _publish_run(source, target, table_dir, root):
                new.append(target)
    results = []
    for cell in table.cells:
        for path in published_runs(table_dir, cell):
            result = _load(path)
            result["logdir"] = path  # as read here, wherever the command runs
            if result.get("sample_grid"):
                result["sample_grid"] = os.path.join(root, result["sample_grid"])
            results.append(result)
    if results:
        write_table(table, results, table_dir, options.protocol)
    return table_dir, new
