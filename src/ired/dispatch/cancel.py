"""``ired cancel``: stop the jobs of the selected runs (and only those), and mark their attempts ``interrupted``.

For each record folder of a selected run with a job in flight (``job.json`` without its row), the request is
written first (``cancel.json``), then the job is cancelled: one ``scancel`` for every Slurm job, the process tree
of a local one. A head still waiting on the job (its ``dispatch/head.lock`` is held) sees the request, makes sure
the job is gone and writes the ``interrupted`` row itself; for a job whose head is gone (killed, logged out), this
command takes the head lock and writes the row. Either way the next pipeline command resumes the run from its
newest checkpoint, exactly as after a Ctrl-C.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ired.dispatch import sacct
from ired.dispatch.attempts import (
    HEAD_LOCK,
    JobRecord,
    append_attempts,
    clear_cancel_request,
    head_alive,
    in_flight,
    interrupted_row,
    read_attempts,
    request_cancel,
)
from ired.dispatch.failures import FailureKind
from ired.dispatch.runs import Run
from ired.runs.paths import dispatch_folder, is_eval_record

BY = "ired cancel"
ACTION = "cancelled by `ired cancel`; the next command resumes the run"


@dataclass
class Cancelled:
    run: str
    record_dir: Path
    record: JobRecord
    job_id: str | None
    outcome: str | None = None  # "interrupted"; "ended first (<action>)"; None: its head has not answered yet

    @property
    def what(self) -> str:
        """``training`` or the cross-evaluation's name (``eval-last``)."""
        return self.record_dir.name if is_eval_record(self.record_dir) else "training"


def _logged(target: Cancelled) -> str | None:
    """What the attempt's row says, once it is written: ``interrupted`` or ``ended first (<its action>)``."""
    rows = [r for r in read_attempts(target.record_dir) if r.get("attempt", 0) >= target.record.attempt]
    if not rows:
        return None
    if any(r.get("failure_kind") == FailureKind.interrupted for r in rows):
        return FailureKind.interrupted.value
    return f"ended first ({rows[-1].get('action')})"


def _mark_orphan(target: Cancelled) -> str | None:
    """No head waits on this job: write its interrupted row here, under the head lock (a head starting meanwhile
    finds the row and does not wait on the job). None when a head holds the lock: that head writes the row."""
    from ired.core.errors import RunFolderBusy
    from ired.runs.state import RunLock

    try:
        with RunLock(dispatch_folder(target.record_dir), wait_s=0.0, name=HEAD_LOCK, doing="dispatched"):
            current = in_flight(target.record_dir)
            if current is not None and current.attempt == target.record.attempt:
                if current.job_id is None:
                    current.job_id = target.job_id
                append_attempts(target.record_dir, [interrupted_row(current, cancelled=True,
                                                                    reason=f"stopped by {BY}", action=ACTION)])
            clear_cancel_request(target.record_dir)
            return _logged(target) or FailureKind.interrupted.value
    except RunFolderBusy:
        return None


def cancel_runs(runs: list[Run], wait_s: float = 60.0) -> list[Cancelled]:
    """Cancel every job in flight of ``runs``; wait up to ``wait_s`` for the waiting heads to log them."""
    from ired.dispatch.backends import backend_for

    targets = []
    for run in runs:
        for record_dir in run.record_dirs():
            record = in_flight(record_dir)
            if record is None:
                continue
            job_id = record.job_id
            if job_id is None and record.cluster == "slurm" and record.comment:  # sbatch answered, nobody recorded it
                job_id = sacct.find_job(record.job_name, record.comment, index=record.array_index)
            targets.append(Cancelled(run.name, record_dir, record, job_id))
    for target in targets:
        request_cancel(target.record_dir, target.record, BY)
    for cluster in sorted({t.record.cluster for t in targets}):  # one call per backend (one scancel for Slurm)
        backend_for(cluster).cancel([t.job_id for t in targets if t.record.cluster == cluster and t.job_id])
    deadline = time.monotonic() + wait_s
    waiting = targets
    while True:
        for target in waiting:
            target.outcome = _logged(target) or (None if head_alive(target.record_dir) else _mark_orphan(target))
        waiting = [t for t in waiting if t.outcome is None]
        if not waiting or time.monotonic() >= deadline:
            return targets
        time.sleep(0.2)
