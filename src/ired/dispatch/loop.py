"""The dispatch loop, one attempt per turn, in four named phases:

- **adopt** (:meth:`Loop.adopt`): an attempt already in flight, from an earlier head or from the last turn, is
  taken over instead of submitted again: ``job.json`` names its job, or the job of a planned attempt whose id
  was never recorded (the head died right after sbatch) is found by its name and comment;
- **submit** (:meth:`Loop.submit`): ``job.json`` holds the plan and the job's name before the backend submits,
  and the job id after; ``ired cancel`` before the submission stops here;
- **wait** (:meth:`Loop.wait`): until the job has ended for good, or ``ired cancel`` asks to stop it; Ctrl-C
  cancels the job and logs it ``interrupted``, SIGHUP/SIGTERM let it run on (:mod:`ired.dispatch.stopping`);
- **settle** (:meth:`Loop.settle`): how the job ended (the backend's evidence); the earlier runs of a job
  Slurm requeued by itself logged as attempts of their own; a success confirmed by the task and logged
  ``done``; otherwise the failure classified (:mod:`ired.dispatch.failures`), the policy's decision
  (:mod:`ired.dispatch.policy`) logged with the attempt, and the loop goes on with the next plan, or raises
  :class:`DispatchError`.

Each turn appends the rows of its job to ``attempts.jsonl`` in one write, after the job has ended;
``job.json`` says which attempt is in flight at every moment in between (:mod:`ired.dispatch.attempts`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ired.core.errors import DispatchError
from ired.dispatch import ladder
from ired.dispatch.attempts import (
    HEAD_LOCK,
    AttemptRow,
    JobRecord,
    append_attempts,
    cancel_request,
    clear_cancel_request,
    read_attempts,
    read_job_record,
    write_job_record,
)
from ired.dispatch.backends import backend
from ired.dispatch.executor import Finished, HeadDetached
from ired.dispatch.failures import FailureKind, classify
from ired.dispatch.history import attempt_row, current_round, previous_failures, stalled_slices
from ired.dispatch.naming import attempt_tag, job_name
from ired.dispatch.policy import SLICE_KINDS, Plan, decide
from ired.dispatch.settings import DispatchSettings
from ired.dispatch.stopping import end_by_interrupt, end_by_request, let_go
from ired.dispatch.tasks import Task
from ired.runs.paths import dispatch_folder

log = logging.getLogger("ired.dispatch")


@dataclass
class DispatchResult:
    run_dir: Path
    attempts: list[dict[str, Any]]
    result: Any = None  # what the job function returned (training: its outcome dict)
    reattached: bool = False  # waited on a job submitted by an earlier head process
    skipped: bool = False  # nothing to do: the run had already finished (completed or diverged); collected
    restarted: bool = False  # forced, or another config: the folder's checkpoints were dropped (train afresh)
    diverged: bool = False  # the run diverged and was kept as a result (keep_diverged)


@dataclass(frozen=True)
class Turn:
    """The attempt a turn of the loop drives: its number, its plan, and its ``job.json`` when one was written
    before the turn began (by an earlier head, or by the last turn before a retry)."""

    attempt: int
    plan: Plan
    record: JobRecord | None = None


def drive(task: Task, settings: DispatchSettings, run_dir: Path) -> DispatchResult:
    """Run ``task`` until it succeeds for good or the policy gives up (raises :class:`DispatchError`).

    Holds the record folder's head lock throughout: a second head on the same run stops at once, in one line.
    """
    from ired.runs.state import RunLock

    run_dir = Path(run_dir).resolve()
    folder = dispatch_folder(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with RunLock(folder, name=HEAD_LOCK, doing="dispatched"):
        return Loop(task, settings, run_dir, folder).run()


class Loop:
    """One head driving one record folder: ``run`` turns adopt-or-submit, wait and settle until the task is
    done.
    """

    def __init__(self, task: Task, settings: DispatchSettings, run_dir: Path, folder: Path) -> None:
        self.task, self.settings, self.run_dir, self.folder = task, settings, run_dir, folder
        self.be = backend(settings, run_dir)
        self.name = job_name(settings, run_dir)
        self.reattached = False  # waited on a job an earlier head submitted

    def run(self) -> DispatchResult:
        turn = self.first_turn()
        while True:
            stop = self.stop_requested(turn.attempt)
            current = self.adopt(turn) or self.submit(turn, stop)
            self.wait(current, stop)
            settled = self.settle(current, turn)
            if isinstance(settled, DispatchResult):
                return settled
            turn = settled

    def first_turn(self) -> Turn:
        """The attempt in flight that ``job.json`` names (none of its rows logged yet, same cluster), else the
        next attempt, its plan continuing the run's OOM ladder."""
        record = read_job_record(self.run_dir)
        last_logged = max((r["attempt"] for r in read_attempts(self.run_dir)), default=0)
        if record is not None and record.attempt > last_logged and record.cluster == self.settings.cluster:
            plan = Plan(**{**record.plan, "exclude": tuple(record.plan.get("exclude", ()))})
            return Turn(record.attempt, plan, record)
        plan, moved = ladder.resume(self.task.initial_plan(self.settings), self.run_dir)
        if moved:
            log.info("%s: %s", self.task.name, moved)
        return Turn(last_logged + 1, plan)

    def stop_requested(self, attempt: int) -> Callable[[], bool]:
        """``ired cancel`` asked to stop this attempt (``cancel.json``)."""
        return lambda: cancel_request(self.run_dir, attempt) is not None

    # ---- adopt

    def adopt(self, turn: Turn) -> JobRecord | None:
        """The turn's job when it already exists: recorded in ``job.json``, or found by the name and comment
        of a planned attempt whose id was never recorded. None: nothing to adopt, submit."""
        record = turn.record
        if record is None:
            return None
        if record.job_id is not None:
            state = "still queued or running" if self.be.is_active(record.job_id) else "finished meanwhile"
            log.info("%s: re-attaching to attempt %d, job %s (%s)", self.task.name, turn.attempt,
                     record.job_id, state)
            self.reattached = True
            return record
        # a planned attempt whose id was never recorded: the head may have died right after sbatch
        found = self.be.find_job(record.job_name, record.comment or attempt_tag(self.run_dir, turn.attempt),
                                 record.array_index)
        if not found:
            return None
        current = replace(record, job_id=found)
        write_job_record(self.run_dir, current)
        self.reattached = True
        log.info("%s: attempt %d: adopting job %s found by its name %s and comment %s", self.task.name,
                 turn.attempt, found, record.job_name, record.comment)
        return current

    # ---- submit

    def submit(self, turn: Turn, stop: Callable[[], bool]) -> JobRecord:
        """Submit the turn's attempt; ``job.json`` before (the plan and the name) and after (the job id)."""
        task, run_dir, attempt = self.task, self.run_dir, turn.attempt
        tag = attempt_tag(run_dir, attempt)
        current = JobRecord(attempt, None, self.name, self.settings.cluster, str(self.folder),
                            plan_dict(turn.plan), time.time(), tag, start_step=task.checkpoint_step())
        write_job_record(run_dir, current)  # the plan and the name are on disk before sbatch runs
        fn, args = task.job(turn.plan, attempt)
        try:
            sub = self.be.request(run_dir, current, turn.plan, self.folder, self.name, tag, fn, args,
                                  stop=stop)
        except KeyboardInterrupt:  # stopped while its request waited for an array
            end_by_interrupt(task.name, self.be, run_dir, current)
            raise
        if sub is None:  # `ired cancel` before the request was submitted
            end_by_request(task.name, run_dir, current, None)
        current = replace(current, job_id=sub.job_id, folder=str(sub.folder), job_name=sub.job_name,
                          comment=sub.comment, array_index=sub.array_index)
        write_job_record(run_dir, current)
        log.info("%s: attempt %d submitted as %s job %s (logs %s)", task.name, attempt, self.settings.cluster,
                 sub.job_id, sub.folder)
        return current

    # ---- wait

    def wait(self, current: JobRecord, stop: Callable[[], bool]) -> None:
        """Until the job has ended for good; ``ired cancel``: make sure it is gone. Ctrl-C cancels it and logs
        the attempt ``interrupted``; SIGHUP/SIGTERM leave it running for the next command (both re-raised)."""
        job_id, job_folder = str(current.job_id), Path(current.folder)
        try:
            self.be.wait(job_id, job_folder, stop=stop)
            if stop():  # `ired cancel`: make sure the job is gone
                self.be.cancel([job_id])
                self.be.wait(job_id, job_folder)
        except HeadDetached:  # SIGHUP / SIGTERM: a logout, a head job at its limit: the job runs on
            let_go(self.task.name, self.be, current)
            raise
        except KeyboardInterrupt:  # Ctrl-C
            end_by_interrupt(self.task.name, self.be, self.run_dir, current)
            raise

    # ---- settle

    def settle(self, current: JobRecord, turn: Turn) -> DispatchResult | Turn:
        """How the ended job went, logged: the result when it succeeded, else the next turn the policy decided
        on (raises :class:`DispatchError` when it gives up, or when ``ired cancel`` stopped the attempt)."""
        task, job_id = self.task, str(current.job_id)
        fin = self.be.gather(Path(current.folder), job_id, self.settings.retry.node_failure_exit_codes,
                             task.run_status(current.submitted_at), current.submitted_at)
        rows_round = current_round(read_attempts(self.run_dir))
        requeued, plan, attempt = self.requeued_runs(fin, job_id, turn.plan, turn.attempt)
        if fin.succeeded and task.confirms_success():
            return self.done(fin, job_id, requeued, plan, attempt)
        request = cancel_request(self.run_dir, current.attempt)
        if request is not None:
            end_by_request(task.name, self.run_dir, replace(current, attempt=attempt), fin, requeued, request)
        return self.next_turn(fin, current, rows_round, requeued, plan, attempt)

    def requeued_runs(self, fin: Finished, job_id: str, plan: Plan,
                      attempt: int) -> tuple[list[AttemptRow], Plan, int]:
        """Slurm requeued the job by itself (same id): each earlier run was a real attempt, logged with the
        last. Returns their rows, the plan (a failed node excluded) and the attempt number of the last run."""
        rows = []
        for seg in fin.requeued:
            seg_cls = classify(seg.evidence)
            kind = seg_cls.kind
            # NODE_FAIL, TIMEOUT, PREEMPTED ... classify as usual; a plain REQUEUED (scontrol requeue, a lost
            # batch step) shows only the cancelled batch step, not a person's scancel: say what it was
            label = FailureKind.preempted.value if (seg.state or "").startswith("REQUEUED") else kind.value
            rows.append(attempt_row(attempt, job_id, seg, plan, self.settings, label, seg_cls.reason,
                                    "requeued by Slurm itself (same job id)", final=False))
            if kind is FailureKind.node_failure and seg.node:
                plan = replace(plan, exclude=tuple(dict.fromkeys([*plan.exclude, *seg.node.split(",")])))
            attempt += 1
        if rows:
            log.warning("%s: job %s was requeued by Slurm %d time(s): %s", self.task.name, job_id, len(rows),
                        "; ".join(f"{r.state} on {r.node}" for r in rows))
        return rows, plan, attempt

    def done(self, fin: Finished, job_id: str, requeued: list[AttemptRow], plan: Plan,
             attempt: int) -> DispatchResult:
        """The task confirmed the success: its outputs put in order, then the ``done`` row (a head dying in
        between re-collects and repeats this)."""
        self.task.on_success()
        done = attempt_row(attempt, job_id, fin, plan, self.settings, None, None, "done", final=True)
        append_attempts(self.run_dir, [*requeued, done])
        clear_cancel_request(self.run_dir)  # the job had finished before it could be stopped
        return DispatchResult(self.run_dir, read_attempts(self.run_dir), fin.result, self.reattached)

    def next_turn(self, fin: Finished, current: JobRecord, rows_round: list[dict[str, Any]],
                  requeued: list[AttemptRow], plan: Plan, attempt: int) -> Turn:
        """The failure classified and decided on, logged with the attempt; the next turn's ``job.json``
        written (a head dying before the next sbatch resumes with this plan), or :class:`DispatchError` when
        it gives up."""
        task, run_dir, job_id = self.task, self.run_dir, str(current.job_id)
        cls = classify(fin.evidence)
        nodes = tuple(n for n in (fin.node or "").split(",") if n)
        step = task.checkpoint_step()
        stalled = stalled_slices(rows_round, current.start_step, step) if cls.kind in SLICE_KINDS else 0
        decision = decide(cls.kind, plan, previous_failures(rows_round, requeued), nodes, self.settings.retry,
                          stalled)
        row = attempt_row(attempt, job_id, fin, plan, self.settings, cls.kind.value, cls.reason,
                          decision.action, final=not decision.retry, step=step)
        append_attempts(run_dir, [*requeued, row])
        log.warning("%s: attempt %d (job %s on %s) failed: %s (%s); %s", task.name, attempt, job_id, fin.node,
                    cls.kind.value, cls.reason, decision.action)
        if decision.retry and decision.action.startswith("oom ladder"):
            ladder.remember(run_dir, decision.plan, decision.action)  # the next invocation goes on from here
        if not decision.retry:
            logs = ", ".join(str(p) for p in [fin.stderr_path, *task.logs()])
            raise DispatchError(
                f"{task.name}: attempt {attempt} (job {job_id}) failed: {cls.kind.value} ({cls.reason}); "
                f"{decision.action}. Logs: {logs}; attempts: {run_dir / 'attempts.jsonl'}",
                cls.kind,
            )
        attempt += 1
        record = JobRecord(attempt, None, self.name, self.settings.cluster, str(self.folder),
                           plan_dict(decision.plan), time.time(), attempt_tag(run_dir, attempt),
                           start_step=task.checkpoint_step())
        write_job_record(run_dir, record)  # a head dying before the next sbatch resumes with this plan
        return Turn(attempt, decision.plan, record)


def plan_dict(plan: Plan) -> dict[str, Any]:
    """A plan as ``job.json`` keeps it (the excluded nodes as a list)."""
    d = asdict(plan)
    d["exclude"] = list(plan.exclude)
    return d
