"""`ired status` from run folders (no cluster): every state, the columns, the filters, and one queue call for a
1,000-run sweep. The queue is a recorded squeue answer; the Slurm sweep test asks the real one."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from ired.dispatch import sacct
from ired.dispatch.runs import find_runs
from ired.dispatch.status import collect, table

NOW = time.time()


def _run(results: Path, name: str, status: dict | None = None, job: dict | None = None,
         rows: list[dict] | None = None, steps: int = 40) -> None:
    run = results / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"name: {name}\nseed: 0\ntrain:\n  steps: {steps}\n  batch_size: 64\n")
    if status is not None:
        (run / "status.json").write_text(json.dumps(status))
    if job is not None:
        (run / "job.json").write_text(json.dumps({"job_name": f"ired-tiny-{name}", "folder": str(run / "dispatch"),
                                                  "plan": {"mem_gb": 1.0}, "submitted_at": NOW - 60, **job}))
    if rows:
        (run / "attempts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _row(attempt: int, kind: str | None, action: str, final: bool, node: str = "node1", **extra) -> dict:
    return {"attempt": attempt, "job_id": str(100 + attempt), "node": node, "failure_kind": kind, "action": action,
            "final": final, **extra}


def _running(step: int, steps: int = 40) -> dict:
    """A trainer's status.json: 10 steps every 5 s since step 0 of its segment."""
    now = time.time()
    return {"status": "running", "step": step, "steps": steps, "updated": now,
            "segments": [{"started": now - step / 2, "from_step": 0, "step": step}]}


def test_every_state_with_its_columns(tmp_path: Path) -> None:
    results = tmp_path / "tiny"
    _run(results, "pend-s0")
    _run(results, "queue-s0", job={"attempt": 1, "job_id": "201", "cluster": "slurm"})
    _run(results, "run-s0", status=_running(20), job={"attempt": 2, "job_id": "202", "cluster": "slurm"},
         rows=[_row(1, "node_failure", "resubmit excluding node1", False)])
    _run(results, "done-s0", status={"status": "completed", "step": 40, "steps": 40},
         rows=[_row(1, "oom_device", "oom ladder micro_batch", False), _row(2, None, "done", True, "node2")])
    _run(results, "nan-s0", status={"status": "diverged", "step": 13, "steps": 40},
         rows=[_row(1, "diverged", "no retry: diverged", True)])
    _run(results, "bad-s0", status=_running(10), rows=[_row(1, "unknown", "retry", False),
                                                       _row(2, "unknown", "give up: 3 failures", True)])
    _run(results, "stop-s0", status=_running(30), rows=[_row(1, "interrupted", "stopped", False,
                                                             reason="stopped by ired cancel")])
    _run(results, "gone-s0", status=_running(10), job={"attempt": 1, "job_id": "208", "cluster": "slurm"})
    calls = []

    def queue(ids: list[str]) -> dict[str, sacct.QueueEntry]:
        calls.append(ids)
        return sacct.parse_squeue("201|PENDING|\n202|RUNNING|node2\n")

    def ended(ids: list[str]) -> list[sacct.SacctRow]:
        calls.append(ids)
        return sacct.parse_sacct("208|ired-tiny-gone-s0|FAILED|1:0|node1|00:00:09|sbatch x\n")

    found, note = collect(find_runs(results), queue, ended)
    assert [sorted(c) for c in calls] == [["201", "202", "208"], ["208"]] and note.startswith("squeue at")
    by = {s.run: s for s in found}
    assert {name: s.state for name, s in by.items()} == {
        "bad-s0": "failed", "done-s0": "completed", "gone-s0": "interrupted", "nan-s0": "diverged",
        "pend-s0": "pending", "queue-s0": "queued", "run-s0": "running", "stop-s0": "interrupted"}
    run = by["run-s0"]
    assert (run.step, run.steps, run.attempts, run.node, run.failure, run.job_id) == (20, 40, 2, "node2",
                                                                                     "node_failure", "202")
    assert abs(run.eta_s - 10.0) < 1.0  # 20 steps left at 2 steps/s
    assert (by["done-s0"].step, by["done-s0"].attempts, by["done-s0"].node, by["done-s0"].failure) == (
        40, 2, "node2", "oom_device")
    assert by["pend-s0"].steps == 40 and by["pend-s0"].attempts == 0  # steps read from config.yaml
    assert "FAILED" in by["gone-s0"].detail and by["bad-s0"].failure == "unknown"
    lines = table(found)
    assert lines[0].split()[:4] == ["run", "state", "step", "ETA"]
    assert any(line.split()[:7] == ["run-s0", "running", "20/40", "10s", "-", "2", "node2"] for line in lines), lines


def test_a_thousand_runs_ask_the_queue_once(tmp_path: Path) -> None:
    results = tmp_path / "tiny"
    for i in range(1000):
        job = {"attempt": 1, "job_id": str(5000 + i), "cluster": "slurm"} if i % 2 else None
        _run(results, f"sweep_{i:04d}-s0", status=_running(20) if i % 4 == 1 else None, job=job)
    calls = []

    def queue(ids: list[str]) -> dict[str, sacct.QueueEntry]:
        calls.append(len(ids))
        return {i: sacct.QueueEntry(i, "RUNNING" if int(i) % 4 == 1 else "PENDING", ("node1",)) for i in ids}

    started = time.perf_counter()
    found, _ = collect(find_runs(results), queue, lambda ids: [])
    seconds = time.perf_counter() - started
    assert calls == [500] and len(found) == 1000
    states = [s.state for s in found]
    assert (states.count("pending"), states.count("queued"), states.count("running")) == (500, 250, 250)
    print(f"ired status of 1,000 runs: {seconds:.2f} s")
    assert seconds < 30  # ~1 s here; a bound only against a per-run scheduler call


def test_the_command_filters_and_reads_while_nothing_is_locked(tmp_path: Path) -> None:
    results = tmp_path / "results" / "tiny"
    _run(results, "a-s0", status={"status": "completed", "step": 40, "steps": 40}, rows=[_row(1, None, "done", True)])
    _run(results, "b-s0")
    _run(results, "b-s1", status=_running(30), rows=[_row(1, "interrupted", "stopped", False)])
    ired = [sys.executable, "-m", "ired", "status", "--results", str(results)]
    out = subprocess.run([*ired, "-e", "b", "-s", "pending,interrupted"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split()[:2] for line in lines[1:-1]] == [["b-s0", "pending"], ["b-s1", "interrupted"]]
    assert lines[-1] == f"2 run(s) in {results}: 1 pending, 1 interrupted"
    out = subprocess.run([*ired, "zzz*"], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "no run of" in out.stderr
    assert not (tmp_path / ".snakemake").exists() and not (results / "a-s0" / "cancel.json").exists()


def test_between_two_attempts_a_run_with_a_live_head_is_queued_not_interrupted(tmp_path: Path) -> None:
    """The moments a live head spends between attempts (the job has left the queue and is not logged yet; a failed
    attempt is logged and its retry not submitted yet) read `queued`; with no head holding the lock, `interrupted`."""
    from ired.dispatch.attempts import HEAD_LOCK
    from ired.runs.state import RunLock

    results = tmp_path / "tiny"
    _run(results, "ended-s0", status=_running(0), job={"attempt": 1, "job_id": "301", "cluster": "slurm"})
    _run(results, "retry-s0", rows=[_row(1, "node_failure", "resubmit excluding node1", False)])

    def states() -> dict[str, str]:
        found, _ = collect(find_runs(results), lambda ids: {}, lambda ids: [])
        return {s.run: s.state for s in found}

    assert states() == {"ended-s0": "interrupted", "retry-s0": "interrupted"}
    for name in ("ended-s0", "retry-s0"):
        (results / name / "dispatch").mkdir(exist_ok=True)
    with RunLock(results / "ended-s0" / "dispatch", name=HEAD_LOCK, doing="dispatched"), \
            RunLock(results / "retry-s0" / "dispatch", name=HEAD_LOCK, doing="dispatched"):
        assert states() == {"ended-s0": "queued", "retry-s0": "queued"}
    assert states() == {"ended-s0": "interrupted", "retry-s0": "interrupted"}


def _metrics(run: Path, rows: list[dict], torn: str = "") -> None:
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + torn)


def test_json_has_every_run_with_its_latest_metric_and_logs(tmp_path: Path) -> None:
    """`ired status --json` parses; each run carries its latest val_task_mse (the last row that has one, a torn
    last line skipped), its ETA and the paths of its logs (train.log, the job's log)."""
    results = tmp_path / "results" / "tiny"
    _run(results, "a-s0", status={"status": "completed", "step": 40, "steps": 40},
         rows=[_row(1, None, "done", True, log=str(results / "a-s0" / "dispatch" / "101_0_log.err"))])
    _metrics(results / "a-s0", [{"step": 20, "val_task_mse": 0.5}, {"step": 30, "val_task_mse": None},
                                {"step": 40, "val_task_mse": 0.25}, {"step": 50, "val_task_mse": None}],
             torn='{"step": 60, "val_task_m')
    (results / "a-s0" / "train.log").write_text("step 40\n")
    (results / "a-s0" / "dispatch").mkdir()
    (results / "a-s0" / "dispatch" / "101_0_log.err").write_text("")
    (results / "a-s0" / "dispatch" / "101_0_log.out").write_text("")
    (tmp_path / "logs" / "tiny" / "train").mkdir(parents=True)
    (tmp_path / "logs" / "tiny" / "train" / "a-s0.log").write_text("")
    _run(results, "b-s0", status=_running(20))
    _metrics(results / "b-s0", [{"step": 10, "val_task_mse": 0.75}, {"step": 20, "val_task_mse": None}])
    out = subprocess.run([sys.executable, "-m", "ired", "status", "--results", str(results), "--json"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["results"] == str(results) and data["counts"] == {"completed": 1, "interrupted": 1}
    by = {r["run"]: r for r in data["runs"]}
    a = by["a-s0"]
    assert (a["metric"], a["metric_value"], a["metric_step"]) == ("val_task_mse", 0.25, 40)
    assert (by["b-s0"]["metric_value"], by["b-s0"]["metric_step"], by["b-s0"]["step"]) == (0.75, 10, 20)
    assert by["a-s0"]["logs"] == [str(results / "a-s0" / "train.log"),
                                  str(tmp_path / "logs" / "tiny" / "train" / "a-s0.log"),
                                  str(results / "a-s0" / "dispatch" / "101_0_log.err"),
                                  str(results / "a-s0" / "dispatch" / "101_0_log.out")]
    assert by["b-s0"]["logs"] == [] and by["a-s0"]["run_dir"] == str(results / "a-s0")
    table_out = subprocess.run([sys.executable, "-m", "ired", "status", "--results", str(results),
                                "--metric", "val_task_mse"], capture_output=True, text=True)
    assert table_out.stdout.splitlines()[0].split()[:5] == ["run", "state", "step", "ETA", "val_task_mse"]
    assert table_out.stdout.splitlines()[1].split()[:5] == ["a-s0", "completed", "40/40", "-", "0.25@40"]


def test_watch_refreshes_a_bounded_number_of_times(tmp_path: Path) -> None:
    """`--watch --count 2` prints the table twice and ends (no terminal: one table after another, no escapes)."""
    results = tmp_path / "tiny"
    _run(results, "a-s0")
    out = subprocess.run([sys.executable, "-m", "ired", "status", "--results", str(results), "--watch",
                          "--count", "2", "--interval", "0.1"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("1 run(s) in") == 2 and "(2 of 2)" in out.stdout and "\x1b[" not in out.stdout
    bad = subprocess.run([sys.executable, "-m", "ired", "status", "--results", str(results), "--count", "2"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "add --watch" in bad.stderr


def test_logs_lists_the_logs_of_one_run(tmp_path: Path) -> None:
    results = tmp_path / "results" / "tiny"
    _run(results, "a-s0", job={"attempt": 1, "job_id": "301", "cluster": "local"})
    (results / "a-s0" / "train.log").write_text("")
    (results / "a-s0" / "dispatch").mkdir()
    (results / "a-s0" / "dispatch" / "301_0_log.err").write_text("")
    evals = results / "a-s0" / "dispatch" / "eval-all"
    (evals / "dispatch").mkdir(parents=True)
    (evals / "dispatch" / "302_0_log.err").write_text("")
    (evals / "attempts.jsonl").write_text(json.dumps(_row(1, None, "done", True, log=str(evals / "dispatch" /
                                                                                         "302_0_log.err"))) + "\n")
    ired = [sys.executable, "-m", "ired", "logs", "--results", str(results)]
    out = subprocess.run([*ired, "a-s0"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [str(results / "a-s0" / "train.log"),  # the trainer's, the training job's
                                       str(results / "a-s0" / "dispatch" / "301_0_log.err"),  # (in flight), then
                                       str(evals / "dispatch" / "302_0_log.err")]  # the evaluation job's
    missing = subprocess.run([*ired, "z-s0"], capture_output=True, text=True)
    assert missing.returncode == 2 and "no run z-s0" in missing.stderr
