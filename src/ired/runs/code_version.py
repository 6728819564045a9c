"""Which code a run trains with, and the rule that a run never resumes under other code unless told to.

Compute nodes import the checkout the study was started from: an edit made while a week-long study runs would
silently change the code of every later attempt (a slice after a time limit, a retry). So the trainer records the
code a run starts with in ``<run>/code.json`` (:func:`current`: a digest of the package's source files, plus the
git commit for people), and a resume under another digest stops in one line (:func:`check_resume`) unless
``IRED_ALLOW_CODE_CHANGE=1`` says to go on, which is then recorded in the same file. torch-free.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import ired
from ired.core.errors import ConfigError
from ired.runs.atomic import write_text_atomic

CODE_FILE = "code.json"
ALLOW_ENV = "IRED_ALLOW_CODE_CHANGE"
PACKAGE = Path(ired.__file__).resolve().parent


@lru_cache(maxsize=1)
def source_digest() -> str:
    """SHA-256 (12 hex digits) of every ``.py`` file of the installed ``ired`` package, by relative path: what a
    job imports. Docs, tests and the workflow do not count."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


@lru_cache(maxsize=1)
def git_version() -> str:
    """Package version plus the git commit of the source tree when there is one (``.dirty`` if modified)."""
    try:
        commit = subprocess.run(["git", "-C", str(PACKAGE), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(PACKAGE), "status", "--porcelain", "--untracked-files=no", "--", "."],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", ""
    version = ired.__version__
    if commit:
        version += f"+g{commit}" + (".dirty" if dirty else "")
    return version


def current() -> dict[str, Any]:
    return {"digest": source_digest(), "version": git_version()}


def record_start(run_dir: Path) -> None:
    """A run starts from step 0: its code is this one."""
    write_text_atomic(Path(run_dir) / CODE_FILE, json.dumps({**current(), "started": time.time()}, indent=1) + "\n")


def check_resume(run_dir: Path, name: str) -> str | None:
    """A run resumes: same code, or :data:`ALLOW_ENV` set (the change is recorded; returns a line to log), else a
    one-line :class:`ConfigError`. A run folder from before this file existed is adopted as it is."""
    path = Path(run_dir) / CODE_FILE
    try:
        recorded = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        record_start(run_dir)
        return None
    now = current()
    if recorded.get("digest") == now["digest"]:
        return None
    was, this = f"{recorded.get('digest')} ({recorded.get('version')})", f"{now['digest']} ({now['version']})"
    if os.environ.get(ALLOW_ENV, "") in ("", "0"):
        raise ConfigError(
            f"run {name} started under code {was} and would resume under {this}: one run must not mix two versions "
            f"of the code. Keep a study's code fixed while it runs (docs/PIPELINE.md, 'A study's code'), or set "
            f"{ALLOW_ENV}=1 to resume anyway (recorded in {path})")
    changes = [*recorded.get("changes", []), {**now, "at": time.time()}]
    write_text_atomic(path, json.dumps({**recorded, "changes": changes}, indent=1) + "\n")
    return f"resumed under other code ({was} -> {this}) because {ALLOW_ENV} is set; recorded in {path}"
