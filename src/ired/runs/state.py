"""Who trains in a run folder, and what state the run is in.

One trainer per run folder: :class:`RunLock` takes an exclusive ``flock`` on ``<run>/train.lock`` for the trainer's
whole life and writes the holder (pid, host, start time) into it. The kernel drops the lock when the process
ends, however it ends (SIGKILL, out-of-memory kill, a lost node's processes), so a lock is never stale; the file
itself stays and means nothing unless locked.

:func:`run_state` is what every reader of ``status.json`` should ask: ``status.json`` says ``running`` for a
trainer that was killed (nothing is left to rewrite it), so a ``running`` status whose lock no live process holds
is reported as ``interrupted``.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ired.core.errors import RunFolderBusy
from ired.runs.jsonl import read_json_object

LOCK_FILE = "train.lock"
STATUS_FILE = "status.json"

#: States :func:`run_state` reports. ``absent``: no status.json; ``running``: a live trainer holds the lock;
#: ``interrupted``: status.json says running (or interrupted) but no live process holds the lock (killed, Ctrl-C,
#: lost node); ``failed``: the trainer stopped on an error it reported (disk full...); ``completed``/``diverged``:
#: the run has ended.
STATES = ("absent", "running", "interrupted", "failed", "completed", "diverged")


@dataclass(frozen=True)
class RunState:
    """A run folder's state: ``state`` (one of :data:`STATES`), ``status`` (status.json as written, or None),
    ``holder`` (the live trainer's ``{"pid", "host", "started"}`` when one holds the lock), ``detail`` (one line)."""

    run_dir: Path
    state: str
    status: dict[str, Any] | None
    holder: dict[str, Any] | None
    detail: str

    @property
    def step(self) -> int | None:
        value = (self.status or {}).get("step")
        return value if isinstance(value, int) else None


def _holder_text(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "a process whose pid is not recorded"
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"


def lock_holder(run_dir: str | Path, name: str = LOCK_FILE) -> dict[str, Any] | None:
    """The live process holding the run folder's lock (``{"pid", "host", "started"}``), or None when none does.

    Tests the lock with a shared, non-blocking ``flock`` (released at once): the answer is about live processes,
    whatever the lock file contains. On a file system without ``flock`` it answers None. ``name``: the lock file
    (the trainer's ``train.lock``; the dispatcher's head holds its own, :data:`ired.dispatch.attempts.HEAD_LOCK`).
    """
    path = Path(run_dir) / name
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd) or {}
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_holder(fd: int) -> dict[str, Any] | None:
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        value = json.loads(text) if text else None
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class RunLock:
    """The exclusive lock of one run folder, held by its trainer (``with RunLock(run_dir): ...``).

    A second trainer gets :class:`RunFolderBusy` (one line naming the folder and the holder). Acquiring retries for
    ``wait_s`` seconds so that a reader's momentary probe (:func:`lock_holder`) never turns a trainer away.
    """

    def __init__(self, run_dir: str | Path, wait_s: float = 2.0, name: str = LOCK_FILE,
                 doing: str = "trained") -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / name
        self.wait_s = wait_s
        self.doing = doing
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise RunFolderBusy(
                        f"{self.run_dir} is already being {self.doing} by {_holder_text(holder)}"
                        f" (lock {self.path}); wait for it to end or stop that process"
                    ) from None
                time.sleep(0.1)
            except OSError as exc:
                if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    break  # no flock on this file system: train unlocked rather than not at all
                os.close(fd)
                raise
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        except OSError:
            pass  # the lock is what matters; the holder text is a courtesy (the disk may be full)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def run_state(run_dir: str | Path) -> RunState:
    """The state of the run in ``run_dir`` from its ``status.json`` and its lock (see :data:`STATES`).

    Raises :class:`ired.core.errors.RecordFileError` (one line naming the file) when status.json is corrupt.
    """
    run_dir = Path(run_dir)
    status = read_json_object(run_dir / STATUS_FILE)
    holder = lock_holder(run_dir)
    written = (status or {}).get("status")
    step = (status or {}).get("step")
    steps = (status or {}).get("steps")
    at = f" at step {step}" + (f" of {steps}" if steps else "") if step is not None else ""
    if holder is not None:
        return RunState(run_dir, "running", status, holder, f"running{at} ({_holder_text(holder)})")
    if status is None:
        return RunState(run_dir, "absent", None, None, f"no {STATUS_FILE} in {run_dir}")
    if written in ("running", "interrupted", None):
        return RunState(run_dir, "interrupted", status, None,
                        f"interrupted{at}: {STATUS_FILE} says {written!r} but no live process holds {LOCK_FILE}")
    if written in ("completed", "diverged", "failed"):
        detail = status.get("detail")
        return RunState(run_dir, written, status, None, f"{written}{at}" + (f": {detail}" if detail else ""))
    return RunState(run_dir, "interrupted", status, None, f"unknown status {written!r}{at} in {run_dir / STATUS_FILE}")
