"""The real workflow at the tiny scale, through the Snakemake CLI: a full run, then the everyday operations.

One private copy of the workflow runs `all_ablations` for three experiments, one seed each (q101; q209 whose config
names a step milestone; `blowup`, whose lr makes it diverge at step 2, before its first periodic checkpoint), then
each test checks one promise of docs/PIPELINE.md on that folder (its "What is never lost" section included). The
tests share the folder and run in file order.
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

CONFIG = ["--config", "scale=tiny", "experiments=[q101,q209,blowup]", "max_seeds=1"]
RUNS = ("q101-s0", "q209-s0", "blowup-s0")
GRID = 3 * 3 * 2  # protocols x splits x weights
BLOWUP = """
blowup:
  extends: q101
  description: q101 with lr 1e6, which diverges at step 2, before any periodic checkpoint.
  set: {train: {lr: 1000000.0}}
"""


@pytest.fixture(scope="module")
def wf(tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"))
    (workdir / "config" / "experiments" / "zz_blowup.yaml").write_text(BLOWUP)
    snakemake(workdir, "--cores", "2", *CONFIG)
    return workdir


def out(wf: Path) -> Path:
    return wf / "results" / "tiny"


def trained(wf: Path) -> list[Path]:
    return [out(wf) / run / "final.pt" for run in RUNS]


def test_full_run_leaves_summary_plots_and_cross_eval(wf):
    results = out(wf)
    md = (results / "summary.md").read_text()
    for experiment in ("q101", "q209", "blowup"):
        assert f"| {experiment} |" in md
    with open(results / "summary.csv") as handle:
        assert [row["experiment"] for row in csv.DictReader(handle)] == ["q101", "q209", "blowup"]
    milestones = {"q101-s0": {"last", "best"}, "q209-s0": {"last", "best", "step_0000020"},
                  "blowup-s0": {"last", "best"}}
    for run, expected in milestones.items():
        assert {p.stem for p in (results / run / "milestones").glob("*.pt")} == expected
    with open(results / "cross_eval.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 7 * GRID
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
    for png in ["ablation", "cross_eval", "inference_sweep", "curves/q101-s0", "curves/q209-s0", "curves/blowup-s0"]:
        assert (results / "plots" / f"{png}.png").stat().st_size > 1000
    assert (results / "report.html").stat().st_size > 1000
    log = (wf / "logs" / "tiny" / "train" / "q101-s0.log").read_text()
    assert "progress in results/tiny/q101-s0/train.log" in log
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
    (out(wf) / "summary.csv").unlink()
    (out(wf) / "summary.md").unlink()
    (out(wf) / "plots" / "ablation.png").unlink()
    (out(wf) / "plots" / "cross_eval.png").unlink()
    jobs = planned_jobs(wf, "summary", *CONFIG)
    assert jobs["summary_table"] == 1 and jobs["plot_ablation"] == 1 and jobs["plot_cross_eval"] == 1
    assert set(jobs) <= {"summary_table", "summary", "findings", "plot_ablation", "plot_cross_eval",
                         "plot_inference_sweep", "plot_curves", "plot_sweeps"}, jobs  # curves: runs.csv
    before = mtimes(trained(wf))
    snakemake(wf, "--cores", "2", "summary", *CONFIG)
    assert (out(wf) / "summary.md").exists() and mtimes(trained(wf)) == before
    for png in ("ablation.png", "cross_eval.png"):
        assert (out(wf) / "plots" / png).stat().st_size > 10_000, "plots regenerated by the summary target"
    # the same files give the same table: Snakemake sees an unchanged checksum, the plots stay up to date
    assert planned_jobs(wf, *CONFIG) == {}


def test_forcing_one_training_reruns_it_and_its_downstream_only(wf):
    target = "results/tiny/q101-s0/final.pt"
    jobs = planned_jobs(wf, "--forcerun", target, *CONFIG)
    assert jobs["train"] == 1 and jobs["evaluate"] == 1  # one job: its exports, cross-evaluations, inference sweep
    assert {"cross_eval", "inference_sweep_table", "summary_table", "findings", "report"} <= set(jobs)
    q101, q209, _ = trained(wf)
    before = mtimes([q209, *(out(wf) / "q209-s0" / "milestones").glob("*.pt")])
    snakemake(wf, "--cores", "2", "--forcerun", target, *CONFIG)
    assert mtimes(list(before)) == before
    status = json.loads((out(wf) / "q101-s0" / "status.json").read_text())
    assert status["status"] == "completed" and status["resumed_from"] is None  # retrained from scratch
    assert planned_jobs(wf, *CONFIG) == {}


def test_rerunning_a_failed_job_resumes_it_and_runs_nothing_else(wf):
    run = out(wf) / "q209-s0"
    (run / "final.pt").unlink()  # as a failed attempt leaves it: no final.pt, status running
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "status": "running"}))
    assert planned_jobs(wf, "results/tiny/q209-s0/final.pt", *CONFIG) == {"train": 1}
    snakemake(wf, "--cores", "2", "results/tiny/q209-s0/final.pt", *CONFIG)
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "completed" and status["resumed_from"] == 60  # resumed, not retrained


def test_a_config_change_reruns_exactly_the_affected_run(wf):
    # (the previous test left q209's evaluation and the tables out of date: q209's own jobs are planned either way)
    core = wf / "config" / "experiments" / "core.yaml"
    text = core.read_text()
    core.write_text(text.replace("tiny: {train: {steps: 60, milestones: [20]}}",
                                 "tiny: {train: {steps: 40, milestones: [20]}}"))
    config_file = out(wf) / "q209-s0" / "config.yaml"
    before = mtimes([config_file])
    jobs = planned_jobs(wf, *CONFIG)
    assert jobs["resolve"] == 1 and jobs["train"] == 1 and jobs["evaluate"] == 1  # q209 only
    assert mtimes([config_file]) == before  # planning wrote nothing: the file still holds the trained config
    assert yaml.safe_load(config_file.read_text())["train"]["steps"] == 60
    q101 = mtimes([out(wf) / "q101-s0" / "final.pt", *(out(wf) / "q101-s0" / "checkpoints").glob("*.pt")])
    snakemake(wf, "--cores", "2", "results/tiny/q209-s0/final.pt", *CONFIG)  # the config is the run's identity
    status = json.loads((out(wf) / "q209-s0" / "status.json").read_text())
    assert (status["status"], status["step"], status["resumed_from"]) == ("completed", 40, None)
    assert "its config changed (train.steps)" in (wf / "logs" / "tiny" / "train" / "q209-s0.log").read_text()
    core.write_text(text)  # undone: q209 is trained again with its old config, nothing else
    assert planned_jobs(wf, "results/tiny/q209-s0/final.pt", *CONFIG) == {"resolve": 1, "train": 1}
    snakemake(wf, "--cores", "2", *CONFIG)
    assert planned_jobs(wf, *CONFIG) == {} and mtimes(list(q101)) == q101


def test_adding_an_external_checkpoint_trains_nothing(wf, tmp_path):
    ckpt = tmp_path / "known_good.pt"
    shutil.copyfile(out(wf) / "q101-s0" / "milestones" / "last.pt", ckpt)
    extra = wf / "external.yaml"
    extra.write_text(yaml.safe_dump({"external_checkpoints": {"known_good": {"path": str(ckpt)}}}))
    jobs = planned_jobs(wf, "--configfile", str(extra), *CONFIG)
    assert jobs["evaluate_external"] == 1 and "train" not in jobs and "evaluate" not in jobs
    snakemake(wf, "--cores", "2", "--configfile", str(extra), *CONFIG)
    with open(out(wf) / "cross_eval.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["run"] == "known_good"]
    assert len(rows) == GRID
    # without the extra config file the tables lose those rows: rebuild them (nothing trained), so that the tests
    # below start from a finished pipeline
    before = mtimes(trained(wf))
    snakemake(wf, "--cores", "2", *CONFIG)
    assert planned_jobs(wf, *CONFIG) == {} and mtimes(trained(wf)) == before


def test_one_target_per_experiment(wf, tmp_path):
    evaluations = out(wf) / "q209-s0" / "eval"
    shutil.move(evaluations, tmp_path / "eval")  # put back afterwards: the tests below expect a finished pipeline
    try:
        assert planned_jobs(wf, "q209", *CONFIG) == {"evaluate": 1, "q209": 1}
    finally:
        shutil.move(tmp_path / "eval", evaluations)


# ------------------------------------------------------------------------------------------------------
# What is never lost (docs/PIPELINE.md): identity and memory, read-only planning, done is done, failures isolated
# ------------------------------------------------------------------------------------------------------


def snapshot(wf: Path) -> dict[Path, int]:
    """mtime of every file under results/ and .snakemake/locks/ (what planning must leave alone)."""
    files = [p for root in ("results", ".snakemake/locks") for p in (wf / root).rglob("*") if p.is_file()]
    return mtimes(files)


def test_an_early_divergence_is_a_result(wf):
    run = out(wf) / "blowup-s0"
    status = json.loads((run / "status.json").read_text())
    assert (status["status"], status["diverged_at"]) == ("diverged", 2)
    assert [(r["failure_kind"], r["final"]) for r in
            map(json.loads, (run / "attempts.jsonl").read_text().splitlines())] == [("diverged", True)]
    assert "exporting its result" in (wf / "logs" / "tiny" / "evaluate" / "blowup-s0.log").read_text()
    with open(out(wf) / "runs.csv") as handle:
        row = next(r for r in csv.DictReader(handle) if r["run"] == "blowup-s0")
    assert row["status"] == "diverged"


def test_planning_writes_and_deletes_nothing(wf):
    before = snapshot(wf)
    lock = wf / ".snakemake" / "locks" / "0.output.lock"  # as a head that is still running holds it
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("results/tiny/q101-s0/final.pt\n")
    before[lock] = lock.stat().st_mtime_ns
    core = wf / "config" / "experiments" / "core.yaml"
    text = core.read_text()
    core.write_text(text.replace("tiny: {train: {steps: 60,", "tiny: {train: {steps: 40,"))  # q209 would retrain
    assert planned_jobs(wf, *CONFIG)["train"] == 1
    assert snakemake(wf, "--lint", *CONFIG, check=False).returncode == 0
    refused = snakemake(wf, "--cores", "2", "--forcerun", "results/tiny/q101-s0/final.pt", *CONFIG, check=False)
    assert refused.returncode != 0 and "cannot be locked" in refused.stderr + refused.stdout
    (wf / "config" / "experiments" / "zz_typo.yaml").write_text(
        "typo:\n  extends: q101\n  description: a typo.\n  set: {train: {lrr: 1}}\n")
    broken = snakemake(wf, "--cores", "2", "--config", "scale=tiny", "experiments=[q101,typo]", check=False)
    assert broken.returncode != 0 and "zz_typo.yaml" in broken.stderr + broken.stdout and "lrr" in broken.stderr
    (wf / "config" / "experiments" / "zz_typo.yaml").unlink()
    core.write_text(text)
    assert snapshot(wf) == before
    snakemake(wf, "--unlock", *CONFIG)  # the documented way to clear a dead head's locks
    assert not lock.exists() and planned_jobs(wf, *CONFIG) == {}


def test_the_scale_is_remembered_and_switching_back_retrains_nothing(wf):
    proc = snakemake(wf, "--dry-run", "--config", "experiments=[q101,q209,blowup]", "max_seeds=1")
    assert "ired: scale tiny (the scale last run in this folder" in proc.stderr
    assert "Nothing to be done" in proc.stdout + proc.stderr
    shutil.copyfile(wf / "config" / "scales" / "tiny.yaml", wf / "config" / "scales" / "mini.yaml")
    tiny = mtimes([p for p in out(wf).rglob("*") if p.is_file()])
    snakemake(wf, "--cores", "2", "results/mini/q101-s0/final.pt", "--config", "scale=mini", "experiments=[q101]")
    assert (wf / "results" / "mini" / "q101-s0" / "final.pt").exists()
    proc = snakemake(wf, "--dry-run", "results/mini/q101-s0/final.pt", "--config", "experiments=[q101]")
    assert "ired: scale mini (the scale last run in this folder" in proc.stderr
    assert "Nothing to be done" in proc.stdout + proc.stderr
    assert planned_jobs(wf, *CONFIG) == {}  # back to tiny: nothing to do, nothing touched
    assert mtimes(list(tiny)) == tiny


def test_rerunning_a_finished_job_after_an_interrupted_head_collects_it(wf):
    """Snakemake deletes an incomplete job's final.pt before running it again: the run is collected, not retrained."""
    run = out(wf) / "q101-s0"
    kept = mtimes([*(run / "checkpoints").glob("*.pt"), run / "metrics.jsonl", run / "attempts.jsonl"])
    (run / "final.pt").unlink()
    snakemake(wf, "--cores", "2", "results/tiny/q101-s0/final.pt", *CONFIG)
    assert mtimes(list(kept)) == kept  # no attempt appended, no checkpoint rewritten, no metric row
    log = (wf / "logs" / "tiny" / "train" / "q101-s0.log").read_text()
    assert "already completed" in log and "nothing trained" in log
    assert "submitted as local job" not in log.split("training results/tiny/q101-s0/config.yaml")[-1]


def test_one_failed_run_does_not_stop_the_others(wf):
    """keep-going: a run that fails (here: the trainer exits 2 on this host) ends with its failure class and the
    command that reruns it; every other run finished, and the summary lists the failed run as a row."""
    import socket

    host = socket.gethostname().split(".")[0]
    (wf / "config" / "experiments" / "zz_failing.yaml").write_text(
        f"failing:\n  extends: q101\n  description: fails on this host.\n"
        f"  set: {{faults: {{exit_on_node: {host}, exit_code: 2}}}}\n")
    selection = ["--config", "scale=tiny", "experiments=[failing,q101]", "max_seeds=1"]
    proc = snakemake(wf, "--cores", "2", *selection, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "failing-s0: train failed: config_error" in text, text[-3000:]
    assert "rerun: snakemake results/tiny/failing-s0/final.pt --config scale=tiny" in text
    log = text.split("failing-s0: train failed: config_error")[1].split("    log: ")[1].split("\n")[0]
    assert "failing-s0" in log and Path(wf, log).is_file(), log  # the failed job's log, named in the report
    assert (out(wf) / "q101-s0" / "inference_sweep.json").exists()
    with open(out(wf) / "runs.csv") as handle:
        rows = {r["run"]: r["status"] for r in csv.DictReader(handle)}
    assert rows["failing-s0"].startswith("failed") and rows["q101-s0"] != "failed", rows
