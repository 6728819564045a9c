"""The dispatch loop end to end with submitit's local executor (no cluster): real jobs, real trainer, seconds each."""

from __future__ import annotations

import json
import operator
import signal
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import pytest
from _dispatch_util import ATTEMPT_COLUMNS, attempts, status, tiny_config

from ired.core.config_io import load_config
from ired.core.errors import ConfigError
from ired.dispatch import DispatchError, DispatchSettings, FailureKind, dispatch, load_settings, run_training
from ired.dispatch.executor import local_alive as _local_alive
from ired.runs.checkpoint import load_checkpoint

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # jobs can run this file's functions
LOCAL = DispatchSettings(cluster="local", runtime=5, poll_s=0.3, poll_max_s=1.0)
DISPATCH_TRAIN = [sys.executable, "-m", "ired", "dispatch-train"]


def test_kill_at_step_resumes_from_checkpoint(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, "kill", faults={"kill_at_step": 25})
    res = run_training(cfg, tmp_path / "run", LOCAL)
    rows = attempts(tmp_path / "run")
    assert [r["failure_kind"] for r in rows] == ["unknown", None]
    assert rows[0]["reason"] == "trainer killed by signal 9" and rows[1]["action"] == "done"
    assert all(set(ATTEMPT_COLUMNS) <= set(r) for r in rows)
    st = status(tmp_path / "run")
    assert st["status"] == "completed" and st["step"] == 40 and st["resumed_from"] == 20
    assert res.result["returncode"] == 0


def test_invalid_config_fails_before_any_job(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, "bad", train={"lrr": 1.0})
    with pytest.raises(ConfigError, match="lrr"):
        run_training(cfg, tmp_path / "run", LOCAL)
    assert not (tmp_path / "run" / "job.json").exists()


def test_trainer_config_error_is_not_retried_and_names_the_cause(tmp_path: Path) -> None:
    """A checkpoint from another config in the run folder: the trainer exits 2; the message carries its line."""
    run_training(tiny_config(tmp_path, "a", train={"steps": 10}), tmp_path / "run", LOCAL)
    other = tiny_config(tmp_path, "a", file="a2", model={"width": 32}, train={"steps": 20})
    with pytest.raises(DispatchError) as err:
        run_training(other, tmp_path / "run", LOCAL)
    assert err.value.kind is FailureKind.config_error
    assert "written with a different config" in str(err.value) and "model.width" in str(err.value)
    assert "no retry" in str(err.value) and "_log.err" in str(err.value)
    rows = attempts(tmp_path / "run")
    assert [r["failure_kind"] for r in rows] == [None, "config_error"] and rows[-1]["final"]


def test_completed_run_is_not_submitted_again(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, "once", train={"steps": 10})
    run_training(cfg, tmp_path / "run", LOCAL)
    res = run_training(cfg, tmp_path / "run", LOCAL)
    assert res.skipped and len(attempts(tmp_path / "run")) == 1


def test_dispatch_a_function(tmp_path: Path) -> None:
    """Jobs run library functions (the cross-evaluation path); a ConfigError raised in the job is not retried."""
    assert dispatch(operator.add, 2, 3, settings=LOCAL, run_dir=tmp_path / "ok") == 5
    missing = tmp_path / "nope.yaml"
    with pytest.raises(DispatchError, match="no such config file") as err:
        dispatch(load_config, str(missing), settings=LOCAL, run_dir=tmp_path / "bad")
    assert err.value.kind is FailureKind.config_error
    assert str(missing) in str(err.value)
    assert len(attempts(tmp_path / "bad")) == 1


def test_killed_head_reattaches_without_a_duplicate(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, "long",
                      train={"steps": 1500, "log_every": 500, "eval_every": 1500, "checkpoint_every": 500})
    cmd = [sys.executable, "-m", "ired", "dispatch-train", str(cfg),
           "--out", str(tmp_path / "run"), "--cluster", "local", "--runtime", "5"]
    head = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    job_file = tmp_path / "run" / "job.json"
    deadline = time.time() + 60
    while time.time() < deadline and not (job_file.exists() and json.loads(job_file.read_text())["job_id"]):
        time.sleep(0.2)
    job_id = json.loads(job_file.read_text())["job_id"]
    head.send_signal(signal.SIGKILL)
    head.wait()
    assert Path(f"/proc/{job_id}").exists(), "the job should outlive its head"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "re-attaching to attempt 1" in done.stderr
    rows = attempts(tmp_path / "run")
    assert [r["job_id"] for r in rows] == [job_id]
    assert status(tmp_path / "run")["status"] == "completed"
    # the job's folder holds exactly one submission
    assert len(list((tmp_path / "run" / "dispatch").glob("*_submitted.pkl"))) == 1


def test_settings_file_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "dispatch.yaml"
    path.write_text("cluster: slurm\nretry: {max_attempts: 3, host_oom_ladder: [host_memory]}\n")
    s = load_settings(path, resources={"slurm_partition": "debug", "mem_mb": 2048}, mem_mb=1536,
                      retry={"max_attempts": 5})
    assert (s.cluster, s.slurm_partition, s.mem_gb, s.retry.max_attempts, s.retry.host_oom_ladder) == (
        "slurm", "debug", 1.5, 5, ["host_memory"])
    path.write_text("clustr: slurm\n")
    with pytest.raises(ConfigError, match="clustr"):
        load_settings(path)


def _nap(seconds: float) -> float:
    time.sleep(seconds)
    return time.time()


def test_local_waiting_is_prompt_without_any_settings(tmp_path: Path) -> None:
    """A user without a profile's dispatch.yaml is not slowed: the head wakes the moment its local job ends."""
    local, slurm = DispatchSettings(cluster="local"), DispatchSettings(cluster="slurm")
    assert (local.first_poll_s, local.max_poll_s, slurm.first_poll_s, slurm.max_poll_s) == (0.2, 1.0, 1.0, 30.0)
    ended = dispatch(_nap, 3.0, settings=local, run_dir=tmp_path / "nap")
    assert time.time() - ended < 0.75  # polling from 1 s (the old default) noticed this job ~1.75 s late


def test_a_finished_run_is_collected_and_only_a_force_trains_it_afresh(tmp_path: Path) -> None:
    """Done is done: a completed run that is run again (its final.pt deleted, as Snakemake does before rerunning
    a job) is collected without a job; `force` (the pipeline's --forcerun) deletes it and trains from step 0."""
    cfg = tiny_config(tmp_path, "again", train={"steps": 10})
    run_training(cfg, tmp_path / "run", LOCAL)
    (tmp_path / "run" / "final.pt").unlink()
    res = run_training(cfg, tmp_path / "run", LOCAL)
    assert res.skipped and load_checkpoint(tmp_path / "run" / "final.pt")["step"] == 10
    assert [(r["attempt"], r["action"]) for r in attempts(tmp_path / "run")] == [(1, "done")]
    res = run_training(cfg, tmp_path / "run", LOCAL, force=True)
    assert res.restarted and not res.skipped
    assert [(r["attempt"], r["action"]) for r in attempts(tmp_path / "run")] == [(1, "done"), (2, "done")]
    st = status(tmp_path / "run")
    assert (st["status"], st["step"], st["resumed_from"]) == ("completed", 10, None)


def test_a_changed_config_trains_afresh_when_asked(tmp_path: Path) -> None:
    run_training(tiny_config(tmp_path, "a", train={"steps": 10}), tmp_path / "run", LOCAL)
    other = tiny_config(tmp_path, "a", file="a2", model={"width": 32}, train={"steps": 20})
    res = run_training(other, tmp_path / "run", LOCAL, retrain_changed=True)
    assert res.restarted and status(tmp_path / "run")["step"] == 20


def test_ctrl_c_on_the_head_cancels_its_job_and_the_next_command_resumes(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, "stop", train={"steps": 1500, "log_every": 500, "eval_every": 1500,
                                               "checkpoint_every": 100})
    run = tmp_path / "run"
    head = subprocess.Popen([*DISPATCH_TRAIN, str(cfg), "--out", str(run), "--cluster", "local"],
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline and not (run / "checkpoints" / "step_0000100.pt").exists():
        time.sleep(0.1)
    job_id = json.loads((run / "job.json").read_text())["job_id"]
    head.send_signal(signal.SIGINT)  # the head only: its job must be cancelled by the head itself
    _, err = head.communicate(timeout=120)
    assert head.returncode != 0 and f"cancelled local job {job_id} (attempt 1)" in err, err
    assert not _local_alive(job_id)
    assert [(r["attempt"], r["failure_kind"]) for r in attempts(run)] == [(1, "interrupted")]
    stopped = max(int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("step_*.pt"))
    res = run_training(cfg, run, LOCAL)
    st = status(run)
    assert st["status"] == "completed" and 100 <= st["resumed_from"] <= stopped and not res.skipped
    assert [(r["attempt"], r["action"]) for r in attempts(run)][1:] == [(2, "done")]


def test_rerun_collects_a_job_that_finished_while_no_head_watched(tmp_path: Path) -> None:
    """The head dies, its job completes alone, Snakemake deletes final.pt before rerunning the incomplete job:
    the rerun collects that attempt (no new job, no fresh start) and restores final.pt from the last checkpoint."""
    cfg = tiny_config(tmp_path, "orphan",
                      train={"steps": 100, "log_every": 50, "eval_every": 100, "checkpoint_every": 50})
    run = tmp_path / "run"
    head = subprocess.Popen([*DISPATCH_TRAIN, str(cfg), "--out", str(run), "--cluster", "local"],
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not (
        (run / "job.json").exists() and json.loads((run / "job.json").read_text())["job_id"]
    ):
        time.sleep(0.1)
    job_id = json.loads((run / "job.json").read_text())["job_id"]
    head.send_signal(signal.SIGKILL)
    head.wait()
    while time.time() < deadline and (_local_alive(job_id) or status(run).get("status") != "completed"):
        time.sleep(0.2)
    assert status(run)["status"] == "completed" and not (run / "attempts.jsonl").exists()
    (run / "final.pt").unlink()  # what Snakemake does to an incomplete job's output before running it again
    res = run_training(cfg, run, LOCAL, keep_diverged=True)
    assert res.reattached and not res.restarted
    assert [(r["job_id"], r["action"]) for r in attempts(run)] == [(job_id, "done")]
    assert load_checkpoint(run / "final.pt")["step"] == 100
    assert len(list((run / "dispatch").glob("*_submitted.pkl"))) == 1


def test_diverged_run_is_kept_as_a_result_when_asked(tmp_path: Path) -> None:
    """keep_diverged (the pipeline): the newest checkpoint before the NaN becomes final.pt; no retry either way."""
    # a contrastive weight too large for float32 from step 12 on: finite until then, checkpoint at step 10
    cfg = tiny_config(tmp_path, "blowup", objective={"name": "cd", "weight": 1e38, "start_step": 12})
    res = run_training(cfg, tmp_path / "run", LOCAL, keep_diverged=True)
    assert res.diverged and status(tmp_path / "run")["diverged_at"] == 13
    assert load_checkpoint(tmp_path / "run" / "final.pt")["step"] == 10
    rows = attempts(tmp_path / "run")
    assert [(r["failure_kind"], r["final"]) for r in rows] == [("diverged", True)]
    early = tiny_config(tmp_path, "early", train={"lr": 1000.0})  # NaN at step 2, before any periodic checkpoint
    res = run_training(early, tmp_path / "early", LOCAL, keep_diverged=True)
    assert res.diverged and status(tmp_path / "early")["diverged_at"] == 2
    assert load_checkpoint(tmp_path / "early" / "final.pt")["step"] == 0  # the initial state is its result
