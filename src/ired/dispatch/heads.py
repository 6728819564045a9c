"""One pipeline head per working directory knows when the others are dead, so it can clear their stale locks.

Snakemake locks the files a run will write (``.snakemake/locks/``) and removes the locks when it exits. A head
killed with SIGKILL (an out-of-memory killer, a lost login node, a closed terminal) leaves them, and the next
``snakemake`` in that folder refuses to start ("Directory cannot be locked") until someone runs
``snakemake --unlock``. The dispatch promise is "run the same command again and it re-attaches to the jobs in
flight", so the workflow calls :func:`claim_workdir` when it is parsed: every head holds a shared ``flock`` on
``.snakemake/ired-heads.lock`` for its whole life, which the kernel drops when the process ends, however it ends.
A head that can take that lock *exclusively* therefore knows that no other head of this folder is alive, hence
that any Snakemake lock present is stale: it removes them, as ``snakemake --unlock`` would, then keeps the lock
shared like every other head. While any head is alive (a run, a dry run, ``--summary``) nothing is cleared and
Snakemake's own locking behaves as usual. On a file system without ``flock`` nothing is cleared either.
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path

HEADS_LOCK = "ired-heads.lock"
_SNAKEMAKE_LOCK = re.compile(r"^\d+\.(input|output)\.lock$")  # .snakemake/locks/<n>.<input|output>.lock

_held: int | None = None  # the descriptor that holds this process's shared lock (kept open for life)


def claim_workdir(snakemake_dir: str | Path = ".snakemake") -> list[Path]:
    """Register this process as a live head of the folder; return the stale Snakemake locks it removed.

    Idempotent within a process. Removes nothing unless no other head holds the heads lock.
    """
    global _held
    if _held is not None:
        return []
    folder = Path(snakemake_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / HEADS_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return []
    removed: list[Path] = []
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # another head is alive: its locks are real
        else:
            removed = _remove_snakemake_locks(folder / "locks")
        fcntl.flock(fd, fcntl.LOCK_SH)  # from exclusive to shared, or wait while another head briefly clears
    except OSError:  # no flock on this file system: never guess
        os.close(fd)
        return removed
    _held = fd
    return removed


def _remove_snakemake_locks(folder: Path) -> list[Path]:
    removed = []
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if _SNAKEMAKE_LOCK.match(path.name) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed
