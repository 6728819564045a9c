"""Checkpoints: atomic, checksummed writes; verified loads; discovery of the newest intact one.

A checkpoint is a ``torch.save``d dict that carries everything needed to resume or evaluate from the file
alone: format, step, resolved config, model and EMA weights, optimiser state, RNG states, sampler state,
code version and creation time.

File format 2 (written since checkpoints carry a checksum): one header line, then the ``torch.save`` bytes::

    IRED-CHECKPOINT {"format": 2, "bytes": <payload length>, "sha256": "<hex digest of the payload>"}\n
    <payload: exactly what torch.save writes>

:func:`load_checkpoint` checks the length (a truncated file) and the SHA-256 (flipped bytes) before unpickling, so
a damaged file is a one-line :class:`CheckpointError`, never silently wrong numbers. Files of format 1 (a bare
``torch.save`` zip, no checksum) still load; they are reported as unverified by :func:`verify_checkpoint`.
Outside ired, the payload loads with ``torch.load(io.BytesIO(data[data.index(b"\\n") + 1:]))``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ired.core.errors import CheckpointError
from ired.runs.atomic import write_bytes_atomic
from ired.runs.checkpoint_format import (  # the torch-free half: file format, checks, discovery
    MAGIC,
    list_step_checkpoints,
    split_payload,
)
from ired.runs.code_version import git_version

FORMAT = 2  # 1: bare torch.save (no checksum; still loads); 2: header line with length and SHA-256


def code_version() -> str:
    """Package version plus the git commit of the source tree (:func:`ired.runs.code_version.git_version`)."""
    return git_version()


def encode_checkpoint(obj: Any) -> bytes:
    """The bytes of a format-2 checkpoint file: header line (length, SHA-256) + ``torch.save`` payload."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getvalue()
    header = {"format": FORMAT, "bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    return MAGIC + json.dumps(header).encode() + b"\n" + payload


def atomic_save(obj: Any, path: Path) -> None:
    """Save ``obj`` as a checksummed checkpoint file by the one atomic writer (:mod:`ired.runs.atomic`)."""
    write_bytes_atomic(path, encode_checkpoint(obj))


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    state = {"format": FORMAT, "code_version": code_version(), "created": time.time(), **state}
    atomic_save(state, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint's state dict, after checking its length and checksum; every failure is one line naming
    the file (:class:`CheckpointError`)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror or exc})") from None
    payload, verified = split_payload(path, data)
    try:
        state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is reported the same way
        what = "corrupt checkpoint" if verified else "unreadable checkpoint (format 1, no checksum)"
        raise CheckpointError(f"{path}: {what} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{path}: not an ired checkpoint (needs keys 'model' and 'config')")
    return state


@dataclass
class SkippedCheckpoint:
    path: Path
    reason: str  # the CheckpointError's line
    moved_to: Path | None

    def line(self) -> str:
        where = f"; kept as {self.moved_to.name}" if self.moved_to else ""
        return f"skipped {self.reason}{where}"


def newest_intact_checkpoint(
    directory: Path, map_location: str | torch.device = "cpu", max_step: int | None = None, quarantine: bool = True,
) -> tuple[Path | None, dict[str, Any] | None, list[SkippedCheckpoint]]:
    """The newest step checkpoint (at most ``max_step``) that loads and passes its checksum, its state, and
    the damaged newer ones skipped on the way. With ``quarantine`` a damaged file is renamed to
    ``<name>.corrupt`` (kept for inspection, no longer a step checkpoint), so it is reported once and never
    picked again."""
    skipped: list[SkippedCheckpoint] = []
    for step, path in reversed(list_step_checkpoints(directory)):
        if max_step is not None and step > max_step:
            continue
        try:
            return path, load_checkpoint(path, map_location=map_location), skipped
        except CheckpointError as exc:
            moved = None
            if quarantine:
                moved = path.with_name(path.name + ".corrupt")
                try:
                    os.replace(path, moved)
                except OSError:
                    moved = None
            skipped.append(SkippedCheckpoint(path, str(exc), moved))
    return None, None, skipped


def prune_checkpoints(directory: Path, keep: int, protected_steps: set[int], current_step: int | None = None) -> None:
    """Delete all but the newest ``keep`` step checkpoints, never those in ``protected_steps``.

    With ``current_step``, checkpoints of later steps (left by an earlier segment that is being recomputed) are
    neither counted nor deleted: the run overwrites each of them when it gets there.
    """
    found = list_step_checkpoints(directory)
    if current_step is not None:
        found = [(step, path) for step, path in found if step <= current_step]
    for step, path in found[: max(len(found) - keep, 0)]:
        if step not in protected_steps:
            path.unlink(missing_ok=True)
