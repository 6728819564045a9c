"""The dispatcher against a real Slurm (``.ci/slurm.sh`` starts a 2-node one on loopback; no mocks).

Skipped, with the reason, when no cluster answers; ``IRED_REQUIRE_SLURM=1`` (set by CI) turns the skip into a
failure so CI cannot pass without running them. Jobs are tiny (n=3, width 16, tens of steps): seconds each.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import pytest
from _dispatch_util import ATTEMPT_COLUMNS, attempts, slurm_nodes, status, tiny_config

from ired.core.config_io import load_config, read_yaml
from ired.dispatch import DispatchError, DispatchSettings, FailureKind, dispatch, run_training
from ired.dispatch.sacct import job_row, query

pytestmark = pytest.mark.slurm
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # jobs can run this file's functions

SLURM = DispatchSettings(cluster="slurm", mem_mb=1024, runtime=5, poll_s=0.5, poll_max_s=2.0)


@pytest.fixture(scope="module")
def nodes() -> list[str]:
    return slurm_nodes()


def _sacct(job_id: str):
    row = job_row(query(job_id), job_id)
    assert row is not None, f"sacct does not know job {job_id}"
    return row


def test_exit_120_reruns_on_another_node_with_the_node_excluded(tmp_path: Path, nodes: list[str]) -> None:
    # the run exits 120 on whichever node it first starts on (the other tests' jobs share the cluster, so which
    # node that is is the scheduler's choice), and only there
    cfg = tiny_config(tmp_path, "node120", faults={"exit_on_first_node": True})
    run = tmp_path / "run"
    run_training(cfg, run, SLURM)
    rows = attempts(run)
    assert len(rows) == 2, rows
    first, second = rows
    bad = first["node"]
    assert bad in nodes, rows
    assert (first["node"], first["state"], first["exit_code"], first["failure_kind"]) == (
        bad, "FAILED", "120:0", "node_failure")
    assert first["action"].startswith(f"resubmit excluding {bad}")
    assert second["failure_kind"] is None and second["action"] == "done" and second["exclude"] == [bad]
    # what the scheduler itself recorded
    job2 = _sacct(second["job_id"])
    assert f"--exclude={bad}" in job2.submit_line
    assert job2.state == "COMPLETED" and job2.nodes and bad not in job2.nodes
    assert _sacct(first["job_id"]).nodes == (bad,)
    assert status(run)["status"] == "completed"
    assert all(set(ATTEMPT_COLUMNS) <= set(r) for r in rows)


def test_device_oom_halves_micro_batch_keeping_the_effective_batch(tmp_path: Path, nodes: list[str]) -> None:
    cfg = tiny_config(tmp_path, "oom", faults={"oom_above_micro_batch": 32})  # batch 64, one micro-batch of 64
    run_training(cfg, tmp_path / "run", SLURM)
    rows = attempts(tmp_path / "run")
    assert [(r["failure_kind"], r["micro_batch"], r["accumulation"]) for r in rows] == [
        ("oom_device", 64, 1),
        (None, 32, 2),
    ]
    assert "effective batch 64 unchanged" in rows[0]["action"]
    assert "out of memory" in rows[0]["reason"]
    kept = json.loads((tmp_path / "run" / "dispatch" / "ladder.json").read_text())  # the next invocation's start
    assert (kept["micro_batch"], kept["mem_gb"]) == (32, SLURM.mem_gb)
    done = read_yaml(tmp_path / "run" / "resolved_config.yaml")["train"]
    assert (done["batch_size"], done["micro_batch"]) == (64, 32)
    assert status(tmp_path / "run")["status"] == "completed"


def test_kill_at_step_resumes_from_the_checkpoint(tmp_path: Path, nodes: list[str]) -> None:
    cfg = tiny_config(tmp_path, "kill", faults={"kill_at_step": 25})  # checkpoints every 10 steps
    run_training(cfg, tmp_path / "run", SLURM)
    rows = attempts(tmp_path / "run")
    assert [r["failure_kind"] for r in rows] == ["unknown", None]
    assert rows[0]["reason"] == "trainer killed by signal 9" and rows[0]["state"] == "FAILED"
    st = status(tmp_path / "run")
    assert (st["status"], st["step"], st["resumed_from"]) == ("completed", 40, 20)
    assert "resumed from" in (tmp_path / "run" / "train.log").read_text()


def test_diverged_run_is_not_retried_and_says_why(tmp_path: Path, nodes: list[str]) -> None:
    cfg = tiny_config(tmp_path, "nan", train={"lr": 1000.0})
    with pytest.raises(DispatchError) as err:
        run_training(cfg, tmp_path / "run", SLURM)
    msg = str(err.value)
    assert err.value.kind is FailureKind.diverged
    assert "diverged at step" in msg and "no retry: diverged" in msg
    assert "train.log" in msg and "_log.err" in msg
    rows = attempts(tmp_path / "run")
    assert len(rows) == 1 and rows[0]["exit_code"] == "3:0" and rows[0]["final"]


def test_config_error_in_a_job_is_not_retried(tmp_path: Path, nodes: list[str]) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(DispatchError) as err:
        dispatch(load_config, str(missing), settings=SLURM, run_dir=tmp_path / "job")
    assert err.value.kind is FailureKind.config_error
    assert f"{missing}: no such config file" in str(err.value)
    assert len(attempts(tmp_path / "job")) == 1


def test_flag_only_sbatch_option_is_accepted_by_sbatch(tmp_path: Path, nodes: list[str]) -> None:
    """`slurm_extra: --no-requeue` is the bare flag `--no-requeue`, which sbatch accepts and applies."""
    import operator

    settings = SLURM.model_copy(update={"slurm_extra": {"no-requeue": True, "mail-type": "NONE"}})
    assert dispatch(operator.add, 2, 3, settings=settings, run_dir=tmp_path / "job") == 5
    job_id = attempts(tmp_path / "job")[0]["job_id"]
    script = (tmp_path / "job" / "dispatch" / f"{job_id}_submission.sh").read_text()
    assert "#SBATCH --no-requeue\n" in script and "--no-requeue=" not in script
    shown = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    assert "Requeue=0" in shown, shown  # Slurm applied the flag (the job stays known for MinJobAge, 300 s here)


def _hog(mb: int) -> int:
    block = bytearray(mb * 2**20)  # zero-filled: every page is touched
    return len(block) // 2**20


def test_host_oom_gets_more_memory_first_and_the_next_invocation_keeps_it(tmp_path: Path, nodes: list[str]) -> None:
    """The cgroup's OUT_OF_MEMORY raises the job's memory first (host ladder); the run folder keeps the position, so
    the same call again starts at 1 GB and meets no OOM."""
    settings = SLURM.model_copy(update={"mem_mb": 512})
    assert dispatch(_hog, 700, settings=settings, run_dir=tmp_path / "job") == 700
    rows = attempts(tmp_path / "job")
    assert [(r["failure_kind"], r["mem_gb"]) for r in rows] == [("oom_host", 0.5), (None, 1.0)]
    assert "OUT_OF_MEMORY" in rows[0]["reason"] and rows[0]["action"].startswith("oom ladder host_memory")
    assert dispatch(_hog, 700, settings=settings, run_dir=tmp_path / "job") == 700
    assert [(r["failure_kind"], r["mem_gb"]) for r in attempts(tmp_path / "job")][2:] == [(None, 1.0)]


def test_killed_head_reattaches_and_submits_no_duplicate(tmp_path: Path, nodes: list[str]) -> None:
    cfg = tiny_config(tmp_path, "reattach",
                      train={"steps": 1500, "log_every": 500, "eval_every": 1500, "checkpoint_every": 500})
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "ired", "dispatch-train", str(cfg),
           "--out", str(run), "--cluster", "slurm", "--mem-mb", "1024", "--runtime", "5"]
    head = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    job_id = None
    while time.time() < deadline:
        if (run / "job.json").exists():
            job_id = json.loads((run / "job.json").read_text())["job_id"]
            if job_id and (run / "status.json").exists():  # the trainer is running
                break
        time.sleep(0.3)
    assert job_id, "the head never recorded a job id"
    head.send_signal(signal.SIGKILL)
    head.wait()
    live = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout.strip()
    assert live in ("RUNNING", "COMPLETING", ""), live
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"re-attaching to attempt 1, job {job_id}" in again.stderr
    rows = attempts(run)
    assert [r["job_id"] for r in rows] == [job_id] and rows[0]["action"] == "done"
    record = json.loads((run / "job.json").read_text())
    # every job of this run folder's attempt 1: its name (shared by the runs of a folder of that name in other test
    # sessions) and its comment, the attempt's tag, which sbatch's command line carries into sacct's SubmitLine
    out = subprocess.run(["sacct", "-n", "-X", "-P", "--name", record["job_name"], "-S", "now-1hour", "-o",
                          "JobID,SubmitLine"], capture_output=True, text=True).stdout
    same_attempt = [line.split("|")[0] for line in out.splitlines() if f"--comment={record['comment']}" in line]
    assert same_attempt == [job_id]
    assert status(run)["status"] == "completed"
    # and a third run finds the finished result: nothing is submitted
    third = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert third.returncode == 0 and "nothing submitted" in third.stderr


def _pending_reason(job_id: str) -> str:
    """squeue's reason of a PENDING job ('' in any other state)."""
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T %r"], capture_output=True, text=True).stdout.split()
    return out[1] if out[:1] == ["PENDING"] and len(out) > 1 else ""


def test_a_job_that_slurm_requeues_by_itself_is_one_attempt_per_run(tmp_path: Path, nodes: list[str]) -> None:
    """`scontrol requeue` (a preemption's requeue, or Slurm's own after a node failure with JobRequeue=1): the job
    keeps its id and runs twice; its first run is a `preempted` attempt (a slice: the trainer checkpointed on the
    SIGTERM). attempts.jsonl has one row per run of the job (read from `sacct -D`), their wall times add up to
    sacct's, the trainer resumes from its checkpoint, and the head stops waiting as soon as the result exists."""
    cfg = tiny_config(tmp_path, "requeue",
                      train={"steps": 1500, "log_every": 500, "eval_every": 1500, "checkpoint_every": 100})
    run = tmp_path / "run"
    head = subprocess.Popen([sys.executable, "-m", "ired", "dispatch-train", str(cfg), "--out", str(run),
                             "--cluster", "slurm", "--mem-mb", "1024", "--runtime", "5"],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    job_id = None
    while time.time() < deadline and not (run / "checkpoints" / "step_0000100.pt").exists():
        time.sleep(0.2)
    job_id = json.loads((run / "job.json").read_text())["job_id"]
    try:
        assert subprocess.run(["scontrol", "requeue", job_id], capture_output=True).returncode == 0
        # Slurm holds a requeued job back for ~2 min (BeginTime) once it is PENDING again (not while it is still
        # COMPLETING: an update then is overwritten); let it start again now
        while time.time() < deadline and _pending_reason(job_id) != "BeginTime":
            time.sleep(0.2)
        assert subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"],
                              capture_output=True).returncode == 0
        _, err = head.communicate(timeout=240)
        ended = time.time()
    finally:
        if head.poll() is None:
            head.kill()
            subprocess.run(["scancel", job_id], check=False)
    assert head.returncode == 0, err
    rows = attempts(run)
    assert [(r["attempt"], r["job_id"], r["failure_kind"], r["action"]) for r in rows] == [
        (1, job_id, "preempted", "requeued by Slurm itself (same job id)"), (2, job_id, None, "done")], rows
    assert rows[0]["state"].startswith("REQUEUED") and not rows[0]["final"] and rows[1]["final"]
    segments = [r for r in query(job_id) if not r.is_step]
    assert len(segments) == 2 and [r["wall_time_s"] for r in rows] == [float(s.elapsed_s) for s in segments]
    st = status(run)
    assert st["status"] == "completed" and st["resumed_from"] >= 100  # the second run resumed, not restarted
    result = next((run / "dispatch").glob(f"{job_id}_*result.pkl"))
    assert ended - result.stat().st_mtime < 20, "the head waited long after the job's result existed"


def _metric_rows(run: Path) -> list[dict]:
    """metrics.jsonl without its timing columns (seconds per step differ from run to run)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "sec_per_step"} for row in rows]


def test_a_one_minute_time_limit_makes_slices_with_the_numbers_of_an_uninterrupted_run(
        tmp_path: Path, nodes: list[str]) -> None:
    """`runtime: 1` (Slurm warns the job with SIGUSR2 before its limit): each slice checkpoints and ends with
    `failure_kind: timeout`, the next resumes there, spending no failure retry (max_attempts 2 < the slices), and the
    run ends with exactly the metrics of the same config trained without interruption. The run lasts ~150 s on any
    machine (faults.step_delay_s, which changes no number; the uninterrupted run goes without it). The job also asks
    for a GPU (`gpu: 1`: the local cluster's fake GPUs), which sacct counts."""
    cfg = tiny_config(tmp_path, "slices", device="cpu", faults={"step_delay_s": 0.25},
                      train={"steps": 600, "log_every": 50, "eval_every": 200, "checkpoint_every": 300})
    run, alone = tmp_path / "run", tmp_path / "alone"
    uninterrupted = subprocess.Popen([sys.executable, "-m", "ired", "train", str(cfg), "--out", str(alone), "--set",
                                      "faults.step_delay_s=0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
    proc = subprocess.run([sys.executable, "-m", "ired", "dispatch-train", str(cfg), "--out", str(run), "--cluster",
                           "slurm", "--mem-mb", "1024", "--runtime", "1", "--gpu", "1", "--max-attempts", "2"],
                          capture_output=True, text=True, timeout=900)
    assert uninterrupted.wait(timeout=600) == 0, uninterrupted.stderr.read()
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = attempts(run)
    slices = [r for r in rows if r["failure_kind"] == "timeout"]
    assert len(slices) >= 2 and rows[-1]["action"] == "done" and len(rows) == len(slices) + 1, rows
    for row in slices:
        assert row["exit_code"] == "75:0" and "SIGUSR2" in row["reason"] and "next slice" in row["action"], row
    steps = [r["step"] for r in slices]
    assert steps == sorted(steps) and len(set(steps)) == len(steps), steps  # every slice advanced the run
    assert _metric_rows(run) == _metric_rows(alone)  # bit for bit, evaluation columns included
    first = rows[0]["job_id"]
    shown = subprocess.run(["sacct", "-j", first, "-X", "-n", "-P", "-o", "Timelimit,AllocTRES"], capture_output=True,
                           text=True, check=True).stdout.strip()
    assert shown.startswith("00:01:00|") and "gres/gpu=1" in shown, shown


QOS = "iredsubmit1"  # a QOS of its own, so that its limit touches no other test's jobs


@pytest.fixture
def submit_limit(nodes: list[str]) -> str:
    """A QOS allowing one queued or running job per user (real only with AccountingStorageEnforce=limits:
    `.ci/slurm.sh` starts the cluster with SLURM_LOCAL_ENFORCE=limits)."""
    enforce = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True).stdout
    if "limits" not in next((ln for ln in enforce.splitlines() if ln.startswith("AccountingStorageEnforce")), ""):
        pytest.fail("the cluster does not enforce QOS limits: start it with SLURM_LOCAL_ENFORCE=limits (.ci/slurm.sh)")
    subprocess.run(["sacctmgr", "-i", "add", "qos", QOS], capture_output=True)  # exists already: fine
    for change in (["qos", QOS, "set", "MaxSubmitJobsPerUser=1"], ["user", "root", "set", f"qos+={QOS}"]):
        proc = subprocess.run(["sacctmgr", "-i", "modify", *change], capture_output=True, text=True)
        assert proc.returncode == 0 or "Nothing modified" in proc.stdout + proc.stderr, proc.stderr
    return QOS


def test_a_queue_limit_refusal_is_retried_until_there_is_room(tmp_path: Path, submit_limit: str) -> None:
    """With one job allowed by the QOS, a second run's sbatch is refused (QOSMaxSubmitJobPerUserLimit): its head
    says so and retries with back-off, and submits once the first run's job has left the queue."""
    settings = tmp_path / "dispatch.yaml"
    settings.write_text("cluster: slurm\npoll_s: 0.5\npoll_max_s: 2\n")  # one sbatch per run (no array)
    cmd = [sys.executable, "-m", "ired", "dispatch-train", "--settings", str(settings), "--mem-mb", "1024",
           "--runtime", "5", "--qos", submit_limit]
    first_cfg = tiny_config(tmp_path, "first", faults={"hold_at_step": 20})
    first = subprocess.Popen([*cmd, str(first_cfg), "--out", str(tmp_path / "first")], stderr=subprocess.PIPE,
                             text=True)
    second = None
    try:
        deadline = time.time() + 180
        while not (tmp_path / "first" / "faults_fired.json").exists():
            assert first.poll() is None and time.time() < deadline, first.stderr.read()
            time.sleep(0.2)
        second = subprocess.Popen([*cmd, str(tiny_config(tmp_path, "second")), "--out", str(tmp_path / "second")],
                                  stderr=subprocess.PIPE, text=True)
        log = tmp_path / "second" / "job.json"
        time.sleep(8)  # its first sbatch is refused meanwhile (the first run holds the QOS's one job)
        assert not log.exists() or json.loads(log.read_text())["job_id"] is None
        (tmp_path / "first" / "release").touch()
        _, err = second.communicate(timeout=300)
        assert first.wait(timeout=60) == 0
    finally:
        for head in (first, second):
            if head is not None and head.poll() is None:
                head.kill()
    assert second.returncode == 0, err[-3000:]
    assert "sbatch refused (" in err and "QOSMaxSubmitJobPerUserLimit" in err and "retrying in 5 s" in err, err[-3000:]
    assert [r["action"] for r in attempts(tmp_path / "second")] == ["done"]
