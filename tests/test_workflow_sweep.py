"""A sweep from its declaration to its tables, through the Snakemake CLI at the tiny scale (local execution).

One registry entry of a few lines declares 4 points (a grid of 2 learning rates, times a zip of 2 batch sizes with
2 widths) x 2 seeds = 8 runs, trained for 4 steps each; a small evaluation grid (`--configfile`) keeps each
run's evaluation job to one checkpoint, one protocol, one split. `snakemake <sweep>` plans and runs the sweep's
runs only (3 jobs a run: resolve, train, evaluate), every run's resolved config names its sweep and point, the
sweep's name selects it for the tables, and the finished sweep plans nothing.
"""

from __future__ import annotations

import csv
import json

import pytest
import yaml
from workflow_helpers import copy_workflow, planned_jobs, snakemake

pytestmark = pytest.mark.slow

SWEEP = """
e2e:
  extends: q101
  description: End-to-end sweep of the tests, 4 steps a run.
  seeds: [0, 1]
  at_scale:
    tiny: {train: {steps: 4, log_every: 2, eval_every: 2, checkpoint_every: 2}}
  sweep:
    grid: {train.lr: [1.0e-3, 3.0e-3]}
    zip: {train.batch_size: [8, 16], model.width: [8, 16]}
"""
SMALL_EVALUATION = {
    "export": ["last"],
    "cross_eval": {"protocols": ["current"], "splits": ["val"], "weights": ["ema"]},
    "inference_sweep": {"steps": [1], "splits": ["val"]},
}
POINTS = {
    "e2e-lr1e-3-bs8-width8": {"train.lr": 1e-3, "train.batch_size": 8, "model.width": 8},
    "e2e-lr1e-3-bs16-width16": {"train.lr": 1e-3, "train.batch_size": 16, "model.width": 16},
    "e2e-lr3e-3-bs8-width8": {"train.lr": 3e-3, "train.batch_size": 8, "model.width": 8},
    "e2e-lr3e-3-bs16-width16": {"train.lr": 3e-3, "train.batch_size": 16, "model.width": 16},
}
RUNS = [f"{point}-s{seed}" for point in POINTS for seed in (0, 1)]


def test_a_sweep_runs_from_its_declaration_to_its_tables(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    (wf / "config" / "experiments" / "zz_e2e.yaml").write_text(SWEEP)
    (wf / "small.yaml").write_text(yaml.safe_dump(SMALL_EVALUATION))
    config = ["--configfile", "small.yaml", "--config", "scale=tiny"]
    assert planned_jobs(wf, "e2e", *config) == {"resolve": 8, "train": 8, "evaluate": 8, "e2e": 1}

    snakemake(wf, "--cores", "2", "e2e", *config)
    results = wf / "results" / "tiny"
    assert sorted(p.name for p in results.iterdir() if p.is_dir()) == sorted(RUNS)  # the sweep's runs, only
    for run in RUNS:
        point = run.rsplit("-s", 1)[0]
        resolved = yaml.safe_load((results / run / "config.yaml").read_text())
        assert resolved["sweep"] == {"name": "e2e", "point": POINTS[point]}  # the reporting contract
        assert (resolved["train"]["lr"], resolved["model"]["width"]) == (POINTS[point]["train.lr"],
                                                                        POINTS[point]["model.width"])
        assert json.loads((results / run / "status.json").read_text())["status"] in ("completed", "diverged")
        assert [p.name for p in (results / run / "milestones").glob("*.pt")] == ["last.pt"]
        assert (results / run / "eval" / "last" / "current.val.ema.json").exists()
        sweep_rows = json.loads((results / run / "inference_sweep.json").read_text())
        assert [(r["run"], r["experiment"], r["split"]) for r in sweep_rows] == [(run, point, "val")]
    assert planned_jobs(wf, "e2e", *config) == {}

    # the sweep's name selects its points for the tables; nothing is trained or evaluated again
    selected = [*config, "experiments=[e2e]"]
    assert planned_jobs(wf, "cross_eval", "inference_sweep_table", *selected) == {
        "cross_eval": 1, "inference_sweep_table": 1}
    snakemake(wf, "--cores", "2", "cross_eval", "inference_sweep_table", *selected)
    with open(results / "cross_eval.csv") as handle:
        assert sorted(row["run"] for row in csv.DictReader(handle)) == sorted(RUNS)
    with open(results / "inference_sweep.csv") as handle:
        assert sorted(row["run"] for row in csv.DictReader(handle)) == sorted(RUNS)
