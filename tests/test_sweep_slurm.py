"""A sweep of 7 runs at the tiny scale through `snakemake --profile slurm` on the real local Slurm, with the
profile's job arrays: the runs share sbatch calls, one process of the head polls the queue for all of them, an
exit 120 inside an array is retried with its node excluded, and `ired status` / `ired cancel` act on live jobs.

The sweep is declared as data in a temporary registry file: `sweep_lr`, a grid of 6 learning rates (points that
exit 120 whenever they start on the node they first started on), plus one run held in flight
(faults.hold_at_step) to watch and cancel. Its duration is reported by `--durations`; it is the project's one
end-to-end sweep test on Slurm.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _dispatch_util import cancel_jobs_under, slurm_nodes, wait_until_idle
from workflow_helpers import copy_workflow, planned_jobs

from ired.registry.experiments import load_registry

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

BIN = Path(sys.executable).parent
LIMIT_S = 900
POINTS = 6


LRS = [round(0.0005 + 0.0001 * i, 4) for i in range(POINTS)]


def registry() -> str:
    # exit 120 on the node each point first starts on: which node Slurm picks depends on what the other tests'
    # jobs hold at that moment (a fixed bad node was sometimes never picked, and the retry went untested)
    return f"""sweep_lr:
  extends: q101
  description: Learning-rate sweep, every point exits 120 whenever it starts on the node it first started on.
  seeds: [0]
  set: {{faults: {{exit_on_first_node: true}}}}
  sweep:
    grid: {{train.lr: {LRS}}}

sweep_long:
  extends: q101
  description: A run of the sweep held at step 500 (never released), watched and cancelled while it runs.
  seeds: [0]
  set: {{faults: {{hold_at_step: 500}}}}
  at_scale:
    tiny: {{train: {{steps: 1000, log_every: 500, eval_every: 1000, checkpoint_every: 500}}}}
"""


def ired(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "ired", *args], cwd=workdir, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out


def table(out: subprocess.CompletedProcess) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in out.stdout.splitlines()[1:-1]}


@pytest.fixture
def cluster(tmp_path: Path):
    """The cluster's nodes; afterwards, cancel whatever this test's workflow left in the queue."""
    nodes = slurm_nodes()
    yield nodes
    cancel_jobs_under(tmp_path)


def test_a_sweep_runs_as_arrays_with_retries_status_and_cancel(tmp_path: Path, cluster: list[str]) -> None:
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "config" / "experiments" / "zz_sweep.yaml").write_text(registry())
    dispatch = workdir / "profiles" / "slurm" / "dispatch.yaml"
    dispatch.write_text(dispatch.read_text().replace("poll_s: 5}", "poll_s: 1}"))  # a faster test, same code
    points = load_registry(workdir / "config" / "experiments").sweeps["sweep_lr"].points
    assert len(points) == POINTS
    runs = [f"{point}-s0" for point in points] + ["sweep_long-s0"]
    targets = [f"results/tiny/{run}/final.pt" for run in runs]
    cmd = ["timeout", "-k", "10", str(LIMIT_S), str(BIN / "snakemake"), "--profile", "slurm", *targets,
           "--config", "scale=tiny"]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    results = workdir / "results" / "tiny"
    long_run = results / "sweep_long-s0"
    wait_until_idle(*cluster)  # the other tests' jobs share the cluster: the first tasks must find node1 free
    with open(tmp_path / "head.log", "w") as head_log:
        head = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=head_log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.time() + LIMIT_S
        job_id = None
        while time.time() < deadline and head.poll() is None:
            if (long_run / "job.json").exists() and (long_run / "status.json").exists():
                job_id = json.loads((long_run / "job.json").read_text())["job_id"]
                state = subprocess.run(["squeue", "-h", "-j", str(job_id), "-o", "%T"], capture_output=True,
                                       text=True).stdout.strip()
                if job_id and state == "RUNNING":
                    break
            time.sleep(0.5)
        else:
            pytest.fail(f"never saw sweep_long-s0 running (head exit {head.poll()}):\n"
                        + (tmp_path / "head.log").read_text()[-4000:])

        # watch: one line per run of the live sweep, read from the run folders and one squeue
        live = ired(workdir, "status", "-e", "sweep_*")
        print("ired status (live):\n" + live.stdout)
        lines = table(live)
        assert sorted(lines) == sorted(runs) and live.stdout.splitlines()[-1].startswith("7 run(s) in results/tiny")
        row = lines["sweep_long-s0"]
        assert row[1] == "running" and row[6] in cluster and row[8] == job_id, row
        assert {r[1] for r in lines.values()} <= {"pending", "queued", "running", "completed", "interrupted"}

        # stop one run of the sweep, and only that one
        stopped = ired(workdir, "cancel", "sweep_long-s0")
        print("ired cancel sweep_long-s0:\n" + stopped.stdout)
        assert f"sweep_long-s0 training: cancelled Slurm job {job_id} (attempt 1); marked interrupted" in stopped.stdout
        assert stopped.stdout.count("cancelled Slurm job") == 1, stopped.stdout
        assert [r[:2] for r in table(ired(workdir, "status", "-s", "interrupted")).values()] == [
            ["sweep_long-s0", "interrupted"]]

        head.wait(timeout=LIMIT_S)
    finally:
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGINT)
            head.wait(timeout=120)
    log = (tmp_path / "head.log").read_text()
    assert head.returncode != 0 and "sweep_long-s0: train stopped: interrupted" in log, log[-4000:]

    # every other run finished; the first attempts shared arrays; exit 120 was retried per run, its node excluded
    rows = {run: [json.loads(line) for line in (results / run / "attempts.jsonl").read_text().splitlines()]
            for run in runs}
    for run in runs[:-1]:
        assert json.loads((results / run / "status.json").read_text())["status"] == "completed", run
        assert rows[run][-1]["action"] == "done", rows[run]
    first = [rows[run][0]["job_id"] for run in runs]
    arrays = {job.split("_")[0] for job in first}
    assert len(arrays) < len(first) and any("_" in job for job in first), first
    for run in runs[:-1]:  # each point: exit 120 on its first node, retried with that node excluded
        bad = rows[run][0]["node"]
        assert (rows[run][0]["failure_kind"], rows[run][0]["exit_code"]) == ("node_failure", "120:0"), rows[run]
        assert rows[run][-1]["exclude"] == [bad] and rows[run][-1]["node"] != bad, rows[run]
    assert [(r["failure_kind"], r["reason"]) for r in rows["sweep_long-s0"]] == [
        ("interrupted", "stopped by ired cancel")]

    final = ired(workdir, "status")
    print("ired status (after):\n" + final.stdout)
    assert final.stdout.splitlines()[-1] == "7 run(s) in results/tiny: 6 completed, 1 interrupted"
    print(f"{len(arrays)} submissions for the first attempts of {len(runs)} runs; {len(runs) - 1} exit-120 retries")
    # and the next command would train only the cancelled run (resuming it from its checkpoint)
    assert planned_jobs(workdir, "--profile", "slurm", *targets, "--config", "scale=tiny") == {"train": 1}
