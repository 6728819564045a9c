"""Backends: one executor class per cluster kind (``slurm``, ``local``) behind one interface, :class:`Backend`.

A backend submits a job (submitit), finds a job whose id was never recorded, says whether a job is still queued
or running, waits for it for good, cancels it, and gathers the evidence of how it ended. The dispatch loop
(:mod:`ired.dispatch.loop`) speaks only this interface; :func:`ired.dispatch.backends.backend` picks the class
named by the settings' ``cluster``. Everything the scheduler prints is parsed in :mod:`ired.dispatch.sacct`.

Slurm jobs are submitted with ``--job-name``, ``--comment`` and ``--exclude`` on the ``sbatch`` command line as
well as in the script: ``sacct``'s SubmitLine records only the command line, and that is where a person (and the
tests) can see which nodes an attempt avoided and which attempt a job was. Waiting never goes through submitit's
``result()``, which sleeps up to ``_results_timeout_s`` (15 s) for a result file that a killed job never writes:
the queue says when the job is gone, sacct (read until two reads agree) says how it ended, and the result file is
read only if it exists.
"""

from __future__ import annotations

import json
import os
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ired.core.host import node_name
from ired.dispatch import sacct
from ired.dispatch.failures import Evidence
from ired.dispatch.gpu_slots import job_environment
from ired.dispatch.jobs import outcome_path
from ired.dispatch.policy import Plan
from ired.dispatch.settings import DispatchSettings

STDERR_TAIL_LINES = 80


class HeadDetached(KeyboardInterrupt):
    """The head was told to let go of its jobs (SIGHUP: a logout; SIGTERM: a head job at its limit, Snakemake
    passing it on). While a job runs, the runner leaves it running for the next command to re-attach; before a job
    exists (a request still waiting for its array), it is stopped like Ctrl-C."""


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
    requeued: list[Finished] = field(default_factory=list)  # earlier runs of a job Slurm requeued by itself


@dataclass(frozen=True)
class Submission:
    """Where a submitted attempt is: its job id and submitit folder, the name and comment it was submitted under,
    and its index when it is a task of an array (:mod:`ired.dispatch.broker`)."""

    job_id: str
    folder: Path
    job_name: str
    comment: str | None
    array_index: int | None = None


class Backend(ABC):
    """Where jobs run. Subclasses implement the scheduler-specific half; :meth:`gather` is shared."""

    cluster: ClassVar[str]
    where: ClassVar[str]  # "Slurm job" / "local job", for messages

    def __init__(self, settings: DispatchSettings) -> None:
        self.settings = settings

    @abstractmethod
    def submit(self, plan: Plan, folder: Path, job_name: str, comment: str, fn: Callable[..., Any],
               *args: Any) -> str:
        """Submit ``fn(*args)`` with the plan's resources; return the job id."""

    def request(self, run_dir: Path, record: Any, plan: Plan, folder: Path, job_name: str, comment: str,
                fn: Callable[..., Any], args: tuple[Any, ...],
                stop: Callable[[], bool] | None = None) -> Submission | None:
        """Submit one attempt of the run in ``run_dir`` (``record``: its ``job.json`` before submission); None when
        ``stop()`` said to stop before it was submitted. Plain backends submit at once (:meth:`submit`)."""
        return Submission(self.submit(plan, folder, job_name, comment, fn, *args), folder, job_name, comment)

    def find_job(self, job_name: str, comment: str, array_index: int | None = None) -> str | None:
        """A job submitted under this name and comment whose id was never recorded (the head died right after
        submitting; ``array_index``: the run's task of that array); None when there is none, or the backend
        cannot find jobs that way."""
        return None

    @abstractmethod
    def is_active(self, job_id: str) -> bool:
        """The job is still queued or running (so a rerun must wait for it, not submit another)."""

    @abstractmethod
    def wait(self, job_id: str, folder: Path | None = None, stop: Callable[[], bool] | None = None) -> None:
        """Block until the job has finished for good, or its result file exists, or ``stop()`` says so."""

    @abstractmethod
    def cancel(self, job_ids: list[str]) -> bool:
        """Cancel these jobs (one scheduler call where there is one); True when it was asked to."""

    def accounting(self, job_id: str) -> list[sacct.SacctRow]:
        """The scheduler's final record of the job and its steps (``[]``: the backend keeps none)."""
        return []

    def fallback(self, succeeded: bool, outcome: dict[str, Any]) -> tuple[str | None, str | None]:
        """State and node of a job the scheduler has no record of (from the job's own outcome file)."""
        return None, outcome.get("node")

    def gather(self, folder: Path, job_id: str, node_failure_exit_codes: list[int],
               run_status: tuple[str | None, str | None] = (None, None),
               submitted_at: float | None = None) -> Finished:
        """Everything known about a finished job: the scheduler's record, its result file, its outcome file and
        the tail of its stderr."""
        from submitit.core.utils import JobPaths, pickle_load

        paths = JobPaths(folder, job_id=job_id, task_id=0)
        rows = self.accounting(job_id)
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
            job_signal=outcome.get("signal"),
        )
        state: str | None
        exit_code: str | None
        if main is not None:
            state, exit_code = main.state_text, f"{main.exit_code}:{main.signal}"
            node = ",".join(main.nodes) or outcome.get("node")
            wall = float(main.elapsed_s) if main.elapsed_s is not None else outcome.get("wall_time_s")
        else:
            state, node = self.fallback(succeeded, outcome)
            exit_code = None if rc is None else str(rc)
            wall = outcome.get("wall_time_s") or (round(time.time() - submitted_at, 3) if submitted_at else None)
        return Finished(succeeded, result, evidence, state, exit_code, node, wall, paths.stderr, requeued)


# --------------------------------------------------------------------------------------------------
# Slurm
# --------------------------------------------------------------------------------------------------


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


def slurm_parameters(settings: DispatchSettings, plan: Plan, job_name: str,
                     comment: str | None = None) -> dict[str, Any]:
    """submitit's Slurm parameters of one attempt: the job's resources with the plan's memory and exclusions.

    Options left out of the resources are left out of the job (the cluster's own defaults apply); ``slurm_extra``
    goes through as submitit's ``additional_parameters`` (``True``: a bare flag). A job with a time limit gets its
    warning (SIGUSR2) ``signal_lead_s(runtime)`` seconds before it: the trainer checkpoints and exits, and the
    dispatcher resubmits (a slice)."""
    from ired.dispatch.settings import signal_lead_s

    params: dict[str, Any] = {
        "job_name": job_name,
        "time": settings.runtime,  # None: no --time (the partition's limit)
        "mem": f"{int(plan.mem_gb * 1024)}M",
        "cpus_per_task": settings.cpus_per_task,
        "nodes": 1,
        "ntasks_per_node": 1,
    }
    if settings.runtime is not None:
        params["signal_delay_s"] = signal_lead_s(settings.runtime)
    if settings.gpu:
        params["gpus_per_node"] = settings.gpu
    for key, name in (("slurm_partition", "partition"), ("slurm_account", "account"), ("qos", "qos"),
                      ("constraint", "constraint")):
        if getattr(settings, key):
            params[name] = getattr(settings, key)
    if plan.exclude:
        params["exclude"] = ",".join(plan.exclude)
    if comment:
        params["comment"] = comment
    if settings.sbatch_options():
        params["additional_parameters"] = settings.sbatch_options()
    return params


class SlurmBackend(Backend):
    """sbatch through submitit; squeue while waiting (backing off), sacct (read until two reads agree) after."""

    cluster = "slurm"
    where = "Slurm job"

    def executor(self, folder: Path, plan: Plan, job_name: str, comment: str | None) -> Any:
        """A submitit executor for one submission (one job, or one array with ``executor.batch()``)."""
        folder.mkdir(parents=True, exist_ok=True)
        ex = _slurm_executor_class()(folder=folder, max_num_timeout=0, python=self.settings.python)
        ex.update_parameters(**slurm_parameters(self.settings, plan, job_name, comment))
        return ex

    def submit(self, plan: Plan, folder: Path, job_name: str, comment: str, fn: Callable[..., Any],
               *args: Any) -> str:
        from ired.dispatch.submission import submit_patiently

        ex = self.executor(folder, plan, job_name, comment)
        return str(submit_patiently(lambda: ex.submit(fn, *args), self.settings, 1, job_name).job_id)

    def find_job(self, job_name: str, comment: str, array_index: int | None = None) -> str | None:
        return sacct.find_job(job_name, comment, index=array_index)

    def is_active(self, job_id: str) -> bool:
        return sacct.squeue_state(job_id) is not None

    def wait(self, job_id: str, folder: Path | None = None, stop: Callable[[], bool] | None = None) -> None:
        """Poll ``squeue``, backing off from ``first_poll_s`` to ``max_poll_s``; stop as soon as the job's result
        file (submitit's pickle, in ``folder``) exists, whatever the queue still says (a requeued or completing job
        can linger there for minutes), or ``stop()`` is true (``ired cancel``)."""
        checks: list[Callable[[], bool]] = [stop] if stop is not None else []
        if folder is not None:
            from submitit.core.utils import JobPaths

            checks.append(JobPaths(folder, job_id=job_id, task_id=0).result_pickle.exists)
        sacct.wait_until_left_queue(job_id, self.settings.first_poll_s, self.settings.max_poll_s,
                                    done=lambda: any(check() for check in checks))

    def cancel(self, job_ids: list[str]) -> bool:
        return sacct.scancel([str(j) for j in job_ids])

    def accounting(self, job_id: str) -> list[sacct.SacctRow]:
        return sacct.read_final(job_id)


# --------------------------------------------------------------------------------------------------
# Local processes
# --------------------------------------------------------------------------------------------------


def local_alive(job_id: str) -> bool:
    """A local job's controller process is alive (not a zombie) and is submitit's."""
    proc = Path("/proc") / str(job_id)
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z" and b"submitit" in cmdline


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


def _wait_child(job_id: str) -> bool:
    """Wait for (and reap) our own child process ``job_id``; False when it is not our child (or not a pid)."""
    try:
        os.waitpid(int(job_id), 0)
    except ChildProcessError:
        return False  # started by another process: the caller polls
    except ValueError:
        return False
    return True


#: A local job's "no time limit" (submitit's local executor always applies one): a year.
LOCAL_NO_LIMIT_MIN = 60 * 24 * 365


class LocalBackend(Backend):
    """A subprocess on this machine (submitit's LocalExecutor); the job id is its controller's pid."""

    cluster = "local"
    where = "local job"

    def submit(self, plan: Plan, folder: Path, job_name: str, comment: str, fn: Callable[..., Any],
               *args: Any) -> str:
        import submitit

        folder.mkdir(parents=True, exist_ok=True)
        ex = submitit.LocalExecutor(folder=folder, max_num_timeout=0)
        limited = self.settings.local_runtime and self.settings.runtime is not None
        # submitit's local executor sets CUDA_VISIBLE_DEVICES to the first gpus_per_node devices (every job on device
        # 0) and kills a job after timeout_min: no GPUs here (the job takes its own device,
        # :mod:`ired.dispatch.gpu_slots`) and no time limit unless asked for (local_runtime)
        ex.update_parameters(timeout_min=self.settings.runtime if limited else LOCAL_NO_LIMIT_MIN, gpus_per_node=0)
        extra = job_environment(self.settings.gpu, self.settings.local_gpus)
        saved = {key: os.environ.get(key) for key in extra}
        os.environ.update(extra)  # submitit's local controller copies this process's environment
        try:
            return str(ex.submit(fn, *args).job_id)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def is_active(self, job_id: str) -> bool:
        return local_alive(job_id)

    def wait(self, job_id: str, folder: Path | None = None, stop: Callable[[], bool] | None = None) -> None:
        """A job this process started is its child: ``waitpid`` returns the moment it ends (no polling delay, which
        matters for the many seconds-long jobs of a laptop run; ``ired cancel`` kills it, which ends the wait). A job
        started by an earlier head (after a re-attach) is polled through ``/proc``."""
        if _wait_child(job_id):
            return
        delay = self.settings.first_poll_s
        while local_alive(job_id) and not (stop is not None and stop()):
            time.sleep(delay)
            delay = min(self.settings.max_poll_s, delay * 1.5)

    def cancel(self, job_ids: list[str]) -> bool:
        """Kill each job's process tree (SIGKILL; a local job has no scheduler to ask)."""
        asked = False
        for job_id in job_ids:
            if not local_alive(job_id):
                continue
            for pid in [*descendants(int(job_id)), int(job_id)]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            _wait_child(job_id)
            asked = True
        return asked

    def fallback(self, succeeded: bool, outcome: dict[str, Any]) -> tuple[str | None, str | None]:
        return ("COMPLETED" if succeeded else "FAILED"), outcome.get("node") or node_name()


def _tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _segment(rows: list[sacct.SacctRow], stderr_path: Path, node_failure_exit_codes: list[int]) -> Finished:
    """One earlier run of a job that Slurm requeued: what sacct says about it (its logs were overwritten)."""
    main = rows[0]
    evidence = Evidence(sacct=tuple(rows), node_failure_exit_codes=frozenset(node_failure_exit_codes))
    return Finished(False, None, evidence, main.state_text, f"{main.exit_code}:{main.signal}",
                    ",".join(main.nodes) or None, float(main.elapsed_s) if main.elapsed_s is not None else None,
                    stderr_path)
