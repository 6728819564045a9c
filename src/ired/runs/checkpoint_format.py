"""The checkpoint file format and the checks that need no torch: shared by the loader (ired.runs.checkpoint) and by
processes that must stay light (the parse-time check of external checkpoints in ired.runs.inputs, the dispatcher head).

Format 2: one header line, then the ``torch.save`` bytes::

    IRED-CHECKPOINT {"format": 2, "bytes": <payload length>, "sha256": "<hex digest of the payload>"}\n
    <payload: exactly what torch.save writes>
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from ired.core.errors import CheckpointError

MAGIC = b"IRED-CHECKPOINT "  # format 2: this, a JSON header line (format, bytes, sha256), then the payload
LEGACY_MAGIC = b"PK\x03\x04"  # format 1: a bare torch.save zip
MAX_HEADER = 4096  # the header line is shorter than this
_STEP_FILE = re.compile(r"^step_(\d{7,})\.pt$")


def step_path(directory: Path, step: int) -> Path:
    return directory / f"step_{step:07d}.pt"


def split_payload(path: Path, data: bytes) -> tuple[bytes, bool]:
    """(torch.save payload, verified) of a checkpoint file's bytes; CheckpointError when damaged."""
    if data.startswith(MAGIC):
        end = data.find(b"\n", 0, MAX_HEADER)
        if end < 0:
            raise CheckpointError(f"{path}: corrupt checkpoint (truncated or damaged header)")
        try:
            header = json.loads(data[len(MAGIC):end])
            expected, digest = int(header["bytes"]), str(header["sha256"])
        except (ValueError, KeyError, TypeError):
            raise CheckpointError(f"{path}: corrupt checkpoint (unreadable header)") from None
        payload = data[end + 1:]
        if len(payload) < expected:
            raise CheckpointError(f"{path}: corrupt checkpoint (truncated: {len(payload)} of {expected} bytes)")
        if len(payload) > expected:
            raise CheckpointError(
                f"{path}: corrupt checkpoint ({len(payload) - expected} bytes more than its header says)"
            )
        actual = hashlib.sha256(payload).hexdigest()
        if actual != digest:
            raise CheckpointError(
                f"{path}: corrupt checkpoint (checksum mismatch: sha256 {actual[:12]}..., header says {digest[:12]}...)"
            )
        return payload, True
    if data.startswith(LEGACY_MAGIC):
        return data, False
    if not data:
        raise CheckpointError(f"{path}: corrupt checkpoint (empty file)")
    raise CheckpointError(f"{path}: not an ired checkpoint (neither format 2 nor a torch.save file)")


def verify_checkpoint(path: str | Path) -> bool:
    """True when the file passes its length and checksum test, False for a format-1 file (no checksum);
    CheckpointError when it is damaged or missing. Reads the file, does not unpickle it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return split_payload(path, data)[1]


def list_step_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        match = _STEP_FILE.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry))
    return sorted(found)


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest step checkpoint by file name, intact or not (see :func:`newest_intact_checkpoint`)."""
    found = list_step_checkpoints(directory)
    return found[-1][1] if found else None


def newest_verified_checkpoint(directory: Path) -> Path | None:
    """The newest step checkpoint whose length and checksum match its header (format-1 files count as intact:
    they carry no checksum), without unpickling it; None when there is none."""
    for _, path in reversed(list_step_checkpoints(directory)):
        try:
            verify_checkpoint(path)
        except CheckpointError:
            continue
        return path
    return None
