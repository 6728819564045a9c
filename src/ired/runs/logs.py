"""Every log of one run, in one list: what ``ired status --json`` (``logs``), ``ired logs RUN`` and the end-of-run
failure report name. A run's logs are written by four writers in three places; this module is where they are
found, in the order a reader wants them:

1. ``<run>/train.log``: the trainer's own lines (step, loss, ETA; integrity notices; why it stopped);
2. ``logs/<scale>/<rule>/<run>.log``: the pipeline's job log of each rule that ran for the run (``resolve``,
   ``train``, ``evaluate``): the dispatcher's own lines (submissions, failures, retries);
3. each attempt's job log (submitit's ``<job>_0_log.err`` / ``.out``: the node's view, a traceback, Slurm's
   kill message), under the run's ``dispatch/`` for a job of its own, under ``results/<scale>/.dispatch/arrays/``
   for a task of a job array; the training's first, then the evaluation's (``dispatch/eval-*/``); each with its
   job in flight (``job.json``) last.

Reads paths only (no file is opened but ``attempts.jsonl`` and ``job.json``); torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ired.core.errors import RecordFileError
from ired.runs.jsonl import load_jsonl, read_json_object
from ired.runs.paths import ATTEMPTS, EVAL_RECORD, JOB, RunPaths

#: The pipeline's rules that keep one log per run (``logs/<scale>/<rule>/<run>.log``), in the order they run.
RULES = ("resolve", "train", "evaluate")


@dataclass(frozen=True)
class RunLog:
    what: str  # "trainer", "pipeline <rule>", "job <id> (attempt <n>)", "job <id> (in flight)"
    path: Path


def _job_logs(stderr: Path) -> list[Path]:
    """A submitit job's stderr log and, beside it, its stdout log."""
    out = stderr.with_name(stderr.name.removesuffix(".err") + ".out") if stderr.name.endswith(".err") else None
    return [stderr, *([out] if out is not None else [])]


def run_logs(run_dir: str | Path, existing: bool = True) -> list[RunLog]:
    """The logs of the run in ``run_dir`` (see the module text for the order); only the files that exist unless
    ``existing=False``. An unreadable ``attempts.jsonl`` or ``job.json`` lists the logs it can."""
    paths = RunPaths(Path(run_dir))
    found = [RunLog("trainer", paths.train_log)]
    found += [RunLog(f"pipeline {rule}", paths.pipeline_log(rule)) for rule in RULES]
    seen: set[Path] = set()
    records = [("training", paths.folder)]
    records += [(f"evaluation {p.name.removeprefix(EVAL_RECORD)}", p) for p in paths.eval_records()]
    for stage, folder in records:
        found += _attempt_logs(stage, folder, seen)
    return [log for log in found if not existing or log.path.is_file()]


def _attempt_logs(stage: str, folder: Path, seen: set[Path]) -> list[RunLog]:
    """The job logs of one dispatcher record folder (the run folder, or ``dispatch/eval-*``): each attempt's, then
    the job in flight's (``job.json``)."""
    found = []
    for row in _rows(folder / ATTEMPTS):
        if isinstance(row.get("log"), str) and row["log"]:
            for path in _job_logs(Path(row["log"])):
                if path not in seen:
                    seen.add(path)
                    found.append(RunLog(f"{stage} job {row.get('job_id')} (attempt {row.get('attempt')})", path))
    job = _object(folder / JOB)
    if job and job.get("job_id") and job.get("folder"):
        stderr = Path(job["folder"]) / f"{job['job_id']}_0_log.err"
        found += [RunLog(f"{stage} job {job['job_id']} (attempt {job.get('attempt')}, in flight)", p)
                  for p in _job_logs(stderr) if p not in seen]
    return found


def _rows(path: Path) -> list[dict[str, Any]]:
    try:
        return load_jsonl(path).rows
    except RecordFileError:
        return []  # a corrupt attempt log: its own reader (``ired status``, the dispatcher) says so


def _object(path: Path) -> dict[str, Any] | None:
    try:
        return read_json_object(path)
    except RecordFileError:
        return None
