"""The dispatch loop: submit an attempt, wait for it for good, classify, decide, log, repeat.

Two kinds of work use it: training runs (:func:`run_training`, a run folder filled by ``ired train``; OOM
fallbacks rewrite the attempt's config) and any picklable function (:func:`dispatch`, e.g. a cross-evaluation
job; only resources can change between attempts). Both keep their records in the run folder: ``job.json`` (the
attempt in flight, written before waiting) and ``attempts.jsonl`` (one row per real attempt, appended once), so
rerunning the same command after the head process died re-attaches instead of submitting a duplicate.

Done is done. A pipeline (Snakemake) reruns a job whose head died or was stopped, and first deletes the outputs
that job declared. So the dispatcher (1) reads ``job.json`` before anything else: an attempt still in flight, or
one that finished while no head was watching, is collected, never submitted again; (2) collects a *finished* run
(completed or diverged, nothing in flight) without any job, restoring ``final.pt`` from the run's own checkpoint
when it is gone; (3) trains afresh only when asked to (``force``: the pipeline's ``--forcerun``) or when the run
folder holds a run of another config (the config is the run's identity). A head stopped by Ctrl-C
(:func:`stop_on_signals`) cancels the job it waits on, logs an ``interrupted`` attempt and says so; the next
command resumes the run from its newest checkpoint. A head sent SIGHUP or SIGTERM (a logout) lets go instead: the
job runs on and the next command re-attaches. A job that Slurm requeued by itself (same job id) is logged as one
attempt per segment, read from ``sacct -D`` (``preempted``). A time limit or a preemption ends a *slice*: the
trainer checkpointed, the attempt is logged ``timeout`` / ``preempted`` with its newest checkpoint ``step``, and the
run is resubmitted while slices advance it (:mod:`ired.dispatch.policy`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

from ired.dispatch.attempts import (
    HEAD_LOCK,
    AttemptRow,
    JobRecord,
    append_attempts,
    cancel_request,
    clear_cancel_request,
    interrupted_row,
    read_attempts,
    read_job_record,
    write_job_record,
)
from ired.dispatch import ladder
from ired.dispatch.executor import HeadDetached
from ired.dispatch.failures import CLASSIFIED_KINDS, FailureKind, classify
from ired.dispatch.policy import SLICE_KINDS, Plan, decide
from ired.dispatch.settings import DispatchSettings
from ired.core.errors import DispatchError, IredError

log = logging.getLogger("ired.dispatch")

DISPATCH_DIR = "dispatch"  # submitit's folder inside the run folder: job scripts, pickles, logs, outcomes


@dataclass
class DispatchResult:
    run_dir: Path
    attempts: list[dict[str, Any]]
    result: Any = None  # what the job function returned (training: its outcome dict)
    reattached: bool = False  # waited on a job submitted by an earlier head process
    skipped: bool = False  # nothing to do: the run had already finished (completed or diverged); collected
    restarted: bool = False  # forced, or another config: the folder's checkpoints were dropped to train afresh
    diverged: bool = False  # the run diverged and was kept as a result (keep_diverged)


class _Task:
    """What differs between a training run and a plain function call."""

    name: str

    def initial_plan(self, settings: DispatchSettings) -> Plan:
        raise NotImplementedError

    def job(self, plan: Plan, attempt: int) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        raise NotImplementedError

    def run_status(self, since: float | None) -> tuple[str | None, str | None]:
        return (None, None)

    def confirms_success(self) -> bool:
        """The job function returned; does the task's own record agree that the work is done?"""
        return True

    def on_success(self) -> None:
        """Called once the success is confirmed, before it is logged: put the task's outputs in order."""

    def logs(self) -> list[Path]:
        return []

    def checkpoint_step(self) -> int | None:
        """The step the next attempt would resume from (None: the task keeps no checkpoints)."""
        return None


def job_label(run_dir: Path) -> str:
    """``<scale>-<run>`` for a run folder ``results/<scale>/<run>``; ``<scale>-<run>.<job>`` for the record folder
    of another job of the run (``results/<scale>/<run>/dispatch/eval-last`` -> ``tiny-q101-s0.eval-last``)."""
    run_dir = Path(run_dir)
    if run_dir.parent.name == DISPATCH_DIR:
        owner = run_dir.parent.parent
        return f"{owner.parent.name}-{owner.name}.{run_dir.name}"
    return f"{run_dir.parent.name}-{run_dir.name}"


def job_name(settings: DispatchSettings, run_dir: Path) -> str:
    """The Slurm job name of every attempt of the run: ``ired-<scale>-<run>`` (``squeue -n``/``scancel -n`` select a
    run's job, whatever its attempt; the attempt is in the job's comment, :func:`attempt_tag`)."""
    return f"{settings.job_name_prefix}-{job_label(run_dir)}"


def attempt_tag(run_dir: Path, attempt: int) -> str:
    """The job's comment: ``ired:<hash of the record folder>:a<attempt>``. Unique per folder and attempt, it finds a
    job whose id was never recorded (the head died right after sbatch) without taking another checkout's job."""
    return f"ired:{hashlib.sha1(str(run_dir).encode()).hexdigest()[:10]}:a{attempt}"


def _row(attempt: int, job_id: str, fin: Any, plan: Plan, settings: DispatchSettings, kind: str | None,
         reason: str | None, action: str, final: bool, step: int | None = None) -> AttemptRow:
    return AttemptRow(
        attempt=attempt,
        job_id=job_id,
        node=fin.node,
        state=fin.state,
        exit_code=fin.exit_code,
        failure_kind=kind,
        action=action,
        micro_batch=plan.micro_batch,
        accumulation=plan.accumulation,
        wall_time_s=fin.wall_time_s,
        reason=reason,
        exclude=list(plan.exclude),
        mem_gb=plan.mem_gb,
        negatives_steps=plan.negatives_steps,
        buffer_size=plan.buffer_size,
        cluster=settings.cluster,
        log=str(fin.stderr_path),
        final=final,
        step=step,
    )


def _current_round(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows since the last final one (done or given up): a new invocation after a final row starts afresh."""
    start = 0
    for i, row in enumerate(rows):
        if row.get("final"):
            start = i + 1
    return rows[start:]


def drive(task: _Task, settings: DispatchSettings, run_dir: Path) -> DispatchResult:
    """Run ``task`` until it succeeds for good or the policy gives up (raises :class:`DispatchError`).

    Holds the record folder's head lock throughout: a second head on the same run stops at once, in one line."""
    from ired.runs.state import RunLock

    run_dir = Path(run_dir).resolve()
    folder = run_dir / DISPATCH_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with RunLock(folder, name=HEAD_LOCK, doing="dispatched"):
        return _drive(task, settings, run_dir, folder)


def _drive(task: _Task, settings: DispatchSettings, run_dir: Path, folder: Path) -> DispatchResult:
    from ired.dispatch.backends import backend

    be = backend(settings, run_dir)
    record = read_job_record(run_dir)
    last_logged = max((r["attempt"] for r in read_attempts(run_dir)), default=0)
    reattached = False
    if record is not None and record.attempt > last_logged and record.cluster == settings.cluster:
        plan = Plan(**{**record.plan, "exclude": tuple(record.plan.get("exclude", ()))})
        attempt = record.attempt
    else:
        plan, moved = ladder.resume(task.initial_plan(settings), run_dir)
        if moved:
            log.info("%s: %s", task.name, moved)
        attempt = last_logged + 1
        record = None
    name = job_name(settings, run_dir)
    while True:
        tag = attempt_tag(run_dir, attempt)
        stop = lambda: cancel_request(run_dir, attempt) is not None  # noqa: E731 - `ired cancel` asked to stop
        if record is not None and record.job_id is not None:
            current = record
            state = "still queued or running" if be.is_active(record.job_id) else "finished meanwhile"
            log.info("%s: re-attaching to attempt %d, job %s (%s)", task.name, attempt, record.job_id, state)
            reattached = True
        else:
            # a planned attempt whose id was never recorded: the head may have died right after sbatch
            found = (be.find_job(record.job_name, record.comment or tag, record.array_index)
                     if record is not None else None)
            if found:
                current = replace(record, job_id=found)
                write_job_record(run_dir, current)
                reattached = True
                log.info("%s: attempt %d: adopting job %s found by its name %s and comment %s", task.name, attempt,
                         found, record.job_name, record.comment)
            else:
                current = JobRecord(attempt, None, name, settings.cluster, str(folder), _plan_dict(plan),
                                    time.time(), tag, start_step=task.checkpoint_step())
                write_job_record(run_dir, current)  # the plan and the name are on disk before sbatch runs
                fn, args = task.job(plan, attempt)
                try:
                    sub = be.request(run_dir, current, plan, folder, name, tag, fn, args, stop=stop)
                except KeyboardInterrupt:  # stopped while its request waited for an array
                    _stop(task, be, run_dir, current)
                    raise
                if sub is None:  # `ired cancel` before the request was submitted
                    _stopped(task, run_dir, current, None)
                current = replace(current, job_id=sub.job_id, folder=str(sub.folder), job_name=sub.job_name,
                                  comment=sub.comment, array_index=sub.array_index)
                write_job_record(run_dir, current)
                log.info("%s: attempt %d submitted as %s job %s (logs %s)", task.name, attempt, settings.cluster,
                         sub.job_id, sub.folder)
        job_id, submitted_at, job_folder = str(current.job_id), current.submitted_at, Path(current.folder)
        try:
            be.wait(job_id, job_folder, stop=stop)
            if stop():  # `ired cancel`: make sure the job is gone
                be.cancel([job_id])
                be.wait(job_id, job_folder)
        except HeadDetached:  # SIGHUP / SIGTERM: a logout, a head job at its limit: the job runs on
            _detach(task, be, current)
            raise
        except KeyboardInterrupt:  # Ctrl-C
            _stop(task, be, run_dir, current)
            raise
        fin = be.gather(job_folder, job_id, settings.retry.node_failure_exit_codes, task.run_status(submitted_at),
                        submitted_at)
        rows_round = _current_round(read_attempts(run_dir))
        # Slurm requeued the job by itself (same id): each earlier segment was a real attempt, logged with the last
        requeued = []
        for seg in fin.requeued:
            seg_cls = classify(seg.evidence)
            kind = seg_cls.kind
            # NODE_FAIL, TIMEOUT, PREEMPTED ... classify as usual; a plain REQUEUED (scontrol requeue, a lost batch
            # step) shows only the cancelled batch step, which is not a person's scancel: say what it was
            label = FailureKind.preempted.value if (seg.state or "").startswith("REQUEUED") else kind.value
            requeued.append(_row(attempt, job_id, seg, plan, settings, label, seg_cls.reason,
                                 "requeued by Slurm itself (same job id)", final=False))
            if kind is FailureKind.node_failure and seg.node:
                plan = replace(plan, exclude=tuple(dict.fromkeys([*plan.exclude, *seg.node.split(",")])))
            attempt += 1
        if requeued:
            log.warning("%s: job %s was requeued by Slurm %d time(s): %s", task.name, job_id, len(requeued),
                        "; ".join(f"{r.state} on {r.node}" for r in requeued))
        if fin.succeeded and task.confirms_success():
            task.on_success()  # before the "done" row: a head dying in between re-collects and repeats this
            append_attempts(run_dir, [*requeued,
                                      _row(attempt, job_id, fin, plan, settings, None, None, "done", final=True)])
            clear_cancel_request(run_dir)  # the job had finished before it could be stopped
            return DispatchResult(run_dir, read_attempts(run_dir), fin.result, reattached)
        request = cancel_request(run_dir, current.attempt)
        if request is not None:
            _stopped(task, run_dir, replace(current, attempt=attempt), fin, requeued, request)
        cls = classify(fin.evidence)
        previous = [FailureKind(r["failure_kind"]) for r in rows_round if r.get("failure_kind") in _KINDS]
        previous += [FailureKind(r.failure_kind) for r in requeued if r.failure_kind in _KINDS]
        nodes = tuple(n for n in (fin.node or "").split(",") if n)
        step = task.checkpoint_step()
        stalled = _stalled(rows_round, current.start_step, step) if cls.kind in SLICE_KINDS else 0
        decision = decide(cls.kind, plan, previous, nodes, settings.retry, stalled)
        append_attempts(run_dir, [*requeued, _row(attempt, job_id, fin, plan, settings, cls.kind.value, cls.reason,
                                                  decision.action, final=not decision.retry, step=step)])
        log.warning("%s: attempt %d (job %s on %s) failed: %s (%s); %s", task.name, attempt, job_id, fin.node,
                    cls.kind.value, cls.reason, decision.action)
        if decision.retry and decision.action.startswith("oom ladder"):
            ladder.remember(run_dir, decision.plan, decision.action)  # the next invocation continues from here
        if not decision.retry:
            logs = ", ".join(str(p) for p in [fin.stderr_path, *task.logs()])
            raise DispatchError(
                f"{task.name}: attempt {attempt} (job {job_id}) failed: {cls.kind.value} ({cls.reason}); "
                f"{decision.action}. Logs: {logs}; attempts: {run_dir / 'attempts.jsonl'}",
                cls.kind,
            )
        plan, attempt = decision.plan, attempt + 1
        record = JobRecord(attempt, None, name, settings.cluster, str(folder), _plan_dict(plan), time.time(),
                           attempt_tag(run_dir, attempt), start_step=task.checkpoint_step())
        write_job_record(run_dir, record)  # a head dying before the next sbatch resumes with this plan


STOPPED_ACTION = "stopped on purpose: job cancelled; the next command resumes the run"


def _stopped(task: _Task, run_dir: Path, record: JobRecord, fin: Any, requeued: list[AttemptRow] = (),
             request: dict[str, Any] | None = None) -> None:
    """`ired cancel` stopped this attempt (``fin``: how its job ended; None: stopped before submission): log it
    as interrupted, drop the request, raise the one-line stop."""
    request = request or cancel_request(run_dir, record.attempt) or {}
    by = request.get("by", "ired cancel")
    row = interrupted_row(record, cancelled=True, reason=f"stopped by {by}", action=STOPPED_ACTION)
    if fin is not None:
        row.node, row.state, row.exit_code = fin.node, fin.state or row.state, fin.exit_code
    append_attempts(run_dir, [*requeued, row])
    clear_cancel_request(run_dir)
    what = f"job {record.job_id}" if record.job_id else "its request (not submitted yet)"
    raise DispatchError(f"{task.name}: stopped by {by}: {what} (attempt {record.attempt}) cancelled and marked "
                        f"interrupted in {run_dir / 'attempts.jsonl'}; the next command resumes it", stopped=True)


_KINDS = {k.value for k in CLASSIFIED_KINDS}  # the failures of a run (not those the dispatcher writes)


def _stalled(rows: list[dict[str, Any]], start: int | None, end: int | None) -> int:
    """How many slices in a row, the one that just ended included, left no newer checkpoint: 0 when it advanced
    the run (``end`` past ``start``, the newest checkpoint when it was planned)."""
    if end is not None and (start is None or end > start):
        return 0
    stalled = 1
    for row in reversed(rows):
        if row.get("failure_kind") not in SLICE_KINDS or row.get("step") != end:  # StrEnum: the logged text
            break
        stalled += 1
    return stalled


def stop_on_signals() -> None:
    """Ctrl-C (SIGINT) stops this head and cancels the job in flight (logged as interrupted); SIGHUP and SIGTERM (a
    logout, a head that is itself a Slurm job at its limit, Snakemake passing SIGTERM on) make the head let go:
    :class:`HeadDetached`, the job runs on, ``job.json`` keeps it, and the next command re-attaches.

    SIGINT is set explicitly too: a process started in the background of a non-interactive shell inherits it
    ignored, and a head must stop however it was started.
    """

    def detach(signum: int, frame: Any) -> None:
        for sig in (signal.SIGTERM, signal.SIGHUP):  # once: a second signal must not cut the letting go short
            signal.signal(sig, signal.SIG_IGN)
        raise HeadDetached(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, detach)


def detach_on_signals(marker: bytes) -> None:
    """For the pipeline head (Snakemake's own process, from ``onstart``): on SIGTERM or SIGHUP, first pass SIGTERM
    to every descendant whose command line contains ``marker`` (the rule scripts, which then let go of their jobs:
    :func:`stop_on_signals`), then do what Snakemake does on SIGTERM (stop scheduling, wait for the running jobs,
    release its lock). Snakemake has no handler of SIGHUP, whose default would kill it and leave its lock behind.
    Call from the main thread."""
    from ired.dispatch.executor import descendants

    previous = signal.getsignal(signal.SIGTERM)

    def let_go(signum: int, frame: Any) -> None:
        for pid in descendants(os.getpid()):
            try:
                if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        if callable(previous):
            previous(signum, frame)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, let_go)


def _detach(task: _Task, be: Any, record: JobRecord) -> None:
    """The head was told to let go (SIGHUP/SIGTERM) while waiting: leave the job running and ``job.json`` in place;
    no attempt row (the attempt is still in flight), so the next command re-attaches to it."""
    message = (f"ired: {task.name}: the head let go (SIGHUP/SIGTERM): {be.where} {record.job_id} (attempt "
               f"{record.attempt}) keeps running; the same command re-attaches to it")
    log.warning(message)
    say(message)


def say(message: str) -> None:
    """A line on the terminal (not only in the rule's log); nothing when the terminal is gone (a logout)."""
    try:
        print(message, file=sys.__stderr__, flush=True)
    except (OSError, ValueError):
        pass


def _stop(task: _Task, be: Any, run_dir: Path, record: JobRecord) -> None:
    """The head was stopped while waiting: cancel the job it submitted, log the attempt as interrupted, say so."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the bookkeeping short
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    where = be.where
    cancelled = be.cancel([str(record.job_id)]) if record.job_id else False
    append_attempts(run_dir, [interrupted_row(
        record, cancelled, reason="SIGINT/SIGTERM to the pipeline head",
        action="the head was stopped: job cancelled; the next command resumes the run")])
    clear_cancel_request(run_dir)
    message = (f"ired: {task.name}: stopped; cancelled {where} {record.job_id} (attempt {record.attempt}), marked "
               f"interrupted in {run_dir / 'attempts.jsonl'}; the next command resumes it from its newest checkpoint")
    log.warning(message)
    say(message)  # the terminal, not only the rule's log


def _plan_dict(plan: Plan) -> dict[str, Any]:
    d = asdict(plan)
    d["exclude"] = list(plan.exclude)
    return d


# --------------------------------------------------------------------------------------------------
# Training runs
# --------------------------------------------------------------------------------------------------


class _TrainTask(_Task):
    def __init__(self, config_path: Path, run_dir: Path) -> None:
        from ired.core.config import build_config, read_yaml

        self.base = read_yaml(config_path)
        self.cfg = build_config(self.base, str(config_path))  # a config error stops here, before any job
        self.config_path = config_path
        self.run_dir = run_dir
        self.name = self.cfg.name

    def initial_plan(self, settings: DispatchSettings) -> Plan:
        cfg = self.cfg
        contrastive = cfg.objective.contrastive  # draws negatives: their fallbacks apply
        return Plan(
            mem_gb=settings.mem_gb,
            micro_batch=cfg.train.effective_micro_batch,
            batch_size=cfg.train.batch_size,
            negatives_steps=cfg.negatives.steps if contrastive else None,
            buffer_size=cfg.negatives.buffer_size if contrastive and cfg.negatives.name == "replay" else None,
        )

    def attempt_config(self, plan: Plan, attempt: int) -> Path:
        """The attempt's config file: the run's config with the plan's fallbacks applied, validated here."""
        from ired.core.config import build_config, deep_merge, dump_config

        over: dict[str, Any] = {}
        if plan.micro_batch is not None and plan.micro_batch != self.cfg.train.effective_micro_batch:
            over.setdefault("train", {})["micro_batch"] = plan.micro_batch
        if plan.negatives_steps is not None and plan.negatives_steps != self.cfg.negatives.steps:
            over.setdefault("negatives", {})["steps"] = plan.negatives_steps
        if plan.buffer_size is not None and plan.buffer_size != self.cfg.negatives.buffer_size:
            over.setdefault("negatives", {})["buffer_size"] = plan.buffer_size
        cfg = build_config(deep_merge(self.base, over), f"{self.config_path} (attempt {attempt})")
        path = self.run_dir / DISPATCH_DIR / f"attempt_{attempt}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_config(cfg))
        return path

    def job(self, plan: Plan, attempt: int) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        from ired.dispatch.jobs import run_trainer

        return run_trainer, (str(self.attempt_config(plan, attempt)), str(self.run_dir))

    def status(self) -> dict[str, Any]:
        try:
            return json.loads((self.run_dir / "status.json").read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def run_status(self, since: float | None) -> tuple[str | None, str | None]:
        path = self.run_dir / "status.json"
        if not path.exists() or (since is not None and path.stat().st_mtime < since - 1):
            return (None, None)  # stale: written by an earlier attempt
        st = self.status()
        detail = st.get("detail")
        if st.get("status") == "diverged" and st.get("diverged_at") is not None:
            detail = f"diverged at step {st['diverged_at']}" + (f": {detail}" if detail else "")
        return (st.get("status"), detail)

    def confirms_success(self) -> bool:
        return self.status().get("status") == "completed"

    def other_config(self) -> list[str]:
        """Keys (dotted) in which the run in the folder differs from this config; [] when it is this run or none.

        Resource knobs (micro-batch, threads, device, fault injection ...) do not count: the trainer's own rule
        for "same run" (:func:`ired.core.config.config_differences`).
        """
        done = self.run_dir / "resolved_config.yaml"
        if not done.exists():
            return []
        from ired.core.config import config_differences, read_yaml

        try:
            return config_differences(read_yaml(done), self.cfg.to_dict())
        except IredError:
            return ["resolved_config.yaml (unreadable)"]

    def finished(self) -> str | None:
        """``completed`` or ``diverged`` when ``status.json`` says the run has ended, else None."""
        st = self.status().get("status")
        return st if st in ("completed", "diverged") else None

    def on_success(self) -> None:
        """A completed attempt whose ``final.pt`` is gone gets it back from the final step checkpoint.

        That happens when the job finished while no head watched it and the rerun's Snakemake, which deletes an
        incomplete job's outputs before running it again, removed the file. The trainer saves the state of its last
        step to ``checkpoints/step_<steps>.pt`` as well as to ``final.pt`` and never prunes it; copying it back
        costs nothing and runs no job.
        """
        final = self.run_dir / "final.pt"
        if final.exists():
            return
        from ired.runs.checkpoint_format import step_path, verify_checkpoint  # no torch in the head
        from ired.core.errors import CheckpointError

        source = step_path(self.run_dir / "checkpoints", int(self.status()["step"]))
        if not source.exists():
            raise DispatchError(f"{self.name}: the job completed but {final} and {source} are both missing; "
                                f"rerun to train again (attempts: {self.run_dir / 'attempts.jsonl'})")
        try:
            verify_checkpoint(source)
        except CheckpointError as exc:
            raise DispatchError(f"{self.name}: the job completed but {final} is missing and its copy is damaged "
                                f"({exc}); `snakemake --forcerun {final}` trains it again") from None
        _copy_atomically(source, final)
        log.info("%s: %s was removed after its job completed (a rerun of an interrupted pipeline job); restored "
                 "from %s", self.name, final, source)

    def collect(self, previous: str) -> None:
        """A finished run is run again (e.g. after an interrupted head): keep it; put back a ``final.pt`` that
        Snakemake deleted before rerunning the job, from the run's own checkpoint. No job, no attempt row."""
        final = self.run_dir / "final.pt"
        if final.exists():
            log.info("%s: already %s; nothing to do", self.name, previous)
            return
        if previous == "completed":
            self.on_success()
        else:
            self.keep_diverged(DispatchError(f"{self.name}: diverged earlier", FailureKind.diverged))
        log.info("%s: already %s; %s restored from its own checkpoint, nothing trained", self.name, previous, final)

    def drop_result(self, why: str) -> bool:
        """Forget the run in the folder so that this config trains from step 0: remove ``checkpoints/``,
        ``final.pt`` and ``status.json``. True when there was anything to drop.

        The rest stays: ``attempts.jsonl`` keeps the history, the trainer starts ``metrics.jsonl`` afresh, and
        ``train.log`` keeps growing.
        """
        final, checkpoints, status = (self.run_dir / n for n in ("final.pt", "checkpoints", "status.json"))
        if not (final.exists() or checkpoints.exists() or status.exists()):
            return False
        log.warning("%s: %s: deleting %s and %s to train afresh", self.name, why, checkpoints, final)
        shutil.rmtree(checkpoints, ignore_errors=True)
        final.unlink(missing_ok=True)
        status.unlink(missing_ok=True)
        return True

    def keep_diverged(self, error: DispatchError) -> Path:
        """Make the newest checkpoint before the divergence ``final.pt`` (unless the trainer wrote one)."""
        final = self.run_dir / "final.pt"
        if not final.exists():
            from ired.runs.checkpoint_format import newest_verified_checkpoint  # no torch in the head

            newest = newest_verified_checkpoint(self.run_dir / "checkpoints")
            if newest is None:
                raise DispatchError(f"{error} (no checkpoint was written before the divergence, so there is no "
                                    "final.pt to keep as its result)", FailureKind.diverged) from error
            _copy_atomically(newest, final)
            log.warning("%s; keeping %s as %s (status.json says diverged)", error, newest, final)
        return final

    def logs(self) -> list[Path]:
        return [self.run_dir / "train.log"]

    def checkpoint_step(self) -> int | None:
        from ired.runs.checkpoint_format import list_step_checkpoints  # no torch in the head

        found = list_step_checkpoints(self.run_dir / "checkpoints")
        return found[-1][0] if found else None


def _copy_atomically(source: Path, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, dest)


def run_training(config_path: str | Path, out_dir: str | Path, settings: DispatchSettings, *,
                 force: bool = False, retrain_changed: bool = False, keep_diverged: bool = False) -> DispatchResult:
    """Train ``config_path`` into ``out_dir`` through the dispatcher; blocks until the run has finished for good.

    An attempt in flight (``job.json``, e.g. from a head that was killed) is re-attached to, whatever else the
    folder says. Otherwise the folder decides, and only two things ever delete a result: ``force`` (the pipeline's
    ``--forcerun``: drop ``checkpoints/`` and ``final.pt`` and train from step 0), and a folder that holds a run of
    another config (its ``resolved_config.yaml`` differs in a key that changes results: the config is the run's
    identity, so the old run is dropped the same way). A finished run (completed or diverged) is collected: no
    job, ``final.pt`` restored from the run's own checkpoint when it is gone. Anything else resumes from the newest
    checkpoint. With ``keep_diverged`` a diverged run is a result, not an error: its newest checkpoint becomes
    ``final.pt`` and the result says ``diverged``. Raises :class:`ired.core.errors.ConfigError` (before any job) for an
    invalid config and :class:`DispatchError` when an attempt fails in a way the policy does not retry.
    """
    run_dir = Path(out_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    task = _TrainTask(Path(config_path).resolve(), run_dir)
    restarted = False
    if _settled(run_dir):
        changed = task.other_config()
        if force or (changed and retrain_changed):
            why = "forced" if force else f"its config changed ({', '.join(changed[:5])})"
            restarted = task.drop_result(why)
            if changed:
                ladder.forget(run_dir)  # another config, other memory needs; a forced retrain keeps its ladder
        elif task.finished() is not None and not changed:
            previous = task.finished()
            if previous == "completed" or keep_diverged:
                task.collect(previous)
                return DispatchResult(run_dir, read_attempts(run_dir), task.status(), skipped=True,
                                      diverged=previous == "diverged")
    try:
        result = drive(task, settings, run_dir)
    except DispatchError as exc:
        if not (keep_diverged and exc.kind is FailureKind.diverged):
            raise
        task.keep_diverged(exc)
        return DispatchResult(run_dir, read_attempts(run_dir), task.status(), restarted=restarted, diverged=True)
    result.restarted = restarted
    return result


def _settled(run_dir: Path) -> bool:
    """No attempt is in flight: every recorded job has its row in attempts.jsonl."""
    record = read_job_record(run_dir)
    rows = read_attempts(run_dir)
    return record is None or any(r["attempt"] >= record.attempt for r in rows)


# --------------------------------------------------------------------------------------------------
# Any function (cross-evaluation jobs)
# --------------------------------------------------------------------------------------------------


class _CallTask(_Task):
    def __init__(self, name: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.name, self.fn, self.args = name, fn, args

    def initial_plan(self, settings: DispatchSettings) -> Plan:
        return Plan(mem_gb=settings.mem_gb)

    def job(self, plan: Plan, attempt: int) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return self.fn, self.args


def dispatch(fn: Callable[..., Any], *args: Any, settings: DispatchSettings, run_dir: str | Path,
             name: str | None = None) -> Any:
    """Run ``fn(*args)`` as a job with the same retries, attempt log and re-attach as training; return its value.

    ``run_dir`` holds ``job.json``, ``attempts.jsonl`` and the job logs; use one folder per distinct call.
    """
    run_dir = Path(run_dir).resolve()
    task = _CallTask(name or getattr(fn, "__name__", "job"), fn, args)
    return drive(task, settings, run_dir).result
