"""The dispatcher's records in a run folder: ``attempts.jsonl`` (history) and ``job.json`` (the job in flight).

``attempts.jsonl`` gets one JSON row per real attempt (a job that Slurm requeued by itself is one attempt per
segment), appended once and fsynced, so a head process killed at any moment loses at most the attempt it was
waiting on, and that attempt's job id is in ``job.json``, written (atomically) before waiting: a rerun re-attaches
to it instead of submitting a duplicate, and the rows of one job are written in one append.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ired.atomic import write_text_atomic

ATTEMPTS_FILE = "attempts.jsonl"
JOB_FILE = "job.json"


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


def append_attempts(run_dir: Path, rows: list[AttemptRow]) -> None:
    """Append the rows of one job in a single write (fsynced): a job's segments are logged together or not at all."""
    path = Path(run_dir) / ATTEMPTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write("".join(json.dumps(asdict(row), sort_keys=False) + "\n" for row in rows))
        fh.flush()
        os.fsync(fh.fileno())


def append_attempt(run_dir: Path, row: AttemptRow) -> None:
    append_attempts(run_dir, [row])


def read_attempts(run_dir: Path) -> list[dict[str, Any]]:
    """Logged attempts, oldest first, by the library's one JSONL reader (:mod:`ired.jsonl`): a torn last line
    (killed mid-write) is dropped, a corrupt earlier line is a one-line error naming the file and line."""
    from ired.jsonl import read_jsonl

    return read_jsonl(Path(run_dir) / ATTEMPTS_FILE)


def write_job_record(run_dir: Path, record: JobRecord) -> None:
    write_text_atomic(Path(run_dir) / JOB_FILE, json.dumps(asdict(record), indent=1) + "\n", fsync=True)


def read_job_record(run_dir: Path) -> JobRecord | None:
    path = Path(run_dir) / JOB_FILE
    if not path.exists():
        return None
    try:
        return JobRecord(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError):
        return None
