"""The real workflow at the tiny scale, through the Snakemake CLI: a full run, then the everyday operations.

One private copy of the workflow runs `all_ablations` for two experiments, one seed each (q101, and q209
whose config names a step milestone), then each test checks one promise of docs/PIPELINE.md on that folder.
The tests share the folder and run in file order.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml

from workflow_helpers import copy_workflow, mtimes, planned_jobs, snakemake

pytestmark = pytest.mark.slow

CONFIG = ["--config", "scale=tiny", "experiments=[q101,q209]", "max_seeds=1"]
RUNS = ("q101-s0", "q209-s0")
GRID = 3 * 3 * 2  # protocols x splits x weights


@pytest.fixture(scope="module")
def wf(tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"))
    snakemake(workdir, "--cores", "2", *CONFIG)
    return workdir


def trained(wf: Path) -> list[Path]:
    return [wf / "results" / run / "final.pt" for run in RUNS]


def test_full_run_leaves_summary_plots_and_cross_eval(wf):
    results = wf / "results"
    md = (results / "summary.md").read_text()
    for experiment in ("q101", "q209"):
        assert f"| {experiment} |" in md
    with open(results / "summary.csv") as handle:
        assert [row["experiment"] for row in csv.DictReader(handle)] == ["q101", "q209"]
    milestones = {"q101-s0": {"last", "best"}, "q209-s0": {"last", "best", "step_0000020"}}
    for run, expected in milestones.items():
        assert {p.stem for p in (results / run / "milestones").glob("*.pt")} == expected
    with open(results / "cross_eval.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5 * GRID
    assert {r["protocol"] for r in rows} == {"current", "reference", "denoise"}
    one = json.loads((results / "q209-s0" / "eval" / "step_0000020" / "reference.val_harder.raw.json").read_text())
    assert (one["run"], one["milestone"], one["step"], one["weights"]) == ("q209-s0", "step_0000020", 20, "raw")
    with open(results / "inference_sweep.csv") as handle:
        sweep = list(csv.DictReader(handle))
    assert {(r["run"], r["split"], r["steps_per_level"]) for r in sweep} == {
        (run, split, k) for run in RUNS for split in ("val", "val_harder") for k in ("1", "5", "10", "20")}
    with open(results / "summary.csv") as handle:
        assert "val_task_mse@K=20_mean" in next(csv.DictReader(handle))
    findings = (results / "findings.md").read_text()
    assert "the baseline `q207` was not run" in findings  # this run has q101 and q209 only
    for png in ["ablation", "cross_eval", "inference_sweep", "curves/q101-s0", "curves/q209-s0"]:
        assert (results / "plots" / f"{png}.png").stat().st_size > 1000
    assert (results / "report.html").stat().st_size > 1000
    log = (wf / "logs" / "train" / "q101-s0.log").read_text()
    assert "progress in results/q101-s0/train.log" in log
    assert "step 20/20" in (results / "q101-s0" / "train.log").read_text()  # the trainer's progress lines


def test_dry_run_after_a_full_run_has_nothing_to_do(wf):
    assert planned_jobs(wf, *CONFIG) == {}


def test_editing_comments_and_rule_code_retrains_nothing(wf):
    for path in ["workflow/rules/train.smk", "workflow/scripts/train.py", "config/experiments/core.yaml",
                 "config/scales/tiny.yaml", "config/base.yaml"]:
        with open(wf / path, "a") as handle:
            handle.write("\n# a comment added by a test\n")
    assert planned_jobs(wf, *CONFIG) == {}


def test_summary_target_trains_nothing(wf):
    (wf / "results" / "summary.csv").unlink()
    (wf / "results" / "summary.md").unlink()
    assert planned_jobs(wf, "summary", *CONFIG) == {"summary": 1}
    before = mtimes(trained(wf))
    snakemake(wf, "--cores", "2", "summary", *CONFIG)
    assert (wf / "results" / "summary.md").exists() and mtimes(trained(wf)) == before
    # the same files give the same table: Snakemake sees an unchanged checksum, the plots stay up to date
    assert planned_jobs(wf, *CONFIG) == {}


def test_forcing_one_training_reruns_it_and_its_downstream_only(wf):
    target = "results/q101-s0/final.pt"
    jobs = planned_jobs(wf, "--forcerun", target, *CONFIG)
    assert jobs["train"] == 1 and jobs["export_checkpoint"] == 2 and jobs["cross_eval_checkpoint"] == 2
    assert jobs["inference_sweep"] == 1
    assert {"cross_eval", "inference_sweep_table", "summary", "findings", "report"} <= set(jobs)
    q101, q209 = trained(wf)
    before = mtimes([q209, *(wf / "results" / "q209-s0" / "milestones").glob("*.pt")])
    snakemake(wf, "--cores", "2", "--forcerun", target, *CONFIG)
    assert mtimes(list(before)) == before
    status = json.loads((wf / "results" / "q101-s0" / "status.json").read_text())
    assert status["status"] == "completed" and status["resumed_from"] is None  # retrained from scratch
    assert planned_jobs(wf, *CONFIG) == {}


def test_rerunning_a_failed_job_resumes_it_and_runs_nothing_else(wf):
    run = wf / "results" / "q209-s0"
    (run / "final.pt").unlink()  # as a failed attempt leaves it: no final.pt, status running
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "status": "running"}))
    assert planned_jobs(wf, "results/q209-s0/final.pt", *CONFIG) == {"train": 1}
    snakemake(wf, "--cores", "2", "results/q209-s0/final.pt", *CONFIG)
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "completed" and status["resumed_from"] == 60  # resumed, not retrained


def test_a_config_change_reruns_exactly_the_affected_run(wf):
    snakemake(wf, "--cores", "2", *CONFIG)  # bring everything up to date after the previous test
    core = wf / "config" / "experiments" / "core.yaml"
    text = core.read_text()
    core.write_text(text.replace("tiny: {train: {steps: 60, milestones: [20]}}", "tiny: {train: {steps: 40, milestones: [20]}}"))
    jobs = planned_jobs(wf, *CONFIG)
    assert jobs["train"] == 1 and jobs["export_checkpoint"] == 3  # q209 only, and its 3 milestones
    cfg = yaml.safe_load((wf / "results" / "q209-s0" / "config.yaml").read_text())
    assert cfg["train"]["steps"] == 40
    core.write_text(text)  # undone: the file is rewritten with the content q209 was trained on (same checksum)
    assert planned_jobs(wf, *CONFIG) == {}


def test_adding_an_external_checkpoint_trains_nothing(wf, tmp_path):
    ckpt = tmp_path / "known_good.pt"
    shutil.copyfile(wf / "results" / "q101-s0" / "milestones" / "last.pt", ckpt)
    extra = wf / "external.yaml"
    extra.write_text(yaml.safe_dump({"external_checkpoints": {"known_good": {"path": str(ckpt)}}}))
    jobs = planned_jobs(wf, "--configfile", str(extra), *CONFIG)
    assert jobs["import_checkpoint"] == 1 and jobs["cross_eval_checkpoint"] == 1 and "train" not in jobs
    snakemake(wf, "--cores", "2", "--configfile", str(extra), *CONFIG)
    with open(wf / "results" / "cross_eval.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["run"] == "known_good"]
    assert len(rows) == GRID


def test_one_target_per_experiment(wf):
    shutil.rmtree(wf / "results" / "q209-s0" / "eval")
    assert planned_jobs(wf, "q209", *CONFIG) == {"cross_eval_checkpoint": 3, "q209": 1}
