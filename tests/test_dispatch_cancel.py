"""`ired cancel` with local jobs (no cluster): only the selected runs' jobs stop, each attempt is marked interrupted,
whether its head still waits (the head logs it) or was killed (the command logs it); job names and selection."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _dispatch_util import attempts, tiny_config

from ired.core.errors import ConfigError
from ired.dispatch.executor import local_alive as _local_alive
from ired.dispatch.naming import attempt_tag, job_label, job_name
from ired.dispatch.runs import find_runs, results_folder, select
from ired.dispatch.settings import DispatchSettings
from ired.runs.paths import experiment_of

IRED = [sys.executable, "-m", "ired"]
LONG = {"steps": 100000, "log_every": 100, "eval_every": 100000, "checkpoint_every": 100}


def test_job_names_select_a_run_and_the_attempt_is_its_tag(tmp_path: Path) -> None:
    run = tmp_path / "results" / "tiny" / "q101-s0"
    assert job_label(run) == "tiny-q101-s0"
    assert job_label(run / "dispatch" / "eval-last") == "tiny-q101-s0.eval-last"
    assert job_name(DispatchSettings(), run) == "ired-tiny-q101-s0"
    assert attempt_tag(run, 1) != attempt_tag(run, 2) and attempt_tag(run, 3).endswith(":a3")
    assert attempt_tag(run, 1) != attempt_tag(tmp_path / "other" / "tiny" / "q101-s0", 1)  # another checkout


def test_selection_by_run_and_experiment_globs(tmp_path: Path) -> None:
    results = tmp_path / "results"
    for name in ("q101-s0", "q101-s1", "lr_sweep_a-s0", "lr_sweep_b-s2"):
        (results / "tiny" / name).mkdir(parents=True)
        (results / "tiny" / name / "config.yaml").write_text("{}\n")
    (results / "tiny" / "plots").mkdir()  # not a run
    (results / ".last_scale").write_text("tiny\n")
    assert results_folder(root=results) == results / "tiny"
    runs = find_runs(results / "tiny")
    assert [r.name for r in runs] == ["lr_sweep_a-s0", "lr_sweep_b-s2", "q101-s0", "q101-s1"]
    assert experiment_of("lr_sweep_b-s2") == "lr_sweep_b" and experiment_of("odd") == "odd"
    assert [r.name for r in select(runs, experiments=["lr_sweep*"])] == ["lr_sweep_a-s0", "lr_sweep_b-s2"]
    assert [r.name for r in select(runs, ["*-s0"], ["q101"])] == ["q101-s0"]
    with pytest.raises(ConfigError, match="paper: no such results folder.*tiny"):
        results_folder(scale="paper", root=results)


def _start_head(cfg: Path, run: Path) -> subprocess.Popen:
    return subprocess.Popen([*IRED, "dispatch-train", str(cfg), "--out", str(run), "--cluster", "local"],
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _training(run: Path, deadline: float) -> str:
    """The local job id once the trainer has written its first periodic checkpoint."""
    while time.time() < deadline and not (run / "checkpoints" / "step_0000100.pt").exists():
        time.sleep(0.1)
    assert (run / "checkpoints" / "step_0000100.pt").exists(), "the run never reached its first checkpoint"
    return json.loads((run / "job.json").read_text())["job_id"]


def test_cancel_stops_only_the_selected_runs_and_marks_them_interrupted(tmp_path: Path) -> None:
    results = tmp_path / "results" / "tiny"
    runs = {name: results / name for name in ("keep-s0", "stop-s0")}
    heads = {name: _start_head(tiny_config(tmp_path, name, train=LONG), run) for name, run in runs.items()}
    try:
        deadline = time.time() + 180
        jobs = {name: _training(run, deadline) for name, run in runs.items()}
        status = subprocess.run([*IRED, "status", "--results", str(results)], capture_output=True, text=True)
        lines = {line.split()[0]: line.split() for line in status.stdout.splitlines()[1:-1]}
        assert [lines[n][1] for n in runs] == ["running", "running"], status.stdout  # while the heads wait
        assert (lines["stop-s0"][5:7] == ["1", os.uname().nodename.split(".")[0]]
                and lines["stop-s0"][8] == jobs["stop-s0"])
        out = subprocess.run([*IRED, "cancel", "-e", "stop", "--results", str(results)], capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert f"stop-s0 training: cancelled local job {jobs['stop-s0']} (attempt 1); marked interrupted" in out.stdout
        assert "keep-s0" not in out.stdout
        _, err = heads["stop-s0"].communicate(timeout=60)
        assert heads["stop-s0"].returncode == 130 and "stopped by ired cancel" in err, err
        assert not _local_alive(jobs["stop-s0"])
        rows = attempts(runs["stop-s0"])
        assert [(r["attempt"], r["failure_kind"], r["reason"], r["final"]) for r in rows] == [
            (1, "interrupted", "stopped by ired cancel", False)]
        assert not (runs["stop-s0"] / "cancel.json").exists()
        assert heads["keep-s0"].poll() is None and _local_alive(jobs["keep-s0"])  # the other run trains on
        status = subprocess.run([*IRED, "status", "--results", str(results), "-s", "interrupted"], capture_output=True,
                                text=True)
        assert [line.split()[:2] for line in status.stdout.splitlines()[1:-1]] == [["stop-s0", "interrupted"]]
        # a head killed outright cannot log anything: the command cancels its job and logs the attempt itself
        heads["keep-s0"].send_signal(signal.SIGKILL)  # the head only (its job is in the same process group)
        heads["keep-s0"].wait()
        assert _local_alive(jobs["keep-s0"]), "a local job outlives its killed head"
        out = subprocess.run([*IRED, "cancel", "keep-*", "--results", str(results)], capture_output=True, text=True,
                             timeout=120)
        assert f"keep-s0 training: cancelled local job {jobs['keep-s0']} (attempt 1); marked interrupted" in out.stdout
        deadline = time.time() + 10
        while _local_alive(jobs["keep-s0"]) and time.time() < deadline:
            time.sleep(0.1)
        assert not _local_alive(jobs["keep-s0"])
        assert [(r["failure_kind"], r["reason"]) for r in attempts(runs["keep-s0"])] == [
            ("interrupted", "stopped by ired cancel")]
        again = subprocess.run([*IRED, "cancel", "--results", str(results)], capture_output=True, text=True)
        assert "no job in flight among the 2 selected run(s)" in again.stdout
    finally:
        for head in heads.values():
            if head.poll() is None:
                os.killpg(head.pid, signal.SIGKILL)
                head.wait()
        subprocess.run([*IRED, "cancel", "--results", str(results), "--wait", "5"], capture_output=True)
