"""Checkpoints: atomic writes, discovery of the latest one, and loading with clear errors.

A checkpoint is a ``torch.save``d dict that carries everything needed to resume or evaluate from the file
alone: format, step, resolved config, model and EMA weights, optimiser state, RNG states, sampler state,
code version and creation time.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

import ired
from ired.errors import CheckpointError

FORMAT = 1
_STEP_FILE = re.compile(r"^step_(\d{7,})\.pt$")


def step_path(directory: Path, step: int) -> Path:
    return directory / f"step_{step:07d}.pt"


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit of the source tree when there is one (``+dirty`` if modified)."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no", "--", "."],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", ""
    version = ired.__version__
    if commit:
        version += f"+g{commit}" + (".dirty" if dirty else "")
    return version


def atomic_save(obj: Any, path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    state = {"format": FORMAT, "code_version": code_version(), "created": time.time(), **state}
    atomic_save(state, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is reported the same way
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{path}: not an ired checkpoint (needs keys 'model' and 'config')")
    return state


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
    found = list_step_checkpoints(directory)
    return found[-1][1] if found else None


def prune_checkpoints(directory: Path, keep: int, protected_steps: set[int]) -> None:
    """Delete all but the newest ``keep`` step checkpoints, never those in ``protected_steps``."""
    found = list_step_checkpoints(directory)
    for step, path in found[: max(len(found) - keep, 0)]:
        if step not in protected_steps:
            path.unlink(missing_ok=True)
