"""Why did an attempt fail? One table maps the scheduler's and the job's evidence to a failure kind.

:class:`FailureKind` is the one home of every kind an attempt row can carry, the two the dispatcher writes
itself (``interrupted``, ``requeued``: :data:`RECORDED_KINDS`) included; :mod:`ired.dispatch.policy` says what
is done about each of them.

The evidence is plain data gathered after an attempt ends (:class:`Evidence`): the sacct rows of the job and its
steps, what submitit said (exception type and text), the trainer process's own exit status, the tail of the
job's stderr and the run's ``status.json`` status. :func:`classify` walks :data:`RULES` in order and returns the
first kind whose test matches, with a reason a person can read. Order matters and is part of the table: a
cancelled job is not retried whatever else it shows; a config error or divergence is the job's own verdict; the
cgroup's "Out Of Memory" must win over the generic "out of memory" of a device allocator.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from ired.core import exit_codes
from ired.dispatch.sacct import SacctRow


class FailureKind(StrEnum):
    """What went wrong, as far as the dispatcher needs to know to pick a remedy."""

    node_failure = "node_failure"  # the node, not the job: NODE_FAIL, exit 120, launch failures
    oom_host = "oom_host"  # the job exceeded its host memory (cgroup OUT_OF_MEMORY)
    oom_device = "oom_device"  # CUDA / allocator out-of-memory raised inside the job
    timeout = "timeout"  # a slice ended at its time limit (warned: the trainer checkpointed): resubmitted
    preempted = "preempted"  # a slice ended by preemption or `scontrol requeue` (SIGTERM): resubmitted
    diverged = "diverged"  # NaN/inf in training: deterministic, never retried
    config_error = "config_error"  # the config is wrong: never retried
    cancelled = "cancelled"  # someone ran scancel: respected, never retried
    unknown = "unknown"  # anything else: bounded retries
    # written by the dispatcher itself, never read from evidence (:data:`RECORDED_KINDS`)
    interrupted = "interrupted"  # stopped on purpose (Ctrl-C of its head, `ired cancel`): the next command
    # resumes the run
    requeued = "requeued"  # a run of a job Slurm requeued by itself, as older heads logged it (now: the run's
    # own kind, `preempted` for a plain requeue)


#: Kinds the dispatcher writes itself, never from evidence: not failures of the run (the policy's budgets do
#: not count them; ``ired status`` does not show ``requeued`` as a run's last failure).
RECORDED_KINDS = frozenset({FailureKind.interrupted, FailureKind.requeued})
#: Kinds :func:`classify` answers: the failures of a run.
CLASSIFIED_KINDS = frozenset(FailureKind) - RECORDED_KINDS


@dataclass(frozen=True)
class Evidence:
    """Everything known about one finished attempt. Every field may be missing (a node that died says little)."""

    sacct: tuple[SacctRow, ...] = ()
    submitit_error: str | None = None  # "UncompletedJobError: ..." / "FailedJobError: ..." (type: first line)
    returncode: int | None = None  # the trainer process's exit status; negative: killed by that signal
    stderr_tail: str = ""  # last lines of the job's stderr log (trainer's stderr goes there too)
    run_status: str | None = None  # status.json "status" of the run folder
    run_detail: str | None = None  # status.json "detail"
    node_failure_exit_codes: frozenset[int] = field(
        default_factory=lambda: frozenset({exit_codes.NODE_FAILURE}))
    job_signal: str | None = None  # the stop signal the job passed on to its trainer (its outcome file), if any

    @property
    def job(self) -> SacctRow | None:
        """The job's own row (not a step)."""
        jobs = [r for r in self.sacct if not r.is_step]
        return jobs[-1] if jobs else None

    @property
    def text(self) -> str:
        """Everything the job and submitit wrote, for pattern rules."""
        return "\n".join(t for t in (self.submitit_error or "", self.stderr_tail) if t)

    @property
    def exit_codes(self) -> set[int]:
        """Exit codes seen anywhere: the trainer's own and sacct's (job and steps)."""
        codes = {r.exit_code for r in self.sacct if r.exit_code}
        if self.returncode is not None and self.returncode > 0:
            codes.add(self.returncode)
        return codes


@dataclass(frozen=True)
class Classification:
    kind: FailureKind
    reason: str  # one line: which rule matched, on what


def _describe(rows: list[SacctRow]) -> str:
    return "sacct " + ", ".join(f"{r.job_id}|{r.state_text}|{r.exit_code}:{r.signal}" for r in rows)


def _job_state(*names: str) -> Callable[[Evidence], str | None]:
    """The job's own state is one of ``names`` (steps of a timed-out job read CANCELLED: not looked at)."""

    def test(ev: Evidence) -> str | None:
        job = ev.job
        return _describe([job]) if job is not None and job.state in names else None

    return test


def _any_state(*names: str) -> Callable[[Evidence], str | None]:
    """The job or any of its steps is in one of ``names`` (an OOM-killed step leaves the job FAILED 1:0)."""

    def test(ev: Evidence) -> str | None:
        rows = [r for r in ev.sacct if r.state in names]
        return _describe(rows) if rows else None

    return test


def _text(pattern: str, flags: int = 0) -> Callable[[Evidence], str | None]:
    rx = re.compile(pattern, flags)

    def test(ev: Evidence) -> str | None:
        # the last matching line: a traceback ends with the exception and its message
        lines = [ln for ln in ev.text.splitlines() if rx.search(ln)]
        return f"job output: {lines[-1].strip()[:300]!r}" if lines else None

    return test


_ERROR_LINE = re.compile(r"\berror\b|Error\b|Exception\b", re.IGNORECASE)
_WRAPPER_LINE = re.compile(r"^\s*srun: error: .*Exited with exit code")  # srun's echo of the exit, not the cause


def last_error_line(text: str) -> str | None:
    """The last line of the job's output that reports an error (the trainer prints its cause as one line)."""
    lines = [ln.strip() for ln in text.splitlines()
             if _ERROR_LINE.search(ln) and "ired dispatch:" not in ln and not _WRAPPER_LINE.search(ln)]
    return lines[-1][:300] if lines else None


def _exit_code_in(codes: Callable[[Evidence], frozenset[int]] | frozenset[int]) -> Callable[[Evidence], str | None]:
    def test(ev: Evidence) -> str | None:
        wanted = codes(ev) if callable(codes) else codes
        hit = sorted(ev.exit_codes & wanted)
        if not hit:
            return None
        cause = last_error_line(ev.stderr_tail)
        return f"exit code {hit[0]}" + (f": {cause}" if cause else "")

    return test


def _status(value: str) -> Callable[[Evidence], str | None]:
    def test(ev: Evidence) -> str | None:
        if ev.run_status != value:
            return None
        return f"status.json says {value}" + (f": {ev.run_detail}" if ev.run_detail else "")

    return test


def _slice_end(*signals: str) -> Callable[[Evidence], str | None]:
    """The trainer checkpointed and exited with :data:`ired.core.exit_codes.SLICE_END` after one of
    ``signals`` (its outcome file names the signal the job passed on; status.json's detail says it too)."""

    def test(ev: Evidence) -> str | None:
        if exit_codes.SLICE_END not in ev.exit_codes:
            return None
        said = ev.job_signal or next((s for s in ("SIGUSR2", "SIGTERM") if s in (ev.run_detail or "")), None)
        if said not in signals:
            return None
        return f"exit code {exit_codes.SLICE_END}: the trainer checkpointed and stopped on {said}"

    return test


def _killed_by_signal(ev: Evidence) -> str | None:
    if ev.returncode is not None and ev.returncode < 0:
        return f"trainer killed by signal {-ev.returncode}"
    return None


@dataclass(frozen=True)
class Rule:
    kind: FailureKind
    test: Callable[[Evidence], str | None]


#: The classification table, first match wins.
RULES: tuple[Rule, ...] = (
    Rule(FailureKind.cancelled, _job_state("CANCELLED")),
    Rule(FailureKind.cancelled, _text(r"CANCELLED AT \S+ \*\*\*")),
    Rule(FailureKind.config_error, _exit_code_in(frozenset({exit_codes.USER_ERROR}))),
    Rule(FailureKind.config_error, _text(r"\bConfigError\b")),
    Rule(FailureKind.config_error, _text(r"\bCheckpointError\b")),  # a file that is no checkpoint stays so
    Rule(FailureKind.diverged, _status("diverged")),
    Rule(FailureKind.diverged, _exit_code_in(frozenset({exit_codes.DIVERGED}))),
    Rule(FailureKind.diverged, _text(r"\bDivergedError\b|diverged at step")),
    Rule(FailureKind.oom_host, _any_state("OUT_OF_MEMORY")),
    Rule(FailureKind.oom_host, _text(r"oom[-_]kill|slurmstepd.*Out Of Memory|task \d+: Out Of Memory")),
    Rule(FailureKind.oom_device,
         _text(r"OutOfMemoryError|CUDA out of memory|CUBLAS_STATUS_ALLOC_FAILED|out of memory")),
    Rule(FailureKind.node_failure, _job_state("NODE_FAIL", "BOOT_FAIL")),
    Rule(FailureKind.node_failure, _exit_code_in(lambda ev: ev.node_failure_exit_codes)),
    Rule(
        FailureKind.node_failure,
        _text(r"launch failed requeued held|Job launch failure|[Pp]rolog (error|failure|failed)|Node failure|"
              r"Unable to contact slurm controller|Communication connection failure"),
    ),
    Rule(FailureKind.timeout, _slice_end("SIGUSR2")),  # the time-limit warning (--signal=USR2@lead)
    Rule(FailureKind.preempted, _slice_end("SIGTERM")),  # a preemption, `scontrol requeue`, a limit without warning
    Rule(FailureKind.timeout, _job_state("TIMEOUT", "DEADLINE")),
    Rule(FailureKind.timeout, _text(r"DUE TO TIME LIMIT")),
    Rule(FailureKind.preempted, _job_state("PREEMPTED")),
    Rule(FailureKind.preempted, _text(r"DUE TO PREEMPTION")),
    Rule(FailureKind.unknown, _killed_by_signal),
)


def classify(ev: Evidence) -> Classification:
    """The failure kind of a finished, unsuccessful attempt (call it only when the attempt did not succeed)."""
    for rule in RULES:
        reason = rule.test(ev)
        if reason:
            return Classification(rule.kind, reason)
    job = ev.job
    if job is not None:
        return Classification(FailureKind.unknown, f"sacct {job.job_id} {job.state_text} {job.exit_code}:{job.signal}")
    if ev.submitit_error:
        line = last_error_line(ev.submitit_error) or ev.submitit_error.splitlines()[0]
        return Classification(FailureKind.unknown, line[:300])
    return Classification(FailureKind.unknown, "no evidence (no sacct record, no output)")
