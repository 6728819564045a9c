"""The results folder's path model (ired.runs.paths): one layout for the rules, the dispatcher, `ired status`,
`ired logs` and reporting. Torch-free (tests/test_layers.py checks the layer imports no torch)."""

from __future__ import annotations

from pathlib import Path

from ired.dispatch.runs import find_runs, results_folder
from ired.runs import paths
from ired.runs.logs import run_logs
from ired.runs.paths import RunPaths, ScaleFolder, is_eval_record, owner_run, run_of_evaluation, scale_folder


def test_a_run_folder_and_what_is_in_it() -> None:
    run = scale_folder("tiny").run("q101-s0")
    assert run == RunPaths(Path("results/tiny/q101-s0"))
    assert (run.name, run.scale, run.scale_folder) == ("q101-s0", "tiny", ScaleFolder(Path("results/tiny")))
    assert str(run.final) == "results/tiny/q101-s0/final.pt"
    assert str(run.config) == "results/tiny/q101-s0/config.yaml"
    assert str(run.checkpoints) == "results/tiny/q101-s0/checkpoints"
    assert str(run.metrics) == "results/tiny/q101-s0/metrics.jsonl"
    assert str(run.status) == "results/tiny/q101-s0/status.json"
    assert str(run.dispatch) == "results/tiny/q101-s0/dispatch"
    assert str(run.eval_record("all")) == "results/tiny/q101-s0/dispatch/eval-all"
    assert str(run.evaluation("last", "p", "val", "ema")) == "results/tiny/q101-s0/eval/last/p.val.ema.json"
    assert str(run.pipeline_log("train")) == "logs/tiny/train/q101-s0.log"
    assert str(run.scale_folder.broker) == "results/tiny/.dispatch"


def test_a_rule_pattern_keeps_its_wildcard() -> None:
    """The rules write f"{RUN.final}" for results/<scale>/{run}/final.pt: the wildcard must come out untouched."""
    pattern = scale_folder("laptop").run("{run}")
    assert f"{pattern.final}" == "results/laptop/{run}/final.pt"
    assert f"{pattern.pipeline_log('evaluate')}" == "logs/laptop/evaluate/{run}.log"


def test_the_run_of_a_record_folder_and_of_an_evaluation(tmp_path: Path) -> None:
    run = ScaleFolder(tmp_path / "results" / "tiny").run("q101-s0")
    record = run.eval_record("last")
    assert not is_eval_record(run.folder) and is_eval_record(record)
    assert owner_run(record) == run and owner_run(run.folder) == run
    assert owner_run(record).scale_folder.broker == tmp_path / "results" / "tiny" / ".dispatch"
    assert run_of_evaluation(run.evaluation("step_0000010", "p", "val", "raw")) == run
    assert ScaleFolder(tmp_path / "results" / "tiny").logs == tmp_path / "logs" / "tiny"


def test_eval_records_are_the_folders_that_exist(tmp_path: Path) -> None:
    run = RunPaths(tmp_path / "q101-s0")
    assert run.eval_records() == []
    for job in ("last", "all"):
        run.eval_record(job).mkdir(parents=True)
    (run.dispatch / "eval-note.txt").write_text("not a record folder")
    assert run.eval_records() == [run.eval_record("all"), run.eval_record("last")]


def test_the_scale_of_a_command(tmp_path: Path) -> None:
    """The default scale is the one last run here, else paths.DEFAULT_SCALE; the pipeline's onstart records it."""
    root = tmp_path / "results"
    assert paths.last_scale(root) is None
    assert paths.default_scale(root) == paths.DEFAULT_SCALE == "laptop"
    paths.remember_scale("tiny", root)
    assert (root / ".last_scale").read_text() == "tiny\n"
    assert paths.last_scale(root) == paths.default_scale(root) == "tiny"
    (root / "tiny").mkdir()
    assert results_folder(root=root) == root / "tiny"  # `ired status` without --scale


def test_status_and_logs_find_runs_by_the_model(tmp_path: Path) -> None:
    scale = ScaleFolder(tmp_path / "results" / "tiny")
    made = scale.run("q101-s0")
    made.folder.mkdir(parents=True)
    made.config.write_text("train: {steps: 4}\n")
    (scale.folder / "plots").mkdir()  # not a run: no config, status, job or resolved config
    scale.broker.mkdir()
    assert [r.name for r in find_runs(scale.folder)] == ["q101-s0"]
    made.train_log.write_text("step 1\n")
    made.pipeline_log("train").parent.mkdir(parents=True)
    made.pipeline_log("train").write_text("dispatched\n")
    assert [(log.what, log.path) for log in run_logs(made.folder)] == [
        ("trainer", made.train_log), ("pipeline train", made.pipeline_log("train"))]
