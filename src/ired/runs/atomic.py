"""The one atomic writer of the run folder: a reader (or a crash, or a power cut) sees the old file or the new
one, never half of one, and once a write has returned the new file survives a crash of the machine.

The durability rule, the same for every file written whole (status.json, job.json, checkpoints, configs,
tables): write a temporary file beside the target (a unique hidden name, so two writers never share one),
fsync it, rename it over the target, fsync the folder. An OSError (disk full, quota) removes the temporary
file, leaves the previous file untouched and is raised as a one-line :class:`ired.core.errors.StorageError`
naming the target.

Appends are not whole-file writes: :func:`append_text` appends (and fsyncs when asked: the dispatcher's
``attempts.jsonl`` is, the trainer's ``metrics.jsonl`` rows are not, since a checkpoint, written by this rule,
is the point a run resumes from and the trainer recomputes any row after it).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ired.core.errors import StorageError


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` by the module's rule (temporary file, fsync, rename, fsync the folder)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as to a new file
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError.from_os_error(exc, path) from None


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` by the module's rule."""
    write_bytes_atomic(path, text.encode("utf-8"))


def append_text(path: str | Path, text: str, fsync: bool = False) -> None:
    """Append ``text`` in one write (fsynced with ``fsync``); an OSError is a :class:`StorageError`."""
    path = Path(path)
    try:
        with path.open("a") as handle:
            handle.write(text)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
    except OSError as exc:
        raise StorageError.from_os_error(exc, path) from None


def fsync_dir(folder: str | Path) -> None:
    """Make a rename in ``folder`` durable (best effort: some file systems cannot fsync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
