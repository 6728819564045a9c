"""submitit executors (``slurm`` or ``local``): submit, re-attach, wait for good, and gather the evidence.

Slurm jobs are submitted with ``--exclude`` and ``--job-name`` on the ``sbatch`` command line as well as in the
script: ``sacct``'s SubmitLine records only the command line, and that is where a person (and the tests) can
see which nodes an attempt avoided. Waiting never goes through submitit's ``result()``, which sleeps up to
``_results_timeout_s`` (15 s) for a result file that a killed job never writes: the queue says when the job is
gone, sacct (read until two reads agree) says how it ended, and the result file is read only if it exists.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ired.dispatch import sacct
from ired.dispatch.failures import Evidence
from ired.dispatch.jobs import node_name, outcome_path
from ired.dispatch.policy import Plan
from ired.dispatch.settings import DispatchSettings

STDERR_TAIL_LINES = 80


@dataclass
class Finished:
    """How an attempt ended, as the runner needs it."""

    succeeded: bool  # the job function returned (result file says "success")
    result: Any  # its return value when it succeeded
    evidence: Evidence
    state: str | None
    exit_code: str | None
    node: str | None
    wall_time_s: float | None
    stderr_path: Path
    requeued: list["Finished"] = field(default_factory=list)  # earlier runs of a job Slurm requeued by itself


def _slurm_executor_class() -> type:
    from submitit.slurm.slurm import SlurmExecutor

    class VisibleFlagsSlurmExecutor(SlurmExecutor):
        """sbatch with --job-name/--comment/--exclude on the command line too, so sacct's SubmitLine shows them."""

        def _make_submission_command(self, submission_file_path: Path) -> list[str]:
            flags = [f"--job-name={self.parameters['job_name']}"]
            for key in ("comment", "exclude"):
                if self.parameters.get(key):
                    flags.append(f"--{key}={self.parameters[key]}")
            return ["sbatch", *flags, str(submission_file_path)]

    return VisibleFlagsSlurmExecutor


def slurm_parameters(settings: DispatchSettings, plan: Plan, job_name: str, comment: str | None = None) -> dict[str, Any]:
    """submitit's Slurm parameters of one attempt: the settings' resources with the plan's memory and exclusions.

    Options left out of the settings are left out of the job (the cluster's own defaults apply); ``sbatch_extra``
    goes through as submitit's ``additional_parameters`` (``True``: a bare flag)."""
    params: dict[str, Any] = {
        "job_name": job_name,
        "time": settings.timeout_min,
        "mem": f"{int(plan.mem_gb * 1024)}M",
        "cpus_per_task": settings.cpus,
        "nodes": 1,
        "ntasks_per_node": 1,
    }
    if settings.gpus:
        params["gpus_per_node"] = settings.gpus
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(settings, key):
            params[key] = getattr(settings, key)
    if plan.exclude:
        params["exclude"] = ",".join(plan.exclude)
    if comment:
        params["comment"] = comment
    if settings.sbatch_options():
        params["additional_parameters"] = settings.sbatch_options()
    return params


def submit(settings: DispatchSettings, plan: Plan, folder: Path, job_name: str, fn: Callable[..., Any], *args: Any,
           comment: str | None = None) -> str:
    """Submit ``fn(*args)`` with the plan's resources; return the job id (Slurm id, or the local pid)."""
    import submitit

    folder.mkdir(parents=True, exist_ok=True)
    if settings.cluster == "slurm":
        ex = _slurm_executor_class()(folder=folder, max_num_timeout=0, python=settings.python)
        ex.update_parameters(**slurm_parameters(settings, plan, job_name, comment))
    else:
        ex = submitit.LocalExecutor(folder=folder, max_num_timeout=0)
        ex.update_parameters(timeout_min=settings.timeout_min, gpus_per_node=settings.gpus)
    job = ex.submit(fn, *args)
    return str(job.job_id)


def find_job(settings: DispatchSettings, job_name: str, comment: str) -> str | None:
    """A job submitted under this name and attempt tag whose id was never recorded (the head died right after
    sbatch); local jobs cannot be found that way (None)."""
    if settings.cluster != "slurm":
        return None
    return sacct.find_job(job_name, comment)


def _local_alive(job_id: str) -> bool:
    """A local job's controller process is alive (not a zombie) and is submitit's."""
    proc = Path("/proc") / job_id
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z" and b"submitit" in cmdline


def is_active(settings: DispatchSettings, job_id: str) -> bool:
    """The job is still queued or running (so a rerun must wait for it, not submit another)."""
    if settings.cluster == "slurm":
        return sacct.squeue_state(job_id) is not None
    return _local_alive(job_id)


def wait(settings: DispatchSettings, job_id: str, folder: Path | None = None,
         stop: Callable[[], bool] | None = None) -> None:
    """Block until the job has finished for good, or its result file exists.

    A local job this process started is its child: ``waitpid`` returns the moment it ends (no polling delay,
    which matters for the many seconds-long jobs of a laptop run). A local job started by an earlier head (after a
    re-attach) is polled through ``/proc``; Slurm jobs through ``squeue``, backing off from ``first_poll_s`` to
    ``max_poll_s``, and the head stops waiting as soon as the job's result file (submitit's pickle, in ``folder``)
    exists, whatever the queue still says (a requeued or completing job can linger there for minutes). ``stop``
    (a person asked to stop the job, ``ired cancel``) ends a polled wait early; a child process is killed by it.
    """
    if settings.cluster == "slurm":
        checks: list[Callable[[], bool]] = [stop] if stop is not None else []
        if folder is not None:
            from submitit.core.utils import JobPaths

            checks.append(JobPaths(folder, job_id=job_id, task_id=0).result_pickle.exists)
        sacct.wait_until_left_queue(job_id, settings.first_poll_s, settings.max_poll_s,
                                    done=lambda: any(check() for check in checks))
        return
    if _wait_child(job_id):
        return
    delay = settings.first_poll_s
    while _local_alive(job_id) and not (stop is not None and stop()):
        time.sleep(delay)
        delay = min(settings.max_poll_s, delay * 1.5)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc), deepest first."""
    found: list[int] = []
    try:
        children = [int(c) for t in Path(f"/proc/{pid}/task").iterdir()
                    for c in (t / "children").read_text().split()]
    except (OSError, ValueError):
        return found
    for child in children:
        found += [*descendants(child), child]
    return found


def cancel(settings: DispatchSettings, job_id: str) -> bool:
    """Cancel a job this head submitted (``scancel``; a local job: its process tree). True when it was asked to."""
    import os
    import signal

    if settings.cluster == "slurm":
        try:
            return subprocess.run(["scancel", str(job_id)], capture_output=True, timeout=60).returncode == 0
        except (subprocess.SubprocessError, OSError):
            return False
    if not _local_alive(job_id):
        return False
    for pid in [*descendants(int(job_id)), int(job_id)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    _wait_child(job_id)
    return True


def _wait_child(job_id: str) -> bool:
    """Wait for (and reap) our own child process ``job_id``; False when it is not our child (or not a pid)."""
    import os

    try:
        os.waitpid(int(job_id), 0)
    except ChildProcessError:
        return False  # started by another process: the caller polls
    except ValueError:
        return False
    return True


def _tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def gather(settings: DispatchSettings, folder: Path, job_id: str, node_failure_exit_codes: list[int],
           run_status: tuple[str | None, str | None] = (None, None), submitted_at: float | None = None) -> Finished:
    """Everything known about a finished job: sacct (twice), its result file, its outcome file, its stderr."""
    from submitit.core.utils import JobPaths, pickle_load

    paths = JobPaths(folder, job_id=job_id, task_id=0)
    rows = sacct.read_final(job_id) if settings.cluster == "slurm" else []
    runs = sacct.segments(rows, job_id)
    rows = runs[-1] if runs else rows  # the last run of the job; earlier ones (requeued by Slurm) go to `requeued`
    requeued = [_segment(seg, paths.stderr, node_failure_exit_codes) for seg in runs[:-1]]
    outcome: dict[str, Any] = {}
    opath = outcome_path(folder, job_id)
    if opath.exists():
        try:
            outcome = json.loads(opath.read_text())
        except json.JSONDecodeError:
            outcome = {}
    succeeded, result, submitit_error = False, None, None
    if paths.result_pickle.exists():
        status, payload = pickle_load(paths.result_pickle)
        if status == "success":
            succeeded, result = True, payload
        else:
            submitit_error = f"FailedJobError: job {job_id} raised:\n{payload}\nlogs: {paths.stderr}"
    else:
        submitit_error = f"UncompletedJobError: job {job_id} produced no result file; logs: {paths.stderr}"
    stderr = _tail(paths.stderr) or _tail(paths.stdout)
    main = sacct.job_row(rows, job_id)
    rc = outcome.get("returncode")
    evidence = Evidence(
        sacct=tuple(rows),
        submitit_error=submitit_error,
        returncode=rc,
        stderr_tail=stderr,
        run_status=run_status[0],
        run_detail=run_status[1],
        node_failure_exit_codes=frozenset(node_failure_exit_codes),
    )
    if main is not None:
        state, exit_code = main.state_text, f"{main.exit_code}:{main.signal}"
        node = ",".join(main.nodes) or outcome.get("node")
        wall = float(main.elapsed_s) if main.elapsed_s is not None else outcome.get("wall_time_s")
    else:
        state = "COMPLETED" if succeeded else ("FAILED" if settings.cluster == "local" else None)
        exit_code = None if rc is None else str(rc)
        node = outcome.get("node") or (node_name() if settings.cluster == "local" else None)
        wall = outcome.get("wall_time_s") or (round(time.time() - submitted_at, 3) if submitted_at else None)
    return Finished(succeeded, result, evidence, state, exit_code, node, wall, paths.stderr, requeued)


def _segment(rows: list[sacct.SacctRow], stderr_path: Path, node_failure_exit_codes: list[int]) -> Finished:
    """One earlier run of a job that Slurm requeued: what sacct says about it (its logs were overwritten)."""
    main = rows[0]
    evidence = Evidence(sacct=tuple(rows), node_failure_exit_codes=frozenset(node_failure_exit_codes))
    return Finished(False, None, evidence, main.state_text, f"{main.exit_code}:{main.signal}",
                    ",".join(main.nodes) or None, float(main.elapsed_s) if main.elapsed_s is not None else None,
                    stderr_path)
