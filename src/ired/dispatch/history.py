"""The attempt log as the dispatch loop reads and writes it: the row of an attempt from how its job ended, the
current round of attempts, the failures so far (what the policy's budgets count) and the slices in a row that
left no newer checkpoint. The file itself (append, read) is :mod:`ired.dispatch.attempts`."""

from __future__ import annotations

from typing import Any

from ired.dispatch.attempts import AttemptRow
from ired.dispatch.executor import Finished
from ired.dispatch.failures import CLASSIFIED_KINDS, FailureKind
from ired.dispatch.policy import SLICE_KINDS, Plan
from ired.dispatch.settings import DispatchSettings

_FAILURES = {k.value for k in CLASSIFIED_KINDS}  # the logged text of the kinds the policy's budgets count


def attempt_row(attempt: int, job_id: str, fin: Finished, plan: Plan, settings: DispatchSettings,
                kind: str | None, reason: str | None, action: str, final: bool,
                step: int | None = None) -> AttemptRow:
    """The row of one attempt (or one run of a job Slurm requeued), as ``attempts.jsonl`` keeps it."""
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


def current_round(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows since the last final one (done or given up): a new invocation after a final row starts afresh."""
    start = 0
    for i, row in enumerate(rows):
        if row.get("final"):
            start = i + 1
    return rows[start:]


def previous_failures(rows_round: list[dict[str, Any]], requeued: list[AttemptRow]) -> list[FailureKind]:
    """The failure kinds of the round so far, the runs of a requeued job last: what the policy's budgets count
    (an attempt stopped on purpose is none)."""
    previous = [FailureKind(r["failure_kind"]) for r in rows_round if r.get("failure_kind") in _FAILURES]
    previous += [FailureKind(r.failure_kind) for r in requeued if r.failure_kind in _FAILURES]
    return previous


def stalled_slices(rows: list[dict[str, Any]], start: int | None, end: int | None) -> int:
    """How many slices in a row, the one that just ended included, left no newer checkpoint: 0 when it
    advanced the run (``end`` past ``start``, the newest checkpoint when it was planned)."""
    if end is not None and (start is None or end > start):
        return 0
    stalled = 1
    for row in reversed(rows):
        if row.get("failure_kind") not in SLICE_KINDS or row.get("step") != end:  # StrEnum: the logged text
            break
        stalled += 1
    return stalled
