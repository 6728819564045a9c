"""The one reader (and the atomic rewriter) of the run folder's JSON files: ``metrics.jsonl``, ``attempts.jsonl``,
``status.json`` and the like.

Rules, the same for every caller:

- a missing file reads as empty (``[]`` / ``None``);
- a torn **last** line of a JSONL file (a writer killed mid-line, or a file system that lost its tail) is dropped,
  and said: :class:`JsonlContent` carries its line number and :func:`read_jsonl` logs one warning;
- any other bad line (not JSON, not a JSON object, not UTF-8) is a :class:`RecordFileError` naming the file and
  the line number (``results/x/metrics.jsonl:7: not valid JSON (...)``), printed as one line, never a traceback;
- a corrupt JSON file (``status.json``) is a :class:`RecordFileError` naming the file, line and column.

:func:`rewrite_jsonl` replaces a JSONL file by the one atomic writer (:mod:`ired.runs.atomic`): a kill at any
instant leaves the old content or the new one, never an emptied or half-written log.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ired.core.errors import RecordFileError
from ired.runs.atomic import append_text, write_text_atomic

log = logging.getLogger("ired")


@dataclass
class JsonlContent:
    """A JSONL file read: its rows (JSON objects), their 1-based line numbers and raw text, and any torn last line."""

    path: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    line_numbers: list[int] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    torn_line: int | None = None

    @property
    def torn_note(self) -> str | None:
        """One line saying that the torn last line was dropped, or None."""
        if self.torn_line is None:
            return None
        return f"{self.path}:{self.torn_line}: torn last line dropped (a writer was stopped mid-line)"


def _read_bytes(path: Path) -> bytes | None:
    """The file's bytes, None when it does not exist; any other OSError is a one-line RecordFileError."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RecordFileError(f"{path}: cannot read ({exc.strerror or exc})") from None


def load_jsonl(path: str | Path) -> JsonlContent:
    """Read a JSONL file by the module's rules; raises :class:`RecordFileError` for a bad line before the last."""
    path = Path(path)
    out = JsonlContent(path)
    data = _read_bytes(path)
    if data is None:
        return out
    raw_lines = data.split(b"\n")
    numbered = [(i + 1, raw) for i, raw in enumerate(raw_lines) if raw.strip(b" \t\r")]
    for k, (number, raw) in enumerate(numbered):
        problem: str | None = None
        row: Any = None
        try:
            text = raw.decode("utf-8")
            row = json.loads(text)
        except UnicodeDecodeError:
            problem = "not UTF-8 text"
        except json.JSONDecodeError as exc:
            problem = f"not valid JSON ({exc.msg}: column {exc.colno})"
        if problem is None and not isinstance(row, dict):
            problem = f"not a JSON object (a {type(row).__name__})"
        if problem is not None:
            if k == len(numbered) - 1:
                out.torn_line = number
                break
            raise RecordFileError(f"{path}:{number}: corrupt line, {problem}; fix or remove that line")
        out.rows.append(row)
        out.line_numbers.append(number)
        out.lines.append(text)
    return out


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file (see the module rules); a dropped torn last line is logged as one warning."""
    content = load_jsonl(path)
    if content.torn_note:
        log.warning("%s", content.torn_note)
    return content.rows


def last_value(path: str | Path, key: str, chunk: int = 1 << 16) -> tuple[int | None, Any] | None:
    """``(step, value)`` of the last row of a JSONL file whose ``key`` is not null, read from the end of the file
    (a long log costs a few blocks, not its length); None when no row has it or there is no file. For views of a
    run in progress (``ired status``): a line that is not a JSON object (a torn last line) is skipped, not raised."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RecordFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with handle:
        end = handle.seek(0, os.SEEK_END)
        tail = b""
        while end > 0:
            start = max(0, end - chunk)
            handle.seek(start)
            tail = handle.read(end - start) + tail
            end = start
            lines = tail.split(b"\n")
            if end > 0:  # the first piece may be the end of a line that started before this block
                tail, lines = lines[0], lines[1:]
            else:
                tail = b""
            for raw in reversed(lines):
                try:
                    row = json.loads(raw)
                except (ValueError, UnicodeDecodeError):
                    continue
                if isinstance(row, dict) and row.get(key) is not None:
                    step = row.get("step")
                    return (step if isinstance(step, int) else None), row[key]
    return None


def read_json(path: str | Path) -> Any:
    """A JSON file, or None when it does not exist; a corrupt one is a :class:`RecordFileError` naming file:line."""
    path = Path(path)
    data = _read_bytes(path)
    if data is None:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise RecordFileError(f"{path}: corrupt file, not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise RecordFileError(
            f"{path}:{exc.lineno}: corrupt file, not valid JSON ({exc.msg}: column {exc.colno})"
        ) from None


def read_json_object(path: str | Path) -> dict[str, Any] | None:
    """:func:`read_json` for files that must hold one JSON object (``status.json``)."""
    value = read_json(path)
    if value is not None and not isinstance(value, dict):
        raise RecordFileError(f"{path}: corrupt file, not a JSON object (a {type(value).__name__})")
    return value


def rewrite_jsonl(path: str | Path, lines: Iterable[str]) -> None:
    """Replace ``path`` with ``lines`` (one JSON text each) by the one atomic writer's rule
    (:mod:`ired.runs.atomic`)."""
    write_text_atomic(path, "".join(line.rstrip("\n") + "\n" for line in lines))


def append_jsonl(path: str | Path, row: dict[str, Any], fsync: bool = False) -> None:
    """Append one row as one line (:func:`ired.runs.atomic.append_text`: a :class:`StorageError` names the file)."""
    append_text(path, json.dumps(row) + "\n", fsync=fsync)
