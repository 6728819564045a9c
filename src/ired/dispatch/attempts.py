"""The dispatcher's records in a run folder: ``attempts.jsonl`` (history), ``job.json`` (the job in flight),
``cancel.json`` (a person asked, with ``ired cancel``, to stop that job) and the head's lock.

``attempts.jsonl`` gets one JSON row per real attempt (a job that Slurm requeued by itself is one attempt per
segment), appended once and fsynced, so a head process killed at any moment loses at most the attempt it was
waiting on, and that attempt's job id is in ``job.json``, written (atomically) before waiting: a rerun re-attaches
to it instead of submitting a duplicate, and the rows of one job are written in one append.

One head at a time drives a record folder: it holds ``dispatch/head.lock`` (an ``flock``, dropped by the kernel
however the head ends) while it submits and waits. ``ired cancel`` asks that head to stop through ``cancel.json``
and writes the ``interrupted`` row itself only when no head holds the lock (a killed head's jobs).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ired.dispatch.failures import FailureKind
from ired.runs.atomic import append_text, write_text_atomic
from ired.runs.paths import ATTEMPTS, JOB, dispatch_folder

ATTEMPTS_FILE = ATTEMPTS
JOB_FILE = JOB
CANCEL_FILE = "cancel.json"
HEAD_LOCK = "head.lock"  # in the record folder's dispatch/ (submitit's folder)


def head_alive(record_dir: Path) -> bool:
    """A live dispatcher head drives this record folder (it holds dispatch/HEAD_LOCK)."""
    from ired.runs.state import lock_holder

    return lock_holder(dispatch_folder(record_dir), HEAD_LOCK) is not None


@dataclass
class AttemptRow:
    """One attempt, as logged. Columns named in the dispatch issue come first."""

    attempt: int
    job_id: str
    node: str | None
    state: str | None  # sacct State of the job (local executor: submitit's state)
    exit_code: str | None  # sacct "code:signal", or the trainer's return code
    failure_kind: str | None  # None when the attempt succeeded
    action: str  # what the dispatcher did next, one line
    micro_batch: int | None
    accumulation: int | None
    wall_time_s: float | None
    reason: str | None = None  # the classification rule that matched
    exclude: list[str] = field(default_factory=list)
    mem_gb: float | None = None
    negatives_steps: int | None = None
    buffer_size: int | None = None
    cluster: str | None = None
    log: str | None = None  # the job's stderr log
    final: bool = False  # the dispatcher stopped here (done or gave up); a later invocation starts a new round
    step: int | None = None  # the run's newest checkpoint step once the attempt ended (a slice's progress)


@dataclass
class JobRecord:
    """The attempt being waited on. ``job_id`` is None between "about to submit" and "sbatch answered"."""

    attempt: int
    job_id: str | None
    job_name: str
    cluster: str
    folder: str  # submitit folder of the job (logs, pickles)
    plan: dict[str, Any]  # policy.Plan as a dict
    submitted_at: float
    comment: str | None = None  # the attempt's tag (sbatch --comment): finds a job whose id was never recorded
    array_index: int | None = None  # the run's task in the array named by ``comment`` (array submission)
    start_step: int | None = None  # the run's newest checkpoint step when the attempt was planned


def append_attempts(run_dir: Path, rows: list[AttemptRow]) -> None:
    """Append the rows of one job in a single write (fsynced): a job's segments are logged together or not at all."""
    path = Path(run_dir) / ATTEMPTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    append_text(path, "".join(json.dumps(asdict(row), sort_keys=False) + "\n" for row in rows), fsync=True)


def append_attempt(run_dir: Path, row: AttemptRow) -> None:
    append_attempts(run_dir, [row])


def read_attempts(run_dir: Path) -> list[dict[str, Any]]:
    """Logged attempts, oldest first, by the library's one JSONL reader (:mod:`ired.runs.jsonl`): a torn last line
    (killed mid-write) is dropped, a corrupt earlier line is a one-line error naming the file and line."""
    from ired.runs.jsonl import read_jsonl

    return read_jsonl(Path(run_dir) / ATTEMPTS_FILE)


def write_job_record(run_dir: Path, record: JobRecord) -> None:
    write_text_atomic(Path(run_dir) / JOB_FILE, json.dumps(asdict(record), indent=1) + "\n")


def read_job_record(run_dir: Path) -> JobRecord | None:
    path = Path(run_dir) / JOB_FILE
    if not path.exists():
        return None
    try:
        return JobRecord(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError):
        return None


def in_flight(run_dir: Path) -> JobRecord | None:
    """The attempt whose job is (or may be) queued or running: ``job.json`` with no row for its attempt yet."""
    record = read_job_record(run_dir)
    if record is None:
        return None
    rows = read_attempts(run_dir)
    return None if any(r.get("attempt", 0) >= record.attempt for r in rows) else record


def interrupted_row(record: JobRecord, cancelled: bool, reason: str, action: str) -> AttemptRow:
    """The row of an attempt stopped on purpose: its job cancelled (or already gone), the run to be resumed."""
    plan = record.plan
    micro, batch = plan.get("micro_batch"), plan.get("batch_size")
    return AttemptRow(
        attempt=record.attempt, job_id=str(record.job_id or "-"), node=None, state="CANCELLED" if cancelled else None,
        exit_code=None, failure_kind=FailureKind.interrupted.value, action=action, micro_batch=micro,
        accumulation=batch // micro if micro and batch else None,
        wall_time_s=round(time.time() - record.submitted_at, 3), reason=reason,
        exclude=list(plan.get("exclude", ())), mem_gb=plan.get("mem_gb"), negatives_steps=plan.get("negatives_steps"),
        buffer_size=plan.get("buffer_size"), cluster=record.cluster, final=False)


def request_cancel(run_dir: Path, record: JobRecord, by: str) -> None:
    """Ask the head waiting on ``record``'s job to stop it (``cancel.json``; the head reads it while it waits)."""
    text = json.dumps({"attempt": record.attempt, "job_id": record.job_id, "by": by, "at": time.time()})
    write_text_atomic(Path(run_dir) / CANCEL_FILE, text + "\n")


def cancel_request(run_dir: Path, attempt: int) -> dict[str, Any] | None:
    """The request to stop ``attempt`` (None when there is none, or it is about another attempt)."""
    path = Path(run_dir) / CANCEL_FILE
    try:
        request = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return request if isinstance(request, dict) and request.get("attempt") == attempt else None


def clear_cancel_request(run_dir: Path) -> None:
    (Path(run_dir) / CANCEL_FILE).unlink(missing_ok=True)
