"""Checks of the files a pipeline config names, before any job starts.

:func:`check_checkpoint_file` is cheap (no torch import) so the workflow can run it when it is parsed: a
checkpoint that is missing, a folder, unreadable, or neither an ired checkpoint (ired.runs.checkpoint_format) nor a
torch zip archive (e.g. a text file) is a one-line
:class:`ConfigError` there, instead of a job that fails on a node and is retried. :func:`check_checkpoint` opens
the file fully (torch) and validates its embedded run config, for the local job that imports it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ired.core.errors import ConfigError
from ired.runs.checkpoint_format import MAGIC


def check_checkpoint_file(path: str | Path, key: str) -> Path:
    """``path`` is a readable ired checkpoint: a checksummed file (its header is checked here, its checksum when it
    is loaded) or a format-1 ``torch.save`` zip archive with a pickled state."""
    path = Path(path)
    where = f"config key {key}: value {str(path)!r}"
    if not path.exists():
        raise ConfigError(
            f"{where}: no such file (allowed: an ired checkpoint file, e.g. results/<scale>/<run>/final.pt)"
        )
    if not path.is_file():
        raise ConfigError(f"{where}: not a file (allowed: an ired checkpoint file)")
    try:
        with path.open("rb") as handle:
            if handle.read(len(MAGIC)) == MAGIC:
                return path
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read ({exc.strerror or exc})") from None
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        raise ConfigError(
            f"{where}: not a checkpoint (not a torch.save archive; allowed: an ired checkpoint file)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read ({exc.strerror or exc})") from None
    if not any(name.endswith("/data.pkl") or name == "data.pkl" for name in names):
        raise ConfigError(
            f"{where}: not a checkpoint (a zip archive without a torch state; allowed: an ired checkpoint file)"
        )
    return path


def check_checkpoint(path: str | Path, key: str) -> None:
    """Open the checkpoint (torch) and validate its embedded run config; errors are ConfigErrors naming ``key``."""
    from ired.core.config_io import build_config
    from ired.core.errors import IredError
    from ired.runs.checkpoint import load_checkpoint

    check_checkpoint_file(path, key)
    try:
        state = load_checkpoint(path)
        build_config(state["config"], f"{path} (embedded config)")
    except IredError as exc:
        raise ConfigError(f"config key {key}: {exc}") from None
