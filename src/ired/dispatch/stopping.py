"""How a dispatcher head stops or lets go, and what it records when it does.

Ctrl-C (SIGINT) stops the head: it cancels the job it waits on, logs an ``interrupted`` attempt and says so;
the next command resumes the run from its newest checkpoint (:func:`end_by_interrupt`). ``ired cancel`` asks
the head to stop through ``cancel.json``: the same, logged "stopped by ..." (:func:`end_by_request`). SIGHUP
or SIGTERM (a logout, a head that is itself a Slurm job at its limit, Snakemake passing SIGTERM on) make the
head let go: the job runs on, ``job.json`` keeps it, and the next command re-attaches (:func:`let_go`).
:func:`stop_on_signals` installs these reactions in a head; :func:`detach_on_signals` in the pipeline's own
process.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ired.core.errors import DispatchError
from ired.dispatch.attempts import (
    AttemptRow,
    JobRecord,
    append_attempts,
    cancel_request,
    clear_cancel_request,
    interrupted_row,
)
from ired.dispatch.executor import Backend, Finished, HeadDetached, descendants

log = logging.getLogger("ired.dispatch")

STOPPED_ACTION = "stopped on purpose: job cancelled; the next command resumes the run"


def say(message: str) -> None:
    """A line on the terminal (not only in the rule's log); nothing when the terminal is gone (a logout)."""
    try:
        print(message, file=sys.__stderr__, flush=True)
    except (OSError, ValueError):
        pass


def end_by_request(name: str, run_dir: Path, record: JobRecord, fin: Finished | None,
                   requeued: Sequence[AttemptRow] = (), request: dict[str, Any] | None = None) -> NoReturn:
    """`ired cancel` stopped this attempt (``fin``: how its job ended; None: stopped before submission): log
    it as interrupted, drop the request, raise the one-line stop."""
    request = request or cancel_request(run_dir, record.attempt) or {}
    by = request.get("by", "ired cancel")
    row = interrupted_row(record, cancelled=True, reason=f"stopped by {by}", action=STOPPED_ACTION)
    if fin is not None:
        row.node, row.state, row.exit_code = fin.node, fin.state or row.state, fin.exit_code
    append_attempts(run_dir, [*requeued, row])
    clear_cancel_request(run_dir)
    what = f"job {record.job_id}" if record.job_id else "its request (not submitted yet)"
    raise DispatchError(f"{name}: stopped by {by}: {what} (attempt {record.attempt}) cancelled and marked "
                        f"interrupted in {run_dir / 'attempts.jsonl'}; the next command resumes it",
                        stopped=True)


def end_by_interrupt(name: str, be: Backend, run_dir: Path, record: JobRecord) -> None:
    """The head was stopped while waiting: cancel the job it submitted, log the attempt as interrupted, say
    so.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the bookkeeping short
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    where = be.where
    cancelled = be.cancel([str(record.job_id)]) if record.job_id else False
    append_attempts(run_dir, [interrupted_row(
        record, cancelled, reason="SIGINT/SIGTERM to the pipeline head",
        action="the head was stopped: job cancelled; the next command resumes the run")])
    clear_cancel_request(run_dir)
    message = (f"ired: {name}: stopped; cancelled {where} {record.job_id} (attempt {record.attempt}), marked "
               f"interrupted in {run_dir / 'attempts.jsonl'}; the next command resumes it from its newest "
               "checkpoint")
    log.warning(message)
    say(message)  # the terminal, not only the rule's log


def let_go(name: str, be: Backend, record: JobRecord) -> None:
    """The head was told to let go (SIGHUP/SIGTERM) while waiting: leave the job running and ``job.json`` in
    place; no attempt row (the attempt is still in flight), so the next command re-attaches to it."""
    message = (f"ired: {name}: the head let go (SIGHUP/SIGTERM): {be.where} {record.job_id} (attempt "
               f"{record.attempt}) keeps running; the same command re-attaches to it")
    log.warning(message)
    say(message)


def stop_on_signals() -> None:
    """Ctrl-C (SIGINT) stops this head and cancels the job in flight (logged as interrupted); SIGHUP and
    SIGTERM (a logout, a head that is itself a Slurm job at its limit, Snakemake passing SIGTERM on) make the
    head let go: :class:`HeadDetached`, the job runs on, ``job.json`` keeps it, and the next command
    re-attaches.

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
    """For the pipeline head (Snakemake's own process, from ``onstart``): on SIGTERM or SIGHUP, first pass
    SIGTERM to every descendant whose command line contains ``marker`` (the rule scripts, which then let go of
    their jobs: :func:`stop_on_signals`), then do what Snakemake does on SIGTERM (stop scheduling, wait for
    the running jobs, release its lock). Snakemake has no handler of SIGHUP, whose default would kill it and
    leave its lock behind. Call from the main thread."""
    previous = signal.getsignal(signal.SIGTERM)

    def pass_on(signum: int, frame: Any) -> None:
        for pid in descendants(os.getpid()):
            try:
                if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        if callable(previous):
            previous(signum, frame)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, pass_on)
