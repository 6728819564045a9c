"""``ired status``: one line per run (state, step/steps, ETA, its latest metric, attempts, node, last failure
class), or one JSON object for all (``--json``, with the paths of each run's logs), from the run folders' files
and, when some of the selected runs have Slurm jobs in flight, one ``squeue`` call for all of them (and one
``sacct`` call for jobs that left the queue while no head logged them).

Reads only: no Snakemake lock, no record is written, a trainer's lock is only probed (``ired.runs.state``); it works
while a pipeline runs and costs a few small file reads per run (a 1,000-run sweep: about a second).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ired.core.errors import IredError
from ired.dispatch import sacct
from ired.dispatch.attempts import JobRecord, head_alive, read_attempts, read_job_record
from ired.dispatch.failures import FailureKind
from ired.dispatch.runs import Run
from ired.runs.paths import RunPaths

#: The states a run is shown in, in the order of a workflow.
STATES = ("pending", "queued", "running", "completed", "diverged", "failed", "interrupted")
QUEUED_STATES = frozenset({"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "RESIZING", "SUSPENDED"})
DEFAULT_METRIC = "val_task_mse"
_STEPS = re.compile(r"^train:\n(?:[ \t]+.*\n)*?[ \t]+steps:[ \t]*(\d+)[ \t]*$", re.MULTILINE)


@dataclass
class RunStatus:
    run: str
    experiment: str
    state: str  # one of STATES
    step: int | None = None
    steps: int | None = None
    eta_s: float | None = None
    attempts: int = 0
    node: str | None = None
    failure: str | None = None  # failure class of the last failed attempt
    job_id: str | None = None  # the job in flight
    cluster: str | None = None
    detail: str = ""
    metric: str | None = None  # the metric shown (``val_task_mse`` by default)
    metric_value: float | None = None  # its last non-null value in metrics.jsonl
    metric_step: int | None = None  # the step of that row
    run_dir: str = ""
    logs: list[str] = field(default_factory=list)  # every log of the run (ired.runs.logs), the job in flight last


@dataclass
class _Files:
    run: Run
    status: dict[str, Any] | None
    trainer: dict[str, Any] | None  # the live trainer holding train.lock
    record: JobRecord | None  # job.json
    rows: list[dict[str, Any]]

    @property
    def in_flight(self) -> JobRecord | None:
        rec = self.record
        if rec is None or any(r.get("attempt", 0) >= rec.attempt for r in self.rows):
            return None
        return rec


def _read(run: Run) -> _Files:
    from ired.runs.jsonl import read_json_object
    from ired.runs.state import lock_holder

    return _Files(run, read_json_object(run.paths.status), lock_holder(run.run_dir),
                  read_job_record(run.run_dir), read_attempts(run.run_dir))


def _steps_of_config(run_dir: Path) -> int | None:
    """``train.steps`` of the run's resolved config, read with a pattern (no YAML parser: 1,000 runs stay fast)."""
    try:
        match = _STEPS.search(RunPaths(run_dir).config.read_text())
    except OSError:
        return None
    return int(match.group(1)) if match else None


def eta_s(status: dict[str, Any], now: float) -> float | None:
    """Seconds left at the current segment's pace: (steps - step) / (steps done in it / its seconds so far)."""
    segments = status.get("segments") or []
    step, steps = status.get("step"), status.get("steps")
    if not segments or not isinstance(step, int) or not isinstance(steps, int):
        return None
    seg = segments[-1]
    done = step - (seg.get("from_step") or 0)
    spent = (status.get("updated") or now) - (seg.get("started") or now)
    if done <= 0 or spent <= 0:
        return None
    return max(0.0, (steps - step) * spent / done - (now - (status.get("updated") or now)))


def _status_of(files: _Files, queue: dict[str, sacct.QueueEntry] | None, ended: dict[str, sacct.SacctRow],
               now: float) -> RunStatus:
    run, status, rows = files.run, files.status or {}, files.rows
    failures = [r for r in rows if r.get("failure_kind") and r.get("failure_kind") != FailureKind.requeued]
    out = RunStatus(run.name, run.experiment, "pending", status.get("step"), status.get("steps"),
                    attempts=max([r.get("attempt", 0) for r in rows] or [0]),
                    node=rows[-1].get("node") if rows else None,
                    failure=failures[-1]["failure_kind"] if failures else None)
    if out.steps is None:
        out.steps = _steps_of_config(run.run_dir)
    written = status.get("status")
    flight = files.in_flight
    if flight is not None:
        out.attempts, out.job_id, out.cluster = flight.attempt, flight.job_id, flight.cluster
        live = queue.get(flight.job_id) if queue is not None and flight.job_id else None
        if flight.job_id is None:
            out.state, out.detail = "queued", "being submitted"
        elif flight.cluster == "slurm" and live is not None:
            out.state = "queued" if live.state in QUEUED_STATES else "running"
            out.node = ",".join(live.nodes) or None
            out.detail = f"Slurm {live.state}"
        elif flight.cluster == "slurm" and queue is None:
            out.state = "running" if files.trainer else "queued"
            out.detail = "squeue did not answer: from the run's files"
        elif flight.cluster == "local" and _local_alive(flight.job_id):
            out.state = "running" if files.trainer or written == "running" else "queued"
            out.node = (files.trainer or {}).get("host") or out.node
        elif head_alive(run.run_dir):  # the job has left the queue; its live head is about to log how it ended
            out.state, out.detail = "queued", "job ended; its head is logging it"
        else:  # the job has left the queue and no row says how it ended: its head is gone
            final = ended.get(flight.job_id)
            out.state = written if written in ("completed", "diverged") else "interrupted"
            out.detail = (f"job ended ({final.state_text}) with no head logging it" if final is not None
                          else "job ended with no head logging it") + "; the next command collects it"
    elif files.trainer is not None:
        out.state, out.node = "running", files.trainer.get("host")
    elif rows:
        last = rows[-1]
        if last.get("action") == "done":
            out.state = written if written in ("completed", "diverged") else "completed"
        elif last.get("failure_kind") == FailureKind.interrupted:
            out.state, out.detail = "interrupted", str(last.get("reason") or "")
        elif last.get("final"):
            out.state = "diverged" if last.get("failure_kind") == FailureKind.diverged else "failed"
            out.detail = str(last.get("reason") or last.get("action") or "")
        elif head_alive(run.run_dir):  # a failed attempt whose live head is submitting the retry
            out.state, out.detail = "queued", f"retrying after {last.get('failure_kind')}"
        else:  # a failed attempt whose retry was never submitted: its head stopped between the two
            out.state, out.detail = "interrupted", f"after {last.get('failure_kind')}: {last.get('action')}"
    elif written in ("completed", "diverged", "failed"):
        out.state, out.detail = written, str(status.get("detail") or "")
    elif written is not None:  # status.json says running, no process holds the trainer's lock
        out.state, out.detail = "interrupted", "its trainer is gone"
    if out.state == "running" and files.status:
        out.eta_s = eta_s(files.status, now)
    if out.state == "completed" and out.steps is not None:
        out.step = out.steps if out.step is None else out.step
    return out


def _local_alive(job_id: str) -> bool:
    from ired.dispatch.executor import local_alive

    return local_alive(job_id)


def _add_metric(out: RunStatus, run_dir: Path, metric: str) -> None:
    """The run's latest value of ``metric`` (the last row of metrics.jsonl that has it, read from the file's end)."""
    from ired.runs.jsonl import last_value

    out.metric = metric
    try:
        found = last_value(RunPaths(run_dir).metrics, metric)
    except IredError:
        return
    if found is not None and isinstance(found[1], (int, float)) and math.isfinite(found[1]):
        out.metric_step, out.metric_value = found[0], float(found[1])


def collect(runs: list[Run], queue_reader: Callable[[list[str]], dict[str, sacct.QueueEntry] | None] = sacct.queue,
            ended_reader: Callable[[list[str]], list[sacct.SacctRow]] = sacct.final_rows,
            metric: str = DEFAULT_METRIC, logs: bool = False) -> tuple[list[RunStatus], str]:
    """The status of each run, and a note on where the queue's view came from (empty when no Slurm job is in flight).

    Asks the scheduler at most once for all runs (``queue_reader`` with every Slurm job id in flight; then
    ``ended_reader`` with the ids that have left the queue without a row), however many runs there are. Each run
    gets its latest ``metric``; ``logs`` also lists the paths of its logs (:func:`ired.runs.logs.run_logs`).
    """
    now = time.time()
    files = []
    unreadable = []
    for run in runs:
        try:
            files.append(_read(run))
        except IredError as exc:
            unreadable.append(RunStatus(run.name, run.experiment, "failed", detail=f"unreadable record: {exc}"))
    slurm_ids = [f.in_flight.job_id for f in files
                 if f.in_flight is not None and f.in_flight.cluster == "slurm" and f.in_flight.job_id]
    queue: dict[str, sacct.QueueEntry] | None = {}
    ended: dict[str, sacct.SacctRow] = {}
    note = ""
    if slurm_ids:
        queue = queue_reader(slurm_ids)
        if queue is None:
            note = "squeue did not answer: Slurm states from the run folders' files only"
        else:
            gone = [i for i in slurm_ids if i not in queue]
            if gone:
                ended = {r.job_id: r for r in ended_reader(gone) if not r.is_step}
            note = f"squeue at {time.strftime('%H:%M:%S', time.localtime(now))}"
    found = [_status_of(f, queue, ended, now) for f in files] + unreadable
    by_name = {r.name: r for r in runs}
    for out in found:
        run_dir = by_name[out.run].run_dir
        out.run_dir = str(run_dir)
        _add_metric(out, run_dir, metric)
        if logs:
            from ired.runs.logs import run_logs

            out.logs = [str(log.path) for log in run_logs(run_dir)]
    return sorted(found, key=lambda s: s.run), note


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


COLUMNS = ("run", "state", "step", "ETA", "metric", "attempts", "node", "last failure", "job")


def _metric_cell(s: RunStatus) -> str:
    if s.metric_value is None:
        return "-"
    return f"{s.metric_value:.4g}" + (f"@{s.metric_step}" if s.metric_step is not None else "")


def table(found: list[RunStatus], metric: str = DEFAULT_METRIC) -> list[str]:
    """The aligned lines of ``ired status``: a header, then one line per run. The metric's column is headed by
    its name; a cell is its latest value and the step it was logged at (``0.0123@400``)."""
    header = tuple(metric if c == "metric" else c for c in COLUMNS)
    cells = [header]
    for s in found:
        step = f"{s.step if s.step is not None else '-'}/{s.steps if s.steps is not None else '-'}"
        cells.append((s.run, s.state, step, _duration(s.eta_s), _metric_cell(s), str(s.attempts), s.node or "-",
                      s.failure or "-", s.job_id or "-"))
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]


def as_json(found: list[RunStatus], folder: Path, note: str) -> str:
    """``ired status --json``: ``{"results", "note", "counts", "runs": [one object per run]}``, each run with every
    field of :class:`RunStatus` (``eta_s`` in seconds, ``metric_value`` and ``metric_step``, ``logs``)."""
    counts = Counter(s.state for s in found)
    return json.dumps({"results": str(folder), "note": note,
                       "counts": {state: counts[state] for state in STATES if counts[state]},
                       "runs": [asdict(s) for s in found]}, indent=1, allow_nan=False)


def summary(found: list[RunStatus], folder: Path, note: str) -> str:
    counts = Counter(s.state for s in found)
    parts = ", ".join(f"{counts[state]} {state}" for state in STATES if counts[state])
    return f"{len(found)} run(s) in {folder}: {parts or 'none'}" + (f" ({note})" if note else "")
