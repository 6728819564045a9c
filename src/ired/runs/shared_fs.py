"""Locks that must hold across a cluster's nodes, checked where the results live.

ired serialises work with ``flock``: one trainer per run folder (``train.lock``), one dispatcher head per record
folder (``head.lock``), one broker per head (job arrays). On a cluster these files are on a shared filesystem and
the processes on several machines, so the locks must be the filesystem's, not each node's: NFS with its lock
service (not mounted ``nolock`` or ``local_lock=flock|all``), Lustre mounted with ``flock`` (``localflock`` locks
within one node only). :func:`lock_problem` reads the mount of a folder from ``/proc/mounts`` and tries a lock
there; :func:`check_shared_locks` turns a problem into one line before any job is submitted. torch-free.
"""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
from pathlib import Path

from ired.core.errors import ConfigError


def mount_of(path: Path, mounts_file: Path = Path("/proc/mounts")) -> tuple[str, str, set[str]] | None:
    """(mount point, filesystem type, options) of the mount holding ``path``; None where /proc/mounts is missing."""
    try:
        lines = mounts_file.read_text().splitlines()
    except OSError:
        return None
    target = os.path.realpath(path)
    best: tuple[str, str, set[str]] | None = None
    for line in lines:
        fields = line.split()
        if len(fields) < 4:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[0])):
            best = (point, fields[2], set(fields[3].split(",")))
    return best


def lock_problem(path: Path, mounts_file: Path = Path("/proc/mounts")) -> str | None:
    """Why flock in ``path`` would not hold across nodes (one clause), or None."""
    mount = mount_of(path, mounts_file)
    if mount is not None:
        point, fstype, options = mount
        if fstype == "lustre" and "flock" not in options:
            how = "localflock (locks within one node only)" if "localflock" in options else "without flock"
            return f"{point} is Lustre mounted {how}: ask for -o flock"
        if fstype.startswith("nfs") and ("nolock" in options or options & {"local_lock=flock", "local_lock=all"}):
            return (
                f"{point} is NFS mounted with {'nolock' if 'nolock' in options else 'local_lock'}: "
                "locks stay on each node"
            )
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".lockprobe-") as probe:
            fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(probe.fileno(), fcntl.LOCK_UN)
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            return f"{path} refuses flock ({os.strerror(exc.errno)})"
    return None


def check_shared_locks(path: Path) -> None:
    """One-line :class:`ConfigError` when the results folder's locks would not hold across nodes."""
    problem = lock_problem(path)
    if problem:
        raise ConfigError(f"results folder {path}: {problem}. Jobs on several nodes need locks that hold across them "
                          "(docs/PIPELINE.md, 'On a real cluster'); put results/ on such a filesystem")
