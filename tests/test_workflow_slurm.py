"""`snakemake --profile slurm all_ablations` against the real local Slurm cluster (`.ci/slurm.sh`), tiny scale.

Two promises of the dispatch issue, end to end through the Snakemake CLI in a private copy of the workflow:

- the literal Slurm command completes, and training and cross-evaluation really ran as Slurm jobs (sacct knows
  each one, under the name, node and working directory the attempt log records);
- a head killed mid-run (SIGKILL to Snakemake's whole process group, never to the Slurm jobs), then
  `snakemake --unlock` and the same command again, submits no job twice, leaves every finished result untouched
  and completes;
- Ctrl-C on a head (SIGINT to its process group) cancels the Slurm jobs it submitted, says so and logs them as
  interrupted; the same command again resumes them from their checkpoints and trains no finished run again;
- a logout (SIGHUP to the head's process group) leaves its jobs running and no lock; the same command re-attaches;
  a command-line --set-resources still sends the training to Slurm, with its time limit and GPU.

Skipped with the reason when no cluster answers; ``IRED_REQUIRE_SLURM=1`` (CI) makes that a failure. Every
Snakemake call runs under ``timeout -k 10`` (Snakemake ignores SIGTERM while jobs run); jobs left in the queue by
a failing test are cancelled.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _dispatch_util import cancel_jobs_under, slurm_nodes
from workflow_helpers import copy_workflow, mtimes, planned_jobs

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

BIN = Path(sys.executable).parent
PROFILE = ["--profile", "slurm", "all_ablations"]
LIMIT_S = 600  # per Snakemake call; a whole run takes ~40 s on the 2-node local cluster (minutes on a loaded machine)


def head_command(*config: str) -> list[str]:
    """The README's Slurm command, at the tiny scale, bare: for a head the test signals itself (Ctrl-C, a logout)
    and bounds itself (a deadline, then SIGKILL to its group). Under `timeout -k 10` the signal would reach
    `timeout` too, which passes it on and SIGKILLs Snakemake 10 s later, cutting short the head's own letting go
    (cancel or release its jobs, drop its lock) on a loaded machine: the lock left behind then fails the next
    command, which is the test's artefact, not the pipeline's."""
    return [str(BIN / "snakemake"), *PROFILE, "--config", "scale=tiny", *config]


def command(*config: str) -> list[str]:
    """:func:`head_command` under `timeout -k 10` (CI must never hang on it)."""
    return ["timeout", "-k", "10", str(LIMIT_S), *head_command(*config)]


def environment() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def run(workdir: Path, cmd: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=workdir, env=environment(), capture_output=True, text=True, timeout=LIMIT_S + 30)
    assert proc.returncode == 0, (f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def slurm_workflow(dest: Path) -> Path:
    """A private copy of the workflow whose Slurm profile polls the queue every 0.5-2 s instead of backing off to
    30 s: a head then notices the end of a seconds-long tiny job within ~2 s, as a test needs (a real cluster
    wants the gentler default)."""
    workdir = copy_workflow(dest)
    settings = workdir / "profiles" / "slurm" / "dispatch.yaml"
    settings.write_text(settings.read_text() + "\npoll_s: 0.5\npoll_max_s: 2\n")
    return workdir


def sacct_jobs(workdir: Path, since: str) -> list[dict[str, str]]:
    """Every Slurm job submitted from ``workdir`` (the heads' working directory) since ``since``."""
    out = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-S", since, "-o", "JobID,JobName,State,NodeList,WorkDir"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    fields = ("job_id", "name", "state", "node", "workdir")
    rows = [dict(zip(fields, line.split("|"), strict=True)) for line in out.splitlines()]
    here = os.path.realpath(workdir)
    return [r for r in rows if os.path.realpath(r["workdir"]) == here]


def dispatch_records(workdir: Path) -> dict[Path, tuple[dict, list[dict]]]:
    """Every dispatcher record folder of the run (training: results/<run>/; evaluation: .../dispatch/eval-all/):
    folder -> (job.json, attempts.jsonl rows)."""
    found = {}
    for job_file in sorted((workdir / "results" / "tiny").glob("**/job.json")):
        rows = [json.loads(line) for line in (job_file.parent / "attempts.jsonl").read_text().splitlines()]
        found[job_file.parent] = (json.loads(job_file.read_text()), rows)
    return found


def recorded_job(job_file: Path) -> str | None:
    """The job id a dispatcher head recorded in job.json (None before sbatch has answered)."""
    return json.loads(job_file.read_text())["job_id"] if job_file.exists() else None


def squeue_state(job_id: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout.strip()


@pytest.fixture
def cluster(tmp_path: Path):
    """The cluster's nodes; afterwards, cancel whatever this test's workflow left in the queue."""
    nodes = slurm_nodes()
    yield nodes
    cancel_jobs_under(tmp_path)


def _group_alive(pgid: int) -> bool:
    """Some process of the group is still running (zombies, which hold no files, do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def since_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 2))


def wait_for_held_drill(head: subprocess.Popen, drill: Path, ready=lambda: True) -> str:
    """The Slurm job of the drill run once it is RUNNING and held at step 1000 (after its checkpoint), and
    ``ready()``; fails the test when the head ends or 240 s pass first."""
    deadline = time.time() + 240
    while time.time() < deadline and head.poll() is None:
        job_id = recorded_job(drill / "job.json") if ready() else None
        if job_id and squeue_state(job_id) == "RUNNING" and (drill / "faults_fired.json").exists():
            return job_id
        time.sleep(0.3)
    pytest.fail(f"never saw {drill.name} held in training (head exit {head.poll()})")


def rerun_releasing_the_drill(workdir: Path, cmd: list[str], drill: Path, job_id: str) -> tuple[str, str]:
    """The same command again: once its train rule says it re-attached to ``job_id``, release the held drill and
    let the command finish (exit 0 asserted). Returns the command's output and the re-attach line."""
    train_log = workdir / "logs" / "tiny" / "train" / f"{drill.name}.log"
    rerun = subprocess.Popen(cmd, cwd=workdir, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    reattached = f"re-attaching to attempt 1, job {job_id} (still queued or running)"
    try:
        deadline = time.time() + LIMIT_S
        while rerun.poll() is None and time.time() < deadline and not (
                train_log.exists() and reattached in train_log.read_text()):
            time.sleep(0.3)
        (drill / "release").touch()  # the held training goes on, watched by the new head
        output, _ = rerun.communicate(timeout=LIMIT_S)
    finally:
        if rerun.poll() is None:
            os.killpg(rerun.pid, signal.SIGKILL)
            rerun.wait()
    assert rerun.returncode == 0, output[-6000:]
    assert reattached in train_log.read_text()
    return output, reattached


def test_all_ablations_runs_its_jobs_on_slurm(tmp_path: Path, cluster: list[str]) -> None:
    workdir = slurm_workflow(tmp_path / "wf")
    since = since_now()
    run(workdir, command("experiments=[q101,q209]", "max_seeds=1"))
    results = workdir / "results" / "tiny"
    with open(results / "summary.csv") as handle:
        assert [row["experiment"] for row in csv.DictReader(handle)] == ["q101", "q209"]
    assert "| q101 |" in (results / "summary.md").read_text()
    with open(results / "cross_eval.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 5 * 18  # 5 checkpoints x 3 protocols x 3 splits x 2 weights
    records = dispatch_records(workdir)
    trainings = {p.name for p in records if (p / "final.pt").exists()}
    assert trainings == {"q101-s0", "q209-s0"}
    assert len(records) == 2 + 2, sorted(records)  # 2 trainings, 2 evaluations (one job per run: 5 checkpoints)
    jobs = {r["job_id"]: r for r in sacct_jobs(workdir, since)}
    for folder, (job, rows) in records.items():
        assert len(rows) == 1, (folder, rows)
        row = rows[0]
        assert (row["cluster"], row["action"], row["state"], row["exit_code"]) == ("slurm", "done", "COMPLETED", "0:0")
        assert row["job_id"] == job["job_id"] and row["node"] in cluster
        known = jobs[row["job_id"]]  # sacct's own record of the job (an array task: <array>_<i>) from this folder
        assert (known["name"], known["state"], known["node"]) == (job["job_name"], "COMPLETED", row["node"])
    assert len(jobs) == len(records)  # nothing else was submitted
    assert "submitted as slurm job" in (workdir / "logs" / "tiny" / "train" / "q101-s0.log").read_text()


# A run held in flight at a known step (faults.hold_at_step: after its checkpoint at step 1000 the trainer waits for
# a `release` file in its run folder), so that a test can kill or interrupt the head while it is RUNNING, for as long
# as the test needs and without burning CPU; released, it trains its last 1,000 steps in seconds.
DRILL = """
slurm_drill:
  extends: q101
  description: q101 held at step 1000 of 2000 at the tiny scale, so that the head can be stopped while it trains.
  set: {faults: {hold_at_step: 1000}}
  at_scale:
    tiny: {train: {steps: 2000, log_every: 500, eval_every: 2000, checkpoint_every: 1000}}
"""


def test_killed_head_then_same_command_submits_no_duplicate_and_keeps_finished_results(
    tmp_path: Path, cluster: list[str]
) -> None:
    workdir = slurm_workflow(tmp_path / "wf")
    (workdir / "config" / "experiments" / "zz_slurm_drill.yaml").write_text(DRILL)
    cmd = command("experiments=[q101,slurm_drill]", "max_seeds=1")
    results = workdir / "results" / "tiny"
    since = since_now()
    with open(tmp_path / "head.log", "w") as head_log:
        head = subprocess.Popen(cmd, cwd=workdir, env=environment(), stdout=head_log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own process group: Snakemake and its rule scripts
    drill = results / "slurm_drill-s0"
    finished = [results / "q101-s0" / "final.pt"]  # (milestones/ is the evaluate job's: remade when it reruns)
    # Snakemake has accepted q101's training once its evaluation has started (its dispatcher record)
    accepted = results / "q101-s0" / "dispatch" / "eval-all" / "job.json"
    job_id = None
    try:
        deadline = time.time() + 240
        while time.time() < deadline and head.poll() is None:
            if recorded_job(accepted) and (drill / "status.json").exists():
                job_id = recorded_job(drill / "job.json")
                if job_id and squeue_state(job_id) == "RUNNING":
                    break  # q101 is trained, exported and being evaluated; slurm_drill is training on a node
            time.sleep(0.3)
        else:
            pytest.fail(f"never saw q101 finished while slurm_drill trains (head exit {head.poll()}):\n"
                        + (tmp_path / "head.log").read_text()[-4000:])
        before = mtimes(finished)
        os.killpg(head.pid, signal.SIGKILL)  # Snakemake, its rule scripts (the dispatcher heads), timeout
    finally:
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGKILL)
        head.wait()
        gone = time.time() + 10
        while time.time() < gone and _group_alive(head.pid):  # every member dead (their locks released)
            time.sleep(0.1)
    assert squeue_state(job_id) == "RUNNING", "the Slurm job must outlive its head"
    # let q101's cross-evaluation finish with no head watching (slurm_drill is held): the rerun meets both cases
    eval_job = recorded_job(accepted)
    while squeue_state(eval_job) and time.time() < deadline:
        time.sleep(0.3)
    assert squeue_state(job_id) == "RUNNING", "slurm_drill-s0 ended before its release"

    run(workdir, [*cmd, "--unlock"])  # a SIGKILLed head leaves Snakemake's lock: the documented recovery
    train_log = workdir / "logs" / "tiny" / "train" / "slurm_drill-s0.log"
    _, reattached = rerun_releasing_the_drill(workdir, cmd, drill, job_id)  # the same command again

    # the jobs in flight were collected, not submitted again; the finished results were left alone
    log = train_log.read_text()
    assert reattached in log, log
    log = (workdir / "logs" / "tiny" / "evaluate" / "q101-s0.log").read_text()
    assert f"re-attaching to attempt 1, job {eval_job} (finished meanwhile)" in log, log
    assert "written again from the job's result" in log  # Snakemake had deleted the incomplete job's JSONs
    assert mtimes(finished) == before
    assert json.loads((drill / "status.json").read_text())["status"] == "completed"
    assert (drill / "final.pt").exists() and (results / "summary.md").exists()
    # every dispatcher record holds one attempt, and sacct holds exactly one job per attempt: no duplicate
    records = dispatch_records(workdir)
    assert len(records) == 2 + 2, sorted(records)  # 2 trainings, 2 evaluations (last and best in one job each)
    attempt_jobs = {}
    for folder, (job, rows) in records.items():
        assert [(r["attempt"], r["action"]) for r in rows] == [(1, "done")], (folder, rows)
        attempt_jobs[rows[0]["job_id"]] = job["job_name"]
    jobs = sacct_jobs(workdir, since)
    assert jobs, "sacct knows no job submitted from this workflow"
    # every job sacct knows from this folder is the one attempt of one record: nothing was submitted twice
    assert {r["job_id"]: r["name"] for r in jobs} == attempt_jobs
    assert all(r["state"] == "COMPLETED" for r in jobs), jobs
    # and Snakemake agrees that everything is done
    assert planned_jobs(workdir, *PROFILE, "--config", "scale=tiny", "experiments=[q101,slurm_drill]",
                        "max_seeds=1") == {}


def test_ctrl_c_cancels_the_heads_jobs_and_the_next_command_resumes_them(tmp_path: Path, cluster: list[str]) -> None:
    """Ctrl-C (SIGINT to the head's process group, as a terminal sends it) with a finished run and a training in
    flight: the head cancels the Slurm jobs it submitted and says so, the attempt is logged as interrupted, and the
    same command again resumes the training from its checkpoint; the finished run is never trained again."""
    workdir = slurm_workflow(tmp_path / "wf")
    (workdir / "config" / "experiments" / "zz_slurm_drill.yaml").write_text(DRILL)
    cmd = command("experiments=[q101,slurm_drill]", "max_seeds=1")
    results = workdir / "results" / "tiny"
    drill = results / "slurm_drill-s0"
    since = since_now()
    head = subprocess.Popen(head_command("experiments=[q101,slurm_drill]", "max_seeds=1"), cwd=workdir,
                            env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    finished = [results / "q101-s0" / "final.pt", *(results / "q101-s0" / "checkpoints").glob("*.pt")]
    job_id = None
    try:
        job_id = wait_for_held_drill(head, drill, lambda: (results / "q101-s0" / "milestones" / "last.pt").exists())
        finished = [results / "q101-s0" / "final.pt", *(results / "q101-s0" / "checkpoints").glob("*.pt")]
        before = mtimes(finished)
        os.killpg(head.pid, signal.SIGINT)  # Ctrl-C
        output, _ = head.communicate(timeout=120)
    finally:
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
    assert head.returncode not in (0, -signal.SIGKILL), (head.returncode, output[-4000:])  # stopped by itself
    assert f"cancelled Slurm job {job_id} (attempt 1)" in output, output[-4000:]
    assert not list((workdir / ".snakemake" / "locks").glob("*")), "Ctrl-C must leave no Snakemake lock"
    deadline = time.time() + 30
    while squeue_state(job_id) and time.time() < deadline:
        time.sleep(0.5)
    states = {r["job_id"]: r["state"] for r in sacct_jobs(workdir, since)}
    assert states[job_id].startswith("CANCELLED"), states
    rows = [json.loads(line) for line in (drill / "attempts.jsonl").read_text().splitlines()]
    assert [(r["attempt"], r["failure_kind"]) for r in rows] == [(1, "interrupted")]
    stopped_at = max(int(p.stem.split("_")[1]) for p in (drill / "checkpoints").glob("step_*.pt"))

    run(workdir, cmd)  # the same command again

    assert mtimes(finished) == before
    st = json.loads((drill / "status.json").read_text())
    assert st["status"] == "completed" and st["resumed_from"] == stopped_at == 1000, st  # from the held checkpoint
    rows = [json.loads(line) for line in (drill / "attempts.jsonl").read_text().splitlines()]
    assert [(r["attempt"], r["failure_kind"], r["action"]) for r in rows][1:] == [(2, None, "done")]
    q101 = [json.loads(line)["job_id"] for line in (results / "q101-s0" / "attempts.jsonl").read_text().splitlines()]
    trained = [r for r in sacct_jobs(workdir, since) if r["job_id"] in q101]
    assert len(q101) == 1 and len(trained) == 1, (q101, trained)  # q101 was trained once


def test_a_logout_leaves_the_job_running_and_the_same_command_collects_it(tmp_path: Path, cluster: list[str]) -> None:
    """SIGHUP to the head's process group (a dropped ssh session): Snakemake and its rule scripts exit, the Slurm job
    keeps running, no Snakemake lock is left; the same command (no --unlock) re-attaches to the job, submits nothing
    new and collects it. The command's `--set-resources train:runtime=7 train:gpu=1` (which replaces the profile's
    set-resources whole) still sends the training to Slurm, with sacct's Timelimit 00:07:00 and one GPU."""
    workdir = slurm_workflow(tmp_path / "wf")
    (workdir / "config" / "experiments" / "zz_slurm_drill.yaml").write_text(DRILL)
    bare = [str(BIN / "snakemake"), *PROFILE, "--set-resources", "train:runtime=7", "train:gpu=1",
            "--config", "scale=tiny", "experiments=[slurm_drill]", "max_seeds=1"]
    cmd = ["timeout", "-k", "10", str(LIMIT_S), *bare]
    drill = workdir / "results" / "tiny" / "slurm_drill-s0"
    since = since_now()
    head = subprocess.Popen(bare, cwd=workdir, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    job_id = None
    try:
        job_id = wait_for_held_drill(head, drill)
        os.killpg(head.pid, signal.SIGHUP)  # the terminal hung up (a bare head: see head_command)
        output, _ = head.communicate(timeout=60)
    finally:
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
    assert f"Slurm job {job_id} (attempt 1) keeps running" in output, output[-4000:]
    assert "1 training job(s) still running with no head watching them (slurm_drill-s0)" in output, output[-4000:]
    assert squeue_state(job_id) == "RUNNING", "the job must outlive a logout"
    assert not list((workdir / ".snakemake" / "locks").glob("*")), "a logout must leave no Snakemake lock"
    shown = subprocess.run(["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "Timelimit,AllocTRES"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert shown.startswith("00:07:00|") and "gres/gpu=1" in shown, shown

    rerun_releasing_the_drill(workdir, cmd, drill, job_id)  # the same command, no --unlock
    rows = [json.loads(line) for line in (drill / "attempts.jsonl").read_text().splitlines()]
    assert [(r["attempt"], r["job_id"], r["action"]) for r in rows] == [(1, job_id, "done")], rows
    attempt_jobs = {rows[0]["job_id"] for _, (_, rows) in dispatch_records(workdir).items()}
    assert {r["job_id"] for r in sacct_jobs(workdir, since)} == attempt_jobs  # nothing submitted twice
